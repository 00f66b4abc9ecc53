import { createHash } from 'node:crypto';
import * as fs from 'node:fs/promises';
import { join } from 'node:path';
import { acquireLock, type FileLock, tryLock } from '../content/index.ts';

/** A cache mount's directory, held until `release()`. */
export interface HeldCacheMount {
  path: string;
  /** True when the directory was just created (seed it). */
  created: boolean;
  release(): Promise<void>;
}

export interface CacheMountRequest {
  id: string;
  sharing: 'shared' | 'private' | 'locked';
  mode?: number;
  uid?: number;
  gid?: number;
  signal?: AbortSignal;
}

/**
 * `RUN --mount=type=cache` directories, kept across builds under `<root>/cache/mounts/`
 * (BuildKit's cache mounts): `shared` mounts are used by every step at once, `locked` ones
 * by one step at a time (others wait), `private` ones get another instance while one is
 * busy. The ids are hashed into directory names, so any id string is safe.
 */
export class CacheMounts {
  readonly #dir: string;
  readonly #locks: string;

  constructor(dataRoot: string) {
    this.#dir = join(dataRoot, 'cache', 'mounts');
    this.#locks = join(dataRoot, 'locks');
  }

  /** Takes a cache mount for a step. Does I/O. */
  async acquire(r: CacheMountRequest): Promise<HeldCacheMount> {
    const base = createHash('sha256').update(r.id).digest('hex').slice(0, 32);
    await fs.mkdir(this.#locks, { recursive: true });
    let lock: FileLock | undefined;
    let name = base;
    if (r.sharing === 'locked') {
      lock = await acquireLock(join(this.#locks, `cache-mount-${base}`), {
        what: `cache mount ${r.id}`,
        ...(r.signal ? { signal: r.signal } : {}),
        timeoutMs: 24 * 3600_000,
      });
    } else if (r.sharing === 'private') {
      for (let n = 0; !lock; n++) {
        name = n === 0 ? base : `${base}-${n}`;
        lock = await tryLock(join(this.#locks, `cache-mount-${name}`));
      }
    }
    const path = join(this.#dir, name);
    let created = false;
    try {
      await fs.mkdir(this.#dir, { recursive: true });
      await fs.mkdir(path, { mode: r.mode ?? 0o755 });
      created = true;
      await fs.chmod(path, r.mode ?? 0o755);
      await fs.chown(path, r.uid ?? 0, r.gid ?? 0);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') {
        await lock?.release();
        throw e;
      }
    }
    let released = false;
    return {
      path,
      created,
      release: async () => {
        if (released) return;
        released = true;
        await lock?.release();
      },
    };
  }

  /** Removes every cache mount (`dray prune` of build caches). Does I/O. */
  async clear(): Promise<void> {
    await fs.rm(this.#dir, { recursive: true, force: true });
  }
}
