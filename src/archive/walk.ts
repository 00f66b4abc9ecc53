import { spawn } from 'node:child_process';
import { type BigIntStats, lstatSync, readlinkSync } from 'node:fs';
import { lstat, readdir, readlink } from 'node:fs/promises';
import { join } from 'node:path';
import { DrayError, throwIfAborted } from '../errors.ts';
import type { RunOptions } from '../progress/index.ts';

/**
 * A deterministic directory walker: names sorted by their bytes, parents before children,
 * `lstat` metadata with nanosecond mtimes, and extended attributes read for a whole tree in
 * one batch. Used by `writeDiff` (layer diffs) and anything else that turns a directory into
 * tar entries (the `tar` exporter, build contexts).
 */

/** What an `lstat` found. Sockets are reported (so callers can skip them), never archived. */
export type FileKind =
  | 'file'
  | 'directory'
  | 'symlink'
  | 'character-device'
  | 'block-device'
  | 'fifo'
  | 'socket';

/** One file's metadata, from `lstat` (bigint, so mtimes keep their nanoseconds). */
export interface FileMeta {
  /** Absolute path on disk. */
  path: string;
  kind: FileKind;
  /** Permission bits incl. setuid/setgid/sticky (07777). */
  mode: number;
  uid: number;
  gid: number;
  /** Bytes (regular files; 0 for everything else). */
  size: number;
  mtimeNs: bigint;
  dev: bigint;
  ino: bigint;
  nlink: number;
  rdev: bigint;
  /** Symlink target, read with `readlink`. */
  linkname?: string;
}

const S_IFMT = 0o170000;
const kinds = new Map<number, FileKind>([
  [0o100000, 'file'],
  [0o040000, 'directory'],
  [0o120000, 'symlink'],
  [0o020000, 'character-device'],
  [0o060000, 'block-device'],
  [0o010000, 'fifo'],
  [0o140000, 'socket'],
]);

/**
 * `lstat` (and `readlink` for symlinks) of one path. Does I/O.
 * @throws the fs error (ENOENT…) unchanged, so callers can tell "absent" from a failure.
 */
export async function statFile(path: string): Promise<FileMeta> {
  const meta = metaOf(path, await lstat(path, { bigint: true }));
  if (meta.kind === 'symlink') meta.linkname = await readlink(path);
  return meta;
}

