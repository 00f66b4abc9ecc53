import { type Digest, digestOf } from '../digest/index.ts';
import { DrayError } from '../errors.ts';
import {
  type Descriptor,
  type ImageConfig,
  type ImageManifest,
  MediaTypes,
  parseDocument,
} from '../oci/index.ts';
import type { ImportedLayer } from '../solver/index.ts';
import {
  type CacheConfig,
  type CacheConfigRecord,
  type CacheResults,
  cacheConfigMediaType,
  parseCacheConfig,
  parseTime,
} from './config.ts';

/** How a cache's root document is shaped (`image-manifest=`, `oci-mediatypes=`). */
export interface CacheManifestOptions {
  /** An OCI image manifest whose config is the cache config (registries that refuse indexes of blobs). */
  imageManifest?: boolean;
  /** OCI media types (default) or a Docker manifest list. */
  oci?: boolean;
}

/**
 * The root document of a registry/local cache (BuildKit's `ExportableCache`): an index (or
 * Docker manifest list) whose entries are the layer blobs and then the cache config, or with
 * `imageManifest` an image manifest with the config as its config and the blobs as layers.
 * No I/O. Throws DRAY_INVALID_ARGUMENT for image-manifest with Docker media types (as BuildKit).
 */
export function cacheManifest(
  config: Descriptor,
  blobs: readonly Descriptor[],
  o: CacheManifestOptions = {},
): { bytes: Buffer; descriptor: Descriptor } {
  const oci = o.oci ?? true;
  let doc: object;
  let mediaType: string;
  if (o.imageManifest) {
    if (!oci)
      throw new DrayError('DRAY_INVALID_ARGUMENT', 'image-manifest=true needs OCI media types', {
        hint: 'leave out oci-mediatypes=false',
      });
    mediaType = MediaTypes.ociManifest;
    doc = { schemaVersion: 2, mediaType, config, layers: blobs };
  } else {
    mediaType = oci ? MediaTypes.ociIndex : MediaTypes.dockerManifestList;
    doc = { schemaVersion: 2, mediaType, manifests: [...blobs, config] };
  }
  const bytes = Buffer.from(JSON.stringify(doc));
  return { bytes, descriptor: { mediaType, digest: digestOf(bytes), size: bytes.length } };
}

/** What a cache's root document says: its config and blobs, or that it is an image (inline cache). */
export type CacheRoot =
  | { kind: 'cache'; config: Descriptor; blobs: Map<string, Descriptor> }
  | { kind: 'index'; manifests: Descriptor[] }
  | { kind: 'image'; manifest: ImageManifest };

/**
 * Classifies a cache root document as BuildKit's importer does: an index with a cache-config
 * entry, or a manifest with a cache-config config, is a cache; any other index or manifest is
 * an image that may carry an inline cache. No I/O. Throws DRAY_INVALID_MANIFEST,
 * DRAY_UNSUPPORTED_MEDIA_TYPE.
 */
export function readCacheRoot(bytes: Uint8Array, mediaType: string): CacheRoot {
  const parsed = parseDocument(bytes, mediaType);
  if (parsed.kind === 'index') {
    const config = parsed.index.manifests.find((m) => m.mediaType === cacheConfigMediaType);
    if (!config) return { kind: 'index', manifests: parsed.index.manifests };
    const blobs = new Map<string, Descriptor>();
    for (const m of parsed.index.manifests) if (m !== config) blobs.set(m.digest, m);
    return { kind: 'cache', config, blobs };
  }
  const m = parsed.manifest;
  if (m.config.mediaType === cacheConfigMediaType)
    return { kind: 'cache', config: m.config, blobs: new Map(m.layers.map((l) => [l.digest, l])) };
  return { kind: 'image', manifest: m };
}

/** The image config key BuildKit keeps an inline cache under (base64 of the records' JSON). */
export const inlineCacheKey = 'moby.buildkit.cache.v0';

/**
 * The inline cache for an image (BuildKit's inline exporter): the records of `config` whose
 * results are a prefix of the image's layers, with each result's layer index rewritten to
 * the image's layer index (layer i's parent is layer i-1). Undefined when none qualifies.
 * No I/O.
 */
export function inlineCacheRecords(
  config: CacheConfig,
  imageBlobs: readonly Digest[],
): CacheConfigRecord[] | undefined {
  const layers = config.layers ?? [];
  const chainOf = (top: number): Digest[] => {
    const out: Digest[] = [];
    for (let i = top; i !== -1 && out.length <= layers.length; i = layers[i]?.parent ?? -1) {
      const l = layers[i];
      if (!l) break;
      out.push(l.blob);
    }
    return out.reverse();
  };
  let any = false;
  const records = (config.records ?? []).map((r) => {
    const out: CacheConfigRecord = { digest: r.digest };
    if (r.inputs) out.inputs = r.inputs;
    const results = (r.layers ?? []).flatMap((res) => {
      const chain = chainOf(res.layer);
      const prefix = chain.length <= imageBlobs.length && chain.every((d, i) => imageBlobs[i] === d);
      return prefix && chain.length > 0
        ? [{ layer: chain.length - 1, ...(res.createdAt ? { createdAt: res.createdAt } : {}) }]
        : [];
    });
    if (results.length > 0) {
      out.layers = results;
      any = true;
    }
    return out;
  });
  return any ? records : undefined;
}

/**
 * Reads the inline cache of an image (its manifest and config) into results by key: the
 * image's layers form the chain, diffIDs from `rootfs.diff_ids`, created times from the
 * non-empty history entries. Undefined when the image has no inline cache or its manifest
 * and config disagree. No I/O. Throws DRAY_INVALID_MANIFEST for a malformed cache.
 */
export function readInlineCache(
  manifest: ImageManifest,
  config: ImageConfig,
  where: string,
): CacheResults | undefined {
  const raw = (config as Record<string, unknown>)[inlineCacheKey];
  if (typeof raw !== 'string' || raw === '') return undefined;
  const diffIds = config.rootfs?.diff_ids ?? [];
  if (diffIds.length !== manifest.layers.length) return undefined;
  const created = (config.history ?? []).filter((h) => !h.empty_layer).map((h) => parseTime(h.created));
  const records = Buffer.from(raw, 'base64');
  const blobs = new Map<string, Descriptor>();
  const layers = manifest.layers.map((l, i) => {
    const layer: ImportedLayer = { diffId: diffIds[i] as Digest, blob: l };
    blobs.set(l.digest, {
      ...l,
      annotations: {
        ...(l.annotations ?? {}),
        'containerd.io/uncompressed': layer.diffId,
        ...(created[i] !== undefined
          ? { 'buildkit/createdat': new Date(created[i] as number).toISOString() }
          : {}),
      },
    });
    return { blob: l.digest, parent: i - 1 };
  });
  let parsedRecords: unknown;
  try {
    parsedRecords = JSON.parse(records.toString('utf8'));
  } catch {
    throw new DrayError('DRAY_INVALID_MANIFEST', `inline cache of ${where}: not JSON`, {
      hint: 'leave out this --cache-from, or rebuild the image with --cache-to type=inline',
    });
  }
  const doc = Buffer.from(JSON.stringify({ layers, records: parsedRecords }));
  return parseCacheConfig(doc, blobs, where);
}
