import { pipeline, Readable } from 'node:stream';
import { type Digest, Digester, digestAlgorithm, digestOf, isDigest, verifyBlob } from '../digest/index.ts';
import { abortError, DrayError, isDrayError, throwIfAborted } from '../errors.ts';
import type { BlobSource, BlobTarget, Descriptor, RefStore } from '../oci/index.ts';
import { isDocumentType, manifestAccept, parseDocument } from '../oci/index.ts';
import type { RunOptions } from '../progress/index.ts';
import type { Scope } from './auth-types.ts';
import type { RegistryContext, RepositoryName } from './client.ts';
import { redactUrl, registryHost } from './endpoint.ts';
import {
  type ErrorContext,
  isRetryableNetworkError,
  networkError,
  RegistryError,
  readErrorBody,
  statusError,
} from './errors.ts';
import { backoffMs, delay } from './retry.ts';
import {
  discard,
  type HttpMethod,
  header,
  type TransportRequest,
  type TransportResponse,
} from './transport.ts';
import { readChunks, uploadUrl, withDigest } from './upload.ts';

/** Manifests are documents: read whole, never more than this (distribution's own limit is 4 MiB). */
export const maxManifestBytes = 4 * 1024 * 1024;
/** One page of a tag list. */
const maxTagPageBytes = 16 * 1024 * 1024;
/** How many manifests a Repository remembers after putting them (for `tag`). */
const putCacheSize = 16;

/** Options for `Repository.put`. */
export interface PutOptions extends RunOptions {
  /**
   * A factory for a fresh copy of the body. A streamed upload cannot be replayed, so without
   * it a failed upload fails; with it, an upload that failed for a retryable reason (5xx,
   * 429, connection reset) restarts from a new upload session with a new stream, within
   * the client's retry budget. Graph copy passes `() => source.open(d, o)`.
   */
  reopen?: () => Promise<Readable>;
  /** The caller has just seen `has(d)` answer false: no second existence check (HEAD). */
  absent?: boolean;
}

/** Options for `Repository.openVerified`. */
export interface OpenVerifiedOptions extends RunOptions {
  /** How many times a dropped body is resumed with a Range request. Default: the retry attempts. */
  maxResumes?: number;
}

type Action = 'pull' | 'push';

interface Exchange {
  method: HttpMethod;
  url: URL;
  action: Action;
  what: ErrorContext['what'];
  headers?: Record<string, string>;
  body?: Buffer | Readable;
  followRedirects?: boolean;
  scopes?: Scope[];
  signal?: AbortSignal | undefined;
}

/**
 * One repository on one registry: a BlobSource, BlobTarget and RefStore over the OCI
 * distribution-spec API (pull, push, monolithic and chunked upload, cross-repository
 * mount, tag listing). Creating one does no I/O; every method does network I/O.
 */
export class Repository implements BlobSource, BlobTarget, RefStore {
  /** The registry host that serves this repository (`registry-1.docker.io` for docker.io). */
  readonly host: string;
  /** The repository path on that host (`library/ubuntu`). */
  readonly path: string;
  /** The name used in messages (`ubuntu`, `ghcr.io/o/r`). */
  readonly displayName: string;
  readonly #ctx: RegistryContext;
  readonly #putManifests = new Map<string, Buffer>();
  /** Upload sessions a 202 from a mount attempt opened; `put` reuses them. */
  readonly #pendingUploads = new Map<string, URL>();

