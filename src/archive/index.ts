/** archive: tar codec, compression, and (from other files) safe unpack and layer diffs. */

export type { ApplyOptions, ApplyResult } from './apply.ts';
export { applyLayer } from './apply.ts';
export { compressStream, decompressStream, detectCompression } from './compression.ts';
export type { DiffOptions, DiffSource, WriteDiffOptions } from './diff.ts';
export { diffEntries, writeDiff } from './diff.ts';
export type { FlattenOptions, IdMapping } from './flatten.ts';
export { flattenLayers } from './flatten.ts';
export { createParallelGzip, DEFAULT_GZIP_BLOCK, type ParallelGzipOptions } from './gzip-parallel.ts';
export type { LayerEntry, LayerResult, LayerWriter, LayerWriterOptions } from './layer-writer.ts';
export { layerMediaType, writeLayer, writeLayerTo } from './layer-writer.ts';
export { normalizeName, readTar } from './tar-reader.ts';
export {
  createTarWriter,
  encodeHeader,
  type TarBody,
  TarWriter,
  type TarWriterOptions,
} from './tar-writer.ts';
export type { Compression, CompressionOptions, TarEntry, TarEntryType, TarHeader } from './types.ts';
export { type ReadXattrsOptions, readXattrs, walkTree, type XattrIndex } from './walk.ts';
