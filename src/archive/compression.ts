import { PassThrough, Readable, type Transform } from 'node:stream';
import {
  constants,
  createGunzip,
  createGzip,
  createZstdCompress,
  createZstdDecompress,
  type ZlibOptions,
  type ZstdOptions,
} from 'node:zlib';
import { abortError, DrayError } from '../errors.ts';
import type { RunOptions } from '../progress/index.ts';
import { createParallelGzip } from './gzip-parallel.ts';
import type { Compression, CompressionOptions } from './types.ts';

/**
 * Layer compression: detection by magic bytes (what containerd's `DetectCompression` and the
 * OCI image spec's media types imply), streaming decompression, and compressors for output.
 */

const GZIP_MAGIC = [0x1f, 0x8b] as const;
const ZSTD_MAGIC = [0x28, 0xb5, 0x2f, 0xfd] as const;

/** Compression of a blob from its first bytes: gzip (1f 8b), zstd (28 b5 2f fd), else none. Pure. */
export function detectCompression(prefix: Buffer | Uint8Array): Compression {
  if (prefix.length >= 2 && prefix[0] === GZIP_MAGIC[0] && prefix[1] === GZIP_MAGIC[1]) return 'gzip';
  if (prefix.length >= 4 && ZSTD_MAGIC.every((b, i) => prefix[i] === b)) return 'zstd';
  return 'none';
}

/**
 * Peeks at the first bytes of `input`, detects its compression and returns the plain (tar)
 * stream: `input` itself (peeked bytes put back) for 'none', else a decompressor fed from it.
 * Concatenated gzip members decode as one stream. Decoder failures (corrupt or truncated
 * data) surface on the returned stream as DRAY_INVALID_ARCHIVE; input errors pass through.
 * Throws DRAY_ABORTED when `o.signal` fires.
 */
export async function decompressStream(input: Readable, o: RunOptions = {}): Promise<Readable> {
  if (o.signal?.aborted) throw abortError(o.signal, 'decompressing');
  const { prefix, stream } = await peek(input, 4, o.signal);
  const kind = detectCompression(prefix);
  if (kind === 'none') return stream;
  // 1 MiB output chunks instead of zlib's 16 KiB: a sixty-fourth of the callbacks and stream
  // hops for the same bytes (decompression was a large share of unpack and export time).
  const decoder =
    kind === 'gzip' ? createGunzip({ chunkSize: 1 << 20 }) : createZstdDecompress({ chunkSize: 1 << 20 });
  const out = new PassThrough();
  let failed = false;
  const fail = (err: Error) => {
    if (failed) return;
    failed = true;
    stream.destroy();
    decoder.destroy();
    out.destroy(err);
  };
  stream.on('error', fail);
  decoder.on('error', (err: Error) =>
    fail(
      new DrayError('DRAY_INVALID_ARCHIVE', `${kind} stream is corrupt: ${err.message}`, {
        cause: err,
        hint: 'the layer blob is damaged or truncated; pull it again',
      }),
    ),
  );
  // A consumer that stops early (destroys `out`) releases the input too.
  out.on('close', () => {
    if (!out.readableEnded) {
      stream.destroy();
      decoder.destroy();
    }
    signal?.removeEventListener('abort', onAbort);
  });
  const signal = o.signal;
  const onAbort = () => fail(abortError(signal, 'decompressing'));
  signal?.addEventListener('abort', onAbort, { once: true });
  stream.pipe(decoder).pipe(out);
  return out;
}

/**
 * A compressor for `o.compression`: gzip levels 1–9 use the deterministic parallel
 * compressor (gzip-parallel.ts), level 0 writes stored blocks through node:zlib; zstd
 * (levels 1–22, default 3) runs with 2 zstd worker threads when node's zstd supports it
 * (multi-threaded zstd output does not depend on the thread count); 'none' passes through.
 * Throws DRAY_INVALID_ARGUMENT for an out-of-range level.
 */
export function compressStream(o: CompressionOptions = {}): Transform {
  const compression = o.compression ?? 'gzip';
  switch (compression) {
    case 'gzip': {
      const level = o.level ?? 6;
      checkLevel(level, 0, 9, 'gzip');
      if (level === 0) return createGzip({ level: 0 } satisfies ZlibOptions);
      return createParallelGzip({ level });
    }
    case 'zstd': {
      const level = o.level ?? 3;
      checkLevel(level, 1, 22, 'zstd');
      return createZstdCompress(zstdOptions(level));
    }
    case 'none':
      return new PassThrough();
    default:
      throw new DrayError('DRAY_INVALID_ARGUMENT', `unknown compression ${JSON.stringify(compression)}`);
  }
}

// Single-threaded on purpose: with ZSTD_c_nbWorkers set, Node 24's zstd stream has been seen
// to end early with no output for inputs over ~8 MiB written in 1 MiB chunks (then
// ERR_STREAM_PUSH_AFTER_EOF). One thread does ~1 GB/s on incompressible data here anyway.
function zstdOptions(level: number): ZstdOptions {
  return { params: { [constants.ZSTD_c_compressionLevel]: level } };
}

function checkLevel(level: number, min: number, max: number, what: string): void {
  if (!Number.isInteger(level) || level < min || level > max) {
    throw new DrayError('DRAY_INVALID_ARGUMENT', `${what} level ${level} is not between ${min} and ${max}`);
  }
}

/**
 * Reads until `n` bytes (or EOF) are buffered, then hands them back with a stream that yields
 * them first: `input` itself (bytes unshifted) or, when `input` already ended, a new one.
 */
async function peek(
  input: Readable,
  n: number,
  signal: AbortSignal | undefined,
): Promise<{ prefix: Buffer; stream: Readable }> {
  const parts: Buffer[] = [];
  let got = 0;
  let ended = input.readableEnded;
  while (got < n && !ended) {
    const c = input.read() as Buffer | string | null;
    if (c !== null) {
      const b = typeof c === 'string' ? Buffer.from(c) : c;
      parts.push(b);
      got += b.length;
      continue;
    }
    if (input.destroyed) break;
    await new Promise<void>((resolve, reject) => {
      const cleanup = () => {
        input.off('readable', onReadable);
        input.off('end', onEnd);
        input.off('error', onError);
        signal?.removeEventListener('abort', onAbort);
      };
      const onReadable = () => {
        cleanup();
        resolve();
      };
      const onEnd = () => {
        ended = true;
        cleanup();
        resolve();
      };
      const onError = (err: Error) => {
        cleanup();
        reject(err);
      };
      const onAbort = () => onError(abortError(signal, 'decompressing'));
      input.on('readable', onReadable);
      input.on('end', onEnd);
      input.on('error', onError);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }
  if (input.errored) throw input.errored;
  const prefix = parts.length === 1 ? parts[0]! : Buffer.concat(parts);
  if (ended || input.readableEnded)
    return { prefix, stream: Readable.from(prefix.length > 0 ? [prefix] : []) };
  if (prefix.length > 0) input.unshift(prefix);
  return { prefix, stream: input };
}
