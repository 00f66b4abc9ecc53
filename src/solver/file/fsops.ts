import { execFile } from 'node:child_process';
import { chmod, lchown, lutimes, mkdir } from 'node:fs/promises';
import { promisify } from 'node:util';
import { DrayError } from '../../errors.ts';
import { lstatMeta } from './meta.ts';

/** Small file system helpers shared by the file actions. */

const execFileP = promisify(execFile);

/** Owner to give created files. */
export interface Owner {
  uid: number;
  gid: number;
}

/**
 * Seconds for `utimes` from nanoseconds. Node takes a double and libuv splits it into
 * seconds and nanoseconds by truncation; a double near today's epoch is only precise to
 * ~240 ns, so exact nanoseconds cannot always be set. Of the doubles around the value,
 * this picks the one libuv turns into the closest time: whole seconds stay exact, others
 * are off by at most ~120 ns. Pure.
 */
export function nsToSeconds(ns: bigint): number {
  const sec = ns / 1_000_000_000n;
  const rem = ns % 1_000_000_000n;
  const first = Number(sec) + Number(rem) / 1e9;
  let best = first;
  let bestErr = -1n;
  for (const d of [first, nextDouble(first, -1), nextDouble(first, 1)]) {
    const s = Math.trunc(d);
    let n = Math.trunc((d - s) * 1e9);
    let whole = BigInt(s);
    if (n < 0) {
      whole -= 1n;
      n += 1e9;
    }
    const got = whole * 1_000_000_000n + BigInt(n);
    const err = got > ns ? got - ns : ns - got;
    if (bestErr < 0n || err < bestErr) {
      best = d;
      bestErr = err;
    }
  }
  return best;
}

const f64 = new Float64Array(1);
const i64 = new BigInt64Array(f64.buffer);

/** The adjacent double below (-1) or above (+1) a finite non-zero `x`. Pure. */
function nextDouble(x: number, dir: -1 | 1): number {
  if (x === 0) return dir * Number.MIN_VALUE;
  f64[0] = x;
  i64[0] = (i64[0] as bigint) + (x > 0 === dir > 0 ? 1n : -1n);
  return f64[0] as number;
}

/** Sets both times to `seconds` (an action's fixed timestamp). Does I/O. */
export async function setFixedTime(path: string, seconds: number): Promise<void> {
  await lutimes(path, seconds, seconds);
}

/** Turns an fs error into a DrayError naming the operation and the in-root path. Pure. */
export function fsError(e: unknown, what: string): DrayError {
  if (e instanceof DrayError) return e;
  const err = e as NodeJS.ErrnoException;
  const reason = describeErrno(err);
  if (err.code === 'ENOSPC' || err.code === 'EDQUOT') {
    return new DrayError('DRAY_NO_SPACE', `${what}: no space left on device`, { cause: e });
  }
  return new DrayError('DRAY_BUILD', `${what}: ${reason}`, { cause: e });
}

function describeErrno(err: NodeJS.ErrnoException): string {
  switch (err.code) {
    case 'ENOENT':
      return 'no such file or directory';
    case 'ENOTDIR':
      return 'not a directory';
    case 'EISDIR':
      return 'is a directory';
    case 'EEXIST':
      return 'file exists';
    case 'EACCES':
    case 'EPERM':
      return 'operation not permitted';
    case 'ENOTEMPTY':
      return 'directory not empty';
    case 'ELOOP':
      return 'too many levels of symbolic links';
    default:
      return err.message ?? String(err);
  }
}

/** Options for {@link mkdirAll}. */
export interface MkdirAllOptions {
  /** Permission bits of created directories (set exactly, whatever the umask). */
  perm: number;
  owner?: Owner;
  /** Fixed timestamp (seconds) for created directories. */
  time?: number;
}

/**
 * fsutil's `MkdirAll` for an already resolved path inside `root`: creates the missing
 * directories of `rel` with `perm`, `owner` (else the process's) and `time`, and returns
 * them (root-relative), outermost first. Does I/O.
 * @throws DRAY_BUILD when a component exists and is not a directory.
 */
export async function mkdirAll(root: string, rel: string, o: MkdirAllOptions): Promise<string[]> {
  const created: string[] = [];
  if (rel === '') return created;
  const parts = rel.split('/');
  let cur = '';
  for (const part of parts) {
    cur = cur === '' ? part : `${cur}/${part}`;
    const abs = `${root}/${cur}`;
    const m = await lstatMeta(abs);
    if (m) {
      if (m.kind !== 'dir') throw new DrayError('DRAY_BUILD', `mkdir /${cur}: not a directory`);
      continue;
    }
    try {
      await mkdir(abs, o.perm);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'EEXIST' && (await lstatMeta(abs))?.kind === 'dir') continue;
      throw fsError(e, `mkdir /${cur}`);
    }
    try {
      await chmod(abs, o.perm);
      if (o.owner) await lchown(abs, o.owner.uid, o.owner.gid);
      if (o.time !== undefined) await setFixedTime(abs, o.time);
    } catch (e) {
      throw fsError(e, `mkdir /${cur}`);
    }
    created.push(cur);
  }
  return created;
}

/** Major and minor device numbers from st_rdev (glibc encoding). Pure. */
export function deviceNumbers(rdev: bigint): { major: number; minor: number } {
  const major = ((rdev >> 8n) & 0xfffn) | ((rdev >> 32n) & 0xfffff000n);
  const minor = (rdev & 0xffn) | ((rdev >> 12n) & 0xffffff00n);
  return { major: Number(major), minor: Number(minor) };
}

/**
 * Makes a fifo or a device node (Node has no mknod: `mkfifo`/`mknod` from coreutils, one
 * process per node; such files are rare in build contexts and images). Does I/O.
 */
export async function makeNode(
  path: string,
  kind: 'fifo' | 'char' | 'block',
  rdev: bigint,
  shown: string,
): Promise<void> {
  try {
    if (kind === 'fifo') await execFileP('mkfifo', ['-m', '600', '--', path]);
    else {
      const { major, minor } = deviceNumbers(rdev);
      await execFileP('mknod', [
        '-m',
        '600',
        '--',
        path,
        kind === 'char' ? 'c' : 'b',
        String(major),
        String(minor),
      ]);
    }
  } catch (e) {
    const msg = (e as { stderr?: string }).stderr?.trim() || (e as Error).message;
    throw new DrayError('DRAY_BUILD', `creating ${kind} ${shown}: ${msg}`, { cause: e });
  }
}
