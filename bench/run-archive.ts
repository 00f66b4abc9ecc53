/**
 * The archive workloads of `npm run bench` (called by run.ts), on the "big" fixture image
 * pulled (untimed) into a dray root and into a private dockerd:
 *
 *   export        dray export big -o F  vs  docker export <container> -o F  vs  tar -cf F -C <rootfs tree> .
 *                 floor: pigz -dc of every layer blob into F (decompression and writing only)
 *   unpack        dray unpack big DIR   vs  tar -xf rootfs.tar -C DIR   (ext4, fresh DIR per run)
 *                 vs the layer blobs applied in order by tar -xzf and by pigz -dc | tar -x
 *                 floor: pigz -dc of every layer blob to /dev/null (decompression only)
 *   unpack-tmpfs  the same with every DIR on tmpfs (/dev/shm)             (part of `unpack`)
 *   save          dray save --format docker -o F big  vs  docker save -o F  vs
 *                 skopeo copy oci:<fixture layout>:latest oci-archive:F
 *   layer         node bench/layer-create.ts TREE F (writeDiff, gzip -6)  vs  tar -czf F -C TREE .
 *                 vs  tar -cf - -C TREE . | pigz -p 2 > F
 *                 TREE: bench/.cache/<fixture>-layer200: rand r00-r09 (100 MB incompressible)
 *                 + text t00-t09 (100 MB log text) = 200 MB, copied once from the fixture src.
 *
 * rootfs.tar (the unpack anchor's input) is `docker export` of a container created from the
 * image; the rootfs tree (the tar -c anchor's input) is that tar unpacked once, untimed.
 * Every timed run writes a new file / directory; nothing is deleted before the end.
 */
