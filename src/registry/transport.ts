import type { IncomingHttpHeaders } from 'node:http';
import type { Readable } from 'node:stream';
import type { Dispatcher } from 'undici';
import type { Authenticator, Scope } from './auth-types.ts';
import { parseChallenges } from './challenge.ts';
import { credentialHost } from './endpoint.ts';
import { isRetryableNetworkError, isRetryableStatus } from './errors.ts';
import { backoffMs, delay, type ResolvedRetryOptions } from './retry.ts';

/**
 * The registry transport: one `Send` function wrapped by small middlewares, the way undici
 * composes interceptors (`dispatch => dispatch`). Each middleware does one thing: user
 * agent, auth, retry. Responses are returned as they are (including 4xx/5xx): mapping a
 * status to a DrayError needs to know what was asked for, which only the caller knows.
 */

export type HttpMethod = 'GET' | 'HEAD' | 'PUT' | 'POST' | 'PATCH' | 'DELETE';

export interface TransportRequest {
  method: HttpMethod;
  url: URL;
  headers: Record<string, string>;
  /**
   * A Buffer body is replayable (retried, re-sent after a 401). A Readable body is sent once:
   * it is never retried, because its bytes are gone after the first attempt.
   */
  body?: Buffer | Readable;
  /** The registry `host[:port]` this request belongs to. Credentials go only to this host. */
  registry: string;
  /** The scopes to authorize for; the auth middleware asks the Authenticator for exactly these. */
  scopes: Scope[];
  /** Follow 3xx (blob downloads redirect to storage). Authorization is dropped across origins. */
  followRedirects?: boolean;
  signal?: AbortSignal;
}

export interface TransportResponse {
  status: number;
  statusText: string;
  headers: IncomingHttpHeaders;
  /** Must be consumed or destroyed by the receiver. */
  body: Readable;
}

export type Send = (req: TransportRequest) => Promise<TransportResponse>;
export type Middleware = (next: Send) => Send;

/** Wraps `send` in middlewares; the first listed is the outermost. */
export function composeTransport(send: Send, ...middlewares: Middleware[]): Send {
  return middlewares.reduceRight<Send>((next, mw) => mw(next), send);
}

/** True when a request's body can be sent again. */
export function isReplayable(req: TransportRequest): boolean {
  return req.body === undefined || Buffer.isBuffer(req.body);
}

/** One header's value as a string (the first when repeated). */
export function header(h: IncomingHttpHeaders, name: string): string | undefined {
  const v = h[name.toLowerCase()];
  return Array.isArray(v) ? v[0] : v;
}

/** Discards a response body without reading it into memory. */
export function discard(res: TransportResponse): void {
  res.body.on('error', () => {});
  res.body.destroy();
}

/**
 * The innermost Send: one HTTP exchange through undici. `redirecting` is the same pool
 * composed with undici's redirect interceptor, which strips Authorization (and cookies)
 * when a redirect leaves the origin, so a 307 to blob storage never carries registry
 * credentials.
 */
export function undiciSend(o: { dispatcher: Dispatcher; redirecting: Dispatcher }): Send {
  return async (req) => {
    const d = req.followRedirects ? o.redirecting : o.dispatcher;
    const res = await d.request({
      origin: req.url.origin,
      path: `${req.url.pathname}${req.url.search}`,
      method: req.method,
      headers: req.headers,
      body: req.body ?? null,
      signal: req.signal ?? null,
      // Uploads are not idempotent: undici must not replay them on its own.
      idempotent: req.method === 'GET' || req.method === 'HEAD',
    });
    return { status: res.statusCode, statusText: res.statusText ?? '', headers: res.headers, body: res.body };
  };
}

/** Sets User-Agent on every request. */
export function userAgentMiddleware(userAgent: string): Middleware {
  return (next) => (req) => next({ ...req, headers: { ...req.headers, 'user-agent': userAgent } });
}

/**
 * Registry auth. Uses a cached Authorization for the host and scopes up front (no wasted
 * 401 once a token is known); on a 401 it parses WWW-Authenticate, asks the Authenticator
 * for an answer and retries once. Credentials are only attached when the request goes to
 * its own registry host: an upload Location pointing at another host gets none.
 * A request with a streamed body cannot be re-sent, so its 401 is returned as is (upload
 * flows always start with a body-less POST that obtains the token first).
 */
export function authMiddleware(authenticator: Authenticator): Middleware {
  return (next) => async (req) => {
    if (req.url.host !== req.registry) return next(req);
    const host = credentialHost(req.registry);
    const cached = authenticator.cached(host, req.scopes);
    const res = await next(withAuthorization(req, cached));
    if (res.status !== 401 || !isReplayable(req)) return res;
    const challenges = parseChallenges(res.headers['www-authenticate']);
    if (challenges.length === 0) return res;
    if (cached !== undefined) authenticator.invalidate(host, req.scopes);
    const answer = await authenticator.authorize(
      host,
      challenges,
      req.scopes,
      req.signal ? { signal: req.signal } : {},
    );
    if (answer === undefined) return res;
    discard(res);
    return next(withAuthorization(req, answer));
  };
}

function withAuthorization(req: TransportRequest, value: string | undefined): TransportRequest {
  if (value === undefined) return req;
  return { ...req, headers: { ...req.headers, authorization: value } };
}

/** Called before each retry, for logs and tests. Never given credentials. */
export type RetryListener = (info: {
  attempt: number;
  delayMs: number;
  status?: number;
  error?: unknown;
}) => void;

/**
 * Retries replayable requests on 408/429/500/502/503/504 and on connection resets and
 * timeouts, with exponential backoff and jitter, honouring Retry-After. After the last
 * attempt the last response (or error) is returned to the caller, who maps it to an error.
 * Requests with a streamed body are never retried here (see `Repository.put`'s `reopen`).
 */
export function retryMiddleware(policy: ResolvedRetryOptions, onRetry?: RetryListener): Middleware {
  return (next) => async (req) => {
    if (!isReplayable(req)) return next(req);
    for (let attempt = 1; ; attempt++) {
      const last = attempt >= policy.attempts;
      let res: TransportResponse;
      try {
        res = await next(req);
      } catch (e) {
        if (last || req.signal?.aborted || !isRetryableNetworkError(e)) throw e;
        const ms = backoffMs(attempt, policy);
        onRetry?.({ attempt, delayMs: ms, error: e });
        await delay(ms, req.signal);
        continue;
      }
      if (last || !isRetryableStatus(res.status)) return res;
      const ms = backoffMs(attempt, policy, header(res.headers, 'retry-after'));
      discard(res);
      onRetry?.({ attempt, delayMs: ms, status: res.status });
      await delay(ms, req.signal);
    }
  };
}
