import { createReadStream } from 'node:fs';
import * as fs from 'node:fs/promises';
import { posix } from 'node:path';
import { Readable } from 'node:stream';
import { abortError, DrayError, throwIfAborted } from '../errors.ts';
import type { RunOptions } from '../progress/index.ts';

/**
 * A random-access index of a tar file on disk: one pass over the 512-byte headers (bodies are
 * skipped by seeking, never read), then any entry is read as a byte range of the file. This is
 * how the OCI-archive and docker-archive readers serve blobs without unpacking the archive, as
 * ggcr's `tarball.ImageFromPath` re-opens the file per layer, but without re-scanning it.
 *
 * Only what an image archive needs is understood: regular files, directories, symlinks and
 * hard links, with POSIX pax (`path`, `linkpath`, `size`) and GNU long-name (`L`/`K`) records.
 */

/** One entry of an indexed tar. `offset` is where its content starts in the file. */
export interface TarIndexEntry {
  name: string;
  type: 'file' | 'directory' | 'symlink' | 'link' | 'other';
  offset: number;
  size: number;
  linkname?: string;
}

const BLOCK = 512;
/** pax / GNU long-name records are read whole; anything larger is not an image archive. */
const MAX_META_BYTES = 1024 * 1024;
/** Symlink hops followed before a chain is called a cycle (Linux's MAXSYMLINKS is 40). */
const MAX_LINK_HOPS = 40;

/** Normalises an archive path as docker and ggcr compare them: no `./`, no leading or trailing `/`. */
export function normalizeTarPath(p: string): string {
  const n = posix.normalize(`/${p}`).replace(/^\/+/, '').replace(/\/+$/, '');
  return n === '.' ? '' : n;
}

function invalid(file: string, why: string, cause?: unknown): DrayError {
  return new DrayError('DRAY_INVALID_ARCHIVE', `invalid archive ${file}: ${why}`, {
    ...(cause !== undefined ? { cause } : {}),
    hint: 'the file is not a complete tar archive of an image (docker save or OCI layout)',
  });
}

function cString(b: Buffer, start: number, len: number): string {
  const s = b.subarray(start, start + len);
  const nul = s.indexOf(0);
  return s.subarray(0, nul < 0 ? s.length : nul).toString('utf8');
}

function octal(b: Buffer, start: number, len: number, file: string): number {
  const field = b.subarray(start, start + len);
  // GNU base-256 for sizes over 8 GiB: high bit of the first byte set.
  if ((field[0] ?? 0) & 0x80) {
    let n = (field[0] ?? 0) & 0x7f;
    for (let i = 1; i < field.length; i++) n = n * 256 + (field[i] ?? 0);
    return n;
  }
  const s = cString(b, start, len).trim();
  if (s === '') return 0;
  if (!/^[0-7]+$/.test(s)) throw invalid(file, `bad octal number ${JSON.stringify(s)} in a tar header`);
  return Number.parseInt(s, 8);
}

function checksumOk(h: Buffer): boolean {
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 32 : (h[i] ?? 0);
  const stored = Number.parseInt(cString(h, 148, 8).trim() || 'NaN', 8);
  return sum === stored;
}

function parsePax(data: Buffer, file: string): Map<string, string> {
  const out = new Map<string, string>();
  let i = 0;
  while (i < data.length) {
    const sp = data.indexOf(0x20, i);
    if (sp < 0) break;
    const len = Number.parseInt(data.subarray(i, sp).toString('ascii'), 10);
    if (!Number.isSafeInteger(len) || len <= sp - i || i + len > data.length) {
      throw invalid(file, 'malformed pax extended header');
    }
    const rec = data.subarray(sp + 1, i + len - 1).toString('utf8');
    const eq = rec.indexOf('=');
    if (eq > 0) out.set(rec.slice(0, eq), rec.slice(eq + 1));
    i += len;
  }
  return out;
}

/**
 * Indexes the tar at `file`. Does I/O (positioned reads of the headers only). Later entries
 * with the same name replace earlier ones, as extraction would.
 * @throws DRAY_INVALID_ARCHIVE for a truncated or malformed archive; DRAY_ABORTED.
 */
