/**
 * The "big" benchmark image, generated without docker, deterministically (same bytes on
 * every run and machine): a busybox base layer plus four data layers, as in
 * ../shared/bench/ANCHORS.md ("Fixtures"):
 *
 *   base   /bin/busybox (+ a symlink per applet)
 *   rand   /data/rand/r00..r19.bin   20 × 10,000,000 B incompressible (AES-256-CTR keystream, fixed key)
 *   text   /data/text/t00..t09.log   10 × 10,000,000 B log-like text (seeded PRNG)
 *   small  /data/small/dNNN/fNNNNN.txt  20,000 files of 1,024-4,096 B in 200 dirs
 *   one    /data/one/one.bin         1 MiB incompressible
 *
 * Each layer is a GNU tar (--sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner,
 * GNU format: no pax atime/ctime records) compressed by `pigz -n -6` (no name/mtime in the
 * gzip header; pigz output does not depend on the thread count). The result is an OCI
 * layout cached under bench/.cache/<FIXTURE_VERSION>/ (src/ holds the file trees, kept as a
 * future build context and so that a regeneration never mass-deletes before timing;
 * see ANCHORS.md caveat 1). Bump FIXTURE_VERSION whenever the output would change.
 */
import { spawn } from 'node:child_process';
import { createCipheriv, createHash } from 'node:crypto';
import { createWriteStream, existsSync } from 'node:fs';
import { chmod, mkdir, readFile, rename, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath } from 'node:url';
import { runChecked } from '../test/harness/tools.ts';

export const FIXTURE_VERSION = 'big-v1';
export const BENCH_DIR = dirname(fileURLToPath(import.meta.url));
/** bench/.cache, or BENCH_CACHE_DIR. */
export const CACHE_DIR = process.env.BENCH_CACHE_DIR ?? join(BENCH_DIR, '.cache');

export interface LayerInfo {
  name: string;
  digest: string;
  diffId: string;
  /** Compressed size. */
  size: number;
  /** Uncompressed tar size. */
  tarSize: number;
}

export interface BigFixture {
  version: string;
  /** OCI layout dir. */
  layout: string;
  /** `oci:` reference for skopeo: `<layout>:latest`. */
  ociRef: string;
  /** Dir of the generated file trees (one subdir per layer). */
  srcDir: string;
  manifestDigest: string;
  layers: LayerInfo[];
  compressedBytes: number;
  uncompressedBytes: number;
  /** True when this call generated it (else it came from the cache). */
  generated: boolean;
}

const KEY = createHash('sha256').update('dray-bench-key').digest();

/** `n` bytes of AES-256-CTR keystream for stream number `stream` (incompressible, deterministic). */
function keystream(stream: number, n: number): Buffer {
  const iv = Buffer.alloc(16);
  iv.writeUInt32BE(stream, 0);
  const c = createCipheriv('aes-256-ctr', KEY, iv);
  return Buffer.concat([c.update(Buffer.alloc(n)), c.final()]);
}

/** sfc32: a small seeded PRNG, uniform in [0, 1). */
function prng(seed: number): () => number {
  let a = 0x9e3779b9;
  let b = 0x243f6a88;
  let c = 0xb7e15162;
  let d = seed >>> 0;
  const next = () => {
    const t = (((a + b) | 0) + d) | 0;
    d = (d + 1) | 0;
    a = b ^ (b >>> 9);
    b = (c + (c << 3)) | 0;
    c = (c << 21) | (c >>> 11);
    c = (c + t) | 0;
    return (t >>> 0) / 4294967296;
  };
  for (let i = 0; i < 16; i++) next();
  return next;
}

/** Log-like text (timestamps, levels, components, skewed word choice): gzip -6 ratio ~2.5-3.5. */
function textGenerator(seed: number): (n: number) => Buffer {
  const rnd = prng(seed);
  const syll = [
    'ka',
    're',
    'to',
    'mi',
    'sen',
    'dor',
    'lu',
    'va',
    'qen',
    'ix',
    'po',
    'tra',
    'el',
    'zu',
    'mon',
    'ar',
  ];
  const words: string[] = [];
  for (let i = 0; i < 3000; i++) {
    let w = '';
    const n = 1 + Math.floor(rnd() * rnd() * 5);
    for (let j = 0; j < n; j++) w += syll[Math.floor(rnd() * syll.length)];
    words.push(w);
  }
  const levels = ['INFO', 'INFO', 'INFO', 'INFO', 'DEBUG', 'DEBUG', 'WARN', 'ERROR'];
  const comps = ['api', 'store', 'cache', 'auth', 'worker', 'sched', 'fs', 'net', 'gc'];
  let ts = Date.UTC(2024, 0, 1);
  return (n: number) => {
    const parts: string[] = [];
    let size = 0;
    while (size < n) {
      ts += Math.floor(rnd() * 1500);
      let line = `${new Date(ts).toISOString()} ${levels[Math.floor(rnd() * levels.length)]} ${comps[Math.floor(rnd() * comps.length)]}[${1000 + Math.floor(rnd() * 64)}]:`;
      const nw = 5 + Math.floor(rnd() * 14);
      for (let k = 0; k < nw; k++) line += ` ${words[Math.floor(rnd() * rnd() * words.length)]}`;
      line += ` latency_ms=${Math.floor(rnd() * rnd() * 5000)} req=${Math.floor(rnd() * 0xffffff).toString(16)}\n`;
      parts.push(line);
      size += line.length;
    }
    return Buffer.from(parts.join(''), 'latin1').subarray(0, n);
  };
}

