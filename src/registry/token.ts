import type { Dispatcher } from 'undici';
import * as z from 'zod/mini';
import { abortError, DrayError, throwIfAborted } from '../errors.ts';
import type { Auth, Scope } from './auth-types.ts';
import { formatScope } from './challenge.ts';
import { isInsecureAllowed } from './endpoint.ts';
import { undici } from './undici.ts';

/**
 * Bearer tokens from a token service, as the distribution token spec describes
 * (`docs/spec/auth/token.md`: GET `realm?service=…&scope=…` with optional Basic auth;
 * `docs/spec/auth/oauth.md`: POST `grant_type=refresh_token` for identity tokens).
 */

/** What a token request needs. `auth` is never anonymous-by-accident: callers pass what they have. */
export interface TokenRequest {
  /** The registry host that issued the challenge (for messages and hints). */
  registryHost: string;
  /** The challenge's `realm`. */
  realm: string;
  /** The challenge's `service`, if any. */
  service?: string;
  /** Sent as one `scope` parameter each (GET) or space-separated (POST). */
  scopes: readonly Scope[];
  /** anonymous, basic or identity-token (registry tokens never reach a token service). */
  auth: Auth;
  dispatcher?: Dispatcher;
  userAgent?: string;
  /** Hosts credentials may be sent to over plain HTTP (loopback always may). */
  insecureRegistries?: readonly string[];
  /** OAuth2 `client_id` (default `dray`). */
  clientId?: string;
  /** Clock in ms since the epoch. */
  now: () => number;
  signal?: AbortSignal;
}

/** A token and when it stops being valid. */
export interface Token {
  token: string;
  /** ms since the epoch. */
  expiresAt: number;
  /** Lifetime granted, in ms (at least 60 s). */
  lifetimeMs: number;
}

/** token.md: "a token should never be returned with less than 60 seconds to live"; also the default. */
export const minimumTokenLifetimeSeconds = 60;
const maxTokenResponseBytes = 1 << 20;
const maxErrorBodyBytes = 64 * 1024;
const maxRedirects = 5;

const tokenResponseSchema = z.looseObject({
  token: z.optional(z.string()),
  access_token: z.optional(z.string()),
  expires_in: z.optional(z.union([z.number(), z.string()])),
  issued_at: z.optional(z.string()),
});

/**
 * Fetches a bearer token for `req.scopes` from `req.realm`. Does I/O.
 *
 * - anonymous: GET without credentials.
 * - basic: GET with `Authorization: Basic` and `account=<user>`.
 * - identity-token: POST the OAuth2 refresh-token form; on 404/405 (a token server without
 *   OAuth2 support, as ggcr's bearer transport handles it) GET with Basic `username:token`.
 *
 * Secrets are only sent over HTTPS, or over HTTP to loopback / `insecureRegistries` hosts.
 * Redirects are followed for GET only, and `Authorization` is dropped when one leaves the origin.
 *
 * @throws DRAY_UNAUTHORIZED (401/403 from the realm, or OAuth2 `invalid_grant`),
 *   DRAY_INSECURE_REGISTRY (secret over plain HTTP refused), DRAY_TOO_MANY_REQUESTS,
 *   DRAY_REGISTRY_UNREACHABLE (network failure; names the realm host only),
 *   DRAY_REGISTRY_ERROR (bad realm, other statuses, malformed response), DRAY_ABORTED.
 */
export async function fetchToken(req: TokenRequest): Promise<Token> {
  throwIfAborted(req.signal, `token request for ${req.registryHost}`);
  const realm = parseRealm(req);
  const secrets = secretsOf(req.auth);
  if (req.auth.kind !== 'anonymous' && realm.protocol === 'http:') {
    if (!isInsecureAllowed(realm.host, req.insecureRegistries)) {
      throw new DrayError(
        'DRAY_INSECURE_REGISTRY',
        `refusing to send credentials for ${req.registryHost} to token service ${realm.host} over plain http`,
        { hint: `the registry's token realm must use https, or list ${realm.host} as an insecure registry` },
      );
    }
  }
  if (req.auth.kind === 'identity-token') {
    const r = await postOAuth(req, realm, req.auth.token, secrets);
    if (r.kind === 'token') return r.token;
    // Not every token server speaks OAuth2; token.md's GET is supported by all of them.
    return getToken(req, realm, basicHeader(req.auth.username || '<token>', req.auth.token), secrets);
  }
  if (req.auth.kind === 'basic') {
    return getToken(
      req,
      realm,
      basicHeader(req.auth.username, req.auth.password),
      secrets,
      req.auth.username,
    );
  }
  return getToken(req, realm, undefined, secrets);
}