export async function indexTar(file: string, o: RunOptions = {}): Promise<TarIndex> {
  throwIfAborted(o.signal, `reading ${file}`);
  const fh = await fs.open(file, 'r').catch((e: unknown) => {
    throw new DrayError('DRAY_NOT_FOUND', `cannot open archive ${file}: ${(e as Error).message}`, {
      cause: e,
    });
  });
  const entries = new Map<string, TarIndexEntry>();
  try {
    const { size: fileSize } = await fh.stat();
    const header = Buffer.alloc(BLOCK);
    let pos = 0;
    let pax: Map<string, string> | undefined;
    let globalPax = new Map<string, string>();
    let longName: string | undefined;
    let longLink: string | undefined;
    const readMeta = async (start: number, size: number): Promise<Buffer> => {
      if (size > MAX_META_BYTES) throw invalid(file, `tar metadata record of ${size} bytes is too large`);
      const b = Buffer.alloc(size);
      const { bytesRead } = await fh.read(b, 0, size, start);
      if (bytesRead !== size) throw invalid(file, 'unexpected end of file in a tar metadata record');
      return b;
    };
    for (;;) {
      if (o.signal?.aborted) throw abortError(o.signal, `reading ${file}`);
      const { bytesRead } = await fh.read(header, 0, BLOCK, pos);
      if (bytesRead === 0) break; // no end-of-archive blocks: tolerated, as GNU tar does
      if (bytesRead < BLOCK) throw invalid(file, `truncated tar header at byte ${pos}`);
      if (header.every((b) => b === 0)) break;
      if (!checksumOk(header)) throw invalid(file, `bad tar header checksum at byte ${pos}`);
      const typeflag = String.fromCharCode(header[156] ?? 0);
      let size = octal(header, 124, 12, file);
      const body = pos + BLOCK;
      const next = () => body + Math.ceil(size / BLOCK) * BLOCK;
      if (typeflag === 'x' || typeflag === 'g') {
        const records = parsePax(await readMeta(body, size), file);
        if (typeflag === 'g') globalPax = new Map([...globalPax, ...records]);
        else pax = records;
        pos = next();
        continue;
      }
      if (typeflag === 'L' || typeflag === 'K') {
        const value = cString(await readMeta(body, size), 0, size);
        if (typeflag === 'L') longName = value;
        else longLink = value;
        pos = next();
        continue;
      }
      const rec = new Map([...globalPax, ...(pax ?? [])]);
      const paxSize = rec.get('size');
      if (paxSize !== undefined) size = Number.parseInt(paxSize, 10);
      let name = rec.get('path') ?? longName;
      if (name === undefined) {
        name = cString(header, 0, 100);
        const magic = cString(header, 257, 6);
        const prefix = magic.startsWith('ustar') ? cString(header, 345, 155) : '';
        if (prefix) name = `${prefix}/${name}`;
      }
      const linkname = rec.get('linkpath') ?? longLink ?? cString(header, 157, 100);
      pax = undefined;
      longName = undefined;
      longLink = undefined;
      if (!Number.isSafeInteger(size) || size < 0) throw invalid(file, `bad size for ${name}`);
      const type: TarIndexEntry['type'] =
        typeflag === '0' || typeflag === '\0' || typeflag === '7'
          ? 'file'
          : typeflag === '5'
            ? 'directory'
            : typeflag === '2'
              ? 'symlink'
              : typeflag === '1'
                ? 'link'
                : 'other';
      const hasBody = type === 'file' || type === 'other';
      if (hasBody && body + size > fileSize)
        throw invalid(file, `entry ${name} runs past the end of the file`);
      const n = normalizeTarPath(name);
      if (n !== '') {
        entries.set(n, {
          name: n,
          type,
          offset: body,
          size: hasBody ? size : 0,
          ...(type === 'symlink' || type === 'link' ? { linkname } : {}),
        });
      }
      pos = hasBody ? next() : body;
    }
  } catch (e) {
    if (e instanceof DrayError) throw e;
    throw invalid(file, (e as Error).message, e);
  } finally {
    await fh.close();
  }
  return new TarIndex(file, entries);
}

/** The result of {@link indexTar}: look entries up by path (following in-archive links) and read them. */
export class TarIndex {
  readonly file: string;
  readonly entries: ReadonlyMap<string, TarIndexEntry>;