async function put(path: string, data: Buffer): Promise<void> {
  await writeFile(path, data, { mode: 0o644 });
  await chmod(path, 0o644); // independent of the umask
}

async function mkdirs(path: string): Promise<void> {
  await mkdir(path, { recursive: true, mode: 0o755 });
}

async function genTrees(src: string, log: (s: string) => void): Promise<void> {
  // base: busybox and its applet links
  log('  base: busybox');
  await mkdirs(join(src, 'base', 'bin'));
  await put(join(src, 'base', 'bin', 'busybox'), await readFile('/bin/busybox'));
  await chmod(join(src, 'base', 'bin', 'busybox'), 0o755);
  const list = await runChecked('/bin/busybox', ['--list']);
  for (const applet of list.stdout.split('\n').filter((a) => /^[a-z0-9_.[-]+$/.test(a))) {
    if (applet === 'busybox') continue;
    await symlink('busybox', join(src, 'base', 'bin', applet));
  }
  for (const d of ['etc', 'tmp', 'root']) await mkdirs(join(src, 'base', d));
  log('  rand: 20 × 10 MB');
  await mkdirs(join(src, 'rand', 'data', 'rand'));
  for (let i = 0; i < 20; i++) {
    await put(
      join(src, 'rand', 'data', 'rand', `r${String(i).padStart(2, '0')}.bin`),
      keystream(i, 10_000_000),
    );
  }
  log('  text: 10 × 10 MB');
  await mkdirs(join(src, 'text', 'data', 'text'));
  const text = textGenerator(1);
  for (let i = 0; i < 10; i++) {
    await put(join(src, 'text', 'data', 'text', `t${String(i).padStart(2, '0')}.log`), text(10_000_000));
  }
  log('  small: 20,000 files');
  const rs = prng(2);
  const pool = textGenerator(3)(4_000_000);
  for (let d = 0; d < 200; d++) {
    const dir = join(src, 'small', 'data', 'small', `d${String(d).padStart(3, '0')}`);
    await mkdirs(dir);
    for (let f = 0; f < 100; f++) {
      const size = 1024 + Math.floor(rs() * 3073);
      const off = Math.floor(rs() * (pool.length - size));
      await put(join(dir, `f${String(d * 100 + f).padStart(5, '0')}.txt`), pool.subarray(off, off + size));
    }
  }
  log('  one: 1 MiB');
  await mkdirs(join(src, 'one', 'data', 'one'));
  await put(join(src, 'one', 'data', 'one', 'one.bin'), keystream(1000, 1 << 20));
}

function hashing(h: ReturnType<typeof createHash>, count: { n: number }): Transform {
  return new Transform({
    transform(chunk: Buffer, _enc, cb) {
      h.update(chunk);
      count.n += chunk.length;
      cb(null, chunk);
    },
  });
}

function waitExit(name: string, child: ReturnType<typeof spawn>): Promise<void> {
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`${name} exited ${code}`))));
  });
}

