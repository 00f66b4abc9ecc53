import type { Readable } from 'node:stream';

/**
 * The tar model shared by the codec (reader, writer), safe unpack (applyLayer), layer diffs
 * (writeDiff), flattening and the archive formats. Field meanings follow POSIX pax / ustar;
 * binary values (xattrs) stay Buffers end to end.
 */

export type TarEntryType =
  | 'file'
  | 'link' // hard link: `linkname` is the target path inside the archive
  | 'symlink'
  | 'directory'
  | 'character-device'
  | 'block-device'
  | 'fifo';

export interface TarHeader {
  /** Path inside the archive, '/'-separated, without a leading './' or '/'; directories without a trailing '/'. */
  name: string;
  type: TarEntryType;
  /** Permission bits including setuid/setgid/sticky (07777). */
  mode: number;
  uid: number;
  gid: number;
  uname?: string;
  gname?: string;
  /** Bytes of content (files only; 0 otherwise). */
  size: number;
  /** Modification time, epoch seconds (fractional allowed, from pax). */
  mtime: number;
  atime?: number;
  ctime?: number;
  /** Link target for 'link' and 'symlink'. */
  linkname?: string;
  devmajor?: number;
  devminor?: number;
  /** Extended attributes, `SCHILY.xattr.<name>` in pax; values are raw bytes (security.capability is binary). */
  xattrs?: Map<string, Buffer>;
  /** Other pax records kept verbatim (key → raw value bytes). */
  pax?: Map<string, Buffer>;
}

/**
 * One entry as the reader yields it. Its content is read through `body` or `chunks()`, not
 * both, before asking for the next entry; whatever is left unread is skipped.
 */
export interface TarEntry {
  header: TarHeader;
  /** The file's content (empty for non-files) as a stream, made on first access. */
  readonly body: Readable;
  /**
   * The same content chunk by chunk, zero-copy slices of the archive: no stream per entry,
   * which is most of the cost of an entry in a layer of many small files.
   */
  chunks(): AsyncIterable<Buffer>;
}

/** Compression of a layer blob, detected from its first bytes or chosen for output. */
export type Compression = 'gzip' | 'zstd' | 'none';

export interface CompressionOptions {
  compression?: Compression;
  /** gzip 0–9 (default 6); zstd 1–22 (default 3). */
  level?: number;
}

/**
 * Pax keys that map onto TarHeader fields: the reader turns them into fields (everything
 * else lands in `pax`), and the writer derives them from fields (`header.pax` must not set them).
 */
export const PAX_HEADER_KEYS: ReadonlySet<string> = new Set([
  'path',
  'linkpath',
  'size',
  'uid',
  'gid',
  'uname',
  'gname',
  'mtime',
  'atime',
  'ctime',
]);
