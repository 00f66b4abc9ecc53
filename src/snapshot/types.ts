import type { Readable } from 'node:stream';
import type { LayerWriter, WriteDiffOptions } from '../archive/index.ts';
import type { Digest } from '../digest/index.ts';
import type { RunOptions } from '../progress/index.ts';

/**
 * The layered file systems the build engine runs steps in (containerd's snapshotter model,
 * cut to what a builder needs). A filesystem state is a *layer chain*: the diffIDs of its
 * layers, bottom first; the empty chain is `scratch`. Committed chains are immutable and
 * shared by every image and step that uses them; a step writes into an *active* snapshot
 * prepared on top of a chain, and its changes become one new layer.
 */

/** The diffIDs of a filesystem's layers, bottom first. `[]` is the empty filesystem. */
export type LayerChain = readonly Digest[];

/** How a snapshotter stores layers. */
export type SnapshotterKind = 'overlay' | 'copy';

/** Opens a layer's tar stream (gzip, zstd or uncompressed; detected by content). */
export type OpenLayer = (diffId: Digest, o: RunOptions) => Promise<Readable>;

export interface Snapshotter {
  readonly kind: SnapshotterKind;
  /** The directory it keeps its state in (`<data root>/snapshots`). */
  readonly root: string;
  /** Whether every layer of `chain` is materialised. */
  has(chain: LayerChain): Promise<boolean>;
  /**
   * Materialises `chain`: each missing layer is unpacked once from `open` and committed.
   * Safe when several calls (in this or other processes) want the same layer: it is unpacked
   * once and the others wait for it. Does I/O.
   */
  ensure(chain: LayerChain, open: OpenLayer, o?: RunOptions): Promise<void>;
  /** A read-only view of a materialised chain at a host path, valid until `release()`. */
  view(chain: LayerChain, o?: RunOptions): Promise<SnapshotView>;
  /** A writable filesystem on top of a materialised chain, at a host path. */
  prepare(chain: LayerChain, o?: RunOptions): Promise<ActiveSnapshot>;
  /**
   * Removes leftovers of processes that died mid-step (their mounts and active directories).
   * Called by `createSnapshotter`; safe to call again.
   */
  recover(): Promise<void>;
  /** Removes committed layers whose chains are not in `keep` (prefixes count as kept). */
  prune(keep: readonly LayerChain[], o?: RunOptions): Promise<{ removed: number }>;
}

/** A mounted filesystem at `path`. `release()` unmounts and forgets it; safe to call twice. */
export interface SnapshotView {
  readonly path: string;
  readonly chain: LayerChain;
  release(): Promise<void>;
}

/** A writable snapshot. */
export interface ActiveSnapshot extends SnapshotView {
  /**
   * Streams the layer holding what changed under `path` since `prepare` (whiteouts for
   * deletions, opaque directories as `.wh..wh..opq`). Call when nothing writes to `path`.
   */
  diff(o?: WriteDiffOptions): LayerWriter;
  /**
   * Keeps the changes as the layer `diffId` (what `diff()` reported) on top of `chain`, so
   * that `[...chain, diffId]` is materialised, then releases. If that chain already exists
   * the changes are dropped. Atomic: a crash leaves either no layer or the whole layer.
   */
  commit(diffId: Digest): Promise<void>;
}

export interface SnapshotterOptions {
  /** `auto` (default): overlay when the kernel lets this process mount it, else copy. */
  kind?: SnapshotterKind | 'auto';
}
