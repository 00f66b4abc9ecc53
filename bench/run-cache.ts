/**
 * The remote build cache workload of `npm run bench` (`cache`, called by run.ts): issue 6's
 * benchmark. One multi-stage build whose cold run does several seconds of CPU work (a
 * `builder` stage that generates ~40 MB of deterministic pseudo-random hex text with busybox
 * awk/tr/sha256sum/bzip2, no network; a final stage that copies part of it and runs one small
 * step), measured as three workloads:
 *
 *   cache-import         "machine B": a fresh data root holding only the base image builds with
 *                        --cache-from type=registry,ref=R, the cache that "machine A" (another
 *                        root) exported untimed with --cache-to type=registry,ref=R,mode=max.
 *                        Anchors: dray-cold (fresh root, no cache: the target is <= 0.2x),
 *                        docker-inline (dockerd's BuildKit, POST /build with cachefrom=[IMG],
 *                        IMG built once with BUILDKIT_INLINE_CACHE=1 and pushed; before each run
 *                        `docker builder prune -af` and `docker rmi -f` of every image of this
 *                        workload, so dockerd must import like a fresh machine: target <= 0.7x),
 *                        docker-cold (the same build, pruned, no cachefrom: shows whether
 *                        docker's import hits at all).
 *   cache-import-inline  the same with dray's inline cache (A: -t IMG --push --cache-to
 *                        type=inline; B: --cache-from IMG) vs the same docker-inline anchor
 *                        (measured again in this workload): inline against inline.
 *   cache-export         dray build --push -t REG/R1 --cache-to type=registry,ref=REG/R2,mode=max
 *                        vs dray-push (dray build --push -t REG/R1), both cold from a fresh root
 *                        into repository names new to the registry on every run, so both upload
 *                        real layers (target <= 1.10).
 *
 * Every build after a timed run is checked untimed: the import runs must show every RUN/COPY
 * step CACHED (a miss is logged as a WARNING with the steps that ran), the cold runs none. The
 * base image is made from the host's busybox, pushed to the bench registry (untimed) and pulled
 * into every dray root and into dockerd before timing.
 */
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { storeBusyboxImage } from '../test/harness/busybox-image.ts';
import { type DockerEngine, startDockerd } from '../test/harness/docker-engine.ts';
import { runCommand } from '../test/harness/tools.ts';
import { CMD_TIMEOUT_MS, type Command, DRAY_BIN, log, PROJECT, type Workload } from './common.ts';
import type { BuildContext } from './run-build.ts';

export const CACHE_WORKLOADS = ['cache'];

/** The Dockerfile: a CPU-heavy `builder` stage (what a cache import saves) and a small final stage. */
function dockerfile(base: string): string {
  const perms = [
    '0123456789abcdef',
    '123456789abcdef0',
    '23456789abcdef01',
    '3456789abcdef012',
    '456789abcdef0123',
    '56789abcdef01234',
    '6789abcdef012345',
    '789abcdef0123456',
  ];
  return [
    `FROM ${base} AS builder`,
    'COPY src /src',
    // 5 MB of pseudo-random hex from a fixed seed (busybox awk: the CPU-heavy step, ~3 s).
    `RUN mkdir -p /out/data && awk 'BEGIN{srand(42); for(j=0;j<655360;j++) printf "%08x", int(rand()*4294967296)}' > /out/seed`,
    // 8 transliterations of it: 40 MB of text that gzips to ~40%.
    `RUN cd /out/data && for p in ${perms.join(' ')}; do tr 0-9a-f $p < /out/seed > d$p; done && sha256sum * > /out/sums`,
    // "Compile": index the sources, bzip2 one data file, hash the data a few times.
    `RUN cat /src/*.txt | awk '{n[$5]+=$7} END{for(k in n) print k, n[k]}' | sort > /out/index && bzip2 -9 -c /out/data/d${perms[0]} > /out/pkg.bz2 && i=0; while [ $i -lt 4 ]; do sha256sum /out/data/* > /out/sums.$i; i=$((i+1)); done`,
    '',
    `FROM ${base}`,
    'COPY --from=builder /out/sums /out/index /out/pkg.bz2 /app/',
    `COPY --from=builder /out/data/d${perms[0]} /app/data/`,
    'RUN sha256sum /app/data/* /app/pkg.bz2 > /app/final.sum && wc -c /app/*.* /app/data/* > /app/sizes',
    '',
  ].join('\n');
}

