import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { verifyBlob } from '../digest/index.ts';
import { abortError, DrayError, throwIfAborted } from '../errors.ts';
import type { RunOptions } from '../progress/index.ts';
import type { BlobSource } from './blob.ts';
import { isIndexType, isManifestType } from './media-types.ts';
import type { Descriptor } from './types.ts';

/**
 * Largest manifest or index dray reads: 4 MiB, the limit the Distribution registry puts on a
 * manifest PUT body and the one containerd's and containers/image's clients read up to, so
 * every manifest a registry will store fits.
 */
export const maxManifestBytes = 4 * 1024 * 1024;

/**
 * Largest image config dray reads: 8 MiB. A config is a blob, so no registry caps it, and it
 * grows with history entries and labels; containers/image reads up to 4 MiB, and twice that
 * leaves room for any image those tools accept while still bounding what a hostile descriptor
 * can make dray hold in memory.
 */
export const maxConfigBytes = 8 * 1024 * 1024;

function describe(d: Descriptor): string {
  const kind = isManifestType(d.mediaType) ? 'manifest' : isIndexType(d.mediaType) ? 'index' : 'document';
  return `${kind} ${d.digest}`;
}

function tooLarge(what: string, size: string, maxBytes: number): DrayError {
  return new DrayError('DRAY_DOCUMENT_TOO_LARGE', `${what}: ${size} exceeds the ${maxBytes}-byte limit`, {
    hint: 'documents (manifests, indexes, configs) are read whole into memory and so are size-limited',
  });
}

/**
 * Reads a whole JSON document (manifest, index, config) by descriptor and verifies it. Does I/O
 * through `source.open`. A descriptor larger than `maxBytes` (default `maxManifestBytes`) is
 * refused before anything is read; the stream is then held to `d.size`, so a source that sends
 * more than it declared is cut off at that point and dray never buffers more than
 * `min(d.size, maxBytes)` bytes (unlike containerd's ReadBlob, which allocates whatever the
 * descriptor claims).
 * @throws DRAY_DOCUMENT_TOO_LARGE when `d.size > maxBytes`.
 * @throws DRAY_SIZE_MISMATCH when the source sends more or fewer bytes than `d.size`.
 * @throws DRAY_DIGEST_MISMATCH when the bytes do not hash to `d.digest`.
 * @throws DRAY_ABORTED when `o.signal` fires; whatever `source.open` throws (e.g. DRAY_MANIFEST_UNKNOWN).
 */
export async function readDocument(
  source: BlobSource,
  d: Descriptor,
  o: RunOptions & { maxBytes?: number } = {},
): Promise<Buffer> {
  const maxBytes = o.maxBytes ?? maxManifestBytes;
  const what = describe(d);
  throwIfAborted(o.signal, `reading ${what}`);
  if (d.size > maxBytes) throw tooLarge(what, `size ${d.size}`, maxBytes);
  const stream = await source.open(d, { signal: o.signal });
  const chunks: Buffer[] = [];
  try {
    // verifyBlob fails the pipeline as soon as more than d.size bytes arrive, which also bounds
    // what `chunks` can hold; it checks a short read and the digest at the end.
    await pipeline(
      stream,
      verifyBlob({ digest: d.digest, size: d.size }, { what }),
      async (verified: AsyncIterable<Buffer>) => {
        for await (const chunk of verified) chunks.push(chunk);
      },
      { signal: o.signal },
    );
  } catch (e) {
    if (o.signal?.aborted) throw abortError(o.signal, `reading ${what}`);
    throw e;
  }
  return Buffer.concat(chunks, d.size);
}

/**
 * Reads a stream whole, for documents whose digest and size are not known yet (a registry's
 * manifest GET by tag). Does I/O (consumes `stream`). Refuses, and destroys the stream, as
 * soon as more than `maxBytes` bytes arrive, so at most `maxBytes` are ever buffered. `what`
 * names the document in messages ("manifest registry.example.com/app:1.2").
 * @throws DRAY_DOCUMENT_TOO_LARGE past `maxBytes`.
 * @throws DRAY_ABORTED when `o.signal` fires; stream errors pass through.
 */
export async function readLimited(
  stream: Readable,
  maxBytes: number,
  what: string,
  o: RunOptions = {},
): Promise<Buffer> {
  throwIfAborted(o.signal, `reading ${what}`);
  const chunks: Buffer[] = [];
  let total = 0;
  try {
    await pipeline(
      stream,
      async (source: AsyncIterable<Buffer | string>) => {
        for await (const c of source) {
          const chunk = typeof c === 'string' ? Buffer.from(c) : c;
          if (total + chunk.byteLength > maxBytes) throw tooLarge(what, 'document', maxBytes);
          total += chunk.byteLength;
          chunks.push(chunk);
        }
      },
      { signal: o.signal },
    );
  } catch (e) {
    if (o.signal?.aborted) throw abortError(o.signal, `reading ${what}`);
    throw e;
  }
  return Buffer.concat(chunks, total);
}