  constructor(file: string, entries: Map<string, TarIndexEntry>) {
    this.file = file;
    this.entries = entries;
  }

  /**
   * The regular file at `path`, following symlinks and hard links inside the archive (docker
   * save used to link identical layers: `b159…/layer.tar -> ../6e77…/layer.tar`). No I/O.
   * Links are resolved relative to the link's own directory and may not leave the archive.
   * @returns undefined when absent.
   * @throws DRAY_INVALID_ARCHIVE for a link cycle, a link out of the archive, or a non-file.
   */
  lookup(path: string): TarIndexEntry | undefined {
    let p = normalizeTarPath(path);
    const seen = new Set<string>();
    for (let hops = 0; ; hops++) {
      const e = this.entries.get(p);
      if (!e) return undefined;
      if (e.type === 'file') return e;
      if (e.type !== 'symlink' && e.type !== 'link') {
        throw invalid(this.file, `${path} is not a regular file`);
      }
      if (seen.has(p) || hops >= MAX_LINK_HOPS) {
        throw invalid(this.file, `link cycle resolving ${path} (${[...seen, p].join(' -> ')})`);
      }
      seen.add(p);
      const target = e.linkname ?? '';
      // Symlinks are relative to their own directory, hard links to the archive root.
      const rel =
        e.type === 'link' ? posix.normalize(target) : posix.normalize(posix.join(posix.dirname(p), target));
      if (posix.isAbsolute(target) || rel === '..' || rel.startsWith('../')) {
        throw invalid(this.file, `${path} links outside the archive (${target})`);
      }
      const resolved = rel;
      p = normalizeTarPath(resolved);
    }
  }

  /**
   * A stream of the bytes of `e` from `offset`. Does I/O (opens the archive file).
   */
  /**
   * The stream of blob `d` stored as entry `e` of this archive (`what` names the archive in
   * messages). Shared by the OCI and docker archive readers.
   * @throws DRAY_BLOB_UNKNOWN when `e` is missing; DRAY_SIZE_MISMATCH when its size is not `d.size`.
   */
  openBlob(
    e: TarIndexEntry | undefined,
    d: { digest: string; size: number },
    what: string,
    o: RunOptions & { offset?: number } = {},
  ): Readable {
    if (!e) throw new DrayError('DRAY_BLOB_UNKNOWN', `blob unknown: ${d.digest} is not in ${what}`);
    if (e.size !== d.size) {
      throw new DrayError(
        'DRAY_SIZE_MISMATCH',
        `blob ${d.digest} in ${this.file}: ${e.size} bytes, descriptor says ${d.size}`,
      );
    }
    return this.open(e, o);
  }

  open(e: TarIndexEntry, o: RunOptions & { offset?: number } = {}): Readable {
    const offset = o.offset ?? 0;
    if (offset >= e.size) return Readable.from([]);
    return createReadStream(this.file, {
      start: e.offset + offset,
      end: e.offset + e.size - 1,
      highWaterMark: 1024 * 1024,
      ...(o.signal ? { signal: o.signal } : {}),
    });
  }

  /** Reads a small entry whole (a JSON document), refusing more than `maxBytes`. Does I/O. */
  async read(e: TarIndexEntry, maxBytes: number): Promise<Buffer> {
    if (e.size > maxBytes) {
      throw new DrayError(
        'DRAY_DOCUMENT_TOO_LARGE',
        `${e.name} in ${this.file}: ${e.size} bytes exceeds ${maxBytes}`,
      );
    }
    const fh = await fs.open(this.file, 'r');
    try {
      const b = Buffer.alloc(e.size);
      const { bytesRead } = await fh.read(b, 0, e.size, e.offset);
      if (bytesRead !== e.size) throw invalid(this.file, `short read of ${e.name}`);
      return b;
    } finally {
      await fh.close();
    }
  }

  /** The first `n` bytes of an entry (compression sniffing). Does I/O. */
  async head(e: TarIndexEntry, n: number): Promise<Buffer> {
    const fh = await fs.open(this.file, 'r');
    try {
      const b = Buffer.alloc(Math.min(n, e.size));
      const { bytesRead } = await fh.read(b, 0, b.length, e.offset);
      return b.subarray(0, bytesRead);
    } finally {
      await fh.close();
    }
  }
}
