/**
 * Worker side of the file engine's hot paths: listing directories with `lstat` and running
 * batches of per-file copy steps. Synchronous calls, one after another, as `cp -a` makes
 * them: a thread-pool round trip per `lstat`/`copyFile`/`lutimes` costs several times the
 * system call itself, and this thread is not the one serving the event loop.
 * The main thread decides everything (paths, owners, modes); the worker only executes.
 */

import { createHash } from 'node:crypto';
import {
  chmodSync,
  closeSync,
  constants,
  copyFileSync,
  lchownSync,
  linkSync,
  lstatSync,
  lutimesSync,
  openSync,
  readdirSync,
  readlinkSync,
  readSync,
  symlinkSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import { parentPort } from 'node:worker_threads';
import { type Meta, toMeta } from './meta.ts';
import { compareNames } from './names.ts';

/** Times as libuv-safe seconds (atime, mtime). */
export type Times = [number, number];

/** One step for one destination path. `clear`: remove a non-directory in the way first. */
export type Job =
  | {
      t: 'copy';
      src: string;
      dst: string;
      clear: boolean;
      owner?: [number, number];
      perm?: number;
      times: Times;
    }
  | { t: 'symlink'; src: string; dst: string; clear: boolean; owner?: [number, number]; times: Times }
  | { t: 'empty'; dst: string; clear: boolean; owner?: [number, number]; perm: number; times: Times }
  | { t: 'link'; from: string; dst: string; clear: boolean }
  | { t: 'meta'; dst: string; owner?: [number, number]; perm?: number; times: Times };

/** An error as it crosses the thread boundary. `REPLACE_DIR`: a directory was in the way of a file. */
export interface ErrInfo {
  code: string;
  message: string;
}

/** A directory's entries sorted by name bytes, with `lstat` data (null: gone meanwhile). */
export type ListResult = { entries: [string, Meta | null][] } | { error: ErrInfo };

export type Request =
  | { id: number; kind: 'list'; dirs: string[] }
  | { id: number; kind: 'jobs'; jobs: Job[] }
  | { id: number; kind: 'hash'; files: string[] };

/** A file's sha256 (hex) and size, or why it could not be read. */
export type HashResult = { sha256: string; size: number } | { error: ErrInfo };

export type Reply =
  | { id: number; lists: ListResult[] }
  | { id: number; failed?: { index: number; err: ErrInfo } }
  | { id: number; hashes: HashResult[] }
  | { id: number; crash: string };

function errInfo(e: unknown): ErrInfo {
  const err = e as NodeJS.ErrnoException;
  return { code: err.code ?? 'EUNKNOWN', message: err.message ?? String(e) };
}

/** Lists one directory. */
export function listDir(dir: string): ListResult {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch (e) {
    return { error: errInfo(e) };
  }
  names.sort(compareNames);
  const entries: [string, Meta | null][] = [];
  for (const n of names) {
    try {
      entries.push([n, toMeta(lstatSync(`${dir}/${n}`, { bigint: true }))]);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code !== 'ENOENT' && code !== 'ENOTDIR') return { error: errInfo(e) };
      entries.push([n, null]);
    }
  }
  return { entries };
}

function clear(dst: string): void {
  let isDir: boolean;
  try {
    isDir = lstatSync(dst).isDirectory();
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw e;
  }
  if (isDir) throw Object.assign(new Error('a directory is in the way'), { code: 'REPLACE_DIR' });
  unlinkSync(dst);
}

/** Runs one job. Owner before mode (chown clears setuid/setgid), times last. */
export function runJob(j: Job): void {
  if (j.t !== 'meta' && j.clear) clear(j.dst);
  switch (j.t) {
    case 'copy':
      // EXCL: never writes through a symlink; FICLONE shares extents where the file system can.
      copyFileSync(j.src, j.dst, constants.COPYFILE_EXCL | constants.COPYFILE_FICLONE);
      break;
    case 'symlink':
      symlinkSync(readlinkSync(j.src), j.dst);
      break;
    case 'empty':
      writeFileSync(j.dst, '', { flag: 'wx', mode: 0o600 });
      break;
    case 'link':
      linkSync(j.from, j.dst);
      return;
    case 'meta':
      break;
  }
  if (j.owner) lchownSync(j.dst, j.owner[0], j.owner[1]);
  if ((j.t === 'copy' || j.t === 'empty' || j.t === 'meta') && j.perm !== undefined) chmodSync(j.dst, j.perm);
  lutimesSync(j.dst, j.times[0], j.times[1]);
}

/** Runs jobs in order; stops at the first failure. */
export function runJobs(jobs: readonly Job[]): { index: number; err: ErrInfo } | undefined {
  for (let i = 0; i < jobs.length; i++) {
    try {
      runJob(jobs[i] as Job);
    } catch (e) {
      return { index: i, err: errInfo(e) };
    }
  }
  return undefined;
}

const chunk = Buffer.allocUnsafe(1 << 20);

/** sha256 of a file's content, read in 1 MiB chunks. */
export function hashFile(path: string): HashResult {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (e) {
    return { error: errInfo(e) };
  }
  try {
    const h = createHash('sha256');
    let size = 0;
    for (;;) {
      const n = readSync(fd, chunk, 0, chunk.length, null);
      if (n === 0) break;
      h.update(chunk.subarray(0, n));
      size += n;
    }
    return { sha256: h.digest('hex'), size };
  } catch (e) {
    return { error: errInfo(e) };
  } finally {
    closeSync(fd);
  }
}

parentPort?.on('message', (req: Request) => {
  let reply: Reply;
  try {
    if (req.kind === 'list') reply = { id: req.id, lists: req.dirs.map(listDir) };
    else if (req.kind === 'hash') reply = { id: req.id, hashes: req.files.map(hashFile) };
    else {
      const failed = runJobs(req.jobs);
      reply = failed ? { id: req.id, failed } : { id: req.id };
    }
  } catch (e) {
    reply = { id: req.id, crash: String(e) };
  }
  parentPort?.postMessage(reply);
});