/** tar (deterministic) | sha256 (diff_id) | pigz | sha256 (digest) → blobs/sha256/<hex>. */
async function writeLayer(layerDir: string, name: string, blobs: string): Promise<LayerInfo> {
  const entries = name === 'base' ? ['bin', 'etc', 'root', 'tmp'] : ['data'];
  const tar = spawn(
    'tar',
    [
      '--sort=name',
      '--mtime=@0',
      '--owner=0',
      '--group=0',
      '--numeric-owner',
      '--format=gnu',
      '-C',
      layerDir,
      '-cf',
      '-',
      ...entries,
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  const pigz = spawn('pigz', ['-n', '-6', '-c'], { stdio: ['pipe', 'pipe', 'inherit'] });
  const diffHash = createHash('sha256');
  const tarCount = { n: 0 };
  const gzHash = createHash('sha256');
  const gzCount = { n: 0 };
  const tmp = join(blobs, `.tmp-${name}`);
  if (!tar.stdout || !pigz.stdin || !pigz.stdout) throw new Error('no pipes');
  await Promise.all([
    pipeline(tar.stdout, hashing(diffHash, tarCount), pigz.stdin),
    pipeline(pigz.stdout, hashing(gzHash, gzCount), createWriteStream(tmp)),
    waitExit('tar', tar),
    waitExit('pigz', pigz),
  ]);
  const hex = gzHash.digest('hex');
  await rename(tmp, join(blobs, hex));
  return {
    name,
    digest: `sha256:${hex}`,
    diffId: `sha256:${diffHash.digest('hex')}`,
    size: gzCount.n,
    tarSize: tarCount.n,
  };
}

async function putBlob(blobs: string, data: Buffer): Promise<{ digest: string; size: number }> {
  const hex = createHash('sha256').update(data).digest('hex');
  await writeFile(join(blobs, hex), data);
  return { digest: `sha256:${hex}`, size: data.length };
}

const LAYERS = ['base', 'rand', 'text', 'small', 'one'] as const;

/**
 * Returns the cached fixture, generating it first if bench/.cache/<version>/done.json is
 * missing (about a minute and ~620 MB of disk). Does I/O; spawns tar and pigz.
 */
export async function ensureBigFixture(log: (s: string) => void = () => {}): Promise<BigFixture> {
  const root = join(CACHE_DIR, FIXTURE_VERSION);
  const doneFile = join(root, 'done.json');
  if (existsSync(doneFile)) {
    const f = JSON.parse(await readFile(doneFile, 'utf8')) as BigFixture;
    return { ...f, generated: false };
  }
  log(`generating fixture ${FIXTURE_VERSION} in ${root}`);
  const t0 = performance.now();
  const src = join(root, 'src');
  // A half-written earlier attempt: start over (these are files this generator wrote).
  await rm(root, { recursive: true, force: true });
  await genTrees(src, log);
  const layout = join(root, 'oci');
  const blobs = join(layout, 'blobs', 'sha256');
  await mkdirs(blobs);
  const layers: LayerInfo[] = [];
  for (const name of LAYERS) {
    log(`  layer ${name}: tar | pigz`);
    layers.push(await writeLayer(join(src, name), name, blobs));
  }
  const created = '1970-01-01T00:00:00Z';
  const config = {
    created,
    architecture: 'amd64',
    os: 'linux',
    config: { Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'], Cmd: ['sh'] },
    rootfs: { type: 'layers', diff_ids: layers.map((l) => l.diffId) },
    history: layers.map((l) => ({
      created,
      created_by:
        l.name === 'base' ? 'dray-bench: busybox rootfs' : `COPY ${l.name}/ /data/${l.name}/ # dray-bench`,
    })),
  };
  const cfg = await putBlob(blobs, Buffer.from(JSON.stringify(config)));
  const manifest = {
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...cfg },
    layers: layers.map((l) => ({
      mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip',
      digest: l.digest,
      size: l.size,
    })),
  };
  const man = await putBlob(blobs, Buffer.from(JSON.stringify(manifest)));
  const index = {
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.index.v1+json',
    manifests: [
      {
        mediaType: manifest.mediaType,
        ...man,
        annotations: { 'org.opencontainers.image.ref.name': 'latest' },
        platform: { architecture: 'amd64', os: 'linux' },
      },
    ],
  };
  await writeFile(join(layout, 'index.json'), JSON.stringify(index));
  await writeFile(join(layout, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  const fixture: BigFixture = {
    version: FIXTURE_VERSION,
    layout,
    ociRef: `${layout}:latest`,
    srcDir: src,
    manifestDigest: man.digest,
    layers,
    compressedBytes: layers.reduce((a, l) => a + l.size, 0) + cfg.size,
    uncompressedBytes: layers.reduce((a, l) => a + l.tarSize, 0),
    generated: true,
  };
  await writeFile(doneFile, JSON.stringify(fixture, null, 2));
  log(`fixture generated in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  return fixture;
}

/** Pushes the fixture to `<host>/bench/big:latest` over plain HTTP with skopeo (untimed setup). */
export async function pushBigFixture(f: BigFixture, host: string, repo = 'bench/big:latest'): Promise<void> {
  await runChecked(
    'skopeo',
    ['copy', '-q', '--dest-tls-verify=false', `oci:${f.ociRef}`, `docker://${host}/${repo}`],
    { timeoutMs: 600_000 },
  );
}

/** Total size of a file tree's regular files (used for sanity checks). */
export async function fileSize(path: string): Promise<number> {
  return (await stat(path)).size;
}

// `node bench/fixtures.ts` generates (or reports) the fixture on its own.
if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const f = await ensureBigFixture((s) => process.stderr.write(`${s}\n`));
  const { layout: _l, srcDir: _s, ...rest } = f;
  process.stdout.write(`${JSON.stringify({ ...rest, layout: f.layout }, null, 2)}\n`);
}