/** The context: 40 small deterministic source files and the Dockerfile. */
async function writeContext(dir: string, base: string): Promise<void> {
  await mkdir(join(dir, 'src'), { recursive: true });
  let x = 12345;
  const next = () => {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    return x % 100000;
  };
  for (let f = 0; f < 40; f++) {
    const lines: string[] = [];
    for (let j = 0; j < 60; j++) lines.push(`line ${j} of module ${f}: value ${next()}`);
    await writeFile(join(dir, 'src', `m${f}.txt`), `${lines.join('\n')}\n`);
  }
  await writeFile(join(dir, 'Dockerfile'), dockerfile(base));
}

async function checked(cmd: string, args: string[], env?: Record<string, string>): Promise<string> {
  const r = await runCommand(cmd, args, { env, timeoutMs: CMD_TIMEOUT_MS });
  if (r.code !== 0)
    throw new Error(
      `${cmd} ${args.join(' ')} exited ${r.code}: ${r.stderr.slice(-2000)}${r.stdout.slice(-2000)}`,
    );
  return r.stdout;
}

/**
 * Build steps of a `--progress=plain` transcript (dray's, or the one docker-buildkit-build.ts
 * prints): the RUN/COPY vertexes, by name, and whether each was CACHED.
 */
export function cachedSteps(transcript: string): Array<{ name: string; cached: boolean }> {
  const names = new Map<string, string>();
  const cached = new Set<string>();
  for (const line of transcript.split('\n')) {
    const m = /^#(\d+) (.*)$/.exec(line);
    if (m === null) continue;
    const [, id = '', text = ''] = m;
    if (!names.has(id) && /^\[[^\]]+\] (RUN|COPY) /.test(text)) names.set(id, text);
    if (text === 'CACHED') cached.add(id);
  }
  return [...names].map(([id, name]) => ({ name, cached: cached.has(id) }));
}

const ACCEPT = [
  'application/vnd.oci.image.index.v1+json',
  'application/vnd.oci.image.manifest.v1+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
  'application/vnd.docker.distribution.manifest.v2+json',
].join(', ');

interface Manifest {
  config?: { digest: string };
  layers?: Array<{ size: number }>;
  manifests?: Array<{ size: number; mediaType?: string }>;
}

/** GET a manifest (or cache index) from the plain-HTTP bench registry; throws unless 200. */
async function getManifest(url: string, repo: string, tag: string): Promise<Manifest> {
  const res = await fetch(`${url}/v2/${repo}/manifests/${tag}`, { headers: { accept: ACCEPT } });
  if (res.status !== 200) throw new Error(`GET ${repo}:${tag} manifest answered ${res.status}`);
  return (await res.json()) as Manifest;
}

/** Does the image's config carry an inline cache (`moby.buildkit.cache.v0`)? */
async function hasInlineCache(url: string, repo: string, tag: string): Promise<boolean> {
  const m = await getManifest(url, repo, tag);
  if (m.config === undefined) return false;
  const res = await fetch(`${url}/v2/${repo}/blobs/${m.config.digest}`);
  const config = (await res.json()) as Record<string, unknown>;
  return typeof config['moby.buildkit.cache.v0'] === 'string';
}

