import type { BigIntStats } from 'node:fs';
import { lstat } from 'node:fs/promises';

/** File types, from `lstat`. */
export type Kind = 'file' | 'dir' | 'symlink' | 'char' | 'block' | 'fifo' | 'socket';

/** What the copy and checksum code needs from an `lstat` (bigint, so times keep their nanoseconds). */
export interface Meta {
  kind: Kind;
  /** Permission bits incl. setuid/setgid/sticky (07777). */
  perm: number;
  uid: number;
  gid: number;
  size: number;
  dev: bigint;
  ino: bigint;
  nlink: number;
  rdev: bigint;
  atimeNs: bigint;
  mtimeNs: bigint;
  ctimeNs: bigint;
}

const kinds = new Map<number, Kind>([
  [0o100000, 'file'],
  [0o040000, 'dir'],
  [0o120000, 'symlink'],
  [0o020000, 'char'],
  [0o060000, 'block'],
  [0o010000, 'fifo'],
  [0o140000, 'socket'],
]);

/** Meta from a bigint `lstat` result. Pure. */
export function toMeta(st: BigIntStats): Meta {
  const mode = Number(st.mode);
  return {
    kind: kinds.get(mode & 0o170000) ?? 'file',
    perm: mode & 0o7777,
    uid: Number(st.uid),
    gid: Number(st.gid),
    size: Number(st.size),
    dev: st.dev,
    ino: st.ino,
    nlink: Number(st.nlink),
    rdev: st.rdev,
    atimeNs: st.atimeNs,
    mtimeNs: st.mtimeNs,
    ctimeNs: st.ctimeNs,
  };
}

/** `lstat` as Meta, or undefined when nothing is there. Does I/O. */
export async function lstatMeta(path: string): Promise<Meta | undefined> {
  try {
    return toMeta(await lstat(path, { bigint: true }));
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    throw e;
  }
}