import { existsSync } from 'node:fs';
import { cp, mkdir, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { startDockerd } from '../test/harness/docker-engine.ts';
import type { Registry } from '../test/harness/registry.ts';
import { runCommand } from '../test/harness/tools.ts';
import { type Cleanup, CMD_TIMEOUT_MS, DRAY_BIN, log, PROJECT, type Workload } from './common.ts';
import type { BigFixture } from './fixtures.ts';

export const ARCHIVE_WORKLOADS = ['export', 'unpack', 'save', 'layer'];

export interface ArchiveContext {
  selected: string[];
  /** Which tools run: 'dray' and/or the anchors. */
  dray: boolean;
  anchors: boolean;
  scratch: string;
  cacheDir: string;
  cleanup: Cleanup;
  reg: Registry;
  /** The image in the registry: REG/bench/big:latest. */
  src: string;
  drayEnv: Record<string, string>;
  fixture: BigFixture;
  node: string;
}

async function checked(cmd: string, args: string[], env?: Record<string, string>): Promise<string> {
  const r = await runCommand(cmd, args, { env, timeoutMs: CMD_TIMEOUT_MS });
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${r.code}: ${r.stderr.slice(-2000)}`);
  return r.stdout;
}

/** A file-name-safe form of a tool label. */
const slug = (tool: string): string => tool.replace(/[^A-Za-z0-9]+/g, '_');

const sizeOf = async (f: string): Promise<number> => (await stat(f)).size;

/** The ~200 MB layer-creation tree, built once into the cache (never deleted: no delete bias). */
async function ensureLayerTree(ctx: ArchiveContext): Promise<{ dir: string; bytes: number }> {
  const dir = join(ctx.cacheDir, `${ctx.fixture.version}-layer200`);
  const done = join(dir, '.done');
  const tree = join(dir, 'tree');
  const files: Array<[string, string]> = [];
  for (let i = 0; i < 10; i++) files.push(['rand', `r${String(i).padStart(2, '0')}.bin`]);
  for (let i = 0; i < 10; i++) files.push(['text', `t${String(i).padStart(2, '0')}.log`]);
  if (!existsSync(done)) {
    log(`layer: building the 200 MB tree ${tree} (once)`);
    await rm(dir, { recursive: true, force: true });
    for (const [kind, name] of files) {
      await mkdir(join(tree, 'data', kind), { recursive: true });
      await cp(join(ctx.fixture.srcDir, kind, 'data', kind, name), join(tree, 'data', kind, name), {
        preserveTimestamps: true,
      });
    }
    await writeFile(done, '');
  }
  let bytes = 0;
  for (const [kind, name] of files) bytes += await sizeOf(join(tree, 'data', kind, name));
  return { dir: tree, bytes };
}

/**
 * bench/layer-create.ts bundled with its gzip worker, the way scripts/bundle.ts bundles the
 * CLI: run from source, Node's type stripping alone adds ~40 MB of RSS that no installed dray
 * pays.
 */
async function bundleLayerCreate(outdir: string): Promise<string> {
  const { build } = await import('esbuild');
  await build({
    entryPoints: {
      'layer-create': join(PROJECT, 'bench', 'layer-create.ts'),
      'gzip-parallel-worker': join(PROJECT, 'src', 'archive', 'gzip-parallel-worker.ts'),
    },
    outdir,
    outExtension: { '.js': '.mjs' },
    bundle: true,
    format: 'esm',
    platform: 'node',
    target: 'node22',
    logLevel: 'warning',
  });
  return join(outdir, 'layer-create.mjs');
}

export async function archiveWorkloads(ctx: ArchiveContext): Promise<Workload[]> {
  const sel = (w: string) => ctx.selected.includes(w);
  const base = join(ctx.scratch, 'archive');
  await mkdir(base, { recursive: true });
  const needImage = sel('export') || sel('unpack') || sel('save');
  const drayRoot = join(base, 'dray-root');
  const { src, drayEnv } = ctx;

  if (ctx.dray && needImage) {
    log('archive: pulling big into a dray root (untimed)');
    await checked(DRAY_BIN, ['--root', drayRoot, 'pull', src], drayEnv);
  }

  // docker: the same image in a private dockerd (docker pull from our registry), a container
  // for `docker export`, and rootfs.tar (= that export) for the tar anchors.
  let dockerEnv: Record<string, string> = {};
  const container = 'dray-bench-big';
  const rootfsTar = join(base, 'rootfs.tar');
  const rootfsTree = join(base, 'rootfs-tree');
  if (ctx.anchors && needImage) {
    log('archive: starting a private dockerd');
    const engine = await startDockerd(ctx.cleanup, { insecureRegistries: [ctx.reg.host] });
    dockerEnv = engine.env;
    log(`archive: docker pull ${src} (untimed)`);
    await checked('docker', ['pull', '-q', src], dockerEnv);
    await checked('docker', ['create', '--name', container, src, '/bin/sh'], dockerEnv);
    if (sel('export') || sel('unpack')) {
      log('archive: docker export -> rootfs.tar (untimed)');
      await checked('docker', ['export', container, '-o', rootfsTar], dockerEnv);
    }
    if (sel('export')) {
      await mkdir(rootfsTree);
      await checked('tar', ['-xf', rootfsTar, '-C', rootfsTree]);
    }
  }
  const rootfsBytes = existsSync(rootfsTar) ? await sizeOf(rootfsTar) : ctx.fixture.uncompressedBytes;
  const workloads: Workload[] = [];
  const drayCmd = (args: string[]) => ({ cmd: DRAY_BIN, args: ['--root', drayRoot, ...args], env: drayEnv });

  // The image's gzip layer blobs, bottom first, and a shell loop over them.
  const blobs = ctx.fixture.layers.map((l) => join(ctx.fixture.layout, 'blobs', ...l.digest.split(':')));
  const eachLayer = (step: string, env: Record<string, string> = {}) => ({
    cmd: 'sh',
    args: ['-c', `for f in "$@"; do ${step} || exit 1; done`, 'sh', ...blobs],
    env,
  });
  // The floor of export and unpack: decompressing the layers, which the peers working from an
  // already unpacked tree or tar do not have to do, and which pigz does as fast as anything.
  const inflateFloor = 'pigz -dc layers';

  if (sel('export')) {
    const dir = join(base, 'export');
    await mkdir(dir);
    const out = (tool: string, i: number) => join(dir, `${slug(tool)}-${i}.tar`);
    workloads.push({
      key: 'export',
      name: 'export big rootfs -> tar file',
      bytes: rootfsBytes,
      tools: ['dray', 'docker export', 'tar -c', inflateFloor],
      floors: [inflateFloor],
      describe: {
        dray: 'dray export big -o F',
        'docker export': 'docker export <container of big> -o F',
        'tar -c': 'tar -cf F -C <unpacked rootfs> .',
        [inflateFloor]:
          'pigz -dc LAYER for each gzip layer blob, all into F (no merge, no whiteouts: only the decompression and the writing)',
      },
      prepare: async (tool, i) => {
        if (tool === 'dray') return drayCmd(['export', src, '-o', out(tool, i)]);
        if (tool === 'docker export')
          return { cmd: 'docker', args: ['export', container, '-o', out(tool, i)], env: dockerEnv };
        if (tool === inflateFloor) {
          const loop = eachLayer('pigz -dc "$f"');
          return {
            ...loop,
            args: ['-c', `(${loop.args[1]}) > "$OUT"`, ...loop.args.slice(2)],
            env: { OUT: out(tool, i) },
          };
        }
        return { cmd: 'tar', args: ['-cf', out(tool, i), '-C', rootfsTree, '.'] };
      },
      check: async (tool, i) => sizeOf(out(tool, i)),
    });
  }

  if (sel('unpack')) {
    const shm = join('/dev/shm', `dray-bench-${process.pid}`);
    ctx.cleanup.after(() => rm(shm, { recursive: true, force: true }));
    for (const [key, dir] of [
      ['unpack', join(base, 'unpack')],
      ['unpack-tmpfs', shm],
    ] as const) {
      await mkdir(dir, { recursive: true });
      const target = (tool: string, i: number) => join(dir, `${slug(tool)}-${i}`);
      // The same work as dray's: the image's gzip layer blobs applied in order.
      const perLayer = (d: string, step: string) => eachLayer(step, { D: d });
      workloads.push({
        key,
        name: `unpack big rootfs -> fresh dir (${key === 'unpack' ? 'ext4' : 'tmpfs'})`,
        bytes: rootfsBytes,
        tools: ['dray', 'tar -x', 'tar -xz layers', 'pigz -d | tar -x layers', inflateFloor],
        floors: [inflateFloor],
        describe: {
          dray: 'dray unpack big DIR',
          'tar -x': 'tar -xf rootfs.tar -C DIR (the flattened, uncompressed rootfs: less work)',
          'tar -xz layers': 'tar -xzf LAYER -C DIR for each gzip layer blob in order',
          'pigz -d | tar -x layers': 'pigz -dc LAYER | tar -xf - -C DIR for each layer in order',
          [inflateFloor]: 'pigz -dc LAYER > /dev/null for each layer (only the decompression)',
        },
        prepare: async (tool, i) => {
          const d = target(tool, i);
          await mkdir(d);
          if (tool === 'dray') return drayCmd(['unpack', src, d]);
          if (tool === 'tar -xz layers') return perLayer(d, 'tar -xzf "$f" -C "$D"');
          if (tool === 'pigz -d | tar -x layers') return perLayer(d, 'pigz -dc "$f" | tar -xf - -C "$D"');
          if (tool === inflateFloor) return eachLayer('pigz -dc "$f" > /dev/null');
          return { cmd: 'tar', args: ['-xf', rootfsTar, '-C', d] };
        },
        check: async (tool, i) => {
          if (tool === inflateFloor) return undefined;
          const d = target(tool, i);
          if (
            !existsSync(join(d, 'data', 'one', 'one.bin')) ||
            (await readdir(join(d, 'data', 'small'))).length !== 200
          )
            throw new Error(`${tool} unpack: ${d} is incomplete`);
          return undefined;
        },
      });
    }
  }

  if (sel('save')) {
    const dir = join(base, 'save');
    await mkdir(dir);
    const out = (tool: string, i: number) => join(dir, `${slug(tool)}-${i}.tar`);
    workloads.push({
      key: 'save',
      name: 'save big -> image tar file',
      bytes: ctx.fixture.compressedBytes,
      tools: ['dray', 'docker save', 'skopeo oci-archive'],
      describe: {
        dray: 'dray save --format docker -o F big',
        'docker save': 'docker save -o F big',
        'skopeo oci-archive': 'skopeo copy oci:<fixture layout>:latest oci-archive:F',
      },
      prepare: async (tool, i) => {
        if (tool === 'dray') return drayCmd(['save', '--format', 'docker', '-o', out(tool, i), src]);
        if (tool === 'docker save')
          return { cmd: 'docker', args: ['save', '-o', out(tool, i), src], env: dockerEnv };
        return {
          cmd: 'skopeo',
          args: ['copy', '-q', `oci:${ctx.fixture.ociRef}`, `oci-archive:${out(tool, i)}`],
        };
      },
      check: async (tool, i) => sizeOf(out(tool, i)),
    });
  }

  if (sel('layer')) {
    const tree = await ensureLayerTree(ctx);
    const dir = join(base, 'layer');
    await mkdir(dir);
    const out = (tool: string, i: number) => join(dir, `${slug(tool)}-${i}.tar.gz`);
    const script = await bundleLayerCreate(join(ctx.cacheDir, 'layer-create'));
    workloads.push({
      key: 'layer',
      name: 'layer create, 200 MB tree (tar + gzip -6)',
      bytes: tree.bytes,
      tools: ['dray', 'tar -cz', 'tar | pigz -p 2'],
      describe: {
        dray: 'node --max-semi-space-size=1 --expose-gc layer-create.mjs TREE F (bench/layer-create.ts bundled as the CLI is: writeDiff trees, gzip 6)',
        'tar -cz': 'tar -czf F -C TREE .',
        'tar | pigz -p 2': 'sh -c "tar -cf - -C TREE . | pigz -p 2 > F"',
      },
      prepare: async (tool, i) => {
        if (tool === 'dray')
          return {
            cmd: ctx.node,
            args: ['--max-semi-space-size=1', '--expose-gc', script, tree.dir, out(tool, i)],
            env: drayEnv,
          };
        if (tool === 'tar -cz') return { cmd: 'tar', args: ['-czf', out(tool, i), '-C', tree.dir, '.'] };
        return { cmd: 'sh', args: ['-c', `tar -cf - -C '${tree.dir}' . | pigz -p 2 > '${out(tool, i)}'`] };
      },
      check: async (tool, i) => sizeOf(out(tool, i)),
    });
  }
  return workloads;
}
