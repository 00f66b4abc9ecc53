import { readlinkSync } from 'node:fs';
import * as fs from 'node:fs/promises';
import { hostname } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import * as lockfile from 'proper-lockfile';
import { abortError, DrayError, throwIfAborted } from '../errors.ts';
import { errnoCode } from './fs-errors.ts';

/**
 * Cross-process locks for the data root (`<root>/locks/`).
 *
 * Built on proper-lockfile: a lock is a directory made with `mkdir` (atomic on every local
 * filesystem and on NFS), whose mtime the holder refreshes every `staleMs / 2`. A holder
 * that died (SIGKILL, power loss) stops refreshing, so after `staleMs` any other process
 * reclaims the lock; no PID files, so it also works when processes live in different PID
 * namespaces (containers) sharing one data root.
 *
 * Reclaiming a stale lock is not perfectly race-free (two reclaimers at the same instant),
 * so no store relies on the lock for *safety*: blobs are digest-checked before they become
 * visible, and images.json is replaced by an atomic rename. The lock gives liveness (no
 * lost updates, no duplicate work) in the normal case.
 */

/** Default stale threshold: long enough for a busy event loop, short enough for a retry after a crash. */
export const DEFAULT_LOCK_STALE_MS = 10_000;

/** A held lock. Release it exactly once; later calls are no-ops. */
export interface FileLock {
  /** The lock's path (a directory while held). */
  readonly path: string;
  /**
   * Set when the lock was lost while held (its directory was removed or refreshed by someone
   * else, or could not be refreshed within the stale threshold). The holder must stop writing.
   */
  readonly compromised: Error | undefined;
  /** Releases the lock. Does I/O; never throws (a lock already gone is released). */
  release(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

export interface LockOptions {
  /** Milliseconds without a refresh after which a lock counts as abandoned (minimum 2000). */
  staleMs?: number;
  /** Internal: skip the dead-owner check (used for the one retry after reclaiming). */
  noDeadOwnerCheck?: boolean;
}

/** Who holds a lock: written beside it (`<lock>.owner`), since the lock directory must stay empty. */
interface LockOwner {
  host: string;
  pidNamespace: string;
  pid: number;
  /** Inode of the lock directory this record describes; a record for an older lock is ignored. */
  ino: number;
}

const pidNamespace: string | undefined = (() => {
  try {
    return readlinkSync('/proc/self/ns/pid');
  } catch {
    return undefined;
  }
})();

async function writeOwner(path: string): Promise<number | undefined> {
  if (!pidNamespace) return undefined;
  try {
    const { ino } = await fs.stat(path);
    const owner: LockOwner = { host: hostname(), pidNamespace, pid: process.pid, ino };
    const tmp = `${path}.owner.${process.pid}.tmp`;
    await fs.writeFile(tmp, JSON.stringify(owner));
    await fs.rename(tmp, `${path}.owner`);
    return ino;
  } catch {
    return undefined; // without a record the lock is only reclaimed when stale
  }
}

async function removeOwner(path: string, ino: number | undefined): Promise<void> {
  if (ino === undefined) return;
  try {
    const owner = JSON.parse(await fs.readFile(`${path}.owner`, 'utf8')) as LockOwner;
    if (owner.pid === process.pid && owner.ino === ino) await fs.rm(`${path}.owner`, { force: true });
  } catch {
    // gone already
  }
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Removes the lock at `path` when its recorded owner is provably dead. True when reclaimed. */
async function reclaimIfOwnerDead(path: string): Promise<boolean> {
  if (!pidNamespace) return false;
  try {
    const owner = JSON.parse(await fs.readFile(`${path}.owner`, 'utf8')) as LockOwner;
    const { ino } = await fs.stat(path);
    if (owner.ino !== ino || owner.host !== hostname() || owner.pidNamespace !== pidNamespace) return false;
    if (owner.pid === process.pid || processAlive(owner.pid)) return false;
    await fs.rmdir(path);
    await fs.rm(`${path}.owner`, { force: true });
    return true;
  } catch {
    return false;
  }
}

/**
 * Tries once to take the lock at `path`, reclaiming it if stale. Does I/O.
 * @returns the lock, or undefined when a live holder has it.
 * @throws DRAY_STORE when the lock directory cannot be created for another reason.
 */
export async function tryLock(path: string, o: LockOptions = {}): Promise<FileLock | undefined> {
  let compromised: Error | undefined;
  let release: (() => Promise<void>) | undefined;
  try {
    release = await lockfile.lock(path, {
      lockfilePath: path,
      realpath: false,
      stale: o.staleMs ?? DEFAULT_LOCK_STALE_MS,
      // The default throws from a timer, which would crash the whole process; record it
      // instead and let the holder fail its next step.
      onCompromised: (e) => {
        compromised = e;
      },
    });
  } catch (e) {
    if (errnoCode(e) === 'ELOCKED') {
      // A holder that we can see is dead (same host and PID namespace, process gone) is
      // reclaimed now rather than after the stale threshold: a pull restarted after a
      // SIGKILL should not wait 10 s for the lock of the process it replaces.
      if (!o.noDeadOwnerCheck && (await reclaimIfOwnerDead(path)))
        return tryLock(path, { ...o, noDeadOwnerCheck: true });
      return undefined;
    }
    throw new DrayError('DRAY_STORE', `cannot take lock ${path}: ${(e as Error).message}`, { cause: e });
  }
  const ino = await writeOwner(path);
  let released = false;
  const lock: FileLock = {
    path,
    get compromised() {
      return compromised;
    },
    async release() {
      if (released) return;
      released = true;
      await removeOwner(path, ino);
      try {
        await release();
      } catch {
        // Already released or compromised: either way we no longer hold it.
      }
    },
    [Symbol.asyncDispose]() {
      return lock.release();
    },
  };
  return lock;
}

/**
 * Takes the lock at `path`, waiting (with backoff up to 500 ms) while a live holder has it.
 * `until` is polled between attempts: when it returns true, waiting stops and the result is
 * undefined (e.g. "the blob we wanted to write was committed by the holder"). Does I/O.
 * @throws DRAY_ABORTED when `signal` fires; DRAY_STORE_LOCKED after `timeoutMs` (if given).
 */
export async function acquireLock(
  path: string,
  o: LockOptions & {
    signal?: AbortSignal;
    timeoutMs?: number;
    what?: string;
    until?: () => Promise<boolean>;
  } = {},
): Promise<FileLock | undefined> {
  const what = o.what ?? path;
  throwIfAborted(o.signal, `waiting for lock on ${what}`);
  const started = Date.now();
  let delay = 20;
  for (;;) {
    const lock = await tryLock(path, o);
    if (lock) return lock;
    if (o.until && (await o.until())) return undefined;
    const waited = Date.now() - started;
    if (o.timeoutMs !== undefined && waited >= o.timeoutMs) {
      throw new DrayError('DRAY_STORE_LOCKED', `${what} is locked by another process (waited ${waited} ms)`, {
        hint: `another dray process is using the store; retry when it finishes (a crashed holder's lock is reclaimed after ${Math.round((o.staleMs ?? DEFAULT_LOCK_STALE_MS) / 1000)} s)`,
      });
    }
    try {
      await sleep(delay + Math.floor(Math.random() * delay), undefined, { signal: o.signal });
    } catch (e) {
      throw o.signal?.aborted ? abortError(o.signal, `waiting for lock on ${what}`) : e;
    }
    delay = Math.min(delay * 2, 500);
  }
}
