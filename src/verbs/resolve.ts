import { DrayError } from '../errors.ts';
import {
  type BlobSource,
  type Descriptor,
  hostPlatform,
  type ImageConfig,
  type ImageIndex,
  type ImageManifest,
  type Platform,
  parseDocument,
  parseImageConfig,
  readDocument,
  selectManifest,
} from '../oci/index.ts';
import type { RunOptions } from '../progress/index.ts';

/** An image as its parts: the root, the index (if any), the chosen manifest and its config. */
export interface ResolvedImage {
  root: Descriptor;
  index?: ImageIndex;
  manifestDescriptor: Descriptor;
  manifest: ImageManifest;
  config: ImageConfig;
}

/**
 * Reads root → (index → platform manifest) → manifest → config from `src`. For an index,
 * picks `platform` (default: the host's) among the manifests; when `available` is given,
 * only manifests it has are candidates (a local single-platform pull).
 */
export async function resolveImage(
  src: BlobSource,
  root: Descriptor,
  o: RunOptions & { platform?: Platform; has?: (d: Descriptor) => Promise<boolean> } = {},
): Promise<ResolvedImage> {
  const doc = parseDocument(await readDocument(src, root, o), root.mediaType);
  let manifestDescriptor = root;
  let index: ImageIndex | undefined;
  let manifest: ImageManifest;
  if (doc.kind === 'index') {
    index = doc.index;
    let candidates = index;
    if (o.has) {
      const present = await Promise.all(index.manifests.map((m) => o.has!(m)));
      candidates = { ...index, manifests: index.manifests.filter((_, i) => present[i]) };
      if (candidates.manifests.length === 0) {
        throw new DrayError('DRAY_NOT_FOUND', `no manifest of ${root.digest} is present locally`, {
          hint: 'pull the image again',
        });
      }
    }
    manifestDescriptor = selectManifest(candidates, o.platform ?? hostPlatform());
    const inner = parseDocument(await readDocument(src, manifestDescriptor, o), manifestDescriptor.mediaType);
    if (inner.kind !== 'manifest') {
      throw new DrayError(
        'DRAY_INVALID_MANIFEST',
        `nested index ${manifestDescriptor.digest} is not supported here`,
      );
    }
    manifest = inner.manifest;
  } else {
    manifest = doc.manifest;
  }
  const config = parseImageConfig(await readDocument(src, manifest.config, { ...o, maxBytes: 8 << 20 }));
  return { root, ...(index ? { index } : {}), manifestDescriptor, manifest, config };
}
