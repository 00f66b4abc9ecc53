import { randomBytes } from 'node:crypto';
import {
  mkdir,
  readdir,
  readFile,
  readlink,
  rename,
  stat,
  symlink,
  unlink,
  writeFile,
} from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { Readable } from 'node:stream';
import {
  applyLayer,
  type LayerWriter,
  readXattrs,
  type WriteDiffOptions,
  walkTree,
} from '../archive/index.ts';
import { tryLock } from '../content/index.ts';
import { type Digest, shortDigest } from '../digest/index.ts';
import { DrayError, throwIfAborted } from '../errors.ts';
import type { RunOptions } from '../progress/index.ts';
import {
  activeChains,
  checkChain,
  digestPath,
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
  unmountAndRemove,
} from './common.ts';
import { type DiffRecord, recordedDiff } from './diff-record.ts';
import { mountFs, removeTrees, removeXattr, syncFilesystem, unmount } from './host.ts';
import { ownedName } from './owner.ts';
import type { ActiveSnapshot, LayerChain, OpenLayer, Snapshotter, SnapshotView } from './types.ts';

/**
 * The overlayfs snapshotter (containerd's and docker's overlay2 model). Under `<root>/overlay`:
 *
 * - `layers/<alg>/<hex>/diff`: one committed layer per diffID, in overlayfs' own format
 *   (whiteouts are 0:0 character devices, opaque directories carry
 *   `trusted.overlay.opaque=y`). That content does not depend on the layers below, so a layer
 *   is unpacked once and shared by every chain that has it. `link` beside it names its short
 *   alias;
 * - `l/<short>` → `../layers/<alg>/<hex>/diff`: short aliases, so that `lowerdir=` of a long
 *   chain fits the kernel's one-page limit on mount options (15 bytes a layer instead of 80);
 *   mounts run with the snapshotter's directory as cwd and relative paths;
 * - `active/<owner>.{rw,ro}/`: one per prepared snapshot or view: `chain.json`, `layer/diff`
 *   (the upper dir, renamed into `layers/` on commit), `work/`, `merged/` (the mount point);
 * - `tmp/<owner>…`: layers being unpacked (renamed into `layers/` when whole), `locks/`,
 *   and two empty directories for chains with fewer than two lower layers.
 *
 * A crash leaves a layer either whole in `layers/` or not there: only `rename` publishes one.
 */

/**
 * Mount options every overlay gets: no inode index (layers are shared by many mounts), no
 * redirects or metacopy, whose xattrs a layer diff could not express (archive's diff refuses
 * them).
 */
export const OVERLAY_FEATURES = 'index=off,redirect_dir=off,metacopy=off';

/** The kernel copies mount options into one page, NUL included. */
const MAX_MOUNT_DATA = 4095;
/** Layers unpacked at once: decompression overlaps the (synchronous) file writes of another. */
const UNPACK_CONCURRENCY = 2;

const SHORT_CHARS = 'abcdefghijklmnopqrstuvwxyz234567';
const SHORT_RE = /^[a-z2-7]{12}$/;

/** A new random short alias (60 bits; a clash is detected when the alias is made). */
function newShort(): string {
  const b = randomBytes(12);
  let s = '';
  for (const x of b) s += SHORT_CHARS[x & 31];
  return s;
}

/** The lower layers of a chain in `lowerdir=` order (top first), each diffID once. */
function lowerOrder(chain: readonly Digest[]): Digest[] {
  // A layer repeated in a chain (old docker images repeat the empty layer) may appear in
  // lowerdir only once (the kernel refuses "conflicting lowerdir path"); keeping the topmost
  // copy gives the same merged tree, since everything the lower copy shows, the upper one
  // shows again above whatever lies between them.
  const seen = new Set<Digest>();
  const out: Digest[] = [];
  for (let i = chain.length - 1; i >= 0; i--) {
    const d = chain[i] as Digest;
    if (seen.has(d)) continue;
    seen.add(d);
    out.push(d);
  }
  return out;
}