  constructor(ctx: RegistryContext, name: RepositoryName) {
    this.#ctx = ctx;
    this.host = registryHost(name.domain);
    this.path = name.path;
    const hub = this.host === 'registry-1.docker.io';
    this.displayName = hub ? name.path.replace(/^library\//, '') : `${name.domain}/${name.path}`;
  }

  /** Parallel blob transfers the client allows (for graph copy). */
  get concurrency(): number {
    return this.#ctx.concurrency;
  }

  /**
   * The descriptor a tag or digest points at: HEAD on the manifest (Accept: every manifest
   * type dray reads), falling back to GET when the HEAD response lacks Docker-Content-Digest,
   * Content-Type or Content-Length, or when the registry refuses HEAD.
   * Throws DRAY_MANIFEST_UNKNOWN, DRAY_PULL_DENIED, DRAY_TOO_MANY_REQUESTS, DRAY_REGISTRY_*.
   */
  async resolve(tagOrDigest: string, o: RunOptions = {}): Promise<Descriptor> {
    throwIfAborted(o.signal, `resolve ${this.displayName}:${tagOrDigest}`);
    const what = { kind: 'manifest', ref: tagOrDigest } as const;
    const ex: Exchange = {
      method: 'HEAD',
      url: await this.#url(`manifests/${tagOrDigest}`, o.signal),
      action: 'pull',
      what,
      headers: { accept: manifestAccept.join(', ') },
      signal: o.signal,
    };
    const res = await this.#exchange(ex);
    if (res.status === 200) {
      discard(res);
      const digest = header(res.headers, 'docker-content-digest');
      const mediaType = mediaTypeOf(header(res.headers, 'content-type'));
      const size = Number(header(res.headers, 'content-length'));
      if (digest && isDigest(digest) && isDocumentType(mediaType) && Number.isSafeInteger(size) && size > 0) {
        if (isDigest(tagOrDigest) && digest !== tagOrDigest) {
          throw new DrayError(
            'DRAY_DIGEST_MISMATCH',
            `manifest ${this.displayName}@${tagOrDigest}: registry answered with digest ${digest}`,
          );
        }
        return { mediaType: mediaType as string, digest, size };
      }
    } else if ([401, 403, 404, 429].includes(res.status) || res.status >= 500) {
      throw await this.#fail(res, ex);
    } else {
      discard(res);
    }
    return (await this.getManifest(tagOrDigest, o)).descriptor;
  }

  /**
   * GET a manifest or index: at most 4 MiB, digest verified when fetched by digest, and the
   * Docker-Content-Digest header checked when fetched by tag. The media type comes from
   * Content-Type, or from the document's own `mediaType` when the server sends a generic one.
   * Throws DRAY_MANIFEST_UNKNOWN, DRAY_DIGEST_MISMATCH, DRAY_DOCUMENT_TOO_LARGE, DRAY_PULL_DENIED…
   */
  async getManifest(
    tagOrDigest: string,
    o: RunOptions = {},
  ): Promise<{ descriptor: Descriptor; bytes: Buffer }> {
    throwIfAborted(o.signal, `get manifest ${this.displayName}:${tagOrDigest}`);
    const what = { kind: 'manifest', ref: tagOrDigest } as const;
    const ex: Exchange = {
      method: 'GET',
      url: await this.#url(`manifests/${tagOrDigest}`, o.signal),
      action: 'pull',
      what,
      headers: { accept: manifestAccept.join(', ') },
      signal: o.signal,
    };
    const res = await this.#exchange(ex);
    if (res.status !== 200) throw await this.#fail(res, ex);
    const where = `manifest ${this.#ref(tagOrDigest)}`;
    const bytes = await this.#readLimited(res, maxManifestBytes, where, ex);
    const headerDigest = header(res.headers, 'docker-content-digest');
    let digest: Digest;
    if (isDigest(tagOrDigest)) {
      digest = digestOf(bytes, digestAlgorithm(tagOrDigest));
      if (digest !== tagOrDigest) {
        throw new DrayError('DRAY_DIGEST_MISMATCH', `${where}: digest mismatch: got ${digest}`, {
          hint: 'the registry served different content than the digest names; nothing was stored',
        });
      }
    } else {
      const alg = headerDigest && isDigest(headerDigest) ? digestAlgorithm(headerDigest) : 'sha256';
      digest = digestOf(bytes, alg);
      if (headerDigest && isDigest(headerDigest) && headerDigest !== digest) {
        throw new DrayError(
          'DRAY_DIGEST_MISMATCH',
          `${where}: the registry's Docker-Content-Digest ${headerDigest} does not match the content (${digest})`,
        );
      }
    }
    let mediaType = mediaTypeOf(header(res.headers, 'content-type'));
    if (!isDocumentType(mediaType)) {
      const inner = embeddedMediaType(bytes);
      if (inner) mediaType = inner;
    }
    if (!mediaType) {
      throw new DrayError('DRAY_UNSUPPORTED_MEDIA_TYPE', `${where}: the registry sent no media type`);
    }
    if (!isDocumentType(mediaType)) {
      // Not a manifest or index type (schema 1, or a generic application/json): parse it, which
      // rejects schema 1 (DRAY_UNSUPPORTED_MEDIA_TYPE) and garbage (DRAY_INVALID_MANIFEST) and
      // sniffs a valid document's kind. Returned as is, a copy would treat it as a leaf blob,
      // GET it from /blobs/ and fail with a misleading "manifest unknown".
      mediaType = parseDocument(bytes, mediaType).mediaType;
    }
    return { descriptor: { mediaType, digest, size: bytes.byteLength }, bytes };
  }

  /**
   * PUT a manifest under a tag or its digest. Returns its descriptor. The bytes are kept in a
   * small per-Repository cache so a following `tag` needs no GET.
   * Throws DRAY_PUSH_DENIED, DRAY_INVALID_MANIFEST (registry rejected it), DRAY_REGISTRY_*.
   */
  async putManifest(
    tagOrDigest: string,
    bytes: Buffer,
    mediaType: string,
    o: RunOptions = {},
  ): Promise<Descriptor> {
    throwIfAborted(o.signal, `put manifest ${this.#ref(tagOrDigest)}`);
    if (bytes.byteLength > maxManifestBytes) {
      throw new DrayError(
        'DRAY_DOCUMENT_TOO_LARGE',
        `manifest ${this.#ref(tagOrDigest)}: ${bytes.byteLength} bytes exceeds the 4 MiB limit`,
      );
    }
    const digest = digestOf(bytes, isDigest(tagOrDigest) ? digestAlgorithm(tagOrDigest) : 'sha256');
    if (isDigest(tagOrDigest) && digest !== tagOrDigest) {
      throw new DrayError(
        'DRAY_DIGEST_MISMATCH',
        `manifest ${this.#ref(tagOrDigest)}: content has digest ${digest}`,
      );
    }
    const ex: Exchange = {
      method: 'PUT',
      url: await this.#url(`manifests/${tagOrDigest}`, o.signal),
      action: 'push',
      what: { kind: 'manifest', ref: tagOrDigest },
      headers: { 'content-type': mediaType },
      body: bytes,
      signal: o.signal,
    };
    const res = await this.#exchange(ex);
    if (res.status !== 201 && res.status !== 200 && res.status !== 202) {
      const err = await this.#fail(res, ex);
      if (err.code === 'DRAY_REGISTRY_ERROR' && err.registryCodes.some((c) => c.startsWith('MANIFEST_'))) {
        throw new RegistryError(
          'DRAY_INVALID_MANIFEST',
          `manifest ${this.#ref(tagOrDigest)} rejected: ${err.message}`,
          {
            cause: err,
            ...(err.status !== undefined ? { status: err.status } : {}),
            registryErrors: err.registryErrors,
            ...(err.request ? { request: err.request } : {}),
          },
        );
      }
      throw err;
    }
    discard(res);
    this.#remember(digest, bytes);
    return { mediaType, digest, size: bytes.byteLength };
  }

  /**
   * A stream of a blob's (or manifest's, by media type) bytes, from `offset` when given.
   * Follows redirects to blob storage without carrying Authorization to another origin.
   * With an offset it sends Range and requires 206 with a matching Content-Range.
   * The stream is not verified (see `openVerified`). Throws DRAY_BLOB_UNKNOWN,
   * DRAY_MANIFEST_UNKNOWN, DRAY_PULL_DENIED, DRAY_REGISTRY_*.
   */
  async open(d: Descriptor, o: RunOptions & { offset?: number } = {}): Promise<Readable> {
    throwIfAborted(o.signal, `open ${d.digest}`);
    return (await this.#openAt(d, o.offset ?? 0, o.signal, false)).body;
  }

  /**
   * Like `open` from the start, but verified and resumable: if the connection drops
   * mid-body (reset, "other side closed", body timeout) it re-requests the rest with
   * `Range: bytes=<received>-` up to `maxResumes` times, checks the 206's Content-Range,
   * and at the end checks size and digest. The stream errors with DRAY_DIGEST_MISMATCH /
   * DRAY_SIZE_MISMATCH on bad content, DRAY_ABORTED on the signal.
   *
   * Why resume instead of retrying the request: a 2 GB layer that drops at 1.9 GB would
   * otherwise start over, and on flaky links never finish (undici's RetryHandler does the
   * same for the same reason).
   */
  async openVerified(d: Descriptor, o: OpenVerifiedOptions = {}): Promise<Readable> {
    throwIfAborted(o.signal, `open ${d.digest}`);
    const maxResumes = o.maxResumes ?? this.#ctx.retry.attempts;
    const first = await this.#openAt(d, 0, o.signal, true);
    const digester = new Digester(digestAlgorithm(d.digest));
    const what = `blob ${d.digest}`;
    const signal = o.signal;
    let received = 0;
    let current = first;
    let resumes = 0;
    const self = this;
    async function* gen(): AsyncGenerator<Buffer> {
      try {
        for (;;) {
          // A server that ignored Range (200) resends from 0: skip what we already have.
          let skip = received - current.start;
          try {
            for await (const c of current.body) {
              let chunk = c as Buffer;
              if (skip > 0) {
                const n = Math.min(skip, chunk.byteLength);
                skip -= n;
                chunk = chunk.subarray(n);
                if (chunk.byteLength === 0) continue;
              }
              if (received + chunk.byteLength > d.size) {
                throw new DrayError(
                  'DRAY_SIZE_MISMATCH',
                  `${what}: size exceeds the expected ${d.size} bytes`,
                  {
                    hint: 'the registry sent more data than the descriptor declares; the content was not committed',
                  },
                );
              }
              digester.update(chunk);
              received += chunk.byteLength;
              yield chunk;
            }
            break;
          } catch (e) {
            current.body.destroy();
            if (signal?.aborted) throw abortError(signal, `download of ${d.digest}`);
            if (isDrayError(e) || !isRetryableNetworkError(e) || resumes >= maxResumes) {
              throw isDrayError(e)
                ? e
                : new RegistryError(
                    'DRAY_REGISTRY_UNREACHABLE',
                    `${what}: connection lost after ${received} of ${d.size} bytes`,
                    {
                      cause: e,
                      retryable: true,
                      hint: 'the download was interrupted; retry the pull',
                    },
                  );
            }
            resumes++;
            await delay(backoffMs(resumes, self.#ctx.retry), signal);
            current = await self.#openAt(d, received, signal, true);
          }
        }
        if (received !== d.size) {
          throw new DrayError(
            'DRAY_SIZE_MISMATCH',
            `${what}: short read: expected ${d.size} bytes but got ${received}`,
          );
        }
        const actual = digester.digest();
        if (actual !== d.digest) {
          throw new DrayError('DRAY_DIGEST_MISMATCH', `${what}: digest mismatch: got ${actual}`, {
            hint: 'the content was corrupted in transit or at its source; nothing was committed',
          });
        }
      } finally {
        current.body.destroy();
      }
    }
    return Readable.from(gen(), { objectMode: false });
  }

  /** HEAD the blob (or manifest, by media type): true when present, false on 404. */
  async has(d: Descriptor, o: RunOptions = {}): Promise<boolean> {
    throwIfAborted(o.signal, `check ${d.digest}`);
    return this.#has(d, 'pull', o.signal);
  }

  /** `has` for a pull or (inside `put`) a push: a push asks for push scopes up front, as ggcr's writer does, and a denial reads as a push denial. */
  async #has(d: Descriptor, action: Action, signal: AbortSignal | undefined): Promise<boolean> {
    const doc = isDocumentType(d.mediaType);
    const ex: Exchange = {
      method: 'HEAD',
      url: await this.#url(`${doc ? 'manifests' : 'blobs'}/${d.digest}`, signal),
      action,
      what: doc ? { kind: 'manifest', ref: d.digest } : { kind: 'blob', digest: d.digest },
      ...(doc ? { headers: { accept: manifestAccept.join(', ') } } : {}),
      followRedirects: true,
      signal,
    };
    const res = await this.#exchange(ex);
    if (res.status === 200) {
      discard(res);
      // A blob with the digest but another size is not the blob the descriptor names.
      const length = header(res.headers, 'content-length');
      return length === undefined || Number(length) === d.size;
    }
    if (res.status === 404) {
      discard(res);
      return false;
    }
    throw await this.#fail(res, ex);
  }

  /**
   * Uploads a blob: existence check (present = done, body discarded) → POST to start an
   * upload (or reuse the session a failed mount opened) → one monolithic PUT ?digest=, or
   * PATCH chunks + final PUT when the client has `chunkSizeBytes`. The body is verified
   * against `d` while it streams. Manifest media types go to PUT /manifests/<digest>.
   * A streamed body is sent once; see PutOptions.reopen for restarts.
   * Throws DRAY_PUSH_DENIED, DRAY_DIGEST_MISMATCH, DRAY_SIZE_MISMATCH, DRAY_REGISTRY_*.
   */
  async put(d: Descriptor, body: Readable, o: PutOptions = {}): Promise<void> {
    try {
      throwIfAborted(o.signal, `upload ${d.digest}`);
      if (isDocumentType(d.mediaType)) {
        const bytes = await readAll(
          body.pipe(verifyBlob(d, { what: `manifest ${d.digest}` })),
          maxManifestBytes,
          d,
          body,
        );
        await this.putManifest(d.digest, bytes, d.mediaType, o);
        return;
      }
      if (!o.absent && (await this.#has(d, 'push', o.signal))) {
        body.destroy();
        return;
      }
    } catch (e) {
      body.destroy();
      throw e;
    }
    let current = body;
    for (let attempt = 1; ; attempt++) {
      try {
        await this.#upload(d, current, o.signal);
        return;
      } catch (e) {
        current.destroy();
        const retryable = e instanceof RegistryError && e.retryable;
        if (!o.reopen || !retryable || attempt >= this.#ctx.retry.attempts || o.signal?.aborted) throw e;
        await delay(backoffMs(attempt, this.#ctx.retry), o.signal);
        current = await o.reopen();
      }
    }
  }

  /**
   * Cross-repository mount (POST ?mount=<digest>&from=<repo>): true when the registry
   * mounted it (201). A 202 means the registry opened an upload session instead; it is kept
   * and reused by the next `put` of this digest. Any refusal (denied source, unknown blob,
   * registry without mount support) returns false so the caller falls back to uploading;
   * only an abort throws.
   */
  async mount(d: Descriptor, fromRepository: string, o: RunOptions = {}): Promise<boolean> {
    throwIfAborted(o.signal, `mount ${d.digest}`);
    // `fromRepository` may carry its registry (`host/path`, as references do): a mount only
    // works within one registry, so another host means "not mounted" without a request.
    let from = fromRepository;
    const slash = from.indexOf('/');
    const first = slash > 0 ? from.slice(0, slash) : '';
    if (/[.:]/.test(first) || first === 'localhost') {
      if (registryHost(first) !== this.host) return false;
      from = from.slice(slash + 1);
    }
    // `from` is always sent with `mount`: Quay ignores a mount without it, and the spec
    // (distribution-spec "Mounting a blob from another repository") makes it the norm.
    const url = await this.#url(`blobs/uploads/`, o.signal);
    url.search = `?mount=${encodeURIComponent(d.digest)}&from=${encodeURIComponent(from)}`;
    const ex: Exchange = {
      method: 'POST',
      url,
      action: 'push',
      what: { kind: 'mount' },
      headers: { 'content-length': '0' },
      scopes: [...this.#scopes('push'), { type: 'repository', name: from, actions: ['pull'] }],
      signal: o.signal,
    };
    let res: TransportResponse;
    try {
      res = await this.#exchange(ex);
    } catch (e) {
      if (isDrayError(e, 'DRAY_ABORTED')) throw e;
      return false;
    }
    if (res.status === 201) {
      discard(res);
      return true;
    }
    const location = header(res.headers, 'location');
    discard(res);
    if (res.status === 202 && location) this.#pendingUploads.set(d.digest, uploadUrl(location, url));
    return false;
  }

  /**
   * Points a tag at a manifest already in the repository: PUT /manifests/<tag> with its
   * bytes (from this Repository's recent puts, else fetched by digest).
   */
  async tag(name: string, d: Descriptor, o: RunOptions = {}): Promise<void> {
    throwIfAborted(o.signal, `tag ${this.displayName}:${name}`);
    const bytes = this.#putManifests.get(d.digest) ?? (await this.getManifest(d.digest, o)).bytes;
    await this.putManifest(name, bytes, d.mediaType, o);
  }

  /**
   * The repository's tags, paging through /tags/list with `n=` and the Link rel="next"
   * header (distribution-spec "Listing Tags"). Lazily fetches one page at a time.
   */
  async *tags(o: RunOptions & { pageSize?: number } = {}): AsyncIterable<string> {
    throwIfAborted(o.signal, `list tags of ${this.displayName}`);
    let url: URL | undefined = await this.#url('tags/list', o.signal);
    if (o.pageSize !== undefined) url.search = `?n=${o.pageSize}`;
    const seen = new Set<string>();
    while (url) {
      if (seen.has(url.href)) break; // a Link loop would otherwise never end
      seen.add(url.href);
      const ex: Exchange = { method: 'GET', url, action: 'pull', what: { kind: 'tags' }, signal: o.signal };
      const res = await this.#exchange(ex);
      if (res.status !== 200) throw await this.#fail(res, ex);
      const bytes = await this.#readLimited(res, maxTagPageBytes, `tag list of ${this.displayName}`, ex);
      let tags: unknown;
      try {
        tags = (JSON.parse(bytes.toString('utf8')) as { tags?: unknown }).tags;
      } catch (e) {
        throw new RegistryError('DRAY_REGISTRY_ERROR', `tag list of ${this.displayName}: invalid JSON`, {
          cause: e,
        });
      }
      if (tags !== null && tags !== undefined && !Array.isArray(tags)) {
        throw new RegistryError(
          'DRAY_REGISTRY_ERROR',
          `tag list of ${this.displayName}: "tags" is not a list`,
        );
      }
      for (const t of tags ?? []) if (typeof t === 'string') yield t;
      url = nextLink(header(res.headers, 'link'), url);
    }
  }

  // --- internals ---

  #ref(tagOrDigest: string): string {
    return isDigest(tagOrDigest)
      ? `${this.displayName}@${tagOrDigest}`
      : `${this.displayName}:${tagOrDigest}`;
  }

  #scopes(action: Action): Scope[] {
    return [
      { type: 'repository', name: this.path, actions: action === 'push' ? ['pull', 'push'] : ['pull'] },
    ];
  }

  async #url(suffix: string, signal: AbortSignal | undefined): Promise<URL> {
    const origin = await this.#ctx.origin(this.host, signal);
    return new URL(`${origin}/v2/${this.path}/${suffix}`);
  }

  #remember(digest: string, bytes: Buffer): void {
    this.#putManifests.delete(digest);
    this.#putManifests.set(digest, bytes);
    while (this.#putManifests.size > putCacheSize) {
      const oldest = this.#putManifests.keys().next().value;
      if (oldest === undefined) break;
      this.#putManifests.delete(oldest);
    }
  }

  /** One request through the transport; network failures become DrayErrors. */
  async #exchange(ex: Exchange): Promise<TransportResponse> {
    const req: TransportRequest = {
      method: ex.method,
      url: ex.url,
      headers: ex.headers ?? {},
      registry: this.host,
      scopes: ex.scopes ?? this.#scopes(ex.action),
      ...(ex.body !== undefined ? { body: ex.body } : {}),
      ...(ex.followRedirects ? { followRedirects: true } : {}),
      ...(ex.signal ? { signal: ex.signal } : {}),
    };
    try {
      return await this.#ctx.send(req);
    } catch (e) {
      throw networkError(e, req, this.host, ex.signal);
    }
  }

  async #fail(res: TransportResponse, ex: Exchange): Promise<RegistryError> {
    const body = ex.method === 'HEAD' ? '' : await readErrorBody(res.body);
    if (ex.method === 'HEAD') discard(res);
    const retryAfter = header(res.headers, 'retry-after');
    return statusError(
      { status: res.status, statusText: res.statusText, body, ...(retryAfter ? { retryAfter } : {}) },
      ex,
      { action: ex.action, repository: this.displayName, host: this.host, what: ex.what },
    );
  }

  async #readLimited(res: TransportResponse, max: number, where: string, ex: Exchange): Promise<Buffer> {
    const declared = Number(header(res.headers, 'content-length'));
    if (Number.isFinite(declared) && declared > max) {
      discard(res);
      throw new DrayError(
        'DRAY_DOCUMENT_TOO_LARGE',
        `${where}: ${declared} bytes exceeds the ${max}-byte limit`,
      );
    }
    const chunks: Buffer[] = [];
    let n = 0;
    try {
      for await (const c of res.body) {
        n += (c as Buffer).byteLength;
        if (n > max)
          throw new DrayError('DRAY_DOCUMENT_TOO_LARGE', `${where}: exceeds the ${max}-byte limit`);
        chunks.push(c as Buffer);
      }
    } catch (e) {
      res.body.destroy();
      throw networkError(e, ex, this.host, ex.signal);
    }
    return Buffer.concat(chunks);
  }

  /**
   * GET a blob from `offset`. With `lenient`, a 200 (server ignored Range) is accepted and
   * reported as start 0 so the caller can skip; otherwise only 206 with a Content-Range
   * starting at `offset` is.
   */
  async #openAt(
    d: Descriptor,
    offset: number,
    signal: AbortSignal | undefined,
    lenient: boolean,
  ): Promise<{ body: Readable; start: number }> {
    if (!Number.isSafeInteger(offset) || offset < 0) {
      throw new DrayError('DRAY_INVALID_ARGUMENT', `invalid offset ${offset} for ${d.digest}`);
    }
    if (offset > 0 && offset >= d.size) return { body: Readable.from([]), start: offset };
    const doc = isDocumentType(d.mediaType);
    const headers: Record<string, string> = doc ? { accept: manifestAccept.join(', ') } : {};
    if (offset > 0) headers.range = `bytes=${offset}-`;
    const ex: Exchange = {
      method: 'GET',
      url: await this.#url(`${doc ? 'manifests' : 'blobs'}/${d.digest}`, signal),
      action: 'pull',
      what: doc ? { kind: 'manifest', ref: d.digest } : { kind: 'blob', digest: d.digest },
      headers,
      followRedirects: true,
      signal,
    };
    const res = await this.#exchange(ex);
    if (offset === 0) {
      if (res.status !== 200) throw await this.#fail(res, ex);
      return { body: res.body, start: 0 };
    }
    if (res.status === 200 && lenient) return { body: res.body, start: 0 };
    if (res.status !== 206) {
      if (res.status === 200) {
        discard(res);
        throw new RegistryError(
          'DRAY_REGISTRY_ERROR',
          `GET ${redactUrl(ex.url)}: range request from byte ${offset} answered with the whole blob`,
          {
            status: 200,
            request: { method: 'GET', url: redactUrl(ex.url) },
            hint: 'the registry does not support resuming downloads',
          },
        );
      }
      throw await this.#fail(res, ex);
    }
    const cr = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(header(res.headers, 'content-range') ?? '');
    const start = Number(cr?.[1]);
    const end = Number(cr?.[2]);
    const total = cr?.[3];
    const length = header(res.headers, 'content-length');
    if (
      !cr ||
      start !== offset ||
      end < start ||
      (total !== '*' && Number(total) !== d.size) ||
      (length !== undefined && Number(length) !== end - start + 1)
    ) {
      discard(res);
      throw new RegistryError(
        'DRAY_REGISTRY_ERROR',
        `GET ${redactUrl(ex.url)}: bad Content-Range ${JSON.stringify(header(res.headers, 'content-range') ?? '')} for a request from byte ${offset}`,
        { status: 206, request: { method: 'GET', url: redactUrl(ex.url) } },
      );
    }
    return { body: res.body, start };
  }

