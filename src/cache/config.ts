import { type Digest, isDigest as isDigestString } from '../digest/index.ts';
import { DrayError } from '../errors.ts';
import type { Descriptor } from '../oci/index.ts';
import type { ImportedLayer } from '../solver/index.ts';

/**
 * BuildKit's distributable cache description, `application/vnd.buildkit.cacheconfig.v0`
 * (moby/buildkit cache/remotecache/v1/types): `layers` are blobs chained by parent index,
 * `records` are cache keys linked to the records of their inputs, each with results that
 * point at a layer (loaded with its parents) or list layers explicitly (`chains`). Field
 * names and shapes are BuildKit's, so either tool can read the other's documents.
 */
export interface CacheConfig {
  layers?: CacheConfigLayer[];
  records?: CacheConfigRecord[];
  /** dray's addition (BuildKit ignores unknown fields): exported cache-mount contents. */
  mounts?: CacheConfigMount[];
}

export interface CacheConfigLayer {
  blob: Digest;
  /** Index of the parent layer, -1 for none. BuildKit omits 0 (Go omitempty), so absent = 0. */
  parent?: number;
  annotations?: { mediaType?: string; diffID?: Digest; size?: number; createdAt?: string };
}

export interface CacheConfigRecord {
  digest: Digest;
  /** Results as a layer index: that layer with all its parents. */
  layers?: Array<{ layer: number; createdAt?: string }>;
  /** Results as explicit layer lists (inline caches whose order differs from the image). */
  chains?: Array<{ layers: number[]; createdAt?: string }>;
  /** Per input of the step, the records it may come from. */
  inputs?: Array<Array<{ selector?: string; link: number }>>;
}

/** A `RUN --mount=type=cache` directory's contents, exported with `mounts=true`. */
export interface CacheConfigMount {
  id: string;
  /** A layer blob (a tar of the directory), listed in the cache manifest too. */
  blob: Digest;
}

/** The media type of the cache config blob. */
export const cacheConfigMediaType = 'application/vnd.buildkit.cacheconfig.v0';
/** Layer descriptor annotations BuildKit reads: the diffID and the creation time. */
export const uncompressedAnnotation = 'containerd.io/uncompressed';
export const createdAtAnnotation = 'buildkit/createdat';
/** Marks a cache-mount blob in a cache manifest (dray's). */
export const cacheMountAnnotation = 'dev.dray.cache.mount.id';
/** The largest cache config read (BuildKit reads at most 1 MiB; mode=max caches of big builds outgrow it). */
export const maxCacheConfigBytes = 16 * 1024 * 1024;

/** One step's result to export: its cache key, its inputs' keys, and its layers bottom first. */
export interface CacheExportRecord {
  key: Digest;
  /** Cache keys of the step's inputs (those not exported become records without results). */
  inputs?: readonly Digest[];
  layers: ReadonlyArray<{ diffId: Digest; blob: Descriptor; created?: number }>;
  /** Epoch ms the result was made. */
  created?: number;
}

/**
 * The cache config for `records`, and the layer descriptors (with BuildKit's diffID and
 * created annotations) its layers name, in the config's layer order. Deterministic: layers
 * and records are sorted, so the same results always give the same bytes (two builds
 * exporting the same cache write the same documents). No I/O.
 */
