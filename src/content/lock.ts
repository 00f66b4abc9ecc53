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
    if (errnoCode(e) === 'ELOCKED') return undefined;
    throw new DrayError('DRAY_STORE', `cannot take lock ${path}: ${(e as Error).message}`, { cause: e });
  }
  let released = false;
  const lock: FileLock = {
    path,
    get compromised() {
      return compromised;
    },
    async release() {
      if (released) return;
      released = true;
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
