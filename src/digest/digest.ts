import { createHash, type Hash } from 'node:crypto';
import { DrayError } from '../errors.ts';

/** A content digest `algorithm:encoded`, made only by `parseDigest` or a hasher. */
export type Digest = string & { readonly __brand: 'Digest' };

export type DigestAlgorithm = 'sha256' | 'sha512';

// OCI image-spec descriptor.md "Digests": algorithm grammar, and the registered algorithms'
// encodings (lower-case hex of the exact length).
const grammar = /^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$/;
const encodedLength: Record<DigestAlgorithm, number> = { sha256: 64, sha512: 128 };

/**
 * Parses and validates a digest string. No I/O.
 * @throws DRAY_INVALID_DIGEST for a malformed digest or an unsupported algorithm.
 */
export function parseDigest(s: string): Digest {
  if (!grammar.test(s))
    throw new DrayError('DRAY_INVALID_DIGEST', `invalid digest format: ${JSON.stringify(s)}`);
  const i = s.indexOf(':');
  const alg = s.slice(0, i);
  const enc = s.slice(i + 1);
  if (alg !== 'sha256' && alg !== 'sha512') {
    throw new DrayError('DRAY_INVALID_DIGEST', `unsupported digest algorithm: ${alg}`, {
      hint: 'dray supports sha256 and sha512 digests',
    });
  }
  if (enc.length !== encodedLength[alg] || !/^[a-f0-9]+$/.test(enc)) {
    throw new DrayError('DRAY_INVALID_DIGEST', `invalid checksum digest length or format: ${s}`);
  }
  return s as Digest;
}

/** True when `s` is a valid digest. */
export function isDigest(s: string): s is Digest {
  try {
    parseDigest(s);
    return true;
  } catch {
    return false;
  }
}

export function digestAlgorithm(d: Digest): DigestAlgorithm {
  return d.slice(0, d.indexOf(':')) as DigestAlgorithm;
}

/** The encoded (hex) part of a digest. */
export function digestHex(d: Digest): string {
  return d.slice(d.indexOf(':') + 1);
}

/** A short form for messages and tables: the first 12 hex characters. */
export function shortDigest(d: Digest | string): string {
  return d.slice(d.indexOf(':') + 1, d.indexOf(':') + 13);
}

/** Incremental digester: feed bytes, read `digest()` once at the end. */
export class Digester {
  readonly algorithm: DigestAlgorithm;
  #hash: Hash;
  #size = 0;
  constructor(algorithm: DigestAlgorithm = 'sha256') {
    this.algorithm = algorithm;
    this.#hash = createHash(algorithm);
  }
  update(chunk: Uint8Array): void {
    this.#hash.update(chunk);
    this.#size += chunk.byteLength;
  }
  get size(): number {
    return this.#size;
  }
  /** Finishes the hash; call once. */
  digest(): Digest {
    return `${this.algorithm}:${this.#hash.digest('hex')}` as Digest;
  }
}

/** Digest of an in-memory document (manifests, configs: never whole blobs). */
export function digestOf(data: Uint8Array | string, algorithm: DigestAlgorithm = 'sha256'): Digest {
  return `${algorithm}:${createHash(algorithm).update(data).digest('hex')}` as Digest;
}