/** Like `statFile`, but `undefined` when nothing is there (ENOENT, or a parent is not a directory). */
export async function statIfExists(path: string): Promise<FileMeta | undefined> {
  try {
    return await statFile(path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    throw e;
  }
}

/** Linux `major()`/`minor()` of a device number (glibc's encoding). */
export function deviceNumbers(rdev: bigint): { major: number; minor: number } {
  const major = ((rdev >> 8n) & 0xfffn) | ((rdev >> 32n) & 0xfffff000n);
  const minor = (rdev & 0xffn) | ((rdev >> 12n) & 0xffffff00n);
  return { major: Number(major), minor: Number(minor) };
}

/**
 * The names in a directory, sorted by their UTF-8 bytes (what `tar --sort=name` and Go's
 * `filepath.Walk` do, so the order does not depend on the locale or the filesystem). Does I/O.
 * @throws DRAY_INVALID_ARGUMENT for a name that is not valid UTF-8 (a tar header name is a
 *   string here; refusing is better than writing a mangled name into a layer).
 */
export async function readDirSorted(dir: string): Promise<string[]> {
  const raw = await readdir(dir, { encoding: 'buffer' });
  raw.sort(Buffer.compare);
  return raw.map((b) => {
    const s = b.toString('utf8');
    if (!Buffer.from(s, 'utf8').equals(b)) {
      throw new DrayError(
        'DRAY_INVALID_ARGUMENT',
        `${join(dir, b.toString('latin1'))}: file name is not valid UTF-8`,
        {
          hint: 'rename the file; dray writes layer entry names as UTF-8',
        },
      );
    }
    return s;
  });
}

/**
 * `lstat` of many names in one directory. Synchronous on purpose: an `lstat` of a cached
 * inode costs microseconds, far less than a thread-pool round trip (a 20,000-file tree walks
 * several times faster), and the layer compressor runs on other threads meanwhile.
 */
export async function statChildren(dir: string, names: readonly string[]): Promise<FileMeta[]> {
  return names.map((n) => statFileSync(join(dir, n)));
}

function statFileSync(path: string): FileMeta {
  const meta = metaOf(path, lstatSync(path, { bigint: true }));
  if (meta.kind === 'symlink') meta.linkname = readlinkSync(path);
  return meta;
}

/** FileMeta from an lstat result (the link target is the caller's, sync or async). */
function metaOf(path: string, st: BigIntStats): FileMeta {
  const kind = kinds.get(Number(st.mode) & S_IFMT);
  if (kind === undefined) {
    throw new DrayError('DRAY_INVALID_ARGUMENT', `${path}: unsupported file type ${st.mode.toString(8)}`);
  }
  return {
    path,
    kind,
    mode: Number(st.mode) & 0o7777,
    uid: Number(st.uid),
    gid: Number(st.gid),
    size: kind === 'file' ? Number(st.size) : 0,
    mtimeNs: st.mtimeNs,
    dev: st.dev,
    ino: st.ino,
    nlink: Number(st.nlink),
    rdev: st.rdev,
  };
}

/** Extended attributes of a set of files, keyed by absolute path; files without any are absent. */
export type XattrIndex = Map<string, Map<string, Buffer>>;

/** Options for {@link readXattrs}. */
export interface ReadXattrsOptions extends RunOptions {
  /** Walk `paths` recursively (`getfattr -R -P`); otherwise read exactly the given paths. */
  recursive?: boolean;
}

/** The command that reads xattrs; Node has no xattr API. */
const GETFATTR = 'getfattr';
/** Keep each command line well below ARG_MAX. */
const maxArgBytes = 96 * 1024;

/**
 * Reads every extended attribute (all namespaces, `security.capability` included, binary
 * values intact) of `paths` with `getfattr -d -m - -e base64 -h --absolute-names`: one
 * process for a whole tree (`recursive`), or one per ~96 KiB of path list. Symlinks are not
 * followed. Does I/O (spawns `getfattr`, Debian/Ubuntu package `attr`).
 * @throws DRAY_CONFIG when `getfattr` is not installed; DRAY_INVALID_ARGUMENT when it fails
 *   on a path; DRAY_ABORTED.
 */
export async function readXattrs(paths: readonly string[], o: ReadXattrsOptions = {}): Promise<XattrIndex> {
  throwIfAborted(o.signal, 'reading xattrs');
  const index: XattrIndex = new Map();
  let batch: string[] = [];
  let bytes = 0;
  const flush = async (): Promise<void> => {
    if (batch.length === 0) return;
    const args = ['-d', '-m', '-', '-e', 'base64', '-h', '--absolute-names'];
    if (o.recursive) args.push('-R', '-P');
    args.push('--', ...batch);
    batch = [];
    bytes = 0;
    parseGetfattr(await runGetfattr(args, o.signal), index);
  };
  for (const p of paths) {
    batch.push(p);
    bytes += Buffer.byteLength(p) + 1;
    if (bytes >= maxArgBytes) await flush();
  }
  await flush();
  return index;
}

/** True when `getfattr` can be run (for tests that skip loudly without it). Does I/O. */
export async function hasGetfattr(): Promise<boolean> {
  try {
    await runGetfattr(['--version'], undefined);
    return true;
  } catch {
    return false;
  }
}

function runGetfattr(args: string[], signal: AbortSignal | undefined): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const child = spawn(GETFATTR, args, {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', LC_ALL: 'C' },
      ...(signal ? { signal } : {}),
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    child.on('error', (e: NodeJS.ErrnoException) => {
      if (signal?.aborted)
        reject(new DrayError('DRAY_ABORTED', 'reading xattrs aborted', { cause: signal.reason }));
      else if (e.code === 'ENOENT') {
        reject(
          new DrayError('DRAY_CONFIG', 'cannot read extended attributes: getfattr not found', {
            cause: e,
            hint: "install the 'attr' package (apt-get install attr), or pass xattrs: false",
          }),
        );
      } else reject(new DrayError('DRAY_INTERNAL', `getfattr: ${e.message}`, { cause: e }));
    });
    child.on('close', (code) => {
      if (code === 0) return resolve(Buffer.concat(out));
      const msg = Buffer.concat(err).toString('utf8').trim().split('\n')[0] ?? '';
      reject(
        new DrayError(
          'DRAY_INVALID_ARGUMENT',
          `reading extended attributes failed: ${msg || `exit ${code}`}`,
        ),
      );
    });
  });
}

