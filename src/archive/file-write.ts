import { constants, fchmodSync, fchownSync, futimesSync, writeSync } from 'node:fs';

/** How the unpacker creates a regular file: new name only, never through a symlink. */
export const O_CREATE_FILE = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW;

/** Writes `buf[start, end)` to `fd`, however many calls it takes. Does I/O. */
export function writeAll(fd: number, buf: Buffer, start = 0, end = buf.length): void {
  let off = start;
  while (off < end) off += writeSync(fd, buf, off, end - off);
}

/**
 * Gives a written file its owner (when `sameOwner`), mode and times. Owner first: chown clears
 * setuid/setgid, so the mode goes on after it. Does I/O.
 */
export function finishFile(
  fd: number,
  m: { uid: number; gid: number; mode: number; atime: number; mtime: number },
  sameOwner: boolean,
): void {
  if (sameOwner) fchownSync(fd, m.uid, m.gid);
  fchmodSync(fd, m.mode & 0o7777);
  futimesSync(fd, m.atime, m.mtime);
}
