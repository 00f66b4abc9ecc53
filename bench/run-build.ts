/**
 * The build workloads of `npm run bench` (called by run.ts): the bench context of
 * ../shared/bench/ANCHORS.md (10,000 files, `FROM busybox`, `COPY . /app`, three RUNs) and a
 * multi-stage build with two independent stages, each built by
 *
 *   dray            dray --root R build -t bench/ctx CTX
 *   docker-buildkit dockerd's embedded BuildKit via POST /build?version=2 (the context goes as a
 *                   gzipped tar: this client-side gzip is part of its time; buildx would send it
 *                   uncompressed through a session instead)
 *   docker-classic  DOCKER_BUILDKIT=0 docker build (the legacy builder; sends an uncompressed tar)
 *
 * in three states: cold (dray: a fresh data root holding only the base image; BuildKit:
 * `docker builder prune -af` first; classic: --no-cache), warm (nothing changed), incremental
 * (one context file's content changed before each run). The base image is pulled (untimed)
 * from the bench registry into every side before timing.
 */
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { storeBusyboxImage } from '../test/harness/busybox-image.ts';
import { type DockerEngine, startDockerd } from '../test/harness/docker-engine.ts';
import type { Registry } from '../test/harness/registry.ts';
import { runCommand } from '../test/harness/tools.ts';
import { type Cleanup, CMD_TIMEOUT_MS, DRAY_BIN, log, PROJECT, type Workload } from './common.ts';

export const BUILD_WORKLOADS = ['build', 'multistage'];

export interface BuildContext {
  selected: string[];
  dray: boolean;
  anchors: boolean;
  scratch: string;
  cacheDir: string;
  cleanup: Cleanup;
  reg: Registry;
  drayEnv: Record<string, string>;
  node: string;
}