export function buildCacheConfig(records: readonly CacheExportRecord[]): {
  config: CacheConfig;
  layers: Descriptor[];
} {
  // Chains first: a layer entry is a blob with a parent chain, identified by the whole chain.
  const chainIds = new Map<string, { blob: Descriptor; diffId: Digest; created?: number; parent?: string }>();
  const topOf = new Map<Digest, string>();
  for (const r of records) {
    let parent: string | undefined;
    for (const l of r.layers) {
      const id = parent === undefined ? l.blob.digest : `${parent}/${l.blob.digest}`;
      if (!chainIds.has(id))
        chainIds.set(id, {
          blob: l.blob,
          diffId: l.diffId,
          ...(l.created !== undefined ? { created: l.created } : {}),
          ...(parent !== undefined ? { parent } : {}),
        });
      parent = id;
    }
    if (parent !== undefined) topOf.set(r.key, parent);
  }
  const ids = [...chainIds.keys()].sort((a, b) => {
    const ea = chainIds.get(a);
    const eb = chainIds.get(b);
    return cmp(ea?.blob.digest ?? '', eb?.blob.digest ?? '') || cmp(a, b);
  });
  const indexOf = new Map(ids.map((id, i) => [id, i]));
  const layers: CacheConfigLayer[] = ids.map((id) => {
    const e = chainIds.get(id) as NonNullable<ReturnType<typeof chainIds.get>>;
    return {
      blob: e.blob.digest,
      parent: e.parent === undefined ? -1 : (indexOf.get(e.parent) as number),
      annotations: {
        mediaType: e.blob.mediaType,
        diffID: e.diffId,
        size: e.blob.size,
        ...(e.created !== undefined ? { createdAt: new Date(e.created).toISOString() } : {}),
      },
    };
  });
  const descriptors = new Map<Digest, Descriptor>();
  for (const id of ids) {
    const e = chainIds.get(id) as NonNullable<ReturnType<typeof chainIds.get>>;
    if (descriptors.has(e.blob.digest)) continue;
    descriptors.set(e.blob.digest, {
      mediaType: e.blob.mediaType,
      digest: e.blob.digest,
      size: e.blob.size,
      annotations: {
        [uncompressedAnnotation]: e.diffId,
        ...(e.created !== undefined ? { [createdAtAnnotation]: new Date(e.created).toISOString() } : {}),
      },
    });
  }

  // Records: every exported key, plus result-less records for inputs that were not exported,
  // so the links BuildKit expects are all there.
  const byKey = new Map<Digest, CacheExportRecord>();
  for (const r of records) byKey.set(r.key, r);
  for (const r of records)
    for (const i of r.inputs ?? []) if (!byKey.has(i)) byKey.set(i, { key: i, layers: [] });
  const keys = [...byKey.keys()].sort(cmp);
  const recordIndex = new Map(keys.map((k, i) => [k, i]));
  const out: CacheConfigRecord[] = keys.map((k) => {
    const r = byKey.get(k) as CacheExportRecord;
    const top = topOf.get(k);
    const rec: CacheConfigRecord = { digest: k };
    if (top !== undefined)
      rec.layers = [
        {
          layer: indexOf.get(top) as number,
          ...(r.created !== undefined ? { createdAt: new Date(r.created).toISOString() } : {}),
        },
      ];
    if (r.inputs && r.inputs.length > 0)
      rec.inputs = r.inputs.map((i) => [{ link: recordIndex.get(i) as number }]);
    return rec;
  });
  const blobsInOrder = ids.map((id) => (chainIds.get(id) as { blob: Descriptor }).blob.digest);
  return {
    config: { layers, records: out },
    layers: [...new Set(blobsInOrder)].map((d) => descriptors.get(d) as Descriptor),
  };
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** A cache's results by key, as read from a config: what the solver looks up. */
export interface CacheResults {
  results: Map<Digest, { layers: ImportedLayer[]; created?: number }>;
  mounts: Map<string, Descriptor>;
}

/**
 * Reads a cache config (JSON bytes, already size-limited) against the blobs its manifest
 * lists (by digest, with their annotations), into results by key. Results naming a blob the
 * manifest lacks or a layer without a diffID are left out (BuildKit skips them too); a
 * malformed document (bad JSON, wrong types, indexes out of range, parent loops) is an error.
 * No I/O. Throws DRAY_INVALID_MANIFEST.
 */
export function parseCacheConfig(
  bytes: Uint8Array,
  blobs: ReadonlyMap<string, Descriptor>,
  where: string,
): CacheResults {
  let doc: unknown;
  try {
    doc = JSON.parse(Buffer.from(bytes).toString('utf8'));
  } catch (e) {
    throw invalid(where, `not JSON (${(e as Error).message})`);
  }
  if (!isObject(doc)) throw invalid(where, 'not a JSON object');
  const layers = arrayField(doc, 'layers', where);
  const records = arrayField(doc, 'records', where);
  const parsedLayers = layers.map((l, i) => {
    if (!isObject(l) || !isDigest(l.blob)) throw invalid(where, `layers[${i}] has no blob digest`);
    const parent = l.parent === undefined ? 0 : l.parent;
    if (!Number.isInteger(parent) || (parent as number) < -1 || (parent as number) >= layers.length)
      throw invalid(where, `layers[${i}] has a bad parent ${JSON.stringify(l.parent)}`);
    const a = isObject(l.annotations) ? l.annotations : {};
    return {
      blob: l.blob as Digest,
      parent: parent as number,
      diffId: isDigest(a.diffID) ? (a.diffID as Digest) : undefined,
      createdAt: typeof a.createdAt === 'string' ? a.createdAt : undefined,
    };
  });
  const layerAt = (i: number): ImportedLayer | undefined => {
    const l = parsedLayers[i];
    const d = l ? blobs.get(l.blob) : undefined;
    if (!l || !d) return undefined;
    const diffId = (d.annotations?.[uncompressedAnnotation] as Digest | undefined) ?? l.diffId;
    if (!diffId || !isDigest(diffId)) return undefined;
    const created = parseTime(d.annotations?.[createdAtAnnotation] ?? l.createdAt);
    return {
      diffId,
      blob: { mediaType: d.mediaType, digest: d.digest, size: d.size },
      ...(created !== undefined ? { created } : {}),
    };
  };
  const chainOf = (top: number): ImportedLayer[] | undefined => {
    const out: ImportedLayer[] = [];
    const seen = new Set<number>();
    for (let i = top; i !== -1; i = (parsedLayers[i] as { parent: number }).parent) {
      if (i < 0 || i >= parsedLayers.length) throw invalid(where, `layer index ${i} out of range`);
      if (seen.has(i)) throw invalid(where, `layer ${i} is its own ancestor`);
      seen.add(i);
      const l = layerAt(i);
      if (!l) return undefined;
      out.push(l);
    }
    return out.reverse();
  };

  const results = new Map<Digest, { layers: ImportedLayer[]; created?: number }>();
  records.forEach((r, i) => {
    if (!isObject(r) || !isDigest(r.digest)) throw invalid(where, `records[${i}] has no digest`);
    for (const [j, inputs] of arrayField(r, 'inputs', where).entries()) {
      if (!Array.isArray(inputs) || inputs.length === 0)
        throw invalid(where, `records[${i}].inputs[${j}] is empty`);
      for (const link of inputs)
        if (
          !isObject(link) ||
          !Number.isInteger(link.link) ||
          (link.link as number) < 0 ||
          (link.link as number) >= records.length
        )
          throw invalid(where, `records[${i}].inputs[${j}] links to no record`);
    }
    const candidates: Array<{ layers: ImportedLayer[]; created?: number }> = [];
    for (const res of arrayField(r, 'layers', where)) {
      if (!isObject(res) || !Number.isInteger(res.layer))
        throw invalid(where, `records[${i}] has a bad result`);
      const chain = chainOf(res.layer as number);
      const created = parseTime(res.createdAt);
      if (chain) candidates.push({ layers: chain, ...(created !== undefined ? { created } : {}) });
    }
    for (const res of arrayField(r, 'chains', where)) {
      if (!isObject(res) || !Array.isArray(res.layers)) throw invalid(where, `records[${i}] has a bad chain`);
      const chain: ImportedLayer[] = [];
      for (const idx of res.layers) {
        if (!Number.isInteger(idx) || idx < 0 || idx >= parsedLayers.length)
          throw invalid(where, `records[${i}] names layer ${JSON.stringify(idx)}`);
        const l = layerAt(idx as number);
        if (!l) {
          chain.length = 0;
          break;
        }
        chain.push(l);
      }
      const created = parseTime(res.createdAt);
      if (chain.length > 0) candidates.push({ layers: chain, ...(created !== undefined ? { created } : {}) });
    }
    // The newest usable result, as BuildKit prefers.
    candidates.sort((a, b) => (b.created ?? 0) - (a.created ?? 0));
    const best = candidates[0];
    if (best && !results.has(r.digest as Digest)) results.set(r.digest as Digest, best);
  });

  const mounts = new Map<string, Descriptor>();
  for (const m of arrayField(doc, 'mounts', where)) {
    if (!isObject(m) || typeof m.id !== 'string' || !isDigest(m.blob))
      throw invalid(where, 'a bad mounts entry');
    const d = blobs.get(m.blob as string);
    if (d) mounts.set(m.id, { mediaType: d.mediaType, digest: d.digest, size: d.size });
  }
  return { results, mounts };
}

/** Epoch ms of an RFC 3339 time; undefined for absent, unparsable or Go's zero time. */
export function parseTime(s: unknown): number | undefined {
  if (typeof s !== 'string' || s.startsWith('0001-01-01')) return undefined;
  const t = Date.parse(s);
  return Number.isNaN(t) ? undefined : t;
}

function isDigest(v: unknown): v is Digest {
  return typeof v === 'string' && isDigestString(v);
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function arrayField(o: Record<string, unknown>, name: string, where: string): unknown[] {
  const v = o[name];
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) throw invalid(where, `"${name}" is not an array`);
  return v;
}

function invalid(where: string, what: string): DrayError {
  return new DrayError('DRAY_INVALID_MANIFEST', `cache config of ${where}: ${what}`, {
    hint: 'export the cache again (--cache-to), or leave out this --cache-from',
  });
}
