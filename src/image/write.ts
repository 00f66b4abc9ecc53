import { Readable } from 'node:stream';
import { digestOf } from '../digest/index.ts';
import {
  type BlobTarget,
  type Descriptor,
  type ImageConfig,
  type ImageManifest,
  MediaTypes,
} from '../oci/index.ts';
import type { RunOptions } from '../progress/index.ts';

export interface ImageParts {
  config: ImageConfig;
  /** Layer descriptors, bottom first; their blobs must already be in the target. */
  layers: readonly Descriptor[];
  /** 'oci' (default) or 'docker' media types for the manifest and config. */
  mediaTypes?: 'oci' | 'docker';
  annotations?: Record<string, string>;
}

/** Serialises a JSON document the same way every time (dray's documents are written once, then addressed by digest). */
export function documentBytes(doc: unknown): Buffer {
  return Buffer.from(JSON.stringify(doc));
}

/**
 * Stores an image's config and manifest in `target` (its layers must be there already) and
 * returns the manifest's descriptor. Does I/O.
 */
export async function writeImage(
  target: BlobTarget,
  parts: ImageParts,
  o: RunOptions = {},
): Promise<Descriptor> {
  const docker = parts.mediaTypes === 'docker';
  const configBytes = documentBytes(parts.config);
  const configDesc: Descriptor = {
    mediaType: docker ? MediaTypes.dockerConfig : MediaTypes.ociConfig,
    digest: digestOf(configBytes),
    size: configBytes.length,
  };
  const manifest: ImageManifest = {
    schemaVersion: 2,
    mediaType: docker ? MediaTypes.dockerManifest : MediaTypes.ociManifest,
    config: configDesc,
    layers: [...parts.layers],
    ...(parts.annotations && !docker ? { annotations: parts.annotations } : {}),
  };
  const manifestBytes = documentBytes(manifest);
  const manifestDesc: Descriptor = {
    mediaType: manifest.mediaType!,
    digest: digestOf(manifestBytes),
    size: manifestBytes.length,
  };
  await target.put(configDesc, Readable.from([configBytes]), o);
  await target.put(manifestDesc, Readable.from([manifestBytes]), o);
  return manifestDesc;
}
