import { createHash } from 'node:crypto';
import { PassThrough, pipeline as pipe, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { applyLayer, decompressStream } from '../archive/index.ts';
import type { ContentStore } from '../content/index.ts';
import { type Digest, shortDigest } from '../digest/index.ts';
import { DrayError } from '../errors.ts';
import { copyGraph, meter, openResumable } from '../graph/index.ts';
import {
  type BlobSource,
  type Descriptor,
  isAttestationManifest,
  isManifestType,
  maxConfigBytes,
  parseImageConfig,
  parseManifest,
  type RefStore,
  readDocument,
} from '../oci/index.ts';
import type { ProgressEvent, RunOptions } from '../progress/index.ts';
import type { CacheSource, ImportedLayer } from '../solver/index.ts';
import { type CacheResults, maxCacheConfigBytes, parseCacheConfig } from './config.ts';
import { readCacheRoot, readInlineCache } from './document.ts';

export interface ImportCacheOptions extends RunOptions {
  /** Where fetched blobs go. */
  content: ContentStore;
  /** The cache's name in messages: `registry cache 127.0.0.1:5000/app:cache`. */
  name: string;
}

/**
 * An imported cache (BuildKit's `--cache-from`): its results by key, read once from the
 * cache config (or an image's inline cache), and the store its blobs come from when a build
 * uses them. Only the config is read up front; a layer is fetched when the solver takes a
 * result that needs it.
 */
export class ImportedCache implements CacheSource {
  readonly name: string;
  readonly #store: BlobSource;
  readonly #content: ContentStore;
  readonly #results: CacheResults;

  constructor(name: string, store: BlobSource, content: ContentStore, results: CacheResults) {
    this.name = name;
    this.#store = store;
    this.#content = content;
    this.#results = results;
  }

  /** Keys with a usable result. */
  get size(): number {
    return this.#results.results.size;
  }

  /** Ids of the cache mounts this cache carries. */
  get mountIds(): string[] {
    return [...this.#results.mounts.keys()];
  }

  lookup(key: Digest): { layers: ImportedLayer[]; created?: number } | undefined {
    return this.#results.results.get(key);
  }

  async fetch(layer: ImportedLayer, o: RunOptions): Promise<void> {
    // The descriptor's diffID is only an annotation: check it, so a wrong one can never reach
    // an image config. It is hashed from the bytes as they arrive, beside the store's own
    // digest check, rather than by reading the stored blob again.
    const d = layer.blob;
    const id = d.digest;
    const report = (e: Omit<ProgressEvent, 'id'>) =>
      o.progress?.write({ id, kind: 'blob', name: shortDigest(id), ...e });
    let got: Digest;
    if (await this.#content.has(d)) got = await uncompressedDigest(this.#content, d, o);
    else {
      report({ status: 'Pulling fs layer' });
      const { tap, diffId } = diffIdTap(o.signal);
      const counter = meter(o.progress, {
        id,
        kind: 'blob',
        name: shortDigest(id),
        status: 'Downloading',
        total: d.size,
      });
      const body = await openResumable(this.#store, d, o.signal ? { signal: o.signal } : {});
      pipe(body, tap, counter, () => {});
      await this.#content.put(d, counter, o.signal ? { signal: o.signal } : {});
      got = await diffId;
      report({ status: 'Pull complete', current: d.size, total: d.size, completed: Date.now() });
    }
    if (got !== layer.diffId)
      throw new DrayError(
        'DRAY_DIGEST_MISMATCH',
        `cache layer ${layer.blob.digest} unpacks to ${got}, not the diffID ${layer.diffId} the cache claims`,
      );
  }

  async restoreMount(id: string, dir: string, o: RunOptions): Promise<boolean> {
    const blob = this.#results.mounts.get(id);
    if (!blob) return false;
    await copyGraph(this.#store, this.#content, blob, { ...o, words: 'pull' });
    await applyLayer(dir, await this.#content.open(blob, o), o.signal ? { signal: o.signal } : {});
    return true;
  }
}

/**
 * Reads the cache `name` (a tag or digest) of `store` (a registry repository, an OCI layout):
 * a BuildKit cache manifest (index or image-manifest form), or an image or index whose
 * configs carry inline caches. Reads documents only, never layers. Does I/O.
 * Throws DRAY_MANIFEST_UNKNOWN / DRAY_NOT_FOUND when it does not exist, DRAY_INVALID_MANIFEST
 * for a malformed cache, the store's errors.
 */
export async function importCache(
  store: BlobSource & RefStore,
  name: string,
  o: ImportCacheOptions,
): Promise<ImportedCache> {
  const ro: RunOptions = o.signal ? { signal: o.signal } : {};
  const root = await store.resolve(name, ro);
  const root0 = readCacheRoot(await readDocument(store, root, ro), root.mediaType);
  let results: CacheResults;
  if (root0.kind === 'cache') {
    const bytes = await readDocument(store, root0.config, { ...ro, maxBytes: maxCacheConfigBytes });
    results = parseCacheConfig(bytes, root0.blobs, o.name);
  } else {
    // An image: its inline cache (every platform's, as BuildKit reads them all).
    const manifests =
      root0.kind === 'image'
        ? [{ descriptor: root, manifest: root0.manifest }]
        : await Promise.all(
            root0.manifests
              .filter((m) => isManifestType(m.mediaType) && !isAttestationManifest(m))
              .map(async (m) => ({
                descriptor: m,
                manifest: parseManifest(await readDocument(store, m, ro)),
              })),
          );
    results = { results: new Map(), mounts: new Map() };
    for (const { manifest } of manifests) {
      const config = parseImageConfig(
        await readDocument(store, manifest.config, { ...ro, maxBytes: maxConfigBytes }),
      );
      const inline = readInlineCache(manifest, config, o.name);
      if (!inline) continue;
      for (const [k, v] of inline.results) if (!results.results.has(k)) results.results.set(k, v);
    }
  }
  return new ImportedCache(o.name, store, o.content, results);
}

/**
 * A pass-through that also decompresses what flows through it and hashes the result: the
 * diffID of a layer blob, known when the stream ends. The decompressor's backpressure holds
 * the stream, so nothing piles up in memory; a blob that does not decompress rejects `diffId`.
 */
function diffIdTap(signal: AbortSignal | undefined): { tap: Transform; diffId: Promise<Digest> } {
  const raw = new PassThrough({ highWaterMark: 1 << 20 });
  const hash = createHash('sha256');
  // Once the content fails to decompress, the bytes still flow on to the store (which
  // judges the digest); `diffId` has already rejected.
  let broken = false;
  const diffId = (async () => {
    try {
      for await (const c of await decompressStream(raw, signal ? { signal } : {})) hash.update(c as Buffer);
      return `sha256:${hash.digest('hex')}` as Digest;
    } catch (e) {
      broken = true;
      raw.emit('drain');
      throw e;
    }
  })();
  const tap = new Transform({
    highWaterMark: 1 << 20,
    transform(chunk: Buffer, _enc, cb) {
      if (broken || raw.destroyed || raw.write(chunk)) cb(null, chunk);
      else raw.once('drain', () => cb(null, chunk));
    },
    flush(cb) {
      raw.end();
      cb();
    },
  });
  // Torn down before its end (a dropped source, the store refused the blob): stop the
  // decompressor too. Without an error: the fetch reports the stream's own.
  raw.on('error', () => {});
  tap.once('close', () => {
    if (!tap.writableFinished) raw.destroy();
  });
  diffId.catch(() => {});
  return { tap, diffId };
}

/** sha256 of a stored blob's uncompressed bytes (a layer's diffID). Does I/O. */
export async function uncompressedDigest(
  content: ContentStore,
  blob: Descriptor,
  o: RunOptions = {},
): Promise<Digest> {
  const hash = createHash('sha256');
  await pipeline(
    await decompressStream(await content.open(blob, o), o),
    async (src: AsyncIterable<Buffer>) => {
      for await (const c of src) hash.update(c);
    },
    o.signal ? { signal: o.signal } : {},
  );
  return `sha256:${hash.digest('hex')}` as Digest;
}
