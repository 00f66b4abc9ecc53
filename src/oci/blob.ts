import type { Readable, Writable } from 'node:stream';
import type { RunOptions } from '../progress/index.ts';
import type { Descriptor } from './types.ts';

/**
 * The seams every image source and destination implements (containerd's Provider/Ingester,
 * ggcr's small interfaces). A registry repository, the content store, an OCI layout and a
 * docker archive are all BlobSources and BlobTargets, so one `copyGraph` moves images
 * between any two of them.
 */

/** Reads blobs (and manifests: a manifest is a blob with a document media type) by descriptor. */
export interface BlobSource {
  /**
   * A fresh stream of the blob's bytes, from `offset` when given (for resuming). The stream
   * is not verified: callers pipe it through `verifyBlob`. Throws DRAY_BLOB_UNKNOWN /
   * DRAY_MANIFEST_UNKNOWN when absent.
   */
  open(d: Descriptor, o?: RunOptions & { offset?: number }): Promise<Readable>;
}

/** Writes blobs. `put` verifies digest and size before the content becomes visible. */
export interface BlobTarget {
  has(d: Descriptor, o?: RunOptions): Promise<boolean>;
  /**
   * Stores `body` as `d`; verifies it; content that already exists counts as done. When the
   * caller passes `reopen`, a target whose transfer failed part-way may start again from a
   * fresh stream (a registry upload cannot be replayed from a consumed stream). `absent`:
   * the caller's own `has(d)` has just answered false, so a target may skip asking again
   * (for a registry, one round trip per blob).
   */
  put(
    d: Descriptor,
    body: Readable,
    o?: RunOptions & { reopen?: () => Promise<Readable>; absent?: boolean },
  ): Promise<void>;
  /**
   * A writer that resumes an earlier, interrupted transfer of `d` keyed by `ref`, for targets
   * that keep partial content (the content store): `offset` bytes are already held, write
   * the rest, then `commit()` verifies and publishes. `exists` = already stored, write nothing.
   */
  resume?(d: Descriptor, ref: string, o?: RunOptions): Promise<ResumableWriter>;
  /** Cross-repository mount, where the target supports it; false = not mounted, upload instead. */
  mount?(d: Descriptor, fromRepository: string, o?: RunOptions): Promise<boolean>;
}

/** Names for root descriptors: a registry's tags, the image store, an index.json. */
export interface RefStore {
  /** The descriptor a name (tag or digest reference) points at. Throws DRAY_NOT_FOUND / DRAY_MANIFEST_UNKNOWN. */
  resolve(name: string, o?: RunOptions): Promise<Descriptor>;
  /** Points `name` at `d`; `d` must already be stored. */
  tag(name: string, d: Descriptor, o?: RunOptions): Promise<void>;
}

/** What `BlobTarget.resume` returns: a Writable that takes the bytes from `offset` on. */
export interface ResumableWriter extends Writable {
  readonly offset: number;
  readonly exists: boolean;
  /** Verifies size and digest and makes the content visible. Throws DRAY_DIGEST_MISMATCH / DRAY_SIZE_MISMATCH. */
  commit(): Promise<void>;
}
