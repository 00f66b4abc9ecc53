import { createHash } from 'node:crypto';
import { chmod, lstat, mkdir, readdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { acquireLock } from '../content/index.ts';
import { type Digest, digestAlgorithm, digestHex, parseDigest } from '../digest/index.ts';
import { abortError, DrayError, isDrayError, throwIfAborted } from '../errors.ts';
import { mountsUnder, removeTrees, unmount } from './host.ts';
import { ownedName, ownerAlive, parseOwner } from './owner.ts';
import type { LayerChain } from './types.ts';

/** Checks every diffID of a chain (they become path names). @throws DRAY_INVALID_DIGEST. */
export function checkChain(chain: readonly string[]): Digest[] {
  if (!Array.isArray(chain))
    throw new DrayError('DRAY_INVALID_ARGUMENT', 'a layer chain must be an array of diffIDs');
  return chain.map((d) => parseDigest(d));
}

/**
 * containerd's chain ID (image-spec config.md "Layer ChainID"): the first layer's diffID,
 * then `sha256(parent + " " + diffID)` for each layer on top. Undefined for the empty chain.
 * No I/O.
 */
export function chainId(chain: LayerChain): Digest | undefined {
  let id: string | undefined;
  for (const d of chain) {
    id = id === undefined ? d : `sha256:${createHash('sha256').update(`${id} ${d}`).digest('hex')}`;
  }
  return id as Digest | undefined;
}

/** A digest as a relative path: `<algorithm>/<hex>`. */
export function digestPath(d: Digest): string {
  return `${digestAlgorithm(d)}/${digestHex(d)}`;
}

/** Whether `path` exists (any type, not followed). Does I/O. */
export async function exists(path: string): Promise<boolean> {
  try {
    await lstat(path);
    return true;
  } catch {
    return false;
  }
}

/** errno code of a Node error. */
export function errno(e: unknown): string | undefined {
  return typeof e === 'object' && e !== null && 'code' in e && typeof e.code === 'string'
    ? e.code
    : undefined;
}

/** Wraps a filesystem failure as DRAY_SNAPSHOT (DrayErrors pass through). */
export function snapshotError(e: unknown, what: string): DrayError {
  if (e instanceof DrayError) return e;
  const code = errno(e);
  if (code === 'ENOSPC' || code === 'EDQUOT')
    return new DrayError('DRAY_NO_SPACE', `${what}: no space left on device`, { cause: e });
  return new DrayError('DRAY_SNAPSHOT', `${what}: ${e instanceof Error ? e.message : String(e)}`, {
    cause: e,
  });
}

/**
 * Renames `from` to the committed path `to`. False when `to` already exists (someone else
 * committed the same content first; the caller drops its copy). Does I/O.
 */
export async function renameIntoPlace(from: string, to: string): Promise<boolean> {
  try {
    await rename(from, to);
    return true;
  } catch (e) {
    const code = errno(e);
    if (code === 'ENOTEMPTY' || code === 'EEXIST') return false;
    throw snapshotError(e, `commit ${to}`);
  }
}

/** The directories one snapshotter kind keeps under its root. */
export interface StoreDirs {
  /** `<root>/<kind>`: the cwd for relative mount options. */
  base: string;
  active: string;
  tmp: string;
  locks: string;
  empty: string;
}

/** The directory names of a store whose kind keeps its state in `base`. No I/O. */
export function storeDirs(base: string): StoreDirs {
  return {
    base,
    active: join(base, 'active'),
    tmp: join(base, 'tmp'),
    locks: join(base, 'locks'),
    empty: join(base, 'empty'),
  };
}

/** Makes the store's directories (idempotent). Does I/O. */
export async function makeStoreDirs(d: StoreDirs, extra: readonly string[]): Promise<void> {
  for (const p of [d.base, d.active, d.tmp, d.locks, d.empty, ...extra])
    await mkdir(p, { recursive: true, mode: 0o755 });
}

/** A new temp directory owned by this process under `tmp`. Does I/O. */
export async function makeTemp(d: StoreDirs, suffix = ''): Promise<string> {
  const p = join(d.tmp, ownedName(suffix));
  await mkdir(p, { mode: 0o755 });
  return p;
}

/**
 * What an active snapshot or view records next to its files (`chain.json`) so that prune,
 * in any process, keeps the layers it stands on.
 */
interface ActiveRecord {
  chain: string[];
  writable: boolean;
}

/** Makes an active directory owned by this process, recording `chain`. Does I/O. */
export async function makeActive(d: StoreDirs, chain: LayerChain, writable: boolean): Promise<string> {
  const dir = join(d.active, ownedName(writable ? '.rw' : '.ro'));
  await mkdir(dir, { mode: 0o755 });
  const rec: ActiveRecord = { chain: [...chain], writable };
  await writeFile(join(dir, 'chain.json'), JSON.stringify(rec));
  return dir;
}

/** The chains every live active snapshot and view stands on (all processes). Does I/O. */
export async function activeChains(d: StoreDirs): Promise<Digest[][]> {
  const out: Digest[][] = [];
  for (const name of await readdir(d.active).catch(() => [] as string[])) {
    const owner = parseOwner(name);
    if (owner && !(await ownerAlive(owner))) continue;
    try {
      const rec = JSON.parse(await readFile(join(d.active, name, 'chain.json'), 'utf8')) as ActiveRecord;
      out.push(checkChain(rec.chain));
    } catch {
      // just made (no record yet) or being removed. A snapshot writes its record before it
      // looks at its layers, so one that has none yet has not found them yet either.
    }
  }
  return out;
}

/** Unmounts whatever is mounted at or below `dir`, then removes it. Does I/O. */
export async function unmountAndRemove(dir: string): Promise<void> {
  for (const m of await mountsUnder(dir)) await unmount(m);
  await removeTrees([dir]);
}

/**
 * Removes the leftovers of processes that died: entries of `active/` and `tmp/` whose owner
 * is provably gone are unmounted and removed. Does I/O.
 * @returns how many entries were removed.
 */
export async function recoverDirs(d: StoreDirs): Promise<number> {
  let removed = 0;
  for (const parent of [d.active, d.tmp]) {
    for (const name of await readdir(parent).catch(() => [] as string[])) {
      const owner = parseOwner(name);
      if (!owner || (await ownerAlive(owner))) continue;
      await unmountAndRemove(join(parent, name));
      removed++;
    }
  }
  return removed;
}

/**
 * Runs `make` for `key` at most once across this process (concurrent callers share the work)
 * and across processes (a lock in `locks/`); callers that find `done()` true skip it. A
 * caller whose own signal did not fire retries when the shared attempt was aborted by
 * another caller's signal.
 */
export class OnceAcrossProcesses {
  readonly #locks: string;
  readonly #inflight = new Map<string, Promise<void>>();

  constructor(locksDir: string) {
    this.#locks = locksDir;
  }

  async run(
    key: string,
    what: string,
    done: () => Promise<boolean>,
    make: (signal: AbortSignal | undefined) => Promise<void>,
    signal: AbortSignal | undefined,
  ): Promise<void> {
    for (;;) {
      throwIfAborted(signal, what);
      let p = this.#inflight.get(key);
      const leader = p === undefined;
      if (p === undefined) {
        p = this.#once(key, what, done, make, signal);
        this.#inflight.set(key, p);
        const mine = p;
        const forget = (): void => {
          if (this.#inflight.get(key) === mine) this.#inflight.delete(key);
        };
        mine.then(forget, forget);
      }
      try {
        await (leader ? p : raceSignal(p, signal, what));
        return;
      } catch (e) {
        if (!leader && isDrayError(e, 'DRAY_ABORTED') && !signal?.aborted) continue;
        throw e;
      }
    }
  }

  /** The lock file that guards `key` (prune takes it too, so it never removes what is being made). */
  lockPath(key: string): string {
    return join(this.#locks, key.replaceAll('/', '-'));
  }

  async #once(
    key: string,
    what: string,
    done: () => Promise<boolean>,
    make: (signal: AbortSignal | undefined) => Promise<void>,
    signal: AbortSignal | undefined,
  ): Promise<void> {
    if (await done()) return;
    const lock = await acquireLock(this.lockPath(key), {
      ...(signal ? { signal } : {}),
      what,
      until: done,
    });
    if (!lock) return;
    try {
      if (await done()) return;
      await make(signal);
      if (lock.compromised)
        throw new DrayError('DRAY_SNAPSHOT', `${what}: lost the lock while unpacking`, {
          cause: lock.compromised,
        });
    } finally {
      await lock.release();
    }
  }
}

/** Waits for `p`, or rejects with DRAY_ABORTED as soon as `signal` fires. */
function raceSignal<T>(p: Promise<T>, signal: AbortSignal | undefined, what: string): Promise<T> {
  if (!signal) return p;
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(abortError(signal, what));
    if (signal.aborted) return onAbort();
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}

/**
 * The error for `commit(diffId)` with a diffID that `diff()` never reported: committing
 * content under a wrong diffID would poison every chain that later uses that diffID.
 */
export function unknownDiffError(diffId: string, path: string): DrayError {
  return new DrayError(
    'DRAY_INVALID_ARGUMENT',
    `commit ${path}: ${diffId} is not the diffID diff() reported for this snapshot`,
    { hint: 'stream diff() to the end, await its close(), and commit the diffId it returned' },
  );
}

/** Makes `dir`'s permission bits exactly 0755 (the root of every layer and tree). */
export async function makeRootDir(dir: string): Promise<void> {
  await mkdir(dir, { mode: 0o755 });
  await chmod(dir, 0o755); // whatever the umask
}

/** `view()`/`prepare()` of a chain that `ensure()` has not materialised. `what` names it. */
export function notMaterialised(chain: readonly Digest[], what: string): DrayError {
  return new DrayError(
    'DRAY_NOT_FOUND',
    `snapshot of ${chain.length} layer(s) (${what}) is not materialised`,
    {
      hint: 'call ensure(chain) before view() or prepare()',
    },
  );
}

/**
 * A view or active snapshot of either kind: `release()` runs the kind's `dispose()` once
 * (a failed one may be retried) and reports failures as DRAY_SNAPSHOT.
 */
export abstract class SnapshotHandle {
  readonly path: string;
  readonly chain: LayerChain;
  readonly dir: string;
  #released: Promise<void> | undefined;

  constructor(path: string, chain: readonly Digest[], dir: string) {
    this.path = path;
    this.chain = Object.freeze([...chain]);
    this.dir = dir;
  }

  get released(): boolean {
    return this.#released !== undefined;
  }

  /** Undoes what the handle holds (unmount, remove its directory). */
  protected abstract dispose(): Promise<void>;

  release(): Promise<void> {
    this.#released ??= this.dispose().catch((e: unknown) => {
      this.#released = undefined; // let a later call retry
      throw snapshotError(e, `release snapshot ${this.path}`);
    });
    return this.#released;
  }
}
