import { createHash } from 'node:crypto';
import {
  closeSync,
  constants,
  fchmodSync,
  futimesSync,
  lchownSync,
  linkSync,
  lstatSync,
  lutimesSync,
  mkdirSync,
  openSync,
  readdirSync,
  readlinkSync,
  realpathSync,
  rmSync,
  type Stats,
  symlinkSync,
  unlinkSync,
} from 'node:fs';
import type { Readable } from 'node:stream';
import type { Digest } from '../digest/index.ts';
import { DrayError, throwIfAborted } from '../errors.ts';
import type { RunOptions } from '../progress/index.ts';
import { decompressStream } from './compression.ts';
import { FileBatcher, type ReturnedFile } from './file-batcher.ts';
import { finishFile, O_CREATE_FILE, writeAll } from './file-write.ts';
import { NativeBatch } from './fs-meta.ts';
import { readTar } from './tar-reader.ts';
import type { TarEntry, TarHeader } from './types.ts';
import { cleanName, parseWhiteout } from './whiteout.ts';

export interface ApplyOptions extends RunOptions {
  /**
   * `'apply'` (default): whiteouts delete from the lower content already in `root`.
   * `'overlayfs'`: write overlayfs' own representation instead, for a snapshot's upper
   * directory: a 0:0 character device for a deleted name, `trusted.overlay.opaque=y` on an
   * opaque directory; nothing is deleted.
   */
  whiteouts?: 'apply' | 'overlayfs';
  /** Apply the entries' uid/gid. Default: true when running as root. */
  sameOwner?: boolean;
  /** May make device nodes. Default: true when running as root; devices are skipped with a warning otherwise. */
  privileged?: boolean;
  /** Set extended attributes (needs `setfattr`, package `attr`). Default true. */
  xattrs?: boolean;
  /** Compute the diffID (default true). */
  diffId?: boolean;
  /** Called for what was skipped or could not be set (device nodes when unprivileged, unsupported xattrs). */
  onWarning?: (message: string) => void;
}

export interface ApplyResult {
  /** sha256 of the uncompressed tar stream: the layer's diffID (absent with `diffId: false`). */
  diffId?: Digest;
  /** Bytes of the uncompressed tar stream. */
  size: number;
  /** Tar entries read (whiteouts included). */
  entries: number;
}

/**
 * Applies one layer (gzip, zstd or uncompressed, detected from its first bytes) to the
 * existing directory `root`, the way containerd's `applyNaive` and umoci's unpacker do,
 * and returns the layer's diffID and size, computed in the same pass. Does I/O.
 *
 * Never writes outside `root`:
 * - entry and hard-link names are cleaned lexically; a leading `/` is dropped (confined),
 *   a `..` that climbs above the root is refused;
 * - every parent directory is resolved component by component with `lstat`, following
 *   symlinks as if `root` were `/` (a chroot; securejoin's rule), so a symlink in a parent
 *   cannot lead outside; the final component is never followed: an existing entry is
 *   removed and the new one made with `O_CREAT|O_EXCL|O_NOFOLLOW`, `symlink`, `link`…;
 * - a hard link's target must be an entry already inside the root (not a directory);
 * - directories' final metadata is applied after the whole layer, deepest first, to paths
 *   re-checked with `lstat`; anything removed meanwhile is dropped from that list.
 *
 * Whiteouts follow the OCI image-spec (`layer.md`): they hide lower content only, so an
 * entry of this same layer survives a whiteout or opaque marker of its own path or parent
 * in either order. Ownership is set before mode (chown clears setuid/setgid); xattrs last
 * (chown clears `security.capability`).
 *
 * @throws DRAY_UNSAFE_ARCHIVE for an entry that tries to leave the root (named in the
 *   message); DRAY_INVALID_ARCHIVE for a malformed or truncated tar, a hard link to a
 *   missing target, a symlink loop, a parent that is not a directory; DRAY_NO_SPACE when the
 *   disk is full; DRAY_CONFIG when tar/setfattr are needed and missing; DRAY_ABORTED.
 *   After an error `root` holds a partly applied layer (never anything outside it).
 */
