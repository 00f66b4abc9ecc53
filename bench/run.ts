/**
 * `npm run bench`: dray against its anchors on the same machine, same session.
 *
 * Method (../shared/bench/ANCHORS.md): per workload, dray and the anchor tool run
 * alternately (the order swaps every iteration), 1 untimed warm-up each, then BENCH_RUNS
 * timed runs each (default 5); medians are reported. Wall time is taken around the
 * `/usr/bin/time -f '%e %M %U %S'` process (hrtime, ns resolution; time's own %e is recorded
 * too), peak RSS is time's %M (largest single process of the command), CPU seconds are
 * %U + %S (the command and the children it waited for). `sync` precedes
 * every timed run. Every run writes into a fresh directory / a fresh registry; nothing is
 * deleted until all timing is over (caveat 1: on this ext4, creating files right after a
 * mass delete is 5-15× slower). If stale scratch from an earlier run had to be deleted
 * first, the runner waits BENCH_SETTLE_S (default 61) before timing; after a previous run's
 * own cleanup (bench/.cache/.last-delete), it waits what is left of those 61 s.
 *
 * Workloads:
 *   pull  dray --root <fresh> pull REG/bench/big:latest
 *         vs skopeo copy docker://REG/bench/big:latest oci:<fresh>:latest
 *   push  dray --root <root with the image> push REG2/bench/big:latest (after an untimed tag)
 *         vs skopeo copy oci:<fixture layout>:latest docker://REG2/bench/big:latest
 *         REG2 is a new, empty registry per timed run (caveat 2: a push to a new repo on
 *         the same registry is a cross-repo mount, not an upload); skopeo's blob-location
 *         cache is deleted before each of its runs for the same reason.
 *         Floor: bench/curl-push.sh (curl, every blob at once, then the manifest): what the
 *         registry itself needs to take the image in.
 *
 * A floor (Workload.floors) is timed like an anchor but is not a peer: it does only part of
 * the work (or does it with no overhead at all). Its time over the fastest peer's is the
 * best ratio any tool could reach on this machine, printed below the table.
 *
 * Build workloads (run-build.ts): build, multistage — cold, warm and incremental, against
 * dockerd's BuildKit and the classic builder.
 *
 * Cache workload (run-cache.ts): cache — remote build cache import on a fresh data root vs a
 * cold build and vs dockerd's BuildKit importing an inline cache; cache export's cost on a
 * build that pushes.
 *
 * Archive workloads (run-archive.ts): export, unpack (ext4 and tmpfs), save, layer; each
 * against up to two anchors. The ratio is dray's median over each anchor's median; the
 * "vs fastest" ratio is over the fastest anchor's.
 *
 * Environment: BENCH_RUNS (5), BENCH_WARMUP (1), BENCH_ONLY=dray|anchor (default both),
 * BENCH_WORKLOADS=pull,push,export,unpack,save,layer,build,multistage,cache (default all), BENCH_SETTLE_S, BENCH_SCRATCH (default bench/.cache/scratch),
 * BENCH_KEEP=1 (keep scratch), BENCH_CACHE_DIR (fixture cache).
 * Results: a table on stdout and bench/results/<UTC date-time>.json.
 */
