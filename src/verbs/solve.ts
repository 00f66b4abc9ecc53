import {
  buildCacheConfig,
  type CacheExportRecord,
  type CacheExportSpec,
  type CacheImportSpec,
  inlineCacheKey,
  inlineCacheRecords,
  parseCacheExportSpec,
  parseCacheImportSpec,
  selectExportRecords,
} from '../cache/index.ts';
import { throwIfAborted } from '../errors.ts';
import { type ExporterOptions, resolveExporter } from '../exporter/index.ts';
import { emptyImageConfig, normalizeLayersAndHistory, patchImageConfig, writeImage } from '../image/index.ts';
import type { Descriptor, HistoryEntry, ImageConfig } from '../oci/index.ts';
import type { RunOptions } from '../progress/index.ts';
import { normalizeReference, referenceString } from '../reference/index.ts';
import type {
  BuildRecord,
  CacheSource,
  LayerRef,
  Session,
  State,
  Vertex,
  VertexRecord,
} from '../solver/index.ts';
import { exportCandidates, openCacheImports, runCacheExports } from './cache.ts';
import { registryClientFor } from './context.ts';
import { type EngineOptions, openEngine } from './engine.ts';

/** Where a solve's result goes (the exporters of `dray save`/`export`, named for a build). */
export type SolveExport =
  | {
      type: 'image';
      /** Names to give the image (any form docker accepts; normalised). */
      names?: string[];
      /** Push every name after storing it. */
      push?: boolean;
      /** Layer and manifest media types: `oci` (default) or `docker`. */
      mediaTypes?: 'oci' | 'docker';
    }
  | Exclude<ExporterOptions, { type: 'image' }>;

export interface SolveVerbOptions extends RunOptions, EngineOptions {
  session?: Session;
  /** Where the result goes; without it the result is only built (and cached). */
  exporter?: SolveExport;
  /** The image the result is (the frontend's config and history); default: the base image's, else an empty one. */
  image?: { config?: ImageConfig; history?: HistoryEntry[]; baseHistory?: HistoryEntry[] };
  noCache?: boolean;
  /** Facts identifying the build in its history. */
  meta?: Record<string, string>;
  /** The previous build of the same target, to say why steps missed the cache. */
  previous?: BuildRecord;
  compression?: 'gzip' | 'zstd' | 'none';
  /** gzip 0–9, zstd 1–22. */
  compressionLevel?: number;
  /** SOURCE_DATE_EPOCH (seconds): clamps layer mtimes and history times. */
  sourceDateEpoch?: number;
  /**
   * Caches to import (`--cache-from`): specs or their CSV form (`type=registry,ref=R`,
   * `type=local,src=DIR`, a bare reference), or caches already opened (`importCache`). A
   * cache that cannot be read is a warning.
   */
  cacheImports?: ReadonlyArray<CacheImportSpec | string | CacheSource>;
  /**
   * Caches to export (`--cache-to`): `type=registry,ref=R[,mode=max]…`, `type=local,dest=DIR`,
   * `type=inline` (into the image config; needs an image exporter).
   */
  cacheExports?: ReadonlyArray<CacheExportSpec | string>;
}

export interface SolveVerbResult {
  buildId: string;
  layers: readonly LayerRef[];
  /** The image manifest written (when there was an exporter). */
  descriptor?: Descriptor;
  config?: ImageConfig;
  vertices: ReadonlyMap<string, VertexRecord>;
}

/**
 * Solves an op graph with the data root's engine and exports the result (BuildKit's
 * `Solve` with an exporter): `image` stores (and pushes) it, `oci`/`docker`/`tar`/`local`
 * write it where asked. Does I/O. Throws DRAY_EXEC_FAILED, DRAY_BUILD, DRAY_ABORTED, the
 * registry's errors for base images and pushes.
 */