export async function applyLayer(root: string, layer: Readable, o: ApplyOptions = {}): Promise<ApplyResult> {
  throwIfAborted(o.signal, 'applying layer');
  let realRoot: string;
  try {
    realRoot = realpathSync(root);
    if (!lstatSync(realRoot).isDirectory()) throw new Error('not a directory');
  } catch (err) {
    throw new DrayError('DRAY_INVALID_ARGUMENT', `applying layer: ${root} is not a directory`, {
      cause: err,
    });
  }
  const input = await decompressStream(layer, o);
  // The diffID costs a sha256 pass over the whole uncompressed layer; callers that do not
  // need it (unpacking content already verified by digest) skip it. The reader hands over
  // every byte it reads, so no stream stage is needed for the hash or the size.
  const hash = o.diffId === false ? undefined : createHash('sha256');
  let size = 0;
  const onData = (chunk: Buffer) => {
    hash?.update(chunk);
    size += chunk.length;
  };
  const u = new Unpacker(realRoot, o);
  let entries = 0;
  try {
    for await (const entry of readTar(input, { ...o, onData })) {
      entries++;
      await u.apply(entry);
    }
    u.finish();
  } catch (err) {
    input.destroy();
    throw err;
  } finally {
    u.close();
  }
  return { ...(hash ? { diffId: `sha256:${hash.digest('hex')}` as Digest } : {}), size, entries };
}

const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
/** Files up to this size may be written by the small-file worker… */
const SMALL_FILE = 64 * 1024;
/** …once a layer has had this many of them (a worker is not worth starting for fewer). */
const BATCH_AFTER = 128;
/** Symlinks followed while resolving one path before it counts as a loop (Linux's MAXSYMLINKS). */
const MAX_SYMLINKS = 40;

interface DirMeta {
  header: TarHeader;
  depth: number;
}

/** The state of one layer application. All file system work is synchronous and in entry order. */
class Unpacker {
  readonly root: string;
  readonly overlay: boolean;
  readonly sameOwner: boolean;
  readonly privileged: boolean;
  readonly xattrs: boolean;
  readonly warn: (m: string) => void;
  readonly natives: NativeBatch;
  /** Small regular files, written on a worker thread (file-batcher.ts). */
  readonly files: FileBatcher;
  smallFiles = 0;
  /** Real relative paths known to be real directories (not symlinks). Cleared on any removal of a dir/symlink. */
  readonly realDirs = new Set<string>(['']);
  /** Cleaned parent path → resolved real relative path. Cleared with `realDirs`. */
  readonly dirCache = new Map<string, string>();
  /** Real relative paths this layer made (and their ancestors): what an opaque marker keeps. */
  readonly touched = new Set<string>(['']);
  /** Directories whose final metadata is applied at the end. */
  readonly dirs = new Map<string, DirMeta>();
  /** The entry being applied, for messages. */
  current = '';

  constructor(root: string, o: ApplyOptions) {
    this.root = root;
    this.overlay = o.whiteouts === 'overlayfs';
    this.sameOwner = o.sameOwner ?? isRoot;
    this.privileged = o.privileged ?? isRoot;
    this.xattrs = o.xattrs ?? true;
    this.warn = o.onWarning ?? (() => {});
    this.natives = new NativeBatch(root, { sameOwner: this.sameOwner });
    this.files = new FileBatcher({ sameOwner: this.sameOwner });
  }

  close(): void {
    this.files.close();
  }

  abs(rel: string): string {
    return rel === '' ? this.root : `${this.root}/${rel}`;
  }

  async apply(entry: TarEntry): Promise<void> {
    const h = entry.header;
    this.current = h.name;
    try {
      await this.#apply(h, entry);
    } catch (err) {
      throw this.#wrap(err);
    }
  }

