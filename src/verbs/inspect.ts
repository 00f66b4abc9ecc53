import { throwIfAborted } from '../errors.ts';
import {
  type Descriptor,
  type ImageConfig,
  type ImageIndex,
  type ImageManifest,
  type Platform,
  parsePlatform,
} from '../oci/index.ts';
import type { RunOptions } from '../progress/index.ts';
import { normalizeReference, referenceString } from '../reference/index.ts';
import {
  openStores,
  type RegistryOptions,
  registryClientFor,
  resolveLocalImage,
  type StoreOptions,
} from './context.ts';
import { resolveImage } from './resolve.ts';

export interface InspectOptions extends RunOptions, StoreOptions {
  /** Read the image from its registry instead of the image store (nothing is stored). */
  remote?: boolean;
  registry?: RegistryOptions;
  /** For multi-platform images: which manifest to show. Default: the host's. */
  platform?: string | Platform;
}

/** What `dray inspect` prints: the documents themselves, with spec field names. */
export interface ImageInspect {
  Name: string;
  /** Root descriptor (the index for multi-platform images). */
  Descriptor: Descriptor;
  Index?: ImageIndex;
  /** The platform manifest shown and its descriptor. */
  ManifestDescriptor: Descriptor;
  Manifest: ImageManifest;
  Config: ImageConfig;
}

/**
 * The manifest and config of an image, from the image store or (`remote`) straight from its
 * registry. Throws DRAY_NOT_FOUND, DRAY_MANIFEST_UNKNOWN, DRAY_PULL_DENIED, DRAY_PLATFORM_NOT_FOUND.
 */
export async function inspect(name: string, o: InspectOptions): Promise<ImageInspect> {
  throwIfAborted(o.signal);
  const platform = typeof o.platform === 'string' ? parsePlatform(o.platform) : o.platform;
  const common = { ...(o.signal ? { signal: o.signal } : {}), ...(platform ? { platform } : {}) };
  if (o.remote) {
    const ref = normalizeReference(name);
    const full = referenceString(ref);
    const { client, dispose } = registryClientFor(o.registry);
    try {
      const repo = client.repository(ref);
      const root = await repo.resolve(ref.digest ?? ref.tag ?? 'latest', { signal: o.signal });
      return shape(full, await resolveImage(repo, root, common));
    } finally {
      await dispose();
    }
  }
  const { content, images } = await openStores(o);
  const { name: full, root } = await resolveLocalImage(images, name, o);
  return shape(full, await resolveImage(content, root, { ...common, has: (d) => content.has(d) }));
}

function shape(name: string, img: Awaited<ReturnType<typeof resolveImage>>): ImageInspect {
  return {
    Name: name,
    Descriptor: img.root,
    ...(img.index ? { Index: img.index } : {}),
    ManifestDescriptor: img.manifestDescriptor,
    Manifest: img.manifest,
    Config: img.config,
  };
}