function parseRealm(req: TokenRequest): URL {
  let realm: URL | undefined;
  try {
    realm = new URL(req.realm);
  } catch {
    // fall through
  }
  if (!realm || (realm.protocol !== 'https:' && realm.protocol !== 'http:')) {
    throw new DrayError(
      'DRAY_REGISTRY_ERROR',
      `invalid token realm from ${req.registryHost}: not an http(s) URL`,
      {
        hint: 'the registry sent a WWW-Authenticate Bearer challenge with an unusable realm; check its auth configuration',
      },
    );
  }
  return realm;
}

async function getToken(
  req: TokenRequest,
  realm: URL,
  authorization: string | undefined,
  secrets: string[],
  account?: string,
): Promise<Token> {
  let url = new URL(realm);
  if (req.service) url.searchParams.append('service', req.service);
  for (const s of req.scopes) url.searchParams.append('scope', formatScope(s));
  if (account) url.searchParams.append('account', account);
  let auth = authorization;
  for (let hop = 0; ; hop++) {
    const res = await send(req, url, 'GET', auth, undefined);
    if (isRedirect(res.statusCode) && typeof res.headers.location === 'string' && hop < maxRedirects) {
      await drain(res);
      const next = new URL(res.headers.location, url);
      if (next.protocol !== 'https:' && next.protocol !== 'http:') break;
      // A token request's Authorization must not follow it to another origin (or to plain http).
      if (next.origin !== url.origin) auth = undefined;
      url = next;
      continue;
    }
    if (res.statusCode >= 200 && res.statusCode < 300) return parseTokenResponse(req, realm, res);
    throw await statusError(req, realm, res, auth === undefined ? { kind: 'anonymous' } : req.auth, secrets);
  }
  throw new DrayError('DRAY_REGISTRY_ERROR', `token service ${realm.host} redirected too often`);
}

async function postOAuth(
  req: TokenRequest,
  realm: URL,
  refreshToken: string,
  secrets: string[],
): Promise<{ kind: 'token'; token: Token } | { kind: 'unsupported' }> {
  const form = new URLSearchParams();
  form.set('grant_type', 'refresh_token');
  form.set('refresh_token', refreshToken);
  if (req.service) form.set('service', req.service);
  form.set('client_id', req.clientId ?? 'dray');
  // oauth.md: the OAuth2 scope parameter is one space-separated list.
  if (req.scopes.length) form.set('scope', req.scopes.map(formatScope).join(' '));
  const res = await send(req, realm, 'POST', undefined, form.toString());
  if (res.statusCode === 404 || res.statusCode === 405) {
    await drain(res);
    return { kind: 'unsupported' };
  }
  if (res.statusCode >= 200 && res.statusCode < 300) {
    return { kind: 'token', token: await parseTokenResponse(req, realm, res) };
  }
  throw await statusError(req, realm, res, req.auth, secrets);
}

async function send(
  req: TokenRequest,
  url: URL,
  method: 'GET' | 'POST',
  authorization: string | undefined,
  form: string | undefined,
): Promise<Dispatcher.ResponseData> {
  const headers: Record<string, string> = { accept: 'application/json' };
  if (req.userAgent) headers['user-agent'] = req.userAgent;
  if (authorization) headers.authorization = authorization;
  if (form !== undefined) headers['content-type'] = 'application/x-www-form-urlencoded';
  try {
    return await undici().request(url, {
      method,
      headers,
      body: form ?? null,
      signal: req.signal ?? null,
      ...(req.dispatcher ? { dispatcher: req.dispatcher } : {}),
    });
  } catch (e) {
    throw networkError(req, url, e);
  }
}

