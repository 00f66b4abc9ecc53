import type { Readable } from 'node:stream';
import type { Digest } from '../digest/index.ts';
import type { Descriptor, ImageConfig, Platform } from '../oci/index.ts';
import type { RunOptions } from '../progress/index.ts';
import type { ImageSource } from './ops.ts';

/**
 * What belongs to the client and reaches the engine only through the session (DESIGN.md):
 * the directories it shares (the build context) and its secrets. In-process for now.
 */
export interface Session {
  /** Shared directories by name (`context`, `dockerfile`): host paths. */
  dirs?: Readonly<Record<string, string>>;
  /** Secrets by id: a file's bytes or an environment variable's value, read when a step mounts it. */
  secrets?: Readonly<Record<string, { file: string } | { env: string } | { data: Buffer }>>;
}

/** An image a source op names, resolved to content (its layers may not be fetched yet). */
export interface SourceImage {
  /** The normalised reference with its digest (`docker.io/library/busybox:latest@sha256:…`). */
  ref: string;
  /** The platform-specific manifest's digest: the source's cache key. */
  digest: Digest;
  /** What the reference itself resolves to (an index for multi-platform images); BuildKit pins FROM with it. */
  rootDigest?: Digest;
  config: ImageConfig;
  /** Layer blobs, bottom first; `config.rootfs.diff_ids` has their diffIDs. */
  layers: readonly Descriptor[];
}

/**
 * Resolves image sources and brings their blobs into the content store on demand. The
 * verbs implement it over the image store and registry, so the solver never speaks HTTP.
 */
export interface ImageResolver {
  resolve(src: ImageSource, o: RunOptions & { platform: Platform }): Promise<SourceImage>;
  /** Makes sure a layer blob of a resolved image is in the content store (fetches it when missing). */
  fetchLayer(image: SourceImage, layer: Descriptor, o: RunOptions): Promise<void>;
}

/** A layer of a result: its diffID and its (compressed) blob in the content store. */
export interface LayerRef {
  diffId: Digest;
  blob: Descriptor;
  /** For base-image layers whose blob may still be in the registry. */
  image?: SourceImage;
  /** Epoch ms the layer was made (kept in cache records, so a cached rebuild dates it the same). */
  created?: number;
}

/** What a vertex produced: a filesystem as layers. */
export interface Result {
  layers: readonly LayerRef[];
  /** Set for image sources: the image they came from (its config, for the frontend). */
  image?: SourceImage;
}

/** Opens a layer blob for unpacking. */
export type LayerOpener = (layer: LayerRef, o: RunOptions) => Promise<Readable>;
