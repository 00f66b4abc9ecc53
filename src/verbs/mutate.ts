import { throwIfAborted } from '../errors.ts';
import { type ConfigChanges, mutateImageConfig, writeImage } from '../image/index.ts';
import { type Descriptor, MediaTypes } from '../oci/index.ts';
import type { RunOptions } from '../progress/index.ts';
import { localName, openStores, resolveLocalImage, type StoreOptions } from './context.ts';
import { resolveImage } from './resolve.ts';

export interface MutateOptions extends RunOptions, StoreOptions {
  /** Name for the new image (default: replace the source name). */
  tag?: string;
}

/**
 * A new image whose config is `image`'s with `changes` applied (crane mutate): env, cmd,
 * entrypoint, workdir, user, labels. Layers are shared, nothing is copied; the new config
 * and manifest go into the content store and `tag` names the result. For a multi-platform
 * image, the host platform's manifest is the base.
 * Throws DRAY_INVALID_REFERENCE, DRAY_NOT_FOUND.
 */
export async function mutate(
  image: string,
  changes: ConfigChanges,
  o: MutateOptions,
): Promise<{ name: string; descriptor: Descriptor }> {
  throwIfAborted(o.signal);
  const { content, images } = await openStores(o);
  const source = await resolveLocalImage(images, image, o);
  const name = o.tag !== undefined ? localName(o.tag) : source.name;
  const img = await resolveImage(content, source.root, { ...o, has: (d) => content.has(d) });
  const descriptor = await writeImage(
    content,
    {
      config: mutateImageConfig(img.config, changes),
      layers: img.manifest.layers,
      mediaTypes: img.manifestDescriptor.mediaType === MediaTypes.dockerManifest ? 'docker' : 'oci',
      ...(img.manifest.annotations ? { annotations: img.manifest.annotations } : {}),
    },
    o,
  );
  await images.tag(name, descriptor);
  return { name, descriptor };
}
