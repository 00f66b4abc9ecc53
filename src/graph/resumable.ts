import { PassThrough, type Readable } from 'node:stream';
import { isDrayError } from '../errors.ts';
import type { BlobSource, Descriptor } from '../oci/index.ts';
import type { RunOptions } from '../progress/index.ts';

/**
 * Opens a blob so that a connection dropped mid-body is resumed from the bytes already
 * received (BlobSource.open with `offset`), up to `attempts` times, instead of failing the
 * whole pull. Typed dray errors (not found, denied, digest) are not retried: only transport
 * failures are. The consumer sees one continuous stream; verification stays with the sink.
 */
export async function openResumable(
  src: BlobSource,
  d: Descriptor,
  o: RunOptions & {
    attempts?: number;
    offset?: number;
    onResume?: (offset: number, cause: unknown) => void;
  } = {},
): Promise<Readable> {
  const attempts = o.attempts ?? 5;
  const start = o.offset ?? 0;
  const first = await src.open(d, { signal: o.signal, ...(start > 0 ? { offset: start } : {}) });
  const out = new PassThrough({ highWaterMark: 1 << 20 });
  let received = start;
  let tries = 0;
  const pump = (body: Readable): void => {
    body.on('data', (chunk: Buffer) => {
      received += chunk.byteLength;
      if (!out.write(chunk)) {
        body.pause();
        out.once('drain', () => body.resume());
      }
    });
    body.once('end', () => out.end());
    body.once('error', (err: unknown) => {
      body.destroy();
      const retryable = !isDrayError(err) && !o.signal?.aborted && tries < attempts && received < d.size;
      if (!retryable) {
        out.destroy(err as Error);
        return;
      }
      tries++;
      o.onResume?.(received, err);
      const delay = Math.min(100 * 2 ** tries, 2000);
      setTimeout(() => {
        src
          .open(d, { signal: o.signal, offset: received })
          .then(pump, (e: unknown) => out.destroy(e as Error));
      }, delay).unref();
    });
    out.once('close', () => {
      if (!body.destroyed) body.destroy();
    });
  };
  pump(first);
  return out;
}