async function checked(cmd: string, args: string[], env?: Record<string, string>): Promise<string> {
  const r = await runCommand(cmd, args, { env, timeoutMs: CMD_TIMEOUT_MS });
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${r.code}: ${r.stderr.slice(-2000)}`);
  return r.stdout;
}

/** The 10,000-file context (generated once by ../shared/bench/gen-fixtures.js), FROM our registry's busybox. */
async function ensureContext(c: BuildContext, base: string): Promise<string> {
  const dir = join(c.cacheDir, 'ctx');
  if (!existsSync(join(dir, '.done'))) {
    log('build: generating the 10,000-file context (once)');
    await checked(c.node, [join(PROJECT, '..', 'shared', 'bench', 'gen-fixtures.js'), 'ctx', dir]);
    await writeFile(join(dir, '.done'), '');
  }
  // The FROM line names the registry of this run.
  const work = join(c.scratch, 'build-ctx');
  if (!existsSync(work)) {
    await checked('cp', ['-a', dir, work]);
    const df = await readFile(join(work, 'Dockerfile'), 'utf8');
    await writeFile(join(work, 'Dockerfile'), df.replace(/^FROM \S+/m, `FROM ${base}`));
  }
  return work;
}

/** Two independent stages (each a RUN over part of the context) joined by COPY --from. */
async function ensureMultistage(c: BuildContext, base: string, ctx: string): Promise<string> {
  const dir = join(c.scratch, 'build-multi');
  if (!existsSync(dir)) {
    await checked('cp', ['-a', ctx, dir]);
    await writeFile(
      join(dir, 'Dockerfile'),
      [
        `FROM ${base} AS left`,
        'COPY d00 /src/d00',
        'RUN find /src | wc -l > /left && sha256sum /src/d00/* > /left.sum',
        `FROM ${base} AS right`,
        'COPY d01 /src/d01',
        'RUN find /src | wc -l > /right && sha256sum /src/d01/* > /right.sum',
        `FROM ${base}`,
        'COPY --from=left /left /left.sum /out/',
        'COPY --from=right /right /right.sum /out/',
        'RUN cat /out/left /out/right > /out/both',
        '',
      ].join('\n'),
    );
  }
  return dir;
}

export async function buildWorkloads(c: BuildContext): Promise<Workload[]> {
  const sel = (w: string) => c.selected.includes(w);
  const base = `${c.reg.host}/busybox:latest`;
  // The base image: stored in a seed root from the host's busybox, pushed to the registry.
  const seed = join(c.scratch, 'build-seed');
  await storeBusyboxImage(c.cleanup, seed, base);
  await checked(DRAY_BIN, ['--root', seed, 'push', base], c.drayEnv);
  const ctx = await ensureContext(c, base);
  let engine: DockerEngine | undefined;
  if (c.anchors) {
    log('build: starting a private dockerd');
    engine = await startDockerd(c.cleanup, { insecureRegistries: [c.reg.host] });
    await checked('docker', ['pull', '-q', base], engine.env);
  }
  const workloads: Workload[] = [];
  const contexts: Array<[string, string]> = [];
  if (sel('build')) contexts.push(['build', ctx]);
  if (sel('multistage')) contexts.push(['multistage', await ensureMultistage(c, base, ctx)]);
  // BENCH_BUILD_TOOLS=dray,docker-buildkit leaves out the (slow) classic builder.
  const tools = (process.env.BENCH_BUILD_TOOLS ?? 'dray,docker-buildkit,docker-classic')
    .split(',')
    .filter((x) => ['dray', 'docker-buildkit', 'docker-classic'].includes(x));
  const describe = (state: string): Record<string, string> => ({
    dray: `dray --root R build -t bench/ctx CTX (${state})`,
    'docker-buildkit': `POST /build?version=2 (dockerd's BuildKit) (${state})`,
    'docker-classic': `DOCKER_BUILDKIT=0 docker build${state === 'cold' ? ' --no-cache' : ''} CTX (${state})`,
  });

  for (const [key, dir] of contexts) {
    const roots = join(c.scratch, `build-${key}-roots`);
    await mkdir(roots, { recursive: true });
    let coldRoot = '';
    const warmRoot = join(roots, 'warm');
    const drayBuild = (root: string) => ({
      cmd: DRAY_BIN,
      args: ['--root', root, 'build', '--progress=plain', '-t', `bench/${key}:latest`, dir],
      env: c.drayEnv,
    });
    const bk = (noCache: boolean) => ({
      cmd: c.node,
      args: [
        join(PROJECT, 'bench', 'docker-buildkit-build.ts'),
        engine?.socketPath ?? '',
        dir,
        `bench/${key}:bk`,
        ...(noCache ? ['noCache'] : []),
      ],
    });
    const classic = (noCache: boolean) => ({
      cmd: 'docker',
      args: [
        'build',
        ...(noCache ? ['--no-cache'] : []),
        '--network=none',
        '-q',
        '-t',
        `bench/${key}:classic`,
        dir,
      ],
      env: { ...(engine?.env ?? {}), DOCKER_BUILDKIT: '0' },
    });
    const pullBase = async (root: string) =>
      checked(DRAY_BIN, ['--root', root, 'pull', '-q', base], c.drayEnv);
    let touch = 0;
    // A file the build uses: the ctx build copies everything; the multi-stage build copies d00 and d01.
    const changed = key === 'multistage' ? join(dir, 'd00', 'f0007.txt') : join(dir, 'd07', 'f0707.txt');
    const changeOneFile = async () => {
      touch++;
      await writeFile(changed, `changed ${touch} ${Date.now()}\n`);
    };
    workloads.push(
      {
        key: `${key}-cold`,
        name: `${key}: cold (empty build cache, base image local)`,
        bytes: 0,
        tools,
        describe: describe('cold'),
        prepare: async (tool, i) => {
          if (tool === 'dray') {
            coldRoot = join(roots, `cold-${i}`);
            await pullBase(coldRoot);
            return drayBuild(coldRoot);
          }
          if (tool === 'docker-buildkit') {
            await checked('docker', ['builder', 'prune', '-af'], engine?.env);
            return bk(false);
          }
          return classic(true);
        },
      },
      {
        key: `${key}-warm`,
        name: `${key}: warm (nothing changed)`,
        bytes: 0,
        tools,
        describe: describe('warm'),
        setup: async (tool) => {
          if (tool === 'dray') {
            await pullBase(warmRoot);
            await checked(drayBuild(warmRoot).cmd, drayBuild(warmRoot).args, c.drayEnv);
          }
        },
        prepare: async (tool) =>
          tool === 'dray' ? drayBuild(warmRoot) : tool === 'docker-buildkit' ? bk(false) : classic(false),
      },
      {
        key: `${key}-incr`,
        name: `${key}: incremental (one context file changed)`,
        bytes: 0,
        tools,
        describe: describe('incremental'),
        prepare: async (tool) => {
          await changeOneFile();
          return tool === 'dray'
            ? drayBuild(warmRoot)
            : tool === 'docker-buildkit'
              ? bk(false)
              : classic(false);
        },
      },
    );
  }
  return workloads;
}