function networkError(req: TokenRequest, url: URL, e: unknown): DrayError {
  if (req.signal?.aborted) return abortError(req.signal, `token request for ${req.registryHost}`);
  const code = typeof e === 'object' && e !== null ? (e as { code?: unknown }).code : undefined;
  return new DrayError(
    'DRAY_REGISTRY_UNREACHABLE',
    `cannot reach token service ${url.host} for ${req.registryHost}${typeof code === 'string' ? `: ${code}` : ''}`,
    { cause: e, hint: `check the network connection to ${url.host} (and any proxy settings)` },
  );
}

async function parseTokenResponse(
  req: TokenRequest,
  realm: URL,
  res: Dispatcher.ResponseData,
): Promise<Token> {
  const text = await readText(req, realm, res, maxTokenResponseBytes, true);
  const bad = (why: string) =>
    new DrayError('DRAY_REGISTRY_ERROR', `invalid token response from ${realm.host}: ${why}`, {
      hint: `the token service for ${req.registryHost} answered with something that is not a token; check its configuration`,
    });
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    throw bad('not JSON');
  }
  const parsed = tokenResponseSchema.safeParse(doc);
  if (!parsed.success) throw bad('unexpected field types');
  const token = parsed.data.token || parsed.data.access_token;
  if (!token) throw bad('no token');
  if (/[\r\n]/.test(token)) throw bad('token is not a header value');
  const expiresIn = Number(parsed.data.expires_in ?? minimumTokenLifetimeSeconds);
  const lifetimeMs =
    Math.max(
      minimumTokenLifetimeSeconds,
      Number.isFinite(expiresIn) ? expiresIn : minimumTokenLifetimeSeconds,
    ) * 1000;
  const now = req.now();
  // issued_at dates the token by the server's clock. Trust it only to shorten the lifetime
  // (a reused token), and ignore it when it is further back than the lifetime: that is clock
  // skew, and honouring it would make every token look expired.
  let base = now;
  const issued = parsed.data.issued_at ? Date.parse(parsed.data.issued_at) : Number.NaN;
  if (Number.isFinite(issued) && issued < now && issued > now - lifetimeMs) base = issued;
  return { token, expiresAt: base + lifetimeMs, lifetimeMs };
}

async function statusError(
  req: TokenRequest,
  realm: URL,
  res: Dispatcher.ResponseData,
  sent: Auth,
  secrets: string[],
): Promise<DrayError> {
  const status = res.statusCode;
  let body = '';
  try {
    body = await readText(req, realm, res, maxErrorBodyBytes, false);
  } catch (e) {
    if (req.signal?.aborted) throw e;
  }
  const { detail, oauthError } = errorDetail(body, secrets);
  const cause = new Error(`token service ${realm.host} responded ${status}${detail ? `: ${detail}` : ''}`);
  const login = `run 'dray login${loginTarget(req.registryHost)}'`;
  const rejected = status === 401 || status === 403 || (status === 400 && oauthError === 'invalid_grant');
  if (rejected) {
    switch (sent.kind) {
      case 'basic':
        return new DrayError(
          'DRAY_UNAUTHORIZED',
          `unauthorized: incorrect username or password for ${req.registryHost}`,
          { cause, hint: `${login} with the right username and password (or access token)` },
        );
      case 'identity-token':
        return new DrayError(
          'DRAY_UNAUTHORIZED',
          `unauthorized: the saved identity token for ${req.registryHost} was rejected`,
          { cause, hint: `${login} again; the token may have expired or been revoked` },
        );
      default:
        return new DrayError(
          'DRAY_UNAUTHORIZED',
          `unauthorized: authentication required for ${req.registryHost}`,
          {
            cause,
            hint: login,
          },
        );
    }
  }
  if (status === 429) {
    return new DrayError(
      'DRAY_TOO_MANY_REQUESTS',
      `toomanyrequests: token service ${realm.host} rate limit`,
      {
        cause,
        hint: 'wait and retry, or log in to get a higher rate limit',
      },
    );
  }
  return new DrayError(
    'DRAY_REGISTRY_ERROR',
    `token service ${realm.host} responded ${status}${detail ? `: ${detail}` : ''}`,
    { cause, hint: `the token service for ${req.registryHost} failed; retry later or check its status` },
  );
}

