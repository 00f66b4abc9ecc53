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

/** A layer of a result another machine built, as an imported cache describes it. */
export interface ImportedLayer {
  diffId: Digest;
  blob: Descriptor;
  /** Epoch ms the layer was made. */
  created?: number;
}

/**
 * Results other builds made, found by cache key: an imported remote cache (BuildKit's
 * `--cache-from`). The solver asks it after its own records miss, and fetches only the
 * layers of the results it uses, so nothing under a cached step is ever downloaded.
 */
export interface CacheSource {
  /** For warnings: `registry cache 127.0.0.1:5000/app:cache`. */
  readonly name: string;
  /** The layers (bottom first) recorded for `key`, or undefined. No I/O. */
  lookup(key: Digest): { layers: ImportedLayer[]; created?: number } | undefined;
  /**
   * Brings a layer blob into the content store, verified: digest and size, and the
   * uncompressed content against its diffID. Does I/O. Throws on a missing or corrupt blob.
   */
  fetch(layer: ImportedLayer, o: RunOptions): Promise<void>;
  /**
   * Fills an empty cache-mount directory with the contents exported for mount `id`
   * (`mounts=true`); false when this cache has none. Does I/O.
   */
  restoreMount?(id: string, dir: string, o: RunOptions): Promise<boolean>;
}
