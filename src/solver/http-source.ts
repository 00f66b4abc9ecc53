import { createWriteStream } from 'node:fs';
import { posix } from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { type Digest, Digester } from '../digest/index.ts';
import { DrayError } from '../errors.ts';
import { undici } from '../registry/index.ts';
import type { HttpSource } from './ops.ts';

/** A downloaded file: where it is, its digest and the name it gets. */
export interface DownloadedFile {
  path: string;
  digest: Digest;
  filename: string;
  /** Last-Modified of the response (epoch ms), which becomes the file's mtime as BuildKit does. */
  lastModified?: number;
}

const maxRedirects = 10;

/**
 * Downloads an HTTP source to `path`, hashing it on the way (streamed, never held in memory).
 * The name comes from the source, else Content-Disposition, else the URL's last segment (else
 * `index`), as BuildKit's http source does. Does I/O. Throws DRAY_BUILD on a bad status.
 */
export async function downloadHttpSource(
  src: HttpSource,
  path: string,
  o: { signal?: AbortSignal } = {},
): Promise<DownloadedFile> {
  let url = new URL(src.url);
  if (url.protocol !== 'http:' && url.protocol !== 'https:')
    throw new DrayError('DRAY_BUILD', `unsupported URL scheme ${url.protocol} in ${redactUrl(url)}`);
  for (let hop = 0; ; hop++) {
    const res = await undici().request(url, { method: 'GET', ...(o.signal ? { signal: o.signal } : {}) });
    if (res.statusCode >= 300 && res.statusCode < 400 && res.headers.location && hop < maxRedirects) {
      await res.body.dump();
      url = new URL(String(res.headers.location), url);
      continue;
    }
    if (res.statusCode !== 200) {
      await res.body.dump();
      throw new DrayError('DRAY_BUILD', `invalid response status ${res.statusCode} for ${redactUrl(url)}`);
    }
    const digester = new Digester('sha256');
    const hash = new Transform({
      transform(chunk: Buffer, _e, cb) {
        digester.update(chunk);
        cb(null, chunk);
      },
    });
    await pipeline(
      res.body,
      hash,
      createWriteStream(path, { mode: 0o600 }),
      o.signal ? { signal: o.signal } : {},
    );
    const lm = res.headers['last-modified'];
    const lastModified = typeof lm === 'string' ? Date.parse(lm) : Number.NaN;
    return {
      path,
      digest: digester.digest(),
      filename: src.filename ?? dispositionName(res.headers['content-disposition']) ?? urlName(url),
      ...(Number.isFinite(lastModified) ? { lastModified } : {}),
    };
  }
}

function dispositionName(h: string | string[] | undefined): string | undefined {
  const v = Array.isArray(h) ? h[0] : h;
  const m = v ? /filename="?([^";]+)"?/i.exec(v) : null;
  const name = m?.[1] ? posix.basename(m[1]) : undefined;
  return name && name !== '.' && name !== '..' ? name : undefined;
}

function urlName(url: URL): string {
  const base = posix.basename(decodeURIComponent(url.pathname));
  return base && base !== '/' && base !== '.' && base !== '..' ? base : 'index';
}

/** A URL fit for messages: no user, password or query (signed URLs carry tokens there). */
export function redactUrl(url: string | URL): string {
  try {
    const u = new URL(url);
    u.username = '';
    u.password = '';
    u.search = '';
    return u.toString();
  } catch {
    return '(invalid URL)';
  }
}
