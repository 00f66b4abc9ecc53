import type { Readable } from 'node:stream';

/**
 * Upload helpers (distribution-spec "Pushing blobs"): resolving the Location a registry
 * returns, adding `digest=` without disturbing a signed query, and cutting a stream into
 * fixed-size chunks for PATCH.
 */

/** A Location header resolved against the URL that returned it (it may be relative). */
export function uploadUrl(location: string, base: URL): URL {
  return new URL(location, base);
}

/**
 * `url` with `digest=<d>` appended. The existing query is kept byte for byte: upload URLs
 * carry opaque state (`_state=`) or signatures that re-encoding could break.
 */
export function withDigest(url: URL, digest: string): URL {
  const u = new URL(url.href);
  const q = `digest=${encodeURIComponent(digest)}`;
  u.search = u.search && u.search !== '?' ? `${u.search}&${q}` : `?${q}`;
  return u;
}

/** Yields Buffers of exactly `size` bytes (the last may be shorter) from `stream`. */
export async function* readChunks(stream: Readable, size: number): AsyncGenerator<Buffer> {
  let parts: Buffer[] = [];
  let n = 0;
  for await (const c of stream) {
    let b = c as Buffer;
    while (b.byteLength > 0) {
      const take = Math.min(size - n, b.byteLength);
      parts.push(b.subarray(0, take));
      n += take;
      b = b.subarray(take);
      if (n === size) {
        yield Buffer.concat(parts, n);
        parts = [];
        n = 0;
      }
    }
  }
  if (n > 0) yield Buffer.concat(parts, n);
}
