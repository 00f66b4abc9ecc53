import type { Readable } from 'node:stream';
import { DrayError, type DrayErrorCode, type DrayErrorOptions } from '../errors.ts';
import { redactUrl } from './endpoint.ts';

/** The request a RegistryError is about; the URL's query string is always redacted. */
export interface RegistryRequestInfo {
  method: string;
  url: string;
}

/** One entry of a registry's JSON error body (distribution-spec "Error Codes"). */
export interface RegistryErrorDetail {
  code: string;
  message?: string;
}

export interface RegistryErrorOptions extends DrayErrorOptions {
  status?: number;
  registryErrors?: RegistryErrorDetail[];
  retryable?: boolean;
  request?: RegistryRequestInfo;
}

const brand = Symbol.for('dray.registry-error');

/**
 * A failed registry exchange: the HTTP status (undefined for network failures), the
 * registry's error codes (`BLOB_UNKNOWN`, `DENIED`, `TOOMANYREQUESTS`…), whether a retry
 * may help, and the request with its URL redacted. The `code` is the DrayErrorCode callers
 * switch on (DRAY_PULL_DENIED, DRAY_MANIFEST_UNKNOWN…). Modelled on ggcr's transport.Error.
 */
export class RegistryError extends DrayError {
  readonly status: number | undefined;
  readonly registryCodes: string[];
  readonly registryErrors: RegistryErrorDetail[];
  readonly retryable: boolean;
  readonly request: RegistryRequestInfo | undefined;

  constructor(code: DrayErrorCode, message: string, o: RegistryErrorOptions = {}) {
    super(code, message, o);
    this.name = 'RegistryError';
    this.status = o.status;
    this.registryErrors = o.registryErrors ?? [];
    this.registryCodes = this.registryErrors.map((e) => e.code);
    this.retryable = o.retryable ?? false;
    this.request = o.request;
    Object.defineProperty(this, brand, { value: true });
  }

  static override [Symbol.hasInstance](x: unknown): boolean {
    return typeof x === 'object' && x !== null && brand in x;
  }
}

/** What an exchange was for: decides the error code and docker-worded message. */
export interface ErrorContext {
  action: 'pull' | 'push';
  /** The repository as the user knows it (`ubuntu`, `ghcr.io/o/r`). */
  repository: string;
  /** `host[:port]` for hints (`dray login <host>`). */
  host: string;
  what:
    | { kind: 'manifest'; ref: string }
    | { kind: 'blob'; digest: string }
    | { kind: 'upload' }
    | { kind: 'tags' }
    | { kind: 'ping' }
    | { kind: 'mount' };
}

/** The registry error bodies we read: 64 KiB at most, like ggcr (a hostile body cannot fill memory). */
export const maxErrorBodyBytes = 64 * 1024;

/** Statuses a retry may fix (ggcr's `Temporary()` set plus 500, which Hub returns under load). */
export function isRetryableStatus(status: number): boolean {
  return (
    status === 408 || status === 429 || status === 500 || status === 502 || status === 503 || status === 504
  );
}

