import { DrayError, throwIfAborted } from '../errors.ts';
import type { Descriptor } from '../oci/index.ts';
import type { RunOptions } from '../progress/index.ts';
import { normalizeReference, referenceString } from '../reference/index.ts';
import { localName, openStores, resolveLocalImage, type StoreOptions } from './context.ts';
import { deleteUnreferenced } from './prune.ts';
import { reachable } from './walk.ts';

export interface TagOptions extends RunOptions, StoreOptions {}

/**
 * Gives the image named `source` another name `target` (docker tag). No content is copied.
 * Throws DRAY_INVALID_REFERENCE, DRAY_NOT_FOUND.
 */
export async function tag(
  source: string,
  target: string,
  o: TagOptions,
): Promise<{ name: string; descriptor: Descriptor }> {
  throwIfAborted(o.signal);
  const to = normalizeReference(target);
  if (to.digest) {
    throw new DrayError(
      'DRAY_INVALID_REFERENCE',
      `refusing to create a tag with a digest reference: ${target}`,
    );
  }
  const { images } = await openStores(o);
  const { root: descriptor } = await resolveLocalImage(images, source, o);
  const name = referenceString(to);
  await images.tag(name, descriptor);
  return { name, descriptor };
}

export interface RemoveImageResult {
  untagged: string;
  /** Blobs deleted because no other image references them. */
  deleted: string[];
}

/**
 * Removes a name from the image store (docker rmi) and deletes the content only it
 * referenced. Throws DRAY_INVALID_REFERENCE, DRAY_NOT_FOUND.
 */
export async function removeImage(name: string, o: TagOptions): Promise<RemoveImageResult> {
  throwIfAborted(o.signal);
  const full = localName(name);
  const stores = await openStores(o);
  const record = await stores.images.remove(full);
  const mine = new Set<string>((await reachable(stores.content, record.target, o)).map((d) => d.digest));
  const { deleted } = await deleteUnreferenced(stores, o, (digest) => mine.has(digest));
  return { untagged: full, deleted };
}
