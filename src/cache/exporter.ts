import * as fs from 'node:fs/promises';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import {
  type Compression,
  compressStream,
  decompressStream,
  layerMediaType,
  writeDiff,
  writeLayerTo,
} from '../archive/index.ts';
import type { ContentStore } from '../content/index.ts';
import { type Digest, digestOf } from '../digest/index.ts';
import { copyGraph } from '../graph/index.ts';
import type { BlobTarget, Descriptor, RefStore } from '../oci/index.ts';
import { type RunOptions, step } from '../progress/index.ts';
import {
  buildCacheConfig,
  type CacheExportRecord,
  cacheConfigMediaType,
  cacheMountAnnotation,
} from './config.ts';
import { type CacheManifestOptions, cacheManifest } from './document.ts';

/** `mode=min`: the steps of the final result; `mode=max`: every step of every stage. */
export type CacheMode = 'min' | 'max';

/**
 * The records a cache of `mode` exports (BuildKit's min/max): with `min`, only results whose
 * layers are a prefix of the final result's (the final image's steps, and stages it is built
 * on); with `max`, every result. Results without layers are never exported. No I/O.
 */
export function selectExportRecords(
  candidates: readonly CacheExportRecord[],
  finalBlobs: readonly Digest[],
  mode: CacheMode,
): CacheExportRecord[] {
  return candidates.filter(
    (r) =>
      r.layers.length > 0 &&
      (mode === 'max' ||
        (r.layers.length <= finalBlobs.length && r.layers.every((l, i) => l.blob.digest === finalBlobs[i]))),
  );
}

export interface ExportCacheOptions extends RunOptions {
  /** Where the records' blobs are; the config and manifest are written here too. */
  content: ContentStore;
  records: readonly CacheExportRecord[];
  /** Cache-mount contents (`mounts=true`), blobs already in `content`. */
  mounts?: ReadonlyArray<{ id: string; blob: Descriptor }>;
  manifest?: CacheManifestOptions;
  /** The tag (or, for a layout, name) the cache manifest gets. */
  tag: string;
  /** A repository of the same registry holding some of the blobs (the pushed image): mounted, not uploaded. */
  mountFrom?: string;
  /** The cache's name in progress: `registry cache 127.0.0.1:5000/app:cache`. */
  name: string;
}

/**
 * Writes a BuildKit-format cache to `target` (a registry repository, an OCI layout): the
 * layer blobs (those the target has are skipped, those in `mountFrom` mounted), the cache
 * config, the manifest, then the tag. The documents are written last, so a reader never
 * sees a manifest whose blobs are missing; two exports to one tag leave one of them whole.
 * Returns the manifest's descriptor, or undefined when there was nothing to export. Does I/O.
 */
export async function exportCache(
  target: BlobTarget & RefStore,
  o: ExportCacheOptions,
): Promise<Descriptor | undefined> {
  const ro: RunOptions = {
    ...(o.signal ? { signal: o.signal } : {}),
    ...(o.progress ? { progress: o.progress } : {}),
  };
  const { config, layers } = buildCacheConfig(o.records);
  const mounts = [...(o.mounts ?? [])].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  if (layers.length === 0 && mounts.length === 0) {
    await step(o.progress, `${o.name}: skipping cache export for empty result`, () => undefined);
    return undefined;
  }
  if (mounts.length > 0) config.mounts = mounts.map((m) => ({ id: m.id, blob: m.blob.digest }));
  const blobs = [
    ...layers,
    ...mounts
      .filter((m) => !layers.some((l) => l.digest === m.blob.digest))
      .map((m) => ({ ...m.blob, annotations: { [cacheMountAnnotation]: m.id } })),
  ];
  const configBytes = Buffer.from(JSON.stringify(config));
  const configDesc: Descriptor = {
    mediaType: cacheConfigMediaType,
    digest: digestOf(configBytes),
    size: configBytes.length,
  };
  await o.content.put(configDesc, Readable.from([configBytes]), ro);
  const { bytes, descriptor } = cacheManifest(configDesc, blobs, o.manifest);
  await o.content.put(descriptor, Readable.from([bytes]), ro);
  await copyGraph(o.content, target, descriptor, {
    ...ro,
    words: 'push',
    ...(o.mountFrom ? { mountFrom: o.mountFrom } : {}),
  });
  await step(o.progress, `${o.name}: writing cache manifest ${descriptor.digest}`, () =>
    target.tag(o.tag, descriptor, ro),
  );
  return descriptor;
}

/** The compression a layer media type says. */
export function compressionOf(mediaType: string): Compression {
  if (mediaType.endsWith('gzip')) return 'gzip';
  if (mediaType.endsWith('zstd')) return 'zstd';
  return 'none';
}

/**
 * `records` with every layer in `compression` (`--cache-to …,compression=`): a layer in
 * another one is recompressed into the content store (same diffID, new blob), once per blob
 * for all records. Does I/O.
 */
export async function recompressRecords(
  records: readonly CacheExportRecord[],
  content: ContentStore,
  compression: Compression,
  o: RunOptions & { level?: number } = {},
): Promise<CacheExportRecord[]> {
  const converted = new Map<string, Promise<Descriptor>>();
  const convert = (blob: Descriptor): Promise<Descriptor> => {
    let p = converted.get(blob.digest);
    if (!p) {
      p = recompressBlob(content, blob, compression, o);
      converted.set(blob.digest, p);
    }
    return p;
  };
  return Promise.all(
    records.map(async (r) => ({
      ...r,
      layers: await Promise.all(
        r.layers.map(async (l) =>
          compressionOf(l.blob.mediaType) === compression ? l : { ...l, blob: await convert(l.blob) },
        ),
      ),
    })),
  );
}

async function recompressBlob(
  content: ContentStore,
  blob: Descriptor,
  compression: Compression,
  o: RunOptions & { level?: number },
): Promise<Descriptor> {
  const w = await content.newBlob();
  try {
    await pipeline(
      await decompressStream(await content.open(blob, o), o),
      compressStream({ compression, ...(o.level !== undefined ? { level: o.level } : {}) }),
      w,
      o.signal ? { signal: o.signal } : {},
    );
    const stored = await w.commit();
    return { mediaType: layerMediaType(compression), digest: stored.digest, size: stored.size };
  } catch (e) {
    await w.abort();
    throw e;
  }
}

/**
 * A cache mount's directory as a gzip layer blob in `content` (for `mounts=true`), or
 * undefined when it is empty. Entries are in a fixed order and keep their times, so an
 * unchanged directory gives the same blob and is not uploaded again. Does I/O.
 */
export async function cacheMountBlob(
  dir: string,
  content: ContentStore,
  o: RunOptions = {},
): Promise<Descriptor | undefined> {
  const entries = await fs.readdir(dir).catch(() => [] as string[]);
  if (entries.length === 0) return undefined;
  const writer = writeDiff(
    { kind: 'trees', upper: dir },
    { compression: 'gzip', ...(o.signal ? { signal: o.signal } : {}) },
  );
  const w = await content.newBlob();
  try {
    const r = await writeLayerTo(writer, w, o.signal ? { signal: o.signal } : {});
    await w.commit();
    return { mediaType: r.descriptor.mediaType, digest: r.descriptor.digest, size: r.descriptor.size };
  } catch (e) {
    await w.abort();
    throw e;
  }
}