import { spawn, spawnSync } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync, statSync } from 'node:fs';
import { mkdir, readdir, rm, writeFile } from 'node:fs/promises';
import { arch, cpus, loadavg, release, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import { type Registry, startRegistry } from '../test/harness/registry.ts';
import { runCommand, whichTool } from '../test/harness/tools.ts';
import { Cleanup, CMD_TIMEOUT_MS, DRAY_BIN, intEnv, log, PROJECT, type Workload } from './common.ts';
import { BENCH_DIR, type BigFixture, CACHE_DIR, ensureBigFixture, pushBigFixture } from './fixtures.ts';
import { ARCHIVE_WORKLOADS, archiveWorkloads } from './run-archive.ts';
import { BUILD_WORKLOADS, buildWorkloads } from './run-build.ts';
import { CACHE_WORKLOADS, cacheWorkloads } from './run-cache.ts';

const RUNS = intEnv('BENCH_RUNS', 5, 1, 50);
const WARMUP = intEnv('BENCH_WARMUP', 1, 0, 5);
const ONLY = process.env.BENCH_ONLY ?? 'both';
const ALL_WORKLOADS = ['pull', 'push', ...ARCHIVE_WORKLOADS, ...BUILD_WORKLOADS, ...CACHE_WORKLOADS];
const WORKLOADS = (process.env.BENCH_WORKLOADS ?? ALL_WORKLOADS.join(',')).split(',').filter(Boolean);
const SCRATCH_ROOT = process.env.BENCH_SCRATCH ?? join(CACHE_DIR, 'scratch');
const KEEP = process.env.BENCH_KEEP === '1';
const SKOPEO_BLOB_CACHE = '/var/lib/containers/cache/blob-info-cache-v1.boltdb';

interface RunSample {
  wallS: number;
  timeS: number;
  peakRssMB: number;
  /** User + system CPU seconds of the command and the children it waited for (time's %U + %S). */
  cpuS: number;
  warmup: boolean;
  /** Size of what the run wrote, when the workload measures it. */
  outBytes?: number;
}

interface Side {
  tool: string;
  command: string;
  samples: RunSample[];
  medianWallS?: number;
  minWallS?: number;
  maxWallS?: number;
  medianPeakRssMB?: number;
  medianCpuS?: number;
  outBytes?: number;
}

interface WorkloadResult {
  key: string;
  name: string;
  bytes: number;
  dray?: Side;
  anchors: Side[];
  /** dray median / each anchor's median, by anchor tool. */
  ratios: Record<string, number>;
  fastestAnchor?: string;
  /** dray median / the fastest anchor's median. */
  ratioVsFastest?: number;
  /** Floors (Workload.floors): timed like anchors, never the fastest peer. */
  floors: Side[];
  /** dray median / each floor's median, by floor tool. */
  floorRatios: Record<string, number>;
  /** Each floor's median / the fastest anchor's median: the best ratio reachable, by floor tool. */
  floorVsFastest: Record<string, number>;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? (s[m] ?? Number.NaN) : ((s[m - 1] ?? 0) + (s[m] ?? 0)) / 2;
}

/** Runs one command under /usr/bin/time, output to `logFile`; throws (with the log tail) on failure. */
async function timed(cmd: string, args: string[], logFile: string, env?: Record<string, string>) {
  spawnSync('sync');
  const timeFile = `${logFile}.time`;
  const fd = openSync(logFile, 'w');
  const t0 = process.hrtime.bigint();
  const code = await new Promise<number | null>((res, rej) => {
    const child = spawn('/usr/bin/time', ['-f', '%e %M %U %S', '-o', timeFile, cmd, ...args], {
      stdio: ['ignore', fd, fd],
      env: { ...process.env, ...env },
      cwd: PROJECT,
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), CMD_TIMEOUT_MS);
    child.on('error', rej);
    child.on('close', (c) => {
      clearTimeout(timer);
      res(c);
    });
  });
  const wallS = Number(process.hrtime.bigint() - t0) / 1e9;
  closeSync(fd);
  if (code !== 0) {
    const tail = readFileSync(logFile, 'utf8').slice(-2000);
    throw new Error(`${cmd} ${args.join(' ')} exited ${code}:\n${tail}`);
  }
  const last = readFileSync(timeFile, 'utf8').trim().split('\n').pop() ?? '';
  const [e = 'NaN', m = 'NaN', u = 'NaN', sys = 'NaN'] = last.split(' ');
  return { wallS, timeS: Number(e), peakRssMB: Number(m) / 1024, cpuS: Number(u) + Number(sys) };
}

async function main(): Promise<void> {
  if (!['both', 'dray', 'anchor'].includes(ONLY)) throw new Error('BENCH_ONLY must be dray, anchor or both');
  const runDray = ONLY !== 'anchor';
  const runAnchors = ONLY !== 'dray';
  for (const w of WORKLOADS) {
    if (!ALL_WORKLOADS.includes(w))
      throw new Error(`unknown workload ${w} (known: ${ALL_WORKLOADS.join(',')})`);
  }
  const needed = ['docker-registry', 'skopeo', 'tar', 'pigz', 'curl', 'sh', '/usr/bin/time'];
  if (
    runAnchors &&
    ['export', 'unpack', 'save', ...BUILD_WORKLOADS, ...CACHE_WORKLOADS].some((w) => WORKLOADS.includes(w))
  ) {
    needed.push('dockerd', 'docker', 'containerd', 'runc');
  }
  const missing = needed.filter((b) => !whichTool(b));
  if (missing.length > 0) throw new Error(`missing tools: ${missing.join(', ')}`);
  if (runDray && !existsSync(DRAY_BIN)) {
    throw new Error(
      `${DRAY_BIN} not found: the dray CLI is not built yet. Run 'BENCH_ONLY=anchor npm run bench' to measure the anchors alone.`,
    );
  }
  const node = process.execPath;
  const cleanup = new Cleanup();
  const onSignal = () => {
    log('interrupted; cleaning up');
    cleanup.run().finally(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);

  try {
    // Scratch: stale dirs from an interrupted run are removed before timing, then we settle.
    // A previous run's end-of-run cleanup (a mass delete) counts too: settle what is left of 61 s.
    const lastDelete = join(CACHE_DIR, '.last-delete');
    let recentDeleteS = 0;
    if (existsSync(lastDelete)) {
      const age = (Date.now() - statSync(lastDelete).mtimeMs) / 1000;
      if (age >= 0 && age < 61) recentDeleteS = Math.ceil(61 - age);
    }
    let deleted = false;
    if (existsSync(SCRATCH_ROOT)) {
      const stale = await readdir(SCRATCH_ROOT);
      if (stale.length > 0) {
        log(`removing stale scratch ${SCRATCH_ROOT}`);
        await rm(SCRATCH_ROOT, { recursive: true, force: true });
        deleted = true;
      }
    }
    const scratch = join(SCRATCH_ROOT, `run-${process.pid}`);
    await mkdir(scratch, { recursive: true });
    if (!KEEP) {
      cleanup.after(async () => {
        await rm(scratch, { recursive: true, force: true });
        await writeFile(lastDelete, `${new Date().toISOString()}\n`);
      });
    }

    // The big fixture is only needed by the transfer and archive workloads.
    const needBig = WORKLOADS.some((w) => !BUILD_WORKLOADS.includes(w) && !CACHE_WORKLOADS.includes(w));
    const fixture = needBig ? await ensureBigFixture(log) : (undefined as unknown as BigFixture);
    if (needBig)
      log(
        `fixture ${fixture.version}: ${fixture.layers.length} layers, ${(fixture.compressedBytes / 1e6).toFixed(1)} MB compressed, ${(fixture.uncompressedBytes / 1e6).toFixed(1)} MB uncompressed`,
      );

    const reg = await startRegistry(cleanup, { dataDir: join(scratch, 'registry-main') });
    if (needBig) {
      log(`registry ${reg.host}: pushing the fixture (untimed)`);
      await pushBigFixture(fixture, reg.host);
    }
    const src = `${reg.host}/bench/big:latest`;
    const dockerConfig = join(scratch, 'docker-config');
    await mkdir(dockerConfig, { recursive: true });
    // Run the CLI as users do (its shebang carries its V8 flags), with Node 24 first on PATH.
    const drayEnv = { DOCKER_CONFIG: dockerConfig, PATH: `${dirname(node)}:${process.env.PATH ?? ''}` };

    const settleS = intEnv('BENCH_SETTLE_S', deleted ? 61 : recentDeleteS, 0, 600);
    if (settleS > 0) {
      log(`settling ${settleS} s after deleting files (ANCHORS.md caveat 1)`);
      spawnSync('sync');
      await new Promise((r) => setTimeout(r, settleS * 1000));
    }

    const loadBefore = loadavg();
    if ((loadBefore[0] ?? 0) > 0.5 * cpus().length) {
      log(
        `WARNING: load average ${loadBefore.map((l) => l.toFixed(2)).join(' ')} on ${cpus().length} CPUs: other work competes for the machine, figures will be inflated`,
      );
    }
    const workloads: Workload[] = [];
    if (WORKLOADS.includes('pull')) {
      const dir = join(scratch, 'pull');
      await mkdir(dir);
      workloads.push({
        key: 'pull',
        name: 'pull big (registry -> local store)',
        bytes: fixture.compressedBytes,
        tools: ['dray', 'skopeo'],
        describe: {
          dray: `dray --root <fresh> pull ${src}`,
          skopeo: `skopeo copy --src-tls-verify=false docker://${src} oci:<fresh>:latest`,
        },
        prepare: async (tool, i) =>
          tool === 'dray'
            ? { cmd: DRAY_BIN, args: ['--root', join(dir, `dray-${i}`), 'pull', src], env: drayEnv }
            : {
                cmd: 'skopeo',
                args: [
                  'copy',
                  '--src-tls-verify=false',
                  `docker://${src}`,
                  `oci:${join(dir, `skopeo-${i}`)}:latest`,
                ],
              },
        check: async (tool, i) => {
          if (tool === 'skopeo' && !existsSync(join(dir, `skopeo-${i}`, 'index.json'))) {
            throw new Error('skopeo pull wrote no index.json');
          }
          return undefined;
        },
      });
    }
    if (WORKLOADS.includes('push')) {
      const dir = join(scratch, 'push');
      await mkdir(dir);
      const drayRoot = join(dir, 'dray-root');
      let reg2: Registry | undefined;
      const target = () => `${reg2?.host}/bench/big:latest`;
      workloads.push({
        key: 'push',
        name: 'push big (full upload, empty registry)',
        bytes: fixture.compressedBytes,
        tools: ['dray', 'skopeo', 'curl'],
        floors: ['curl'],
        describe: {
          dray: 'dray --root <root with big> push REG2/bench/big:latest',
          skopeo: `skopeo copy --dest-tls-verify=false oci:<fixture>:latest docker://REG2/bench/big:latest`,
          curl: 'bench/curl-push.sh: every blob at once by curl (POST + PUT ?digest=), then the manifest',
        },
        setup: async (tool) => {
          if (tool === 'dray') {
            log('push: pulling big into the dray root (untimed)');
            const r = await runCommand(DRAY_BIN, ['--root', drayRoot, 'pull', src], {
              env: drayEnv,
              timeoutMs: CMD_TIMEOUT_MS,
            });
            if (r.code !== 0) throw new Error(`dray pull (push setup) failed: ${r.stderr.slice(-2000)}`);
          }
        },
        prepare: async (tool, i) => {
          // A new, empty registry for every run: a real upload, never a mount.
          reg2 = await startRegistry(cleanup, { dataDir: join(dir, `registry-${tool}-${i}`) });
          if (tool === 'dray') {
            const r = await runCommand(DRAY_BIN, ['--root', drayRoot, 'tag', src, target()], {
              env: drayEnv,
            });
            if (r.code !== 0) throw new Error(`dray tag failed: ${r.stderr.slice(-2000)}`);
            return { cmd: DRAY_BIN, args: ['--root', drayRoot, 'push', target()], env: drayEnv };
          }
          if (tool === 'curl') {
            return {
              cmd: 'sh',
              args: [
                join(BENCH_DIR, 'curl-push.sh'),
                reg2.host,
                'bench/big',
                'latest',
                join(fixture.layout, 'blobs', 'sha256'),
                fixture.manifestDigest.slice('sha256:'.length),
              ],
            };
          }
          // skopeo remembers where blobs live (by registry host:port, which may repeat) and
          // would try to mount them; start it from an empty blob-location cache, as ANCHORS.md did.
          await rm(SKOPEO_BLOB_CACHE, { force: true });
          return {
            cmd: 'skopeo',
            args: ['copy', '--dest-tls-verify=false', `oci:${fixture.ociRef}`, `docker://${target()}`],
          };
        },
        check: async () => {
          const res = await fetch(`${reg2?.url}/v2/bench/big/manifests/latest`, {
            method: 'HEAD',
            headers: {
              accept:
                'application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json',
            },
          });
          if (res.status !== 200) throw new Error(`push check: manifest HEAD answered ${res.status}`);
          return undefined;
        },
        finish: async () => {
          await reg2?.stop();
          reg2 = undefined;
        },
      });
    }

    // Every workload family gets the same runner context (archives also the fixture).
    const runContext = {
      selected: WORKLOADS,
      dray: runDray,
      anchors: runAnchors,
      scratch,
      cacheDir: CACHE_DIR,
      cleanup,
      reg,
      drayEnv,
      node,
    };
    if (ARCHIVE_WORKLOADS.some((w) => WORKLOADS.includes(w)))
      workloads.push(...(await archiveWorkloads({ ...runContext, src, fixture })));
    if (BUILD_WORKLOADS.some((w) => WORKLOADS.includes(w)))
      workloads.push(...(await buildWorkloads(runContext)));
    if (CACHE_WORKLOADS.some((w) => WORKLOADS.includes(w)))
      workloads.push(...(await cacheWorkloads(runContext)));

    const results: WorkloadResult[] = [];
    for (const w of workloads) {
      log(`== ${w.name}`);
      const tools = w.tools.filter((t) => (t === 'dray' ? runDray : runAnchors));
      const sides = new Map<string, Side>();
      for (const tool of tools) {
        sides.set(tool, { tool, command: w.describe[tool] ?? tool, samples: [] });
        await w.setup?.(tool);
      }
      for (let i = 0; i < WARMUP + RUNS; i++) {
        // Alternate: rotate the order every iteration, reversed on odd ones, so that no
        // tool always runs first or right after the same peer.
        const rot = [...tools.slice(i % tools.length), ...tools.slice(0, i % tools.length)];
        const order = i % 2 === 0 ? rot : rot.reverse();
        for (const tool of order) {
          const side = sides.get(tool);
          if (side === undefined) continue;
          const { cmd, args, env } = await w.prepare(tool, i);
          try {
            const r = await timed(
              cmd,
              args,
              join(scratch, `${w.key}-${tool.replace(/[^A-Za-z0-9]+/g, '_')}-${i}.log`),
              env,
            );
            const outBytes = await w.check?.(tool, i);
            const warmup = i < WARMUP;
            side.samples.push({ ...r, warmup, ...(outBytes === undefined ? {} : { outBytes }) });
            log(
              `  ${tool.padEnd(18)} run ${i + 1}${warmup ? ' (warm-up)' : ''}: ${r.wallS.toFixed(3)} s, ${r.peakRssMB.toFixed(1)} MB`,
            );
          } finally {
            await w.finish?.(tool, i);
          }
        }
      }
      const res: WorkloadResult = {
        key: w.key,
        name: w.name,
        bytes: w.bytes,
        anchors: [],
        ratios: {},
        floors: [],
        floorRatios: {},
        floorVsFastest: {},
      };
      for (const tool of tools) {
        const side = sides.get(tool);
        if (side === undefined) continue;
        const timedRuns = side.samples.filter((s) => !s.warmup);
        side.medianWallS = median(timedRuns.map((s) => s.wallS));
        side.minWallS = Math.min(...timedRuns.map((s) => s.wallS));
        side.maxWallS = Math.max(...timedRuns.map((s) => s.wallS));
        side.medianPeakRssMB = median(timedRuns.map((s) => s.peakRssMB));
        side.medianCpuS = median(timedRuns.map((s) => s.cpuS));
        const out = timedRuns.at(-1)?.outBytes;
        if (out !== undefined) side.outBytes = out;
        if (tool === 'dray') res.dray = side;
        else if (w.floors?.includes(tool)) res.floors.push(side);
        else res.anchors.push(side);
      }
      const fastest = [...res.anchors].sort((x, y) => (x.medianWallS ?? 0) - (y.medianWallS ?? 0))[0];
      if (fastest !== undefined) res.fastestAnchor = fastest.tool;
      const d = res.dray?.medianWallS;
      if (d !== undefined) {
        for (const an of res.anchors) if (an.medianWallS) res.ratios[an.tool] = d / an.medianWallS;
        if (fastest?.medianWallS) res.ratioVsFastest = d / fastest.medianWallS;
        for (const fl of res.floors) if (fl.medianWallS) res.floorRatios[fl.tool] = d / fl.medianWallS;
      }
      for (const fl of res.floors) {
        if (fl.medianWallS && fastest?.medianWallS)
          res.floorVsFastest[fl.tool] = fl.medianWallS / fastest.medianWallS;
      }
      results.push(res);
    }

    printTable(results);
    const resultsDir = join(BENCH_DIR, 'results');
    await mkdir(resultsDir, { recursive: true });
    const stamp = new Date().toISOString().replace(/[:.]/g, '-');
    const out = join(resultsDir, `${stamp}.json`);
    const firstLine = async (cmd: string, args: string[]) => {
      const r = await runCommand(cmd, args).catch(() => undefined);
      return `${r?.stdout ?? ''}${r?.stderr ?? ''}`.trim().split('\n')[0] ?? '';
    };
    const skopeoVersion = await firstLine('skopeo', ['--version']);
    const dockerVersion = await firstLine('dockerd', ['--version']);
    const tarVersion = await firstLine('tar', ['--version']);
    const pigzVersion = await firstLine('pigz', ['--version']);
    await writeFile(
      out,
      `${JSON.stringify(
        {
          date: new Date().toISOString(),
          loadavg: { before: loadBefore, after: loadavg() },
          machine: {
            cpus: cpus().length,
            cpu: cpus()[0]?.model,
            memBytes: totalmem(),
            kernel: release(),
            arch: arch(),
          },
          node: process.version,
          anchors: { skopeo: skopeoVersion, docker: dockerVersion, tar: tarVersion, pigz: pigzVersion },
          method: {
            runs: RUNS,
            warmup: WARMUP,
            alternating: true,
            wall: 'hrtime around /usr/bin/time',
            rss: '%M',
          },
          fixture: needBig
            ? {
                version: fixture.version,
                manifestDigest: fixture.manifestDigest,
                compressedBytes: fixture.compressedBytes,
                uncompressedBytes: fixture.uncompressedBytes,
              }
            : null,
          results,
        },
        null,
        2,
      )}\n`,
    );
    log(`results: ${out}`);
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await cleanup.run();
  }
}

function printTable(results: WorkloadResult[]): void {
  const f = (n: number | undefined, d = 3) => (n === undefined || Number.isNaN(n) ? '-' : n.toFixed(d));
  const rate = (bytes: number, s: Side | undefined) =>
    s?.medianWallS ? f(bytes / 1e6 / s.medianWallS, 0) : '-';
  const rows = [
    [
      'workload',
      'anchor',
      'dray median s',
      'anchor median s (min-max)',
      'dray/anchor',
      'dray RSS MB',
      'anchor RSS MB',
      'dray CPU s',
      'anchor CPU s',
      'dray MB/s',
      'anchor MB/s',
    ],
  ];
  for (const r of results) {
    const pairs: Array<Side | undefined> =
      r.anchors.length + r.floors.length > 0 ? [...r.anchors, ...r.floors] : [undefined];
    for (const a of pairs) {
      const fastest = a !== undefined && r.anchors.length > 1 && a.tool === r.fastestAnchor ? ' *' : '';
      const floor = a !== undefined && r.floors.includes(a) ? ' (floor)' : '';
      rows.push([
        r.name,
        a ? `${a.tool}${fastest}${floor}` : '-',
        r.dray ? `${f(r.dray.medianWallS)} (${f(r.dray.minWallS)}-${f(r.dray.maxWallS)})` : '-',
        a ? `${f(a.medianWallS)} (${f(a.minWallS)}-${f(a.maxWallS)})` : '-',
        a ? f(r.ratios[a.tool] ?? r.floorRatios[a.tool], 2) : '-',
        f(r.dray?.medianPeakRssMB, 1),
        f(a?.medianPeakRssMB, 1),
        f(r.dray?.medianCpuS, 2),
        f(a?.medianCpuS, 2),
        rate(r.bytes, r.dray),
        rate(r.bytes, a),
      ]);
    }
  }
  const widths = rows[0]?.map((_, c) => Math.max(...rows.map((r) => (r[c] ?? '').length))) ?? [];
  for (const [i, r] of rows.entries()) {
    process.stdout.write(`${r.map((cell, c) => cell.padEnd(widths[c] ?? 0)).join(' | ')}\n`);
    if (i === 0) process.stdout.write(`${widths.map((w) => '-'.repeat(w)).join('-|-')}\n`);
  }
  if (results.some((r) => r.anchors.length > 1))
    process.stdout.write(
      '* = the fastest anchor of the workload (the target: dray/anchor <= 1.0 against it)\n',
    );
  for (const r of results) {
    for (const [tool, x] of Object.entries(r.floorVsFastest)) {
      process.stdout.write(
        `floor: ${r.key}: '${tool}' (only part of the work) takes ${f(x, 2)}× the time of the fastest peer (${r.fastestAnchor})\n`,
      );
    }
  }
}

try {
  await main();
} catch (e) {
  process.stderr.write(`bench: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exitCode = 1;
}
