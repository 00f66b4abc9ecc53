/**
 * Shared pieces of the interop tests (docker, skopeo, umoci) and the archive tests: one
 * dockerd per test file, a tar lister that does not use dray's own tar reader (so a bug
 * there cannot hide itself), a filesystem-tree lister for comparing unpacked root
 * filesystems, and small wrappers around dray run as a process.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmod, lstat, mkdir, readdir, readFile, readlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, type TestContext } from 'node:test';
import { busyboxImageDir, type DockerEngine, startDockerd } from '../harness/docker-engine.ts';
import { requireTool, runChecked, tempDir } from '../harness/tools.ts';
import { drayBin, nodeBin, runCli } from './helpers.ts';

const sha = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

/** A private data root and config dir for one test. */
export interface DrayDirs {
  root: string;
  config: string;
  work: string;
}

export async function drayDirs(t: Pick<TestContext, 'after'>): Promise<DrayDirs> {
  const work = await tempDir(t, 'dray-interop-');
  const root = join(work, 'root');
  const config = join(work, 'config');
  await mkdir(config, { recursive: true });
  return { root, config, work };
}

/** Runs the CLI in-process and throws (with its stderr) unless it exits 0. */
export async function cliOk(args: string[], d: Pick<DrayDirs, 'root' | 'config'>): Promise<string> {
  const r = await runCli(args, d);
  if (r.code !== 0) throw new Error(`dray ${args.join(' ')} exited ${r.code}: ${r.stderr}`);
  return r.stdout;
}

/**
 * One dockerd shared by every test of a file: started on first use, stopped by a
 * file-level `after`. Returns undefined (the test is skipped, or fails under CI) when the
 * engine's binaries are missing.
 */
export function sharedDockerd(): (t: TestContext) => Promise<DockerEngine | undefined> {
  const cleanups: Array<() => unknown> = [];
  let engine: Promise<DockerEngine> | undefined;
  after(async () => {
    for (const c of cleanups.reverse()) await c();
  });
  return async (t) => {
    if (!requireTool(t, 'dockerd', 'docker', 'containerd', 'runc', 'tar')) return undefined;
    engine ??= startDockerd({ after: (fn: () => unknown) => void cleanups.push(fn) });
    return await engine;
  };
}

/** Runs a docker CLI command against `engine`; throws with stderr unless it exits 0. */
export async function dockerOk(engine: DockerEngine, args: string[], env: Record<string, string> = {}) {
  const r = await engine.docker(args, { env });
  if (r.code !== 0) throw new Error(`docker ${args.join(' ')} exited ${r.code}: ${r.stderr}\n${r.stdout}`);
  return r.stdout;
}

/** `docker image inspect --format '{{.Id}}'`. */
export async function dockerImageId(engine: DockerEngine, ref: string): Promise<string> {
  return (await dockerOk(engine, ['image', 'inspect', '--format', '{{.Id}}', ref])).trim();
}

/** The image's layer diff IDs as the engine records them. */
export async function dockerDiffIds(engine: DockerEngine, ref: string): Promise<string[]> {
  return JSON.parse(
    await dockerOk(engine, ['image', 'inspect', '--format', '{{json .RootFS.Layers}}', ref]),
  ) as string[];
}

/**
 * `docker build` of a context made of `files` (the Dockerfile included). dockerd 20.10's
 * BuildKit is reachable only through the buildx CLI plugin, which Debian's docker CLI 28 does
 * not ship ("BuildKit is enabled but the buildx component is missing"), so this uses the
 * classic builder (DOCKER_BUILDKIT=0): it also makes one layer per COPY/RUN and computes
 * layer diffs with whiteouts from the storage driver.
 */
export async function dockerBuild(
  t: Pick<TestContext, 'after'>,
  engine: DockerEngine,
  ref: string,
  files: Record<string, string>,
): Promise<string> {
  const ctx = await tempDir(t, 'dray-build-ctx-');
  for (const [p, content] of Object.entries(files)) {
    await mkdir(join(ctx, p, '..'), { recursive: true });
    await writeFile(join(ctx, p), content);
  }
  await dockerOk(engine, ['build', '--network=none', '-q', '-t', ref, ctx], { DOCKER_BUILDKIT: '0' });
  return dockerImageId(engine, ref);
}