/** getfattr quotes whitespace, backslashes and non-printable bytes as `\ooo` (attr's `quote()`). */
function unquote(s: string): string {
  if (!s.includes('\\')) return s;
  const bytes: number[] = [];
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 0x5c && /^[0-7]{3}$/.test(s.slice(i + 1, i + 4))) {
      bytes.push(Number.parseInt(s.slice(i + 1, i + 4), 8));
      i += 3;
    } else bytes.push(c);
  }
  return Buffer.from(bytes).toString('utf8');
}

function decodeValue(v: string): Buffer {
  if (v.startsWith('0s')) return Buffer.from(v.slice(2), 'base64');
  if (v.startsWith('0x')) return Buffer.from(v.slice(2), 'hex');
  if (v.startsWith('"') && v.endsWith('"')) return Buffer.from(unquote(v.slice(1, -1)), 'latin1');
  return Buffer.alloc(0);
}

function parseGetfattr(out: Buffer, index: XattrIndex): void {
  // The output is ASCII: everything else is quoted. Blocks: "# file: PATH", "name=value"…, "".
  let current: Map<string, Buffer> | undefined;
  for (const line of out.toString('latin1').split('\n')) {
    if (line.startsWith('# file: ')) {
      const path = unquote(line.slice(8));
      current = new Map();
      index.set(path, current);
    } else if (line.length > 0 && current) {
      const eq = line.indexOf('=');
      const name = unquote(eq < 0 ? line : line.slice(0, eq));
      current.set(name, eq < 0 ? Buffer.alloc(0) : decodeValue(line.slice(eq + 1)));
    }
  }
}

/** One entry of {@link walkTree}. */
export interface WalkEntry {
  /** Path relative to the root, '/'-separated, no leading './'. */
  name: string;
  meta: FileMeta;
  /** Extended attributes (absent when none, or when the walk reads none). */
  xattrs?: Map<string, Buffer>;
}

/** Options for {@link walkTree}. */
export interface WalkOptions extends RunOptions {
  /** Read extended attributes (one `getfattr` for the whole tree). Default true. */
  xattrs?: boolean;
}

/**
 * Every entry under `root` (not `root` itself), parents before children, siblings sorted by
 * name bytes; sockets included (callers skip them). Symlinks are reported, never followed.
 * Does I/O. @throws DRAY_CONFIG (no getfattr), DRAY_INVALID_ARGUMENT, DRAY_ABORTED, fs errors.
 */
export async function* walkTree(root: string, o: WalkOptions = {}): AsyncGenerator<WalkEntry> {
  const xattrs = o.xattrs === false ? new Map() : await readXattrs([root], { ...o, recursive: true });
  async function* dir(abs: string, rel: string): AsyncGenerator<WalkEntry> {
    throwIfAborted(o.signal, `walking ${root}`);
    const names = await readDirSorted(abs);
    const metas = await statChildren(abs, names);
    for (let i = 0; i < names.length; i++) {
      const meta = metas[i] as FileMeta;
      const name = rel === '' ? (names[i] as string) : `${rel}/${names[i]}`;
      const x = xattrs.get(meta.path);
      yield x ? { name, meta, xattrs: x } : { name, meta };
      if (meta.kind === 'directory') yield* dir(meta.path, name);
    }
  }
  yield* dir(root, '');
}
