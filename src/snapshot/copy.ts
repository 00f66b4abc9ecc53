import { readdir, rename } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { applyLayer, type LayerWriter, type WriteDiffOptions } from '../archive/index.ts';
import { tryLock } from '../content/index.ts';
import { type Digest, digestHex, shortDigest } from '../digest/index.ts';
import { DrayError, throwIfAborted } from '../errors.ts';
import type { RunOptions } from '../progress/index.ts';
import {
  activeChains,
  chainId,
  checkChain,
  errno,
  exists,
  makeActive,
  makeRootDir,
  makeStoreDirs,
  makeTemp,
  notMaterialised,
  OnceAcrossProcesses,
  recoverDirs,
  renameIntoPlace,
  SnapshotHandle,
  type StoreDirs,
  snapshotError,
  storeDirs,
  unknownDiffError,
} from './common.ts';
import { recordedDiff } from './diff-record.ts';
import { copyTree, removeTrees, syncFilesystem } from './host.ts';
import { ownedName } from './owner.ts';
import type { ActiveSnapshot, LayerChain, OpenLayer, Snapshotter, SnapshotView } from './types.ts';

/**
 * The copying snapshotter: works wherever files can be written, with no mount privileges
 * (containerd's "native" snapshotter). Under `<root>/copy`:
 *
 * - `chains/<hex of chainID>`: the full tree of a committed chain (image-spec's ChainID, so
 *   `[A, B]` and `[C, B]` are different trees). `ensure` copies the longest committed prefix
 *   (`cp -a --reflink=auto`: extents are shared on btrfs/xfs) and applies the missing layers
 *   on top; intermediate chains are not kept;
 * - `active/<owner>.{rw,ro}/`: `chain.json`, and for a prepared snapshot `fs/`, a copy of its
 *   chain that is diffed against the chain's tree and renamed into `chains/` on commit;
 * - `tmp/`, `locks/`, `empty/` (the tree of the empty chain).
 *
 * A view is the committed tree itself (read-only by convention: nothing may write to it).
 */
export class CopySnapshotter implements Snapshotter {
  readonly kind = 'copy' as const;
  readonly root: string;
  readonly #d: StoreDirs;
  readonly #chains: string;
  readonly #once: OnceAcrossProcesses;

  constructor(root: string) {
    this.root = root;
    this.#d = storeDirs(join(root, 'copy'));
    this.#chains = join(this.#d.base, 'chains');
    this.#once = new OnceAcrossProcesses(this.#d.locks);
  }

  /** Makes the directory layout. Does I/O. */
  async init(): Promise<void> {
    await makeStoreDirs(this.#d, [this.#chains]);
  }

  /** The committed tree of a chain (`empty/` for scratch). No I/O. */
  chainDir(chain: readonly Digest[]): string {
    const id = chainId(chain);
    return id === undefined ? this.#d.empty : join(this.#chains, digestHex(id));
  }

  async has(chain: LayerChain): Promise<boolean> {
    const c = checkChain(chain);
    return c.length === 0 || (await exists(this.chainDir(c)));
  }

  async ensure(chain: LayerChain, open: OpenLayer, o: RunOptions = {}): Promise<void> {
    const c = checkChain(chain);
    throwIfAborted(o.signal, 'ensuring layers');
    if (c.length === 0) return;
    const dir = this.chainDir(c);
    await this.#once.run(
      `chain-${digestHex(chainId(c) as Digest)}`,
      `layer chain ending in ${c[c.length - 1]}`,
      () => exists(dir),
      (signal) => this.#build(c, open, { ...o, signal }),
      o.signal,
    );
  }

  /** Builds a chain's tree in `tmp/` from its longest committed prefix; publishes it by rename. */
  async #build(chain: Digest[], open: OpenLayer, o: RunOptions): Promise<void> {
    let k = chain.length - 1;
    while (k > 0 && !(await exists(this.chainDir(chain.slice(0, k))))) k--;
    const tmp = await makeTemp(this.#d);
    try {
      const fs = join(tmp, 'fs');
      if (k > 0) await copyTree(this.chainDir(chain.slice(0, k)), fs, o.signal);
      else await makeRootDir(fs);
      for (let i = k; i < chain.length; i++) {
        const d = chain[i] as Digest;
        const started = Date.now();
        o.progress?.write({ id: d, kind: 'blob', name: shortDigest(d), status: 'Extracting', started });
        let stream: Readable | undefined;
        let got: Digest | undefined;
        try {
          stream = await open(d, o);
          got = (await applyLayer(fs, stream, { ...o, whiteouts: 'apply' })).diffId;
        } finally {
          stream?.destroy();
        }
        if (got !== d) {
          throw new DrayError('DRAY_DIGEST_MISMATCH', `layer ${d}: unpacked content has diffID ${got}`, {
            hint: 'the layer blob does not match the image config; pull the image again',
          });
        }
        o.progress?.write({ id: d, status: 'Extracted', started, completed: Date.now() });
      }
      await syncFilesystem(tmp);
      throwIfAborted(o.signal, 'unpacking layers');
      await renameIntoPlace(fs, this.chainDir(chain));
    } catch (e) {
      throw snapshotError(e, `unpack layers of chain ${chainId(chain)}`);
    } finally {
      await removeTrees([tmp]);
    }
  }

