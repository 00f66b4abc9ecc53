/**
 * cache: build cache that travels (BuildKit's remote cache) — the cacheconfig.v0 format,
 * exporting results to a registry, an OCI layout or an image's config (inline), importing
 * them for the solver, and the `--cache-to`/`--cache-from` option syntax.
 */

export {
  buildCacheConfig,
  type CacheConfig,
  type CacheConfigLayer,
  type CacheConfigMount,
  type CacheConfigRecord,
  type CacheExportRecord,
  type CacheResults,
  cacheConfigMediaType,
  cacheMountAnnotation,
  createdAtAnnotation,
  maxCacheConfigBytes,
  parseCacheConfig,
  uncompressedAnnotation,
} from './config.ts';
export {
  type CacheManifestOptions,
  type CacheRoot,
  cacheManifest,
  inlineCacheKey,
  inlineCacheRecords,
  readCacheRoot,
  readInlineCache,
} from './document.ts';
export {
  type CacheMode,
  cacheMountBlob,
  compressionOf,
  type ExportCacheOptions,
  exportCache,
  recompressRecords,
  selectExportRecords,
} from './exporter.ts';
export { type ImportCacheOptions, ImportedCache, importCache, uncompressedDigest } from './importer.ts';
export {
  type CacheExportSpec,
  type CacheImportSpec,
  parseCacheExportSpec,
  parseCacheImportSpec,
} from './spec.ts';
