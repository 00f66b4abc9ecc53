/** archive: tar codec, compression, and (from other files) safe unpack and layer diffs. */

export { compressStream, decompressStream, detectCompression } from './compression.ts';
export { createParallelGzip, DEFAULT_GZIP_BLOCK, type ParallelGzipOptions } from './gzip-parallel.ts';
export { normalizeName, readTar } from './tar-reader.ts';
export { createTarWriter, encodeHeader, TarWriter, type TarWriterOptions } from './tar-writer.ts';
export type { Compression, CompressionOptions, TarEntry, TarEntryType, TarHeader } from './types.ts';