export async function solve(
  graph: Vertex | State | undefined,
  o: SolveVerbOptions,
): Promise<SolveVerbResult> {
  throwIfAborted(o.signal, 'build');
  const opened: CacheSource[] = [];
  const cacheFrom: CacheImportSpec[] = [];
  for (const s of o.cacheImports ?? []) {
    if (typeof s === 'string') cacheFrom.push(parseCacheImportSpec(s));
    else if ('lookup' in s) opened.push(s);
    else cacheFrom.push(s);
  }
  const cacheTo = (o.cacheExports ?? []).map((s) => (typeof s === 'string' ? parseCacheExportSpec(s) : s));
  const inline = cacheTo.find((s) => s.type === 'inline');
  const engine = await openEngine(o);
  const root = graph === undefined ? undefined : 'digest' in graph ? graph : graph.vertex;
  const ro: RunOptions = {
    ...(o.signal ? { signal: o.signal } : {}),
    ...(o.progress ? { progress: o.progress } : {}),
  };
  const imports = await openCacheImports(cacheFrom, engine, o.registry, ro);
  let outcome: Awaited<ReturnType<typeof engine.solver.solve>>;
  try {
    outcome = await engine.solver.solve(root, {
      ...ro,
      ...(opened.length + imports.sources.length > 0
        ? { cacheImports: [...opened, ...imports.sources] }
        : {}),
      ...(o.session ? { session: o.session } : {}),
      ...(o.noCache ? { noCache: true } : {}),
      ...(o.meta ? { meta: o.meta } : {}),
      ...(o.previous ? { previous: o.previous } : {}),
      ...(o.compression ? { compression: o.compression } : {}),
      ...(o.compressionLevel !== undefined ? { compressionLevel: o.compressionLevel } : {}),
      ...(o.sourceDateEpoch !== undefined ? { sourceDateEpoch: o.sourceDateEpoch } : {}),
    });
  } finally {
    await imports.dispose();
  }
  const layers = outcome.result.layers;
  const base: SolveVerbResult = { buildId: outcome.buildId, layers, vertices: outcome.vertices };
  // Read once, for the inline cache and the remote exports alike (a record file per step).
  let candidates: Promise<CacheExportRecord[]> | undefined;
  const exportable = () => {
    candidates ??= exportCandidates(engine, outcome);
    return candidates;
  };
  const exportCaches = async (pushedTo: readonly string[]) =>
    runCacheExports(cacheTo, {
      candidates: await exportable(),
      ...ro,
      engine,
      root,
      layers,
      pushedTo,
      ...(o.registry ? { registry: o.registry } : {}),
    });
  // Every layer must be local before it can be exported (base layers may still be remote).
  if (o.exporter || cacheTo.length > 0)
    for (const l of layers) if (l.image) await engine.solver.fetchLayer(l, ro);
  if (inline && (!o.exporter || o.exporter.type === 'tar' || o.exporter.type === 'local'))
    o.progress?.write({
      id: 'cache-export-warning:inline',
      kind: 'message',
      message:
        'WARNING: --cache-to type=inline needs an image output (image, registry, oci, docker); no inline cache written',
    });
  if (!o.exporter) {
    await exportCaches([]);
    return base;
  }

  const now = new Date().toISOString();
  const config0 = o.image?.config ?? outcome.result.image?.config ?? emptyImageConfig(engine.platform);
  const history = normalizeLayersAndHistory(
    o.image?.history ?? config0.history ?? [],
    layers.map((l) =>
      l.image ? {} : { created: l.created !== undefined ? new Date(l.created).toISOString() : now },
    ),
  );
  const patched = patchImageConfig(config0, {
    diffIds: layers.map((l) => l.diffId),
    history,
    ...(o.sourceDateEpoch !== undefined ? { sourceDateEpoch: o.sourceDateEpoch } : {}),
    ...(o.image?.baseHistory ? { baseHistory: o.image.baseHistory } : {}),
  });
  // BuildKit re-marshals the config through a Go map: top-level keys come out sorted, which
  // the image ID (the config's digest) depends on.
  if (inline) {
    // BuildKit's inline cache: the final image's steps, in the config, pointing at its layers.
    const blobs = layers.map((l) => l.blob.digest);
    const records = selectExportRecords(await exportable(), blobs, 'min');
    const inlined = inlineCacheRecords(buildCacheConfig(records).config, blobs);
    if (inlined)
      (patched as Record<string, unknown>)[inlineCacheKey] = Buffer.from(JSON.stringify(inlined)).toString(
        'base64',
      );
  }
  const config = Object.fromEntries(
    Object.entries(patched).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)),
  ) as ImageConfig;
  const docker = o.exporter.type === 'image' && o.exporter.mediaTypes === 'docker';
  const descriptor = await writeImage(
    engine.content,
    { config, layers: layers.map((l) => l.blob), mediaTypes: docker ? 'docker' : 'oci' },
    ro,
  );
  let exporterOptions: ExporterOptions;
  let client: ReturnType<typeof registryClientFor> | undefined;
  if (o.exporter.type === 'image') {
    const names = (o.exporter.names ?? []).map((n) => referenceString(normalizeReference(n)));
    if (o.exporter.push) client = registryClientFor(o.registry);
    exporterOptions = {
      type: 'image',
      content: engine.content,
      images: engine.images,
      names,
      ...(client ? { push: { client: client.client } } : {}),
    };
  } else exporterOptions = o.exporter;
  try {
    const out = await resolveExporter(exporterOptions).export(
      { source: engine.content, root: descriptor },
      ro,
    );
    await out.finalize?.(ro);
  } finally {
    await client?.dispose();
  }
  await exportCaches(o.exporter.type === 'image' && o.exporter.push ? (o.exporter.names ?? []) : []);
  return { ...base, descriptor, config };
}