/** A short, secret-free description of an error body: distribution errors, OAuth2 errors, Docker Hub `details`. */
function errorDetail(body: string, secrets: string[]): { detail: string; oauthError?: string } {
  let detail = '';
  let oauthError: string | undefined;
  try {
    const doc = JSON.parse(body) as Record<string, unknown>;
    const errors = Array.isArray(doc.errors) ? (doc.errors as Record<string, unknown>[]) : [];
    const first = errors[0];
    if (first && typeof first === 'object') {
      detail = [first.code, first.message].filter((x) => typeof x === 'string' && x).join(': ');
    } else if (typeof doc.error === 'string') {
      oauthError = doc.error;
      detail =
        typeof doc.error_description === 'string' ? `${doc.error}: ${doc.error_description}` : doc.error;
    } else if (typeof doc.details === 'string') detail = doc.details;
    else if (typeof doc.message === 'string') detail = doc.message;
  } catch {
    detail = /^\s*</.test(body) ? '' : (body.trim().split(/\r?\n/, 1)[0] ?? '');
  }
  for (const s of secrets) if (s) detail = detail.split(s).join('REDACTED');
  detail = detail.replace(/[\x00-\x1f\x7f]/g, ' ');
  if (detail.length > 200) detail = `${detail.slice(0, 200)}…`;
  return oauthError === undefined ? { detail } : { detail, oauthError };
}

async function readText(
  req: TokenRequest,
  realm: URL,
  res: Dispatcher.ResponseData,
  limit: number,
  strict: boolean,
): Promise<string> {
  const declared = Number(res.headers['content-length']);
  if (strict && Number.isFinite(declared) && declared > limit) {
    res.body.destroy();
    throw new DrayError(
      'DRAY_REGISTRY_ERROR',
      `token response from ${realm.host} is larger than ${limit} bytes`,
    );
  }
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of res.body) {
      size += (chunk as Buffer).length;
      if (size > limit) {
        res.body.destroy();
        if (strict) {
          throw new DrayError(
            'DRAY_REGISTRY_ERROR',
            `token response from ${realm.host} is larger than ${limit} bytes`,
          );
        }
        break;
      }
      chunks.push(chunk as Buffer);
    }
  } catch (e) {
    if (e instanceof DrayError) throw e;
    throw networkError(req, realm, e);
  }
  return Buffer.concat(chunks).toString('utf8');
}

async function drain(res: Dispatcher.ResponseData): Promise<void> {
  try {
    await res.body.dump({ limit: maxErrorBodyBytes });
  } catch {
    // the connection is dropped instead; nothing to report
  }
}

function isRedirect(status: number): boolean {
  return status === 301 || status === 302 || status === 303 || status === 307 || status === 308;
}

function basicHeader(username: string, password: string): string {
  return `Basic ${Buffer.from(`${username}:${password}`, 'utf8').toString('base64')}`;
}

/** Every string that must never appear in a message: raw secrets and their Basic encodings. */
export function secretsOf(auth: Auth): string[] {
  switch (auth.kind) {
    case 'anonymous':
      return [];
    case 'basic':
      return [auth.password, Buffer.from(`${auth.username}:${auth.password}`).toString('base64')].filter(
        (s) => s.length >= 4,
      );
    case 'identity-token':
      return [auth.token].filter((s) => s.length >= 4);
    case 'registry-token':
      return [auth.token].filter((s) => s.length >= 4);
  }
}

function loginTarget(host: string): string {
  const h = host.toLowerCase();
  return h === 'docker.io' || h === 'index.docker.io' || h === 'registry-1.docker.io' ? '' : ` ${host}`;
}
