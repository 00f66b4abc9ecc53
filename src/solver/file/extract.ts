import { type ChildProcess, spawn } from 'node:child_process';
import { createReadStream, createWriteStream } from 'node:fs';
import { chmod, lchown, link, lutimes, mkdir, open, rm, symlink } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { decompressStream, readTar, type TarHeader } from '../../archive/index.ts';
import { DrayError, throwIfAborted } from '../../errors.ts';
import type { CopyEnv } from './copy.ts';
import { fsError, makeNode, mkdirAll, nsToSeconds } from './fsops.ts';
import { cleanPath } from './patterns.ts';
import { resolveInRoot } from './rootpath.ts';
import { lstatMeta } from './tree.ts';
import { writeXattrs } from './xattr.ts';

/**
 * ADD of a local archive (BuildKit's `unpack` → moby/go-archive `chrootarchive.Untar`): a
 * tar, plain or compressed with gzip, bzip2, xz or zstd (recognised by content, never by
 * name), is extracted into the destination directory as `tar -x` would:
 *
 * - the destination is the root of the extraction (as go-archive's chroot): symlinks met
 *   on the way are followed inside it, and no name can leave it;
 * - existing directories are merged with directory entries; anything else in the way is
 *   replaced; the archive's own root entry (`./`) is skipped;
 * - `.wh.*` names are ordinary files (Untar is not a layer applier);
 * - ownership comes from the entries, or `--chown` for all of them; `--chmod` and a fixed
 *   timestamp do not apply to extracted entries (only to the created destination).
 */

const BZIP2 = [0x42, 0x5a, 0x68] as const;
const XZ = [0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00] as const;

function startsWith(buf: Buffer, magic: readonly number[]): boolean {
  return buf.length >= magic.length && magic.every((b, i) => buf[i] === b);
}

/** The decompressed content of an archive file, and a way to stop reading early. */
interface Opened {
  stream: Readable;
  close(): void;
}

async function openDecompressed(path: string, signal?: AbortSignal): Promise<Opened | undefined> {
  const fh = await open(path, 'r');
  const head = Buffer.alloc(6);
  try {
    await fh.read(head, 0, 6, 0);
  } finally {
    await fh.close();
  }
  const tool = startsWith(head, BZIP2) ? 'bzip2' : startsWith(head, XZ) ? 'xz' : undefined;
  if (tool) {
    // Node has neither bzip2 nor xz; the standard tools stream it (moby also runs `xz`).
    const child: ChildProcess = spawn(tool, ['-d', '-c', '-q', '--', path], {
      stdio: ['ignore', 'pipe', 'ignore'],
      ...(signal ? { signal } : {}),
    });
    const started = await new Promise<boolean>((resolve) => {
      child.once('spawn', () => resolve(true));
      child.once('error', () => resolve(false));
    });
    if (!started || !child.stdout) return undefined;
    child.on('error', () => {});
    return { stream: child.stdout, close: () => child.kill() };
  }
  const file = createReadStream(path, { highWaterMark: 1 << 20 });
  const stream = await decompressStream(file, signal ? { signal } : {});
  return {
    stream,
    close: () => {
      stream.destroy();
      file.destroy();
    },
  };
}

/** Whether a 512-byte block is a tar header (Go's tar.Reader accepts it: non-zero, checksum right). Pure. */
function isTarHeader(block: Buffer): boolean {
  if (block.length < 512 || block.every((b) => b === 0)) return false;
  const field = block.toString('latin1', 148, 156).replace(/^[ \0]+|[ \0]+$/g, '');
  if (!/^[0-7]*$/.test(field)) return false;
  const want = field === '' ? 0 : Number.parseInt(field, 8);
  let unsigned = 0;
  let signed = 0;
  for (let i = 0; i < 512; i++) {
    const b = i >= 148 && i < 156 ? 0x20 : (block[i] as number);
    unsigned += b;
    signed += b > 127 ? b - 256 : b;
  }
  return want === unsigned || want === signed;
}