  /** One upload attempt (see `put`). */
  async #upload(d: Descriptor, body: Readable, signal: AbortSignal | undefined): Promise<void> {
    let location = this.#pendingUploads.get(d.digest);
    this.#pendingUploads.delete(d.digest);
    if (!location) {
      const start: Exchange = {
        method: 'POST',
        url: await this.#url('blobs/uploads/', signal),
        action: 'push',
        what: { kind: 'upload' },
        headers: { 'content-length': '0' },
        signal,
      };
      const res = await this.#exchange(start);
      if (res.status !== 202) throw await this.#fail(res, start);
      const loc = header(res.headers, 'location');
      discard(res);
      if (!loc) {
        throw new RegistryError(
          'DRAY_REGISTRY_ERROR',
          `POST ${redactUrl(start.url)}: upload started without a Location`,
          {
            status: res.status,
          },
        );
      }
      location = uploadUrl(loc, start.url);
    }
    // Not hashed here: the registry verifies the digest before it commits (DIGEST_INVALID),
    // and hashing a second time on this side cost a push a tenth of its time. The size is
    // still checked as the bytes go out.
    const verified = pipeline(body, verifyBlob(d, { sizeOnly: true }), () => {});
    const what = { kind: 'upload' } as const;
    const octet = 'application/octet-stream';
    if (this.#ctx.chunkSizeBytes === undefined) {
      const put: Exchange = {
        method: 'PUT',
        url: withDigest(location, d.digest),
        action: 'push',
        what,
        headers: { 'content-type': octet, 'content-length': String(d.size) },
        body: verified,
        signal,
      };
      const res = await this.#exchange(put);
      if (res.status !== 201 && res.status !== 204 && res.status !== 200) throw await this.#fail(res, put);
      discard(res);
      return;
    }
    let offset = 0;
    try {
      for await (const chunk of readChunks(verified, this.#ctx.chunkSizeBytes)) {
        const patch: Exchange = {
          method: 'PATCH',
          url: location,
          action: 'push',
          what,
          headers: {
            'content-type': octet,
            'content-length': String(chunk.byteLength),
            // distribution-spec "Pushing a blob in chunks": inclusive range, no unit prefix.
            'content-range': `${offset}-${offset + chunk.byteLength - 1}`,
          },
          body: chunk,
          signal,
        };
        const res = await this.#exchange(patch);
        if (res.status !== 202 && res.status !== 204) throw await this.#fail(res, patch);
        const next = header(res.headers, 'location');
        discard(res);
        if (next) location = uploadUrl(next, location);
        offset += chunk.byteLength;
      }
    } catch (e) {
      verified.destroy();
      throw e;
    }
    const close: Exchange = {
      method: 'PUT',
      url: withDigest(location, d.digest),
      action: 'push',
      what,
      headers: { 'content-length': '0' },
      signal,
    };
    const res = await this.#exchange(close);
    if (res.status !== 201 && res.status !== 204 && res.status !== 200) throw await this.#fail(res, close);
    discard(res);
  }
}