  #wrap(err: unknown): DrayError {
    if (err instanceof DrayError) return err;
    const e = err as NodeJS.ErrnoException;
    const what = `applying layer entry ${JSON.stringify(this.current)}`;
    switch (e.code) {
      case 'ENOSPC':
      case 'EDQUOT':
        return new DrayError('DRAY_NO_SPACE', `${what}: no space left on device`, { cause: err });
      case 'ENAMETOOLONG':
      case 'ELOOP':
      case 'ENOTDIR':
      case 'EISDIR':
      case 'EEXIST':
      case 'ENOTEMPTY':
      case 'EINVAL':
      case 'ERR_INVALID_ARG_VALUE':
      case 'ERR_INVALID_ARG_TYPE':
        return new DrayError('DRAY_INVALID_ARCHIVE', `${what}: ${e.message}`, { cause: err });
      default:
        return new DrayError('DRAY_INTERNAL', `${what}: ${e.message}`, { cause: err });
    }
  }

  async #apply(h: TarHeader, entry: TarEntry): Promise<void> {
    const path = cleanName(h.name);
    if (path.length === 0) {
      // The root itself ('./'): its metadata belongs to whoever made `root`.
      if (h.type !== 'directory') throw invalid(h.name, `a ${h.type} cannot replace the root`);
      return;
    }
    const wh = parseWhiteout(path, h.name);
    if (wh !== undefined) {
      if (wh.kind === 'meta') return;
      if (this.overlay) this.#overlayWhiteout(h, wh.kind === 'delete' ? wh.path : wh.dir, wh.kind);
      else if (wh.kind === 'delete') this.#whiteout(wh.path);
      else this.#opaque(wh.dir);
      return;
    }
    const base = path[path.length - 1] as string;
    const parent = this.resolveDir(path.slice(0, -1), true) as string;
    const rel = parent === '' ? base : `${parent}/${base}`;
    switch (h.type) {
      case 'directory':
        this.#directory(rel, h);
        break;
      case 'file':
        await this.#file(rel, h, entry);
        break;
      case 'symlink':
        this.#symlink(rel, h);
        break;
      case 'link':
        this.#hardlink(rel, h);
        break;
      case 'fifo':
      case 'character-device':
      case 'block-device':
        if (h.type !== 'fifo' && !this.privileged) {
          this.warn(`skipping device node ${JSON.stringify(h.name)}: not running as root`);
          return;
        }
        this.#replace(rel, false);
        this.natives.addNode(rel, h);
        break;
      default:
        throw invalid(h.name, `unsupported entry type ${String((h as TarHeader).type)}`);
    }
    this.#touch(rel);
    if (this.xattrs && h.xattrs && h.xattrs.size > 0 && h.type !== 'link')
      this.natives.addXattrs(this.abs(rel), h.xattrs);
  }

  /**
   * Resolves a cleaned directory path inside the root as a chroot would, never leaving it:
   * each component is `lstat`ed; a symlink's target is spliced in (absolute ones restart at
   * the root, `..` stops at the root). Missing directories are made (0755) when `create`.
   * Returns the real relative path, or `undefined` when missing and not `create`.
   */
  resolveDir(path: readonly string[], create: boolean): string | undefined {
    const key = path.join('/');
    const hit = this.dirCache.get(key);
    if (hit !== undefined) return hit;
    const cur: string[] = [];
    const stack = path.slice().reverse();
    let links = 0;
    while (stack.length > 0) {
      const c = stack.pop() as string;
      if (c === '' || c === '.') continue;
      if (c === '..') {
        cur.pop();
        continue;
      }
      cur.push(c);
      const rel = cur.join('/');
      if (this.realDirs.has(rel)) continue;
      const st = this.lstat(rel);
      if (st === undefined) {
        if (!create) return undefined;
        mkdirSync(this.abs(rel), 0o755);
        this.realDirs.add(rel);
        continue;
      }
      if (st.isDirectory()) {
        this.realDirs.add(rel);
        continue;
      }
      if (st.isSymbolicLink()) {
        if (++links > MAX_SYMLINKS) throw invalid(this.current, 'too many levels of symbolic links');
        const target = readlinkSync(this.abs(rel));
        cur.pop();
        if (target.startsWith('/')) cur.length = 0;
        const parts = target.split('/');
        for (let i = parts.length - 1; i >= 0; i--) stack.push(parts[i] as string);
        continue;
      }
      throw invalid(this.current, `${rel} is not a directory`);
    }
    const out = cur.join('/');
    this.dirCache.set(key, out);
    return out;
  }

  /** `lstat` of a real relative path; settles queued special files first so none is missed. */
  lstat(rel: string): Stats | undefined {
    if (this.natives.hasNode(rel) || this.files.has(rel)) this.#flush();
    return lstatSync(this.abs(rel), { throwIfNoEntry: false });
  }

  /** Settles everything queued: the small files (then what the worker handed back), then special files and xattrs. */
  #flush(): void {
    if (this.files.pending) for (const r of this.files.sync()) this.#redo(r);
    for (const w of this.natives.flush()) this.warn(w);
  }

  /** A small file the worker found something other than a file in the way of: applied here, in order. */
  #redo(r: ReturnedFile): void {
    this.current = r.file.path;
    this.#replace(r.key, false);
    const fd = openSync(this.abs(r.key), O_CREATE_FILE, 0o600);
    try {
      writeAll(fd, r.data);
      finishFile(fd, r.file, this.sameOwner);
    } finally {
      closeSync(fd);
    }
  }

  /**
   * Removes whatever is at `rel` so a new entry can be made there; keeps an existing
   * directory when `keepDir`. Returns true when a directory is (still) there.
   */
  #replace(rel: string, keepDir: boolean): boolean {
    const st = this.lstat(rel);
    if (st === undefined) return false;
    if (st.isDirectory() && keepDir) return true;
    this.#remove(rel, st);
    return false;
  }

  #remove(rel: string, st: Stats): void {
    if (this.natives.pending || this.files.pending) this.#flush();
    if (st.isDirectory()) {
      rmSync(this.abs(rel), { recursive: true, force: true });
      this.#forget(rel);
    } else {
      unlinkSync(this.abs(rel));
      if (st.isSymbolicLink()) this.#forget(undefined);
    }
  }

  /** Drops cached resolutions (and, for a removed directory, its pending metadata). */
  #forget(removedDir: string | undefined): void {
    this.realDirs.clear();
    this.realDirs.add('');
    this.dirCache.clear();
    if (removedDir === undefined) return;
    const prefix = `${removedDir}/`;
    for (const k of this.dirs.keys()) if (k === removedDir || k.startsWith(prefix)) this.dirs.delete(k);
  }

  #touch(rel: string): void {
    let p = rel;
    while (!this.touched.has(p)) {
      this.touched.add(p);
      const i = p.lastIndexOf('/');
      p = i < 0 ? '' : p.slice(0, i);
    }
  }

  #directory(rel: string, h: TarHeader): void {
    if (!this.#replace(rel, true)) mkdirSync(this.abs(rel), 0o700);
    this.realDirs.add(rel);
    this.dirs.set(rel, { header: h, depth: rel.split('/').length });
  }

  async #file(rel: string, h: TarHeader, entry: TarEntry): Promise<void> {
    let fd: number;
    if (this.natives.hasNode(rel) || this.files.has(rel)) this.#flush();
    if (h.size <= SMALL_FILE && ++this.smallFiles > BATCH_AFTER) {
      // Copied into the batch, written on the worker while the next entries are parsed.
      const dest = this.files.add(
        rel,
        this.abs(rel),
        { mode: h.mode, uid: h.uid, gid: h.gid, atime: h.atime ?? h.mtime, mtime: h.mtime },
        h.size,
      );
      let off = 0;
      for await (const b of entry.chunks()) off += b.copy(dest, off);
      return;
    }
    try {
      // the common case, a new name: no lstat needed, O_EXCL|O_NOFOLLOW refuses anything already there
      fd = openSync(this.abs(rel), O_CREATE_FILE, 0o600);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      this.#replace(rel, false);
      fd = openSync(this.abs(rel), O_CREATE_FILE, 0o600);
    }
    try {
      for await (const b of entry.chunks()) writeAll(fd, b);
      finishFile(fd, { ...h, atime: h.atime ?? h.mtime }, this.sameOwner);
    } finally {
      closeSync(fd);
    }
  }

  #symlink(rel: string, h: TarHeader): void {
    const target = h.linkname ?? '';
    if (target.includes('\0')) throw invalid(h.name, 'symlink target contains a NUL byte');
    this.#replace(rel, false);
    symlinkSync(target, this.abs(rel));
    if (this.sameOwner) lchownSync(this.abs(rel), h.uid, h.gid);
    lutimesSync(this.abs(rel), h.atime ?? h.mtime, h.mtime);
  }

  #hardlink(rel: string, h: TarHeader): void {
    const target = cleanName(h.linkname ?? '', 'hard link target');
    if (target.length === 0) throw invalid(h.name, 'hard link to the root');
    const dir = this.resolveDir(target.slice(0, -1), false);
    const src =
      dir === undefined
        ? undefined
        : dir === ''
          ? target[target.length - 1]
          : `${dir}/${target[target.length - 1]}`;
    const st = src === undefined ? undefined : this.lstat(src);
    if (src === undefined || st === undefined)
      throw invalid(h.name, `hard link target ${JSON.stringify(h.linkname)} does not exist`);
    if (st.isDirectory())
      throw invalid(h.name, `hard link target ${JSON.stringify(h.linkname)} is a directory`);
    if (src === rel) return;
    this.#replace(rel, false);
    linkSync(this.abs(src), this.abs(rel));
  }

  /** `.wh.<name>`: deletes `<name>` from lower layers; an entry of this layer at that path stays. */
  #whiteout(path: string[]): void {
    const dir = this.resolveDir(path.slice(0, -1), false);
    if (dir === undefined) return;
    const base = path[path.length - 1] as string;
    const rel = dir === '' ? base : `${dir}/${base}`;
    const st = this.lstat(rel);
    if (st === undefined) return;
    if (this.touched.has(rel)) {
      // made by this layer: only what lower layers left below it goes
      if (st.isDirectory()) this.#clearLower(rel);
      return;
    }
    this.#remove(rel, st);
  }

  /** `.wh..wh..opq`: removes the lower children of a directory, keeping this layer's entries. */
  #opaque(path: string[]): void {
    const dir = this.resolveDir(path, false);
    if (dir === undefined) return;
    const st = this.lstat(dir);
    if (st?.isDirectory()) this.#clearLower(dir);
  }

  #clearLower(dir: string): void {
    for (const name of readdirSync(this.abs(dir))) {
      const rel = dir === '' ? name : `${dir}/${name}`;
      const st = lstatSync(this.abs(rel), { throwIfNoEntry: false });
      if (st === undefined) continue;
      if (!this.touched.has(rel)) this.#remove(rel, st);
      else if (st.isDirectory()) this.#clearLower(rel);
    }
  }

  #overlayWhiteout(h: TarHeader, path: string[], kind: 'delete' | 'opaque'): void {
    if (kind === 'opaque') {
      const dir = this.resolveDir(path, true) as string;
      this.#touch(dir);
      this.natives.addXattrs(this.abs(dir), new Map([['trusted.overlay.opaque', Buffer.from('y')]]));
      return;
    }
    const parent = this.resolveDir(path.slice(0, -1), true) as string;
    const base = path[path.length - 1] as string;
    const rel = parent === '' ? base : `${parent}/${base}`;
    this.#replace(rel, false);
    // overlayfs' whiteout: a character device 0/0 (containerd's overlay converter makes the same)
    this.natives.addNode(rel, {
      name: rel,
      type: 'character-device',
      mode: 0,
      uid: h.uid,
      gid: h.gid,
      size: 0,
      mtime: h.mtime,
      devmajor: 0,
      devminor: 0,
    });
    this.#touch(rel);
  }

  /** Ends the layer: queued special files and xattrs, then directories' metadata, deepest first. */
  finish(): void {
    this.#flush();
    const dirs = [...this.dirs].sort((a, b) => b[1].depth - a[1].depth);
    for (const [rel, { header: h }] of dirs) {
      this.current = h.name;
      try {
        const st = lstatSync(this.abs(rel), { throwIfNoEntry: false });
        if (!st?.isDirectory()) continue;
        if (this.sameOwner) lchownSync(this.abs(rel), h.uid, h.gid);
        // lchown done first: it clears setgid on directories too
        const fd = openSync(this.abs(rel), constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW);
        try {
          fchmodSync(fd, h.mode & 0o7777);
          futimesSync(fd, h.atime ?? h.mtime, h.mtime);
        } finally {
          closeSync(fd);
        }
      } catch (err) {
        throw this.#wrap(err);
      }
    }
  }
}

function invalid(name: string, why: string): DrayError {
  return new DrayError('DRAY_INVALID_ARCHIVE', `invalid layer entry ${JSON.stringify(name)}: ${why}`);
}
