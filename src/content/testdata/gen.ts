import { Readable } from 'node:stream';
import { type Digest, Digester } from '../../digest/index.ts';

/**
 * Deterministic pseudo-random bytes (xorshift32), produced chunk by chunk so tests can make
 * blobs of any size without holding them in memory. `from`/`to` select a byte range.
 */
export function generated(seed: number, size: number, o: { from?: number; to?: number } = {}): Readable {
  const from = o.from ?? 0;
  const to = o.to ?? size;
  const chunk = 64 * 1024;
  return Readable.from(
    (function* () {
      let x = seed >>> 0 || 1;
      for (let pos = 0; pos < to; pos += chunk) {
        const words = new Uint32Array(chunk / 4);
        for (let i = 0; i < words.length; i++) {
          x ^= x << 13;
          x >>>= 0;
          x ^= x >>> 17;
          x ^= x << 5;
          x >>>= 0;
          words[i] = x;
        }
        const end = Math.min(pos + chunk, to);
        if (end <= from) continue;
        const buf = Buffer.from(words.buffer, 0, end - pos);
        yield from > pos ? buf.subarray(from - pos) : buf;
      }
    })(),
    { objectMode: false },
  );
}

/** The digest of `generated(seed, size)`, computed by streaming it. */
export async function generatedDigest(seed: number, size: number): Promise<Digest> {
  const d = new Digester('sha256');
  for await (const c of generated(seed, size)) d.update(c as Buffer);
  return d.digest();
}