function mediaTypeOf(contentType: string | undefined): string | undefined {
  const mt = contentType?.split(';')[0]?.trim().toLowerCase();
  return mt ? mt : undefined;
}

function embeddedMediaType(bytes: Buffer): string | undefined {
  try {
    const mt = (JSON.parse(bytes.toString('utf8')) as { mediaType?: unknown }).mediaType;
    return typeof mt === 'string' ? mt : undefined;
  } catch {
    return undefined;
  }
}

/** The rel="next" target of a Link header, resolved against the current page's URL. */
export function nextLink(link: string | undefined, base: URL): URL | undefined {
  if (!link) return undefined;
  for (const part of link.split(/,(?=\s*<)/)) {
    const m = /^\s*<([^>]*)>(.*)$/.exec(part);
    if (!m) continue;
    if (/;\s*rel\s*=\s*"?next"?/i.test(m[2] ?? '')) {
      try {
        return new URL(m[1] ?? '', base);
      } catch {
        return undefined;
      }
    }
  }
  return undefined;
}

async function readAll(stream: Readable, max: number, d: Descriptor, source: Readable): Promise<Buffer> {
  if (d.size > max) {
    throw new DrayError(
      'DRAY_DOCUMENT_TOO_LARGE',
      `manifest ${d.digest}: ${d.size} bytes exceeds the ${max}-byte limit`,
    );
  }
  source.on('error', (e) => stream.destroy(e));
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}