export async function cacheWorkloads(c: BuildContext): Promise<Workload[]> {
  const reg = c.reg;
  const base = `${reg.host}/busybox:latest`;
  const seed = join(c.scratch, 'cache-seed');
  await storeBusyboxImage(c.cleanup, seed, base);
  await checked(DRAY_BIN, ['--root', seed, 'push', base], c.drayEnv);
  const ctx = join(c.scratch, 'cache-ctx');
  if (!existsSync(ctx)) await writeContext(ctx, base);
  const roots = join(c.scratch, 'cache-roots');
  await mkdir(roots, { recursive: true });

  let engine: DockerEngine | undefined;
  if (c.anchors) {
    log('cache: starting a private dockerd');
    engine = await startDockerd(c.cleanup, { insecureRegistries: [reg.host] });
    await checked('docker', ['pull', '-q', base], engine.env);
  }

  // The cache and image references of "machine A".
  const cacheRef = `${reg.host}/bench/cache:buildcache`;
  const drayInline = { repo: 'bench/cache-inline', tag: 'latest' };
  const dockerInline = { repo: 'bench/cache-docker', tag: 'inline' };
  const drayInlineRef = `${reg.host}/${drayInline.repo}:${drayInline.tag}`;
  const dockerInlineRef = `${reg.host}/${dockerInline.repo}:${dockerInline.tag}`;
  const dockerTags = [dockerInlineRef, 'bench/cache-docker:b', 'bench/cache-docker:cold'];

  const drayBuild = (root: string, ...flags: string[]): Command => ({
    cmd: DRAY_BIN,
    args: ['--root', root, 'build', '--progress=plain', '--network=none', ...flags, ctx],
    env: c.drayEnv,
  });
  /** A fresh data root holding only the base image (untimed pull). */
  const freshRoot = async (name: string): Promise<string> => {
    const root = join(roots, name);
    await checked(DRAY_BIN, ['--root', root, 'pull', '-q', base], c.drayEnv);
    return root;
  };
  const bk = (tag: string, ...extra: string[]): Command => ({
    cmd: c.node,
    args: [
      join(PROJECT, 'bench', 'docker-buildkit-build.ts'),
      engine?.socketPath ?? '',
      ctx,
      tag,
      ...extra,
      'transcript',
    ],
  });
  /** dockerd as a fresh machine that holds only the base image. */
  const wipeDocker = async () => {
    await checked('docker', ['builder', 'prune', '-af'], engine?.env);
    for (const t of dockerTags) await runCommand('docker', ['rmi', '-f', t], { env: engine?.env });
  };
  const logFile = (key: string, tool: string, i: number) =>
    join(c.scratch, `${key}-${tool.replace(/[^A-Za-z0-9]+/g, '_')}-${i}.log`);
  /** Untimed: warns unless every RUN/COPY step was CACHED (import) or none was (cold). */
  const checkHits = async (key: string, tool: string, i: number, expect: 'all' | 'none') => {
    const steps = cachedSteps(await readFile(logFile(key, tool, i), 'utf8'));
    const hits = steps.filter((s) => s.cached).length;
    const bad = steps.filter((s) => s.cached !== (expect === 'all'));
    if (steps.length === 0) log(`  WARNING ${key} ${tool} run ${i + 1}: no build steps in its output`);
    else if (bad.length > 0)
      log(
        `  WARNING ${key} ${tool} run ${i + 1}: ${hits}/${steps.length} steps CACHED, expected ${expect}; ${
          expect === 'all' ? 'ran' : 'cached'
        }: ${bad.map((s) => s.name.slice(0, 60)).join(' | ')}`,
      );
    else log(`  ${tool} run ${i + 1}: ${hits}/${steps.length} RUN/COPY steps CACHED`);
  };

  let dockerA = false;
  /** Docker's "machine A": an inline-cache build, pushed (untimed, once). */
  const setupDocker = async () => {
    if (dockerA) return;
    dockerA = true;
    log('cache: docker machine A: BUILDKIT_INLINE_CACHE=1 build + push (untimed)');
    await checked('docker', ['builder', 'prune', '-af'], engine?.env);
    const a = bk(dockerInlineRef, 'buildArg=BUILDKIT_INLINE_CACHE=1');
    await checked(a.cmd, a.args);
    await checked('docker', ['push', '-q', dockerInlineRef], engine?.env);
    if (!(await hasInlineCache(reg.url, dockerInline.repo, dockerInline.tag)))
      log(`  WARNING: ${dockerInlineRef} has no moby.buildkit.cache.v0 in its config: docker cannot import`);
  };

  const importKey = 'cache-import';
  const inlineKey = 'cache-import-inline';
  const exportKey = 'cache-export';
  const dockerPrepare = async (tool: string): Promise<Command> => {
    await wipeDocker();
    return tool === 'docker-inline'
      ? bk('bench/cache-docker:b', `cacheFrom=${dockerInlineRef}`)
      : bk('bench/cache-docker:cold');
  };
  const describe = {
    dray: `dray --root <fresh> build --cache-from type=registry,ref=${cacheRef} (cache exported with mode=max)`,
    'dray-cold': 'dray --root <fresh> build (no cache)',
    'docker-inline': `POST /build cachefrom=[${dockerInlineRef}] (BUILDKIT_INLINE_CACHE=1 image; builder cache and images wiped first)`,
    'docker-cold': 'POST /build (builder cache and images wiped first)',
  };

  const workloads: Workload[] = [
    {
      key: importKey,
      name: 'cache: import, fresh machine (registry cache, mode=max)',
      bytes: 0,
      tools: ['dray', 'dray-cold', 'docker-inline', 'docker-cold'],
      describe,
      setup: async (tool) => {
        if (tool === 'dray') {
          log(`cache: dray machine A: build --cache-to type=registry,ref=${cacheRef},mode=max (untimed)`);
          const a = drayBuild(
            await freshRoot('a-max'),
            '-t',
            'bench/cache:a',
            '--cache-to',
            `type=registry,ref=${cacheRef},mode=max`,
          );
          await checked(a.cmd, a.args, a.env);
        } else if (tool === 'docker-inline') await setupDocker();
      },
      prepare: async (tool, i) => {
        if (tool === 'dray')
          return drayBuild(
            await freshRoot(`b-max-${i}`),
            '-t',
            'bench/cache:b',
            '--cache-from',
            `type=registry,ref=${cacheRef}`,
          );
        if (tool === 'dray-cold') return drayBuild(await freshRoot(`cold-${i}`), '-t', 'bench/cache:cold');
        return dockerPrepare(tool);
      },
      check: async (tool, i) => {
        await checkHits(importKey, tool, i, tool.endsWith('-cold') ? 'none' : 'all');
        return undefined;
      },
    },
    {
      key: inlineKey,
      name: 'cache: import, fresh machine (inline cache)',
      bytes: 0,
      tools: ['dray', 'docker-inline'],
      describe: {
        dray: `dray --root <fresh> build --cache-from ${drayInlineRef} (built with --push --cache-to type=inline)`,
        'docker-inline': describe['docker-inline'],
      },
      setup: async (tool) => {
        if (tool === 'dray') {
          log(`cache: dray machine A: build -t ${drayInlineRef} --push --cache-to type=inline (untimed)`);
          const a = drayBuild(
            await freshRoot('a-inline'),
            '-t',
            drayInlineRef,
            '--push',
            '--cache-to',
            'type=inline',
          );
          await checked(a.cmd, a.args, a.env);
          if (!(await hasInlineCache(reg.url, drayInline.repo, drayInline.tag)))
            log(`  WARNING: ${drayInlineRef} has no moby.buildkit.cache.v0 in its config`);
        } else await setupDocker();
      },
      prepare: async (tool, i) =>
        tool === 'dray'
          ? drayBuild(await freshRoot(`b-inline-${i}`), '-t', 'bench/cache:b', '--cache-from', drayInlineRef)
          : dockerPrepare(tool),
      check: async (tool, i) => {
        await checkHits(inlineKey, tool, i, 'all');
        return undefined;
      },
    },
    {
      key: exportKey,
      name: 'cache: export (cold build + push, + registry cache mode=max)',
      bytes: 0,
      tools: ['dray', 'dray-push'],
      describe: {
        dray: 'dray --root <fresh> build --push -t REG/bench/cx-export-N --cache-to type=registry,ref=REG/bench/cx-export-N-cache:c,mode=max',
        'dray-push': 'dray --root <fresh> build --push -t REG/bench/cx-push-N',
      },
      prepare: async (tool, i) => {
        const root = await freshRoot(`export-${tool}-${i}`);
        const ref = `${reg.host}/bench/cx-${tool === 'dray' ? 'export' : 'push'}-${i}:latest`;
        return tool === 'dray'
          ? drayBuild(
              root,
              '--push',
              '-t',
              ref,
              '--cache-to',
              `type=registry,ref=${reg.host}/bench/cx-export-${i}-cache:c,mode=max`,
            )
          : drayBuild(root, '--push', '-t', ref);
      },
      check: async (tool, i) => {
        // Both pushed the image; the export side also the cache. Report the bytes of what was pushed.
        const sum = (m: Manifest) =>
          (m.layers ?? []).reduce((n, l) => n + l.size, 0) +
          (m.manifests ?? []).reduce((n, l) => n + l.size, 0);
        const image = await getManifest(
          reg.url,
          `bench/cx-${tool === 'dray' ? 'export' : 'push'}-${i}`,
          'latest',
        );
        if (tool !== 'dray') return sum(image);
        const cache = await getManifest(reg.url, `bench/cx-export-${i}-cache`, 'c');
        return sum(image) + sum(cache);
      },
    },
  ];
  // BENCH_CACHE_PARTS=import,inline,export (default all) picks among the three.
  const parts = (process.env.BENCH_CACHE_PARTS ?? 'import,inline,export').split(',');
  const part: Record<string, string> = {
    [importKey]: 'import',
    [inlineKey]: 'inline',
    [exportKey]: 'export',
  };
  return workloads.filter((w) => parts.includes(part[w.key] ?? ''));
}
