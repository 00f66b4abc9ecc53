import { DrayError, throwIfAborted } from '../errors.ts';
import type { Descriptor } from '../oci/index.ts';
import type { RunOptions } from '../progress/index.ts';
import { normalizeReference, referenceString } from '../reference/index.ts';
import { openStores, resolveLocalImage, type StoreOptions } from './context.ts';
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
  /** The names removed (stored form): one, or every name of an image removed by ID with `force`. */
  untagged: string[];
  /** Blobs deleted because no other image references them. */
  deleted: string[];
}

export interface RemoveImageOptions extends TagOptions {
  /** Removing by ID an image with several names removes them all (docker rmi -f). */
  force?: boolean;
}

/**
 * Removes a name from the image store (docker rmi) and deletes the content only it
 * referenced. `image` is a name, or — as docker takes it — an image ID (a unique prefix of
 * the root digest): an image with several names is removed by ID only with `force`.
 * Throws DRAY_INVALID_REFERENCE, DRAY_NOT_FOUND, DRAY_INVALID_ARGUMENT (an ambiguous ID, or
 * several names without `force`).
 */
export async function removeImage(image: string, o: RemoveImageOptions): Promise<RemoveImageResult> {
  throwIfAborted(o.signal);
  const stores = await openStores(o);
  const found = await resolveLocalImage(stores.images, image, o);
  // A name given as such removes just that name; an ID removes the image, i.e. all its names.
  const untag = found.byId
    ? (await stores.images.list(o)).filter((r) => r.target.digest === found.root.digest).map((r) => r.name)
    : [found.name];
  if (found.byId && untag.length > 1 && !o.force) {
    throw new DrayError(
      'DRAY_INVALID_ARGUMENT',
      `unable to delete ${image} (must be forced): the image is referenced by ${untag.length} names`,
      { hint: `remove the names one by one, or use -f: ${untag.join(', ')}` },
    );
  }
  await stores.images.update((records) => {
    for (const n of untag) records.delete(n);
  }, o);
  const mine = new Set<string>((await reachable(stores.content, found.root, o)).map((d) => d.digest));
  const { deleted } = await deleteUnreferenced(stores, o, (digest) => mine.has(digest));
  return { untagged: untag, deleted };
}