/** A busybox root filesystem (bin/busybox + applet symlinks, bin/sh among them) as a plain tar file. */
export async function busyboxLayerTar(t: Pick<TestContext, 'after'>, out: string): Promise<string> {
  const dir = await busyboxImageDir(t);
  await chmod(dir, 0o755); // mkdtemp makes 0700; the tar's `./` entry would carry it
  await tarDir(dir, out);
  return out;
}

/** GNU tar of `dir`'s contents (numeric owners 0:0, sorted, mtime 0) into `out`. */
export async function tarDir(dir: string, out: string, o: { keepOwners?: boolean } = {}): Promise<void> {
  const owners = o.keepOwners ? ['--numeric-owner'] : ['--numeric-owner', '--owner=0', '--group=0'];
  await runChecked('tar', [...owners, '--sort=name', '--mtime=@0', '-C', dir, '-cf', out, '.']);
}

/** Runs `dray save … | dray load` as two processes joined by a pipe; resolves with both outputs. */
export async function pipeSaveLoad(
  save: { args: string[]; dirs: Pick<DrayDirs, 'root' | 'config'> },
  load: { args: string[]; dirs: Pick<DrayDirs, 'root' | 'config'> },
): Promise<{ save: ProcResult; load: ProcResult }> {
  const envOf = (d: Pick<DrayDirs, 'root' | 'config'>) => ({
    PATH: process.env.PATH ?? '',
    DRAY_ROOT: d.root,
    DOCKER_CONFIG: d.config,
  });
  const a = spawn(nodeBin, [drayBin, ...save.args], {
    env: envOf(save.dirs),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const b = spawn(nodeBin, [drayBin, ...load.args], {
    env: envOf(load.dirs),
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  a.stdout.pipe(b.stdin);
  const [ra, rb] = await Promise.all([collect(a), collect(b)]);
  return { save: ra, load: rb };
}

export interface ProcResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

function collect(p: ReturnType<typeof spawn>): Promise<ProcResult> {
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  p.stdout?.on('data', (c: Buffer) => out.push(c));
  p.stderr?.on('data', (c: Buffer) => err.push(c));
  return new Promise((resolve, reject) => {
    p.on('error', reject);
    p.on('close', (code) =>
      resolve({
        code,
        stdout: Buffer.concat(out).toString('utf8'),
        stderr: Buffer.concat(err).toString('utf8'),
      }),
    );
  });
}

// ---------------------------------------------------------------------------------------
// An independent tar lister (ustar, GNU long names, PAX), for comparing what dray and the
// peers write without trusting src/archive.

export type EntryType = 'file' | 'dir' | 'symlink' | 'hardlink' | 'char' | 'block' | 'fifo';

/** One entry of a tar or of a directory tree, in comparable form. */
export interface FsEntry {
  /** Relative path, no leading `./` or `/`, no trailing `/`. */
  path: string;
  type: EntryType;
  /** Permission bits incl. setuid/setgid/sticky (07777). */
  mode: number;
  uid: number;
  gid: number;
  /** Content size (0 for anything but files). */
  size: number;
  /** sha256 of the content, files only. */
  hash?: string;
  /** Symlink target, or the hardlink's target path (normalised). */
  link?: string;
  /** Seconds since the epoch. */
  mtime: number;
  /** Device numbers of char/block devices. */
  devmajor?: number;
  devminor?: number;
}

const typeOf: Record<string, EntryType> = {
  '0': 'file',
  '\0': 'file',
  '7': 'file',
  '1': 'hardlink',
  '2': 'symlink',
  '3': 'char',
  '4': 'block',
  '5': 'dir',
  '6': 'fifo',
};

export function cleanPath(p: string): string {
  let s = p;
  while (s.startsWith('./')) s = s.slice(2);
  while (s.startsWith('/')) s = s.slice(1);
  while (s.endsWith('/')) s = s.slice(0, -1);
  return s === '.' ? '' : s;
}

function field(b: Buffer, off: number, len: number): string {
  const s = b.subarray(off, off + len);
  const nul = s.indexOf(0);
  return (nul === -1 ? s : s.subarray(0, nul)).toString('utf8');
}

function num(b: Buffer, off: number, len: number): number {
  const first = b[off] ?? 0;
  if (first & 0x80) {
    // GNU base-256.
    let v = first & 0x7f;
    for (let i = 1; i < len; i++) v = v * 256 + (b[off + i] ?? 0);
    return v;
  }
  const s = field(b, off, len).trim();
  return s === '' ? 0 : Number.parseInt(s, 8);
}

function parsePax(data: Buffer): Record<string, string> {
  const out: Record<string, string> = {};
  let i = 0;
  while (i < data.length) {
    const sp = data.indexOf(0x20, i);
    if (sp === -1) break;
    const len = Number.parseInt(data.subarray(i, sp).toString('utf8'), 10);
    if (!(len > 0)) break;
    const rec = data.subarray(sp + 1, i + len - 1).toString('utf8');
    const eq = rec.indexOf('=');
    out[rec.slice(0, eq)] = rec.slice(eq + 1);
    i += len;
  }
  return out;
}

/** Every entry of an uncompressed tar, in archive order. */
export function listTar(buf: Buffer): FsEntry[] {
  const out: FsEntry[] = [];
  let off = 0;
  let longName: string | undefined;
  let longLink: string | undefined;
  let pax: Record<string, string> = {};
  while (off + 512 <= buf.length) {
    const h = buf.subarray(off, off + 512);
    if (h.every((x) => x === 0)) break;
    const flag = String.fromCharCode(h[156] ?? 0);
    let size = num(h, 124, 12);
    if (pax.size !== undefined) size = Number(pax.size);
    const dataStart = off + 512;
    const data = buf.subarray(dataStart, dataStart + size);
    off = dataStart + Math.ceil(size / 512) * 512;
    if (flag === 'L') {
      longName = field(data, 0, data.length);
      continue;
    }
    if (flag === 'K') {
      longLink = field(data, 0, data.length);
      continue;
    }
    if (flag === 'x') {
      pax = { ...pax, ...parsePax(data) };
      continue;
    }
    if (flag === 'g') continue;
    const magic = field(h, 257, 6);
    const prefix = magic.startsWith('ustar') && h[345] !== 0 ? field(h, 345, 155) : '';
    const rawName = pax.path ?? longName ?? (prefix ? `${prefix}/${field(h, 0, 100)}` : field(h, 0, 100));
    const rawLink = pax.linkpath ?? longLink ?? field(h, 157, 100);
    const type = typeOf[flag];
    if (!type) throw new Error(`listTar: unknown entry type ${JSON.stringify(flag)} for ${rawName}`);
    const e: FsEntry = {
      path: cleanPath(rawName),
      type,
      mode: num(h, 100, 8) & 0o7777,
      uid: pax.uid !== undefined ? Number(pax.uid) : num(h, 108, 8),
      gid: pax.gid !== undefined ? Number(pax.gid) : num(h, 116, 8),
      size: type === 'file' ? size : 0,
      mtime: Math.floor(pax.mtime !== undefined ? Number(pax.mtime) : num(h, 136, 12)),
    };
    if (type === 'file') e.hash = sha(data);
    if (type === 'symlink') e.link = rawLink;
    if (type === 'hardlink') e.link = cleanPath(rawLink);
    if (type === 'char' || type === 'block') {
      e.devmajor = num(h, 329, 8);
      e.devminor = num(h, 337, 8);
    }
    out.push(e);
    longName = undefined;
    longLink = undefined;
    pax = {};
  }
  return out;
}

/**
 * Every entry below `dir` (not `dir` itself), sorted by path, from lstat. Regular files
 * with several links are listed as files (the tree has no notion of which is first).
 */
export async function listTree(dir: string): Promise<FsEntry[]> {
  const out: FsEntry[] = [];
  const walk = async (rel: string) => {
    for (const name of (await readdir(join(dir, rel))).sort()) {
      const p = rel ? `${rel}/${name}` : name;
      const full = join(dir, p);
      const st = await lstat(full);
      const type: EntryType = st.isDirectory()
        ? 'dir'
        : st.isSymbolicLink()
          ? 'symlink'
          : st.isFile()
            ? 'file'
            : st.isCharacterDevice()
              ? 'char'
              : st.isBlockDevice()
                ? 'block'
                : 'fifo';
      const e: FsEntry = {
        path: p,
        type,
        mode: st.mode & 0o7777,
        uid: st.uid,
        gid: st.gid,
        size: type === 'file' ? st.size : 0,
        mtime: Math.floor(st.mtimeMs / 1000),
      };
      if (type === 'file') e.hash = sha(await readFile(full));
      if (type === 'symlink') e.link = await readlink(full);
      out.push(e);
      if (type === 'dir') await walk(p);
    }
  };
  await walk('');
  return out;
}

/** The comparable fields of an entry, as one line (what assert.deepEqual diffs show best). */
export function describeEntry(e: FsEntry, o: { mtime?: boolean } = {}): string {
  const parts = [e.path, e.type, e.mode.toString(8).padStart(4, '0'), `${e.uid}:${e.gid}`, String(e.size)];
  if (e.hash) parts.push(e.hash.slice(7, 19));
  if (e.link !== undefined) parts.push(`-> ${e.link}`);
  if (e.devmajor !== undefined) parts.push(`dev ${e.devmajor},${e.devminor}`);
  if (o.mtime) parts.push(`mtime ${e.mtime}`);
  return parts.join(' ');
}

/**
 * A tar listing as a map path → entry for a merged root filesystem: the root entry dropped,
 * hardlinks resolved to the file they name (a tree has no "first" link), later duplicates win.
 */
export function rootfsOf(entries: FsEntry[]): Map<string, FsEntry> {
  const m = new Map<string, FsEntry>();
  for (const e of entries) {
    if (e.path === '') continue;
    if (e.type === 'hardlink') {
      const target = m.get(e.link ?? '');
      if (!target) throw new Error(`hardlink ${e.path} names ${e.link}, not seen before`);
      m.set(e.path, { ...target, path: e.path });
      continue;
    }
    m.set(e.path, e);
  }
  return m;
}

/**
 * Three hand-made layer tars (GNU tar of trees on disk, with `.wh.` files) that exercise the
 * whiteout rules of the image-spec (layer.md "Whiteouts"):
 * 1. `etc/keep`, `etc/gone`, `opq/a`, `opq/sub/b`, `swap` (a file), `swap2/inner` (a dir);
 * 2. `etc/.wh.gone` (delete a file), `opq/.wh..wh..opq` + `opq/c` (opaque dir: `a` and `sub`
 *    hidden), `swap/in-dir` (the file `swap` replaced by a directory, no whiteout),
 *    `.wh.swap2` + `swap2` (the directory replaced by a file: whiteout and new entry in one layer);
 * 3. `swap` a file again (the directory replaced by a file, no whiteout), `.wh.swap2` +
 *    `swap2/again` (and back to a directory).
 * Merged: `etc/keep`, `opq/c`, `swap` = "file v3", `swap2/again`; nothing else below those.
 * Each layer has its own mtime so a tree comparison notices a lost or wrong time.
 */
export async function writeWhiteoutLayers(t: Pick<TestContext, 'after'>, out: string): Promise<string[]> {
  const layers: Array<Record<string, string>> = [
    {
      'etc/keep': 'keep\n',
      'etc/gone': 'gone\n',
      'opq/a': 'a\n',
      'opq/sub/b': 'b\n',
      swap: 'file v1\n',
      'swap2/inner': 'inner\n',
    },
    {
      'etc/.wh.gone': '',
      'opq/.wh..wh..opq': '',
      'opq/c': 'c\n',
      'swap/in-dir': 'x\n',
      '.wh.swap2': '',
      swap2: 'swap2 is a file\n',
    },
    { swap: 'file v3\n', '.wh.swap2': '', 'swap2/again': 'again\n' },
  ];
  const paths: string[] = [];
  for (const [i, files] of layers.entries()) {
    const dir = await tempDir(t, 'dray-wh-layer-');
    await chmod(dir, 0o755); // mkdtemp makes 0700; the tar's `./` entry would carry it
    for (const [p, content] of Object.entries(files)) {
      await mkdir(join(dir, p, '..'), { recursive: true });
      await writeFile(join(dir, p), content, { mode: 0o644 });
    }
    const file = join(out, `whiteout-layer-${i + 1}.tar`);
    await runChecked('tar', [
      '--numeric-owner',
      '--owner=0',
      '--group=0',
      '--sort=name',
      `--mtime=@${1_000_000_000 + i * 100_000}`,
      '-C',
      dir,
      '-cf',
      file,
      '.',
    ]);
    paths.push(file);
  }
  return paths;
}