/**
 * Whether the file at `path` (a regular file) is a tar archive, plain or compressed
 * (BuildKit's `isArchivePath`): its decompressed content starts with a valid tar header.
 * Does I/O.
 */
export async function isArchive(path: string): Promise<boolean> {
  let opened: Opened | undefined;
  try {
    opened = await openDecompressed(path);
    if (!opened) return false;
    const chunks: Buffer[] = [];
    let n = 0;
    for await (const chunk of opened.stream) {
      chunks.push(chunk as Buffer);
      n += (chunk as Buffer).length;
      if (n >= 512) break;
    }
    return isTarHeader(Buffer.concat(chunks).subarray(0, 512));
  } catch {
    return false;
  } finally {
    opened?.close();
  }
}

/**
 * Extracts the archive at `archive` into `destPath` (resolved inside the destination root,
 * created with mode 0755, `--chown` and the fixed timestamp like BuildKit's MkdirAll).
 * Does I/O.
 * @throws DRAY_INVALID_ARCHIVE for a malformed archive, DRAY_UNSAFE_ARCHIVE for a name
 *   that climbs out, DRAY_BUILD for file system failures, DRAY_ABORTED.
 */
export async function extractArchive(env: CopyEnv, archive: string, destPath: string): Promise<void> {
  const destRel = await resolveInRoot(env.destRoot, destPath, { followFinal: true });
  await mkdirAll(env.destRoot, destRel, {
    perm: 0o755,
    ...(env.owner ? { owner: env.owner } : {}),
    ...(env.time !== undefined ? { time: env.time } : {}),
  });
  const root = destRel === '' ? env.destRoot : `${env.destRoot}/${destRel}`;
  const opened = await openDecompressed(archive, env.signal);
  if (!opened) throw new DrayError('DRAY_INVALID_ARCHIVE', `cannot decompress ${archive}`);
  try {
    await new Untar(root, env).run(opened.stream);
  } finally {
    opened.close();
  }
}

/** go-archive's Unpack, confined to `root`. */
class Untar {
  readonly #root: string;
  readonly #env: CopyEnv;
  /** Resolved parents (entry dir name → root-relative path); dropped whenever something is removed or a symlink made. */
  #parents = new Map<string, string>();
  /** Directories whose times are set at the end (children change them). */
  readonly #dirs: { rel: string; h: TarHeader }[] = [];

  constructor(root: string, env: CopyEnv) {
    this.#root = root;
    this.#env = env;
  }

