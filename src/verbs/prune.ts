import { throwIfAborted } from '../errors.ts';
import type { RunOptions } from '../progress/index.ts';
import { openStores, type StoreOptions, type Stores } from './context.ts';
import { oldestLiveLease } from './lease.ts';
import { reachable } from './walk.ts';

export interface PruneOptions extends RunOptions, StoreOptions {}

export interface PruneResult {
  /** Digests of the blobs removed. */
  deleted: string[];
  reclaimedBytes: number;
}

/** Digests reachable from any named image. */
async function referencedDigests(stores: Stores, o: RunOptions): Promise<Set<string>> {
  const keep = new Set<string>();
  for (const record of await stores.images.list()) {
    for (const d of await reachable(stores.content, record.target, o)) keep.add(d.digest);
  }
  return keep;
}

/**
 * Deletes the blobs that no image references and returns what it freed (docker image
 * prune for the content store). Blobs committed while another dray process holds a lease
 * (a pull in flight) are kept.
 */
export async function prune(o: PruneOptions): Promise<PruneResult> {
  throwIfAborted(o.signal);
  const stores = await openStores(o);
  return deleteUnreferenced(stores, o, () => true);
}

/**
 * Deletes unreferenced blobs for which `candidate(digest)` is true. Shared by prune (every
 * blob) and rmi (the removed image's blobs only).
 */
export async function deleteUnreferenced(
  stores: Stores,
  o: PruneOptions,
  candidate: (digest: string) => boolean,
): Promise<PruneResult> {
  const keep = await referencedDigests(stores, o);
  const cutoff = await oldestLiveLease(o.root);
  const result: PruneResult = { deleted: [], reclaimedBytes: 0 };
  for await (const blob of stores.content.list()) {
    throwIfAborted(o.signal);
    if (keep.has(blob.digest) || !candidate(blob.digest)) continue;
    if (cutoff !== undefined && blob.committedAt.getTime() >= cutoff - 1000) continue;
    if (await stores.content.delete(blob.digest)) {
      result.deleted.push(blob.digest);
      result.reclaimedBytes += blob.size;
    }
  }
  return result;
}