/** Reads at most `maxErrorBodyBytes` of `body` and discards the rest. Never throws. */
export async function readErrorBody(body: Readable | undefined): Promise<string> {
  if (!body) return '';
  const chunks: Buffer[] = [];
  let n = 0;
  try {
    for await (const c of body) {
      const b: Buffer = typeof c === 'string' ? Buffer.from(c) : (c as Buffer);
      const take = Math.min(b.byteLength, maxErrorBodyBytes - n);
      if (take > 0) chunks.push(b.subarray(0, take));
      n += take;
      if (n >= maxErrorBodyBytes) break;
    }
  } catch {
    // A broken error body is no reason to lose the status.
  } finally {
    body.destroy();
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** Parses `{"errors":[{"code","message"}]}`; anything else yields []. */
export function parseRegistryErrors(text: string): RegistryErrorDetail[] {
  if (!text) return [];
  try {
    const j: unknown = JSON.parse(text);
    const errs = (j as { errors?: unknown })?.errors;
    if (!Array.isArray(errs)) return [];
    const out: RegistryErrorDetail[] = [];
    for (const e of errs) {
      if (typeof e !== 'object' || e === null) continue;
      const code = (e as { code?: unknown }).code;
      const message = (e as { message?: unknown }).message;
      if (typeof code !== 'string') continue;
      out.push(typeof message === 'string' ? { code, message: clip(message) } : { code });
    }
    return out;
  } catch {
    return [];
  }
}

function clip(s: string, n = 300): string {
  const oneLine = s.replace(/\s+/g, ' ').trim();
  return oneLine.length > n ? `${oneLine.slice(0, n)}…` : oneLine;
}

function describeRegistryErrors(errs: RegistryErrorDetail[]): string {
  return errs
    .map((e) => (e.message ? `${e.code.toLowerCase()}: ${e.message}` : e.code.toLowerCase()))
    .join('; ');
}

function refString(ctx: ErrorContext): string {
  const w = ctx.what;
  if (w.kind === 'manifest')
    return w.ref.includes(':') ? `${ctx.repository}@${w.ref}` : `${ctx.repository}:${w.ref}`;
  if (w.kind === 'blob') return `${ctx.repository}@${w.digest}`;
  return ctx.repository;
}

/** Input for `statusError`: what came back. */
export interface FailedResponse {
  status: number;
  statusText?: string;
  body?: string;
  retryAfter?: string;
}

/**
 * Maps a failed response to a RegistryError with a docker-worded message:
 * 404 on a manifest → DRAY_MANIFEST_UNKNOWN; on a blob → DRAY_BLOB_UNKNOWN;
 * 401/403 or DENIED/UNAUTHORIZED/NAME_UNKNOWN → DRAY_PULL_DENIED / DRAY_PUSH_DENIED;
 * 429 → DRAY_TOO_MANY_REQUESTS; DIGEST_INVALID / SIZE_INVALID → DRAY_DIGEST_MISMATCH /
 * DRAY_SIZE_MISMATCH; anything else → DRAY_REGISTRY_ERROR with the status. No I/O.
 */
export function statusError(
  res: FailedResponse,
  req: { method: string; url: string | URL },
  ctx: ErrorContext,
): RegistryError {
  const registryErrors = parseRegistryErrors(res.body ?? '');
  const codes = new Set(registryErrors.map((e) => e.code.toUpperCase()));
  const request = { method: req.method, url: redactUrl(req.url) };
  const retryable = isRetryableStatus(res.status);
  const base = { status: res.status, registryErrors, retryable, request };
  const detail = describeRegistryErrors(registryErrors);
  // A HEAD response has no body: say where the details are, as ggcr does.
  const noBody = req.method === 'HEAD' ? ' (HEAD responses have no body, use GET for details)' : '';
  const loginHint = `run 'dray login ${ctx.host}' if the repository needs credentials`;
  const denied = res.status === 401 || res.status === 403 || codes.has('DENIED') || codes.has('UNAUTHORIZED');
  const w = ctx.what;

  if (res.status === 429 || codes.has('TOOMANYREQUESTS')) {
    return new RegistryError(
      'DRAY_TOO_MANY_REQUESTS',
      `toomanyrequests: ${detail ? detail.replace(/^toomanyrequests: /, '') : `${ctx.host} rate-limited the request`}`,
      {
        ...base,
        retryable: true,
        hint: `wait and retry${res.retryAfter ? ` (the registry asked for ${res.retryAfter}s)` : ''}; authenticated requests get higher limits: ${loginHint}`,
      },
    );
  }
  if (ctx.action === 'push' && (denied || (codes.has('NAME_UNKNOWN') && res.status !== 404))) {
    return new RegistryError(
      'DRAY_PUSH_DENIED',
      `denied: requested access to the resource is denied${detail ? ` (${detail})` : ''}`,
      {
        ...base,
        hint: `run 'dray login ${ctx.host}' with an account that may push to ${ctx.repository}`,
      },
    );
  }
  if (ctx.action === 'pull' && (denied || codes.has('NAME_UNKNOWN'))) {
    return new RegistryError(
      'DRAY_PULL_DENIED',
      `pull access denied for ${ctx.repository}, repository does not exist or may require 'dray login'`,
      { ...base, hint: loginHint },
    );
  }
  if (res.status === 404 || codes.has('MANIFEST_UNKNOWN') || codes.has('BLOB_UNKNOWN')) {
    if (w.kind === 'manifest' || codes.has('MANIFEST_UNKNOWN')) {
      return new RegistryError(
        'DRAY_MANIFEST_UNKNOWN',
        `manifest unknown: manifest for ${refString(ctx)} not found`,
        base,
      );
    }
    if (w.kind === 'blob' || codes.has('BLOB_UNKNOWN')) {
      return new RegistryError('DRAY_BLOB_UNKNOWN', `blob unknown: ${refString(ctx)} not found`, base);
    }
  }
  if (codes.has('DIGEST_INVALID')) {
    return new RegistryError('DRAY_DIGEST_MISMATCH', `digest invalid: ${detail}`, {
      ...base,
      hint: 'the registry computed a different digest for the uploaded content',
    });
  }
  if (codes.has('SIZE_INVALID')) {
    return new RegistryError('DRAY_SIZE_MISMATCH', `size invalid: ${detail}`, base);
  }
  const statusText = res.statusText ? ` ${res.statusText}` : '';
  return new RegistryError(
    'DRAY_REGISTRY_ERROR',
    `${req.method} ${request.url}: unexpected status ${res.status}${statusText}${detail ? `: ${detail}` : noBody}`,
    {
      ...base,
      ...(res.status >= 500 ? { hint: `${ctx.host} failed to handle the request; retry later` } : {}),
    },
  );
}

const unreachableCodes = new Set([
  'ECONNREFUSED',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ETIMEDOUT',
  'ECONNRESET',
  'EPIPE',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
  'UND_ERR_SOCKET',
  'UND_ERR_CLOSED',
]);

/** Node/undici error codes along an error's cause chain. */
export function errorCodes(e: unknown): string[] {
  const out: string[] = [];
  let cur: unknown = e;
  for (let i = 0; i < 5 && typeof cur === 'object' && cur !== null; i++) {
    const c = (cur as { code?: unknown }).code;
    if (typeof c === 'string') out.push(c);
    const errs = (cur as { errors?: unknown }).errors; // AggregateError from happy eyeballs
    if (Array.isArray(errs)) for (const x of errs) out.push(...errorCodes(x));
    cur = (cur as { cause?: unknown }).cause;
  }
  return out;
}

/**
 * Connection-level failures a retry may fix: resets, timeouts, "socket hang up"/"other side
 * closed". Connection refused and DNS failures are not retried (nothing listens; retrying
 * only delays the error).
 */
export function isRetryableNetworkError(e: unknown): boolean {
  const codes = errorCodes(e);
  return (
    codes.some((c) =>
      [
        'ECONNRESET',
        'ETIMEDOUT',
        'EPIPE',
        'UND_ERR_SOCKET',
        'UND_ERR_CONNECT_TIMEOUT',
        'UND_ERR_HEADERS_TIMEOUT',
        'UND_ERR_BODY_TIMEOUT',
        'ERR_STREAM_PREMATURE_CLOSE',
      ].includes(c),
    ) || /socket hang up|other side closed/i.test(String((e as Error)?.message ?? ''))
  );
}

/** TLS spoken to a plain-HTTP server: the signature of an insecure registry. */
export function isPlainHttpResponseToTls(e: unknown): boolean {
  const codes = errorCodes(e);
  return (
    codes.includes('ERR_SSL_WRONG_VERSION_NUMBER') ||
    codes.includes('ERR_SSL_PACKET_LENGTH_TOO_LONG') ||
    /wrong version number|packet length too long|http request/i.test(String((e as Error)?.message ?? ''))
  );
}

function isTlsError(e: unknown): boolean {
  return errorCodes(e).some(
    (c) => c.startsWith('ERR_SSL') || c.startsWith('ERR_TLS') || /CERT|SELF_SIGNED|UNABLE_TO/.test(c),
  );
}

/**
 * Maps a network-level failure (no HTTP response) to a RegistryError: refused/DNS/reset →
 * DRAY_REGISTRY_UNREACHABLE; TLS to a plain-HTTP server → DRAY_INSECURE_REGISTRY; a signal
 * → DRAY_ABORTED. DrayErrors pass through unchanged. No I/O.
 */
export function networkError(
  e: unknown,
  req: { method: string; url: string | URL },
  host: string,
  signal?: AbortSignal,
): DrayError {
  if (e instanceof DrayError) return e;
  const request = { method: req.method, url: redactUrl(req.url) };
  if (signal?.aborted) {
    const reason: unknown = signal.reason;
    if (reason instanceof DrayError) return reason;
    return new RegistryError('DRAY_ABORTED', `${req.method} ${request.url}: aborted`, { cause: e, request });
  }
  const codes = errorCodes(e);
  if (codes.includes('UND_ERR_ABORTED') || (e as Error)?.name === 'AbortError') {
    return new RegistryError('DRAY_ABORTED', `${req.method} ${request.url}: aborted`, { cause: e, request });
  }
  if (isPlainHttpResponseToTls(e)) {
    return new RegistryError(
      'DRAY_INSECURE_REGISTRY',
      `${req.method} ${request.url}: http: server gave HTTP response to HTTPS client`,
      {
        cause: e,
        request,
        hint: `if ${host} is a trusted plain-HTTP registry, allow it with --insecure-registry ${host}`,
      },
    );
  }
  if (isTlsError(e)) {
    const code =
      codes.find((c) => c.startsWith('ERR_') || /CERT|SELF_SIGNED|UNABLE_TO/.test(c)) ?? 'TLS error';
    return new RegistryError(
      'DRAY_REGISTRY_UNREACHABLE',
      `${req.method} ${request.url}: tls: ${code}: ${(e as Error).message}`,
      {
        cause: e,
        request,
        hint: `trust the registry's CA (tls.ca), or allow ${host} with --insecure-registry ${host} if it is trusted`,
      },
    );
  }
  const code = codes.find((c) => unreachableCodes.has(c));
  const why =
    code === 'ECONNREFUSED'
      ? 'connection refused'
      : code === 'ENOTFOUND' || code === 'EAI_AGAIN'
        ? 'no such host'
        : (code ?? (e as Error)?.message ?? String(e));
  return new RegistryError(
    'DRAY_REGISTRY_UNREACHABLE',
    `${req.method} ${request.url}: dial ${host}: ${why}`,
    {
      cause: e,
      request,
      retryable: isRetryableNetworkError(e),
      hint: `check that ${host} is the right registry and is reachable from here (network, proxy, DNS)`,
    },
  );
}