export class OverlaySnapshotter implements Snapshotter {
  readonly kind = 'overlay' as const;
  readonly root: string;
  readonly #d: StoreDirs;
  readonly #layers: string;
  readonly #links: string;
  readonly #empty2: string;
  readonly #once: OnceAcrossProcesses;
  /** Short aliases seen, by diffID (checked again before each use). */
  readonly #aliases = new Map<Digest, string>();

  constructor(root: string) {
    this.root = root;
    this.#d = storeDirs(join(root, 'overlay'));
    this.#layers = join(this.#d.base, 'layers');
    this.#links = join(this.#d.base, 'l');
    this.#empty2 = join(this.#d.base, 'empty2');
    this.#once = new OnceAcrossProcesses(this.#d.locks);
  }

  /** Makes the directory layout. Does I/O. */
  async init(): Promise<void> {
    await makeStoreDirs(this.#d, [this.#layers, this.#links, this.#empty2]);
  }

  /** The store's directories (for the probe, which runs in `tmp/`). */
  get dirs(): StoreDirs {
    return this.#d;
  }

  #layerDir(d: Digest): string {
    return join(this.#layers, digestPath(d));
  }

  async has(chain: LayerChain): Promise<boolean> {
    const c = checkChain(chain);
    for (const d of new Set(c)) if (!(await exists(this.#layerDir(d)))) return false;
    return true;
  }

  async ensure(chain: LayerChain, open: OpenLayer, o: RunOptions = {}): Promise<void> {
    const c = checkChain(chain);
    throwIfAborted(o.signal, 'ensuring layers');
    const todo = [...new Set(c)];
    let next = 0;
    let failed = false;
    const worker = async (): Promise<void> => {
      while (next < todo.length && !failed) {
        const d = todo[next++] as Digest;
        const dir = this.#layerDir(d);
        try {
          await this.#once.run(
            digestPath(d),
            `layer ${d}`,
            () => exists(dir),
            (signal) => this.#unpack(d, open, { ...o, signal }),
            o.signal,
          );
        } catch (e) {
          failed = true;
          throw e;
        }
      }
    };
    const results = await Promise.allSettled(Array.from({ length: UNPACK_CONCURRENCY }, worker));
    for (const r of results) if (r.status === 'rejected') throw r.reason;
  }

  /** Unpacks one layer into `tmp/`, checks its diffID, publishes it by rename. Runs under the layer's lock. */
  async #unpack(d: Digest, open: OpenLayer, o: RunOptions): Promise<void> {
    const started = Date.now();
    o.progress?.write({ id: d, kind: 'blob', name: shortDigest(d), status: 'Extracting', started });
    const tmp = await makeTemp(this.#d);
    try {
      await makeRootDir(join(tmp, 'diff'));
      let stream: Readable | undefined;
      let got: Digest | undefined;
      try {
        stream = await open(d, o);
        got = (await applyLayer(join(tmp, 'diff'), stream, { ...o, whiteouts: 'overlayfs' })).diffId;
      } finally {
        stream?.destroy();
      }
      if (got !== d) {
        throw new DrayError('DRAY_DIGEST_MISMATCH', `layer ${d}: unpacked content has diffID ${got}`, {
          hint: 'the layer blob does not match the image config; pull the image again',
        });
      }
      await writeFile(join(tmp, 'link'), newShort());
      await syncFilesystem(tmp);
      throwIfAborted(o.signal, `unpacking layer ${d}`);
      const dir = this.#layerDir(d);
      await mkdir(dirname(dir), { recursive: true });
      if (await renameIntoPlace(tmp, dir)) await this.#alias(d);
      o.progress?.write({ id: d, status: 'Extracted', started, completed: Date.now() });
    } catch (e) {
      o.progress?.write({
        id: d,
        started,
        completed: Date.now(),
        error: e instanceof Error ? e.message : String(e),
      });
      throw snapshotError(e, `unpack layer ${d}`);
    } finally {
      await removeTrees([tmp]);
    }
  }

  /**
   * The layer's short alias, made in `l/` if missing (it is made after the layer is renamed
   * into place, so a crash can leave a layer without one, never an alias to nothing that a
   * concurrent recover would mistake for garbage). Does I/O.
   * @throws DRAY_NOT_FOUND when the layer is not materialised.
   */
  async #alias(d: Digest): Promise<string> {
    const target = `../layers/${digestPath(d)}/diff`;
    const cached = this.#aliases.get(d);
    // one readlink: another process may have pruned and re-made the layer under a new alias
    if (cached !== undefined && (await readlink(join(this.#links, cached)).catch(() => '')) === target)
      return cached;
    const dir = this.#layerDir(d);
    let short: string;
    try {
      short = (await readFile(join(dir, 'link'), 'utf8')).trim();
    } catch (e) {
      if (errno(e) !== 'ENOENT') throw snapshotError(e, `layer ${d}`);
      if (!(await exists(dir))) throw notMaterialised([d], `top ${shortDigest(d)}`);
      short = '';
    }
    for (let attempt = 0; ; attempt++) {
      if (!SHORT_RE.test(short)) short = await this.#newAlias(dir);
      try {
        await symlink(target, join(this.#links, short));
        break;
      } catch (e) {
        if (errno(e) !== 'EEXIST') throw snapshotError(e, `alias for layer ${d}`);
        const have = await readlink(join(this.#links, short)).catch(() => undefined);
        if (have === target) break;
        if (attempt > 8) throw snapshotError(e, `alias for layer ${d}`);
        short = ''; // taken by another layer: pick a new one
      }
    }
    this.#aliases.set(d, short);
    return short;
  }

  async #newAlias(layerDir: string): Promise<string> {
    const short = newShort();
    const tmp = join(layerDir, `link.${ownedName()}`);
    await writeFile(tmp, short);
    await rename(tmp, join(layerDir, 'link'));
    return short;
  }

  /** `lowerdir=` for a chain: the aliases, top first, relative to the store (the mount's cwd). */
  async #lowerdir(chain: readonly Digest[], minLayers: number): Promise<string> {
    const order = lowerOrder(chain);
    for (const d of order)
      if (!(await exists(this.#layerDir(d))))
        throw notMaterialised(
          chain,
          `top ${chain.length ? shortDigest(chain[chain.length - 1] as string) : 'scratch'}`,
        );
    const parts = await Promise.all(order.map(async (d) => `l/${await this.#alias(d)}`));
    // overlayfs needs two lower layers when there is no upper one
    const fill = ['empty', 'empty2'];
    while (parts.length < minLayers) parts.push(fill.shift() as string);
    return parts.join(':');
  }

  async #mount(
    options: string,
    target: string,
    layers: number,
    signal: AbortSignal | undefined,
  ): Promise<void> {
    if (Buffer.byteLength(options) > MAX_MOUNT_DATA) {
      throw new DrayError(
        'DRAY_SNAPSHOT',
        `mount overlay on ${target}: a chain of ${layers} layers does not fit the kernel's ${MAX_MOUNT_DATA + 1}-byte mount option limit`,
        { hint: 'squash the image into fewer layers' },
      );
    }
    await mountFs('overlay', options, target, { cwd: this.#d.base, signal });
  }

  async view(chain: LayerChain, o: RunOptions = {}): Promise<SnapshotView> {
    const c = checkChain(chain);
    throwIfAborted(o.signal, 'mounting snapshot');
    // recorded before the layers are looked at, so that a prune from now on keeps them
    const dir = await makeActive(this.#d, c, false);
    try {
      const lowerdir = await this.#lowerdir(c, 2);
      const merged = join(dir, 'merged');
      await mkdir(merged);
      await this.#mount(`ro,lowerdir=${lowerdir},${OVERLAY_FEATURES}`, merged, c.length, o.signal);
      return new Handle(merged, c, dir);
    } catch (e) {
      await unmountAndRemove(dir);
      throw snapshotError(e, 'mount snapshot');
    }
  }

  async prepare(chain: LayerChain, o: RunOptions = {}): Promise<ActiveSnapshot> {
    const c = checkChain(chain);
    throwIfAborted(o.signal, 'preparing snapshot');
    const dir = await makeActive(this.#d, c, true);
    try {
      const lowerdir = await this.#lowerdir(c, 1);
      const merged = join(dir, 'merged');
      await mkdir(join(dir, 'layer'));
      await makeRootDir(join(dir, 'layer', 'diff'));
      await mkdir(join(dir, 'work'));
      await mkdir(merged);
      const rel = dir.slice(this.#d.base.length + 1);
      await this.#mount(
        `lowerdir=${lowerdir},upperdir=${rel}/layer/diff,workdir=${rel}/work,${OVERLAY_FEATURES}`,
        merged,
        c.length,
        o.signal,
      );
      return new OverlayActive(this, merged, c, dir);
    } catch (e) {
      await unmountAndRemove(dir);
      throw snapshotError(e, 'prepare snapshot');
    }
  }

  /** The absolute lower directories of a chain, top first (what a diff compares against). */
  lowerDirs(chain: readonly Digest[]): string[] {
    return lowerOrder(chain).map((d) => join(this.#layerDir(d), 'diff'));
  }

  /**
   * Publishes the (unmounted, trimmed) upper `layerDir` (holding `diff/`) as layer `d`.
   * False when the layer already exists (the caller drops its copy). Does I/O.
   */
  async publish(d: Digest, layerDir: string): Promise<boolean> {
    const dir = this.#layerDir(d);
    if (await exists(dir)) return false;
    await writeFile(join(layerDir, 'link'), newShort());
    await syncFilesystem(layerDir);
    await mkdir(dirname(dir), { recursive: true });
    // under the layer's lock, so that a concurrent prune never removes a layer mid-commit
    const lock = await tryLock(this.#once.lockPath(digestPath(d)));
    try {
      if (!(await renameIntoPlace(layerDir, dir))) return false;
      await this.#alias(d);
      return true;
    } finally {
      await lock?.release();
    }
  }

  async recover(): Promise<void> {
    await recoverDirs(this.#d);
    // aliases whose layer is gone (a prune that crashed between its two steps)
    for (const name of await readdir(this.#links).catch(() => [] as string[])) {
      const p = join(this.#links, name);
      const dangling = await stat(p).then(
        () => false,
        (e: unknown) => errno(e) === 'ENOENT',
      );
      if (dangling) await unlink(p).catch(() => {});
    }
  }

  async prune(keep: readonly LayerChain[], o: RunOptions = {}): Promise<{ removed: number }> {
    throwIfAborted(o.signal, 'pruning snapshots');
    const kept = new Set<string>();
    for (const c of [...keep.map((k) => checkChain(k)), ...(await activeChains(this.#d))])
      for (const d of c) kept.add(d);
    let removed = 0;
    for (const alg of await readdir(this.#layers).catch(() => [] as string[])) {
      for (const hex of await readdir(join(this.#layers, alg)).catch(() => [] as string[])) {
        throwIfAborted(o.signal, 'pruning snapshots');
        const d = `${alg}:${hex}` as Digest;
        if (kept.has(d)) continue;
        // a layer being unpacked or committed right now is skipped
        const lock = await tryLock(this.#once.lockPath(`${alg}/${hex}`));
        if (!lock) continue;
        try {
          const dir = join(this.#layers, alg, hex);
          const short = await readFile(join(dir, 'link'), 'utf8').catch(() => '');
          const trash = join(this.#d.tmp, ownedName('.prune'));
          try {
            await rename(dir, trash);
          } catch (e) {
            if (errno(e) === 'ENOENT') continue;
            throw snapshotError(e, `prune layer ${d}`);
          }
          this.#aliases.delete(d);
          if (SHORT_RE.test(short.trim())) await unlink(join(this.#links, short.trim())).catch(() => {});
          await removeTrees([trash]);
          removed++;
        } finally {
          await lock.release();
        }
      }
    }
    return { removed };
  }
}

/** A mounted view or active snapshot: `release()` unmounts and removes its directory, once. */
class Handle extends SnapshotHandle implements SnapshotView {
  protected dispose(): Promise<void> {
    return unmountAndRemove(this.dir);
  }
}

class OverlayActive extends Handle implements ActiveSnapshot {
  readonly #s: OverlaySnapshotter;
  readonly #reported = new Map<Digest, DiffRecord>();
  #committing: Promise<void> | undefined;

  constructor(s: OverlaySnapshotter, path: string, chain: readonly Digest[], dir: string) {
    super(path, chain, dir);
    this.#s = s;
  }

  get #upper(): string {
    return join(this.dir, 'layer', 'diff');
  }

  diff(o: WriteDiffOptions = {}): LayerWriter {
    if (this.released || this.#committing) throw gone(this.path);
    return recordedDiff(
      { kind: 'overlay-upper', upper: this.#upper, lower: this.#s.lowerDirs(this.chain) },
      o,
      (diffId, rec) => this.#reported.set(diffId, rec),
    );
  }

  commit(diffId: Digest): Promise<void> {
    if (this.released || this.#committing) return Promise.reject(gone(this.path));
    const rec = this.#reported.get(diffId);
    if (!rec) return Promise.reject(unknownDiffError(diffId, this.path));
    this.#committing = this.#commit(diffId, rec);
    return this.#committing;
  }

  /** Waits for a commit in progress: removing the directory under it would tear the layer. */
  override release(): Promise<void> {
    const c = this.#committing;
    if (c === undefined) return super.release();
    const after = (): Promise<void> => super.release();
    return c.then(after, after);
  }

  async #commit(diffId: Digest, rec: DiffRecord): Promise<void> {
    try {
      if (await this.#s.has([diffId])) return; // someone else made this layer: drop ours
      await unmount(this.path);
      await trimUpper(this.#upper, rec);
      await this.#s.publish(diffId, join(this.dir, 'layer'));
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

/**
 * Makes an upper directory hold exactly what its diff wrote, so that it can serve as that
 * layer under any parent: entries an overlay copied up without changing them (a file opened
 * for writing, a directory whose child was created and removed), whiteouts over nothing, and
 * opaque marks on directories that hid nothing are dropped. One walk (one getfattr), then one
 * `rm` for everything to drop. Does I/O.
 */
async function trimUpper(upper: string, rec: DiffRecord): Promise<void> {
  // Only directories (opaque marks) and empty files (whiteouts in the xattr form) can carry
  // the xattrs that matter here, so the tree is walked without reading any, and only those
  // few paths are asked about afterwards: a getfattr over a 10,000-file COPY took longer
  // than the rest of the commit.
  const entries: Array<{ name: string; path: string; kind: string; size: number; rdev: bigint }> = [];
  for await (const e of walkTree(upper, { xattrs: false })) {
    const { meta } = e;
    entries.push({ name: e.name, path: meta.path, kind: meta.kind, size: meta.size, rdev: meta.rdev });
  }
  const ask = entries
    .filter((e) => e.kind === 'directory' || (e.kind === 'file' && e.size === 0))
    .map((e) => e.path);
  const xattrs = ask.length > 0 ? await readXattrs(ask) : new Map<string, Map<string, Buffer>>();
  const drop: string[] = [];
  const unmark: string[] = [];
  let skip: string | undefined;
  for (const e of entries) {
    if (skip !== undefined && e.name.startsWith(`${skip}/`)) continue;
    skip = undefined;
    const x = xattrs.get(e.path);
    const whiteout =
      (e.kind === 'character-device' && e.rdev === 0n) ||
      (e.kind === 'file' &&
        e.size === 0 &&
        (x?.has('trusted.overlay.whiteout') || x?.has('user.overlay.whiteout')));
    if (whiteout) {
      if (!rec.whiteouts.has(e.name)) drop.push(e.path);
    } else if (!rec.written.has(e.name)) {
      drop.push(e.path);
      if (e.kind === 'directory') skip = e.name; // nothing below it was written either
    } else if (
      e.kind === 'directory' &&
      !rec.opaque.has(e.name) &&
      x?.get('trusted.overlay.opaque')?.toString() === 'y'
    ) {
      unmark.push(e.path);
    }
  }
  await removeTrees(drop);
  await removeXattr('trusted.overlay.opaque', unmark);
}