  async view(chain: LayerChain, o: RunOptions = {}): Promise<SnapshotView> {
    const c = checkChain(chain);
    throwIfAborted(o.signal, 'opening snapshot');
    // only a record, so that prune keeps the tree while the view is open; made before the
    // tree is looked at, so that a prune from now on keeps it
    const dir = await makeActive(this.#d, c, false);
    if (!(await this.has(c))) {
      await removeTrees([dir]);
      throw notMaterialised(c, `chain ${shortDigest(chainId(c) ?? 'scratch')}`);
    }
    return new CopyHandle(this.chainDir(c), c, dir);
  }

  async prepare(chain: LayerChain, o: RunOptions = {}): Promise<ActiveSnapshot> {
    const c = checkChain(chain);
    throwIfAborted(o.signal, 'preparing snapshot');
    const dir = await makeActive(this.#d, c, true);
    const fs = join(dir, 'fs');
    try {
      if (!(await this.has(c))) throw notMaterialised(c, `chain ${shortDigest(chainId(c) ?? 'scratch')}`);
      if (c.length === 0) await makeRootDir(fs);
      else await copyTree(this.chainDir(c), fs, o.signal);
    } catch (e) {
      await removeTrees([dir]);
      throw snapshotError(e, 'prepare snapshot');
    }
    return new CopyActive(this, fs, c, dir);
  }

  /**
   * Publishes the tree `fs` as the chain `chain` (under its lock, so that prune never removes
   * it mid-commit). False when that chain already exists. Does I/O.
   */
  async publish(chain: Digest[], fs: string): Promise<boolean> {
    const dir = this.chainDir(chain);
    if (await exists(dir)) return false;
    await syncFilesystem(fs);
    const lock = await tryLock(this.#once.lockPath(`chain-${digestHex(chainId(chain) as Digest)}`));
    try {
      return await renameIntoPlace(fs, dir);
    } finally {
      await lock?.release();
    }
  }

  async recover(): Promise<void> {
    await recoverDirs(this.#d);
  }

  async prune(keep: readonly LayerChain[], o: RunOptions = {}): Promise<{ removed: number }> {
    throwIfAborted(o.signal, 'pruning snapshots');
    const kept = new Set<string>();
    for (const c of [...keep.map((k) => checkChain(k)), ...(await activeChains(this.#d))]) {
      for (let i = 1; i <= c.length; i++) kept.add(digestHex(chainId(c.slice(0, i)) as Digest));
    }
    let removed = 0;
    for (const hex of await readdir(this.#chains).catch(() => [] as string[])) {
      throwIfAborted(o.signal, 'pruning snapshots');
      if (kept.has(hex)) continue;
      const lock = await tryLock(this.#once.lockPath(`chain-${hex}`));
      if (!lock) continue; // being built or committed right now
      try {
        const trash = join(this.#d.tmp, ownedName('.prune'));
        try {
          await rename(join(this.#chains, hex), trash);
        } catch (e) {
          if (errno(e) === 'ENOENT') continue;
          throw snapshotError(e, `prune chain ${hex}`);
        }
        await removeTrees([trash]);
        removed++;
      } finally {
        await lock.release();
      }
    }
    return { removed };
  }
}

/** A view or active snapshot: `release()` removes its record (and copy), once. */
class CopyHandle extends SnapshotHandle implements SnapshotView {
  protected dispose(): Promise<void> {
    return removeTrees([this.dir]);
  }
}

class CopyActive extends CopyHandle implements ActiveSnapshot {
  readonly #s: CopySnapshotter;
  readonly #reported = new Set<Digest>();
  #committing: Promise<void> | undefined;

  constructor(s: CopySnapshotter, path: string, chain: readonly Digest[], dir: string) {
    super(path, chain, dir);
    this.#s = s;
  }

  diff(o: WriteDiffOptions = {}): LayerWriter {
    if (this.released || this.#committing) throw gone(this.path);
    const lower = this.chain.length === 0 ? {} : { lower: this.#s.chainDir(this.chain) };
    return recordedDiff({ kind: 'trees', upper: this.path, ...lower }, o, (diffId) =>
      this.#reported.add(diffId),
    );
  }

  commit(diffId: Digest): Promise<void> {
    if (this.released || this.#committing) return Promise.reject(gone(this.path));
    if (!this.#reported.has(diffId)) return Promise.reject(unknownDiffError(diffId, this.path));
    this.#committing = this.#commit(diffId);
    return this.#committing;
  }

  /** Waits for a commit in progress: removing the directory under it would tear the tree. */
  override release(): Promise<void> {
    const c = this.#committing;
    if (c === undefined) return super.release();
    const after = (): Promise<void> => super.release();
    return c.then(after, after);
  }

  async #commit(diffId: Digest): Promise<void> {
    try {
      await this.#s.publish([...this.chain, diffId], this.path);
    } catch (e) {
      throw snapshotError(e, `commit ${this.path} as layer ${diffId}`);
    } finally {
      await super.release();
    }
  }
}

function gone(path: string): DrayError {
  return new DrayError('DRAY_INVALID_ARGUMENT', `snapshot ${path} was already committed or released`);
}