  #abs(rel: string): string {
    return rel === '' ? this.#root : `${this.#root}/${rel}`;
  }

  async run(stream: Readable): Promise<void> {
    for await (const entry of readTar(stream, this.#env.signal ? { signal: this.#env.signal } : {})) {
      throwIfAborted(this.#env.signal, 'extracting archive');
      await this.#entry(entry.header, entry.body);
      if (!entry.body.readableEnded) entry.body.resume();
    }
    for (const { rel, h } of this.#dirs) {
      if ((await lstatMeta(this.#abs(rel)))?.kind !== 'dir') continue;
      await this.#setTimes(rel, h).catch((e: unknown) => {
        throw fsError(e, `setting times of ${h.name}`);
      });
    }
  }

  async #entry(h: TarHeader, body: Readable): Promise<void> {
    let name = cleanPath(h.name);
    // An absolute name is below the destination too (go-archive joins it to the destination).
    if (name.startsWith('/')) name = name === '/' ? '.' : name.slice(1);
    if (name === '.') return; // the destination itself keeps its metadata
    if (name === '..' || name.startsWith('../')) {
      throw new DrayError(
        'DRAY_UNSAFE_ARCHIVE',
        `archive entry ${JSON.stringify(h.name)} leaves the destination`,
      );
    }
    const slash = name.lastIndexOf('/');
    const parentName = slash < 0 ? '' : name.slice(0, slash);
    const base = name.slice(slash + 1);
    let parent = this.#parents.get(parentName);
    if (parent === undefined) {
      parent = parentName === '' ? '' : await resolveInRoot(this.#root, parentName, { followFinal: true });
      if (!(await lstatMeta(this.#abs(parent)))) await mkdirAll(this.#root, parent, { perm: 0o755 });
      this.#parents.set(parentName, parent);
    }
    const rel = parent === '' ? base : `${parent}/${base}`;
    const path = this.#abs(rel);
    try {
      const existing = await lstatMeta(path);
      if (existing && !(existing.kind === 'dir' && h.type === 'directory')) {
        await rm(path, { recursive: true, force: true });
        this.#parents.clear();
      }
      await this.#create(h, body, path, rel, existing?.kind === 'dir');
      await this.#metadata(h, path, rel);
    } catch (e) {
      throw fsError(e, `extracting ${h.name}`);
    }
  }

  async #create(h: TarHeader, body: Readable, path: string, rel: string, wasDir: boolean): Promise<void> {
    switch (h.type) {
      case 'directory':
        if (!wasDir) await mkdir(path, 0o700);
        this.#dirs.push({ rel, h });
        return;
      case 'file':
        await pipeline(body, createWriteStream(path, { flags: 'wx', mode: 0o600 }));
        return;
      case 'symlink':
        await symlink(h.linkname ?? '', path);
        this.#parents.clear();
        return;
      case 'link': {
        let target = cleanPath(h.linkname ?? '');
        if (target.startsWith('/')) target = target.slice(1);
        if (target === '..' || target.startsWith('../') || target === '.' || target === '') {
          throw new DrayError(
            'DRAY_UNSAFE_ARCHIVE',
            `invalid hardlink ${JSON.stringify(h.name)} -> ${JSON.stringify(h.linkname)}`,
          );
        }
        const t = await resolveInRoot(this.#root, target, { followFinal: false });
        await link(this.#abs(t), path);
        return;
      }
      case 'character-device':
      case 'block-device':
      case 'fifo': {
        const kind = h.type === 'fifo' ? 'fifo' : h.type === 'character-device' ? 'char' : 'block';
        const rdev = makedev(h.devmajor ?? 0, h.devminor ?? 0);
        await makeNode(path, kind, rdev, `/${rel}`);
        return;
      }
    }
  }

  async #metadata(h: TarHeader, path: string, rel: string): Promise<void> {
    const env = this.#env;
    const owner = env.owner ?? (env.privileged ? { uid: h.uid, gid: h.gid } : undefined);
    if (owner) await lchown(path, owner.uid, owner.gid);
    if (h.type === 'link') {
      const t = (await lstatMeta(path))?.kind;
      if (t !== 'symlink') await chmod(path, h.mode & 0o7777);
    } else if (h.type !== 'symlink') await chmod(path, h.mode & 0o7777);
    if (h.xattrs && h.xattrs.size > 0) {
      // Best effort, as go-archive's BestEffortXattrs.
      env.warnings.push(...(await writeXattrs([{ path, xattrs: h.xattrs }])));
    }
    if (h.type !== 'directory' && h.type !== 'link') await this.#setTimes(rel, h);
  }

  async #setTimes(rel: string, h: TarHeader): Promise<void> {
    const mtime = h.mtime;
    const atime = h.atime !== undefined && h.atime > mtime ? h.atime : mtime;
    await lutimes(this.#abs(rel), toSeconds(atime), toSeconds(mtime));
  }
}

/** Epoch seconds (maybe fractional, from pax) for `utimes` (see nsToSeconds). */
function toSeconds(s: number): number {
  if (Number.isInteger(s)) return s;
  const whole = Math.floor(s);
  return nsToSeconds(BigInt(whole) * 1_000_000_000n + BigInt(Math.round((s - whole) * 1e9)));
}

/** glibc's makedev. Pure. */
function makedev(major: number, minor: number): bigint {
  const ma = BigInt(major);
  const mi = BigInt(minor);
  return ((ma & 0xfffn) << 8n) | ((ma & ~0xfffn) << 32n) | (mi & 0xffn) | ((mi & ~0xffn) << 12n);
}
