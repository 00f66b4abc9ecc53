import { Transform, type TransformCallback } from 'node:stream';
import { DrayError } from '../errors.ts';
import { type Digest, Digester, digestAlgorithm } from './digest.ts';

export interface ExpectedContent {
  digest: Digest;
  /** Declared size in bytes; undefined when unknown. */
  size?: number;
}

/**
 * A pass-through stream that hashes and counts what flows through it and fails the pipeline
 * when the content is not what `expected` says: as soon as more bytes than the declared
 * size arrive (before EOF, so a hostile server cannot make us read forever), and at the end
 * on a short read or a digest mismatch. Pass `offset` and a pre-fed `digester` to verify a
 * resumed transfer as one piece.
 */
export function verifyBlob(
  expected: ExpectedContent,
  o: { digester?: Digester; what?: string; sizeOnly?: boolean } = {},
): Transform {
  // sizeOnly: count without hashing, for a sink that verifies the digest itself (a registry).
  const digester = o.sizeOnly
    ? new ByteCounter()
    : (o.digester ?? new Digester(digestAlgorithm(expected.digest)));
  const what = o.what ?? `blob ${expected.digest}`;
  return new Transform({
    transform(chunk: Buffer, _enc, cb: TransformCallback) {
      if (expected.size !== undefined && digester.size + chunk.byteLength > expected.size) {
        cb(
          new DrayError('DRAY_SIZE_MISMATCH', `${what}: size exceeds the expected ${expected.size} bytes`, {
            hint: 'the source sent more data than its descriptor declares; the content was not committed',
          }),
        );
        return;
      }
      digester.update(chunk);
      cb(null, chunk);
    },
    flush(cb: TransformCallback) {
      if (expected.size !== undefined && digester.size !== expected.size) {
        cb(
          new DrayError(
            'DRAY_SIZE_MISMATCH',
            `${what}: short read: expected ${expected.size} bytes but got ${digester.size}`,
          ),
        );
        return;
      }
      const actual = digester.digest();
      if (actual !== undefined && actual !== expected.digest) {
        cb(
          new DrayError('DRAY_DIGEST_MISMATCH', `${what}: digest mismatch: got ${actual}`, {
            hint: 'the content was corrupted in transit or at its source; nothing was committed',
          }),
        );
        return;
      }
      cb();
    },
  });
}

/** Counts bytes like a Digester, without hashing (verifyBlob's sizeOnly mode). */
class ByteCounter {
  size = 0;
  update(chunk: Uint8Array): void {
    this.size += chunk.byteLength;
  }
  digest(): undefined {
    return undefined;
  }
}
