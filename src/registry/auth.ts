import { createHash } from 'node:crypto';
import type { Dispatcher } from 'undici';
import { abortError, DrayError, throwIfAborted } from '../errors.ts';
import type { Auth, Authenticator, Challenge, CredentialStore, Scope } from './auth-types.ts';
import { normalizeScopes, parseScope, scopesKey } from './challenge.ts';
import { fetchToken, type Token } from './token.ts';

export { formatScope, normalizeScopes, parseChallenges, parseScope, scopesKey } from './challenge.ts';
export { createCredentialStore, staticCredentials } from './credential-store.ts';

/** Options of {@link createAuthenticator}. */
export interface AuthenticatorOptions {
  /** Where credentials come from: `createCredentialStore({ configDir })` or `staticCredentials({…})`. */
  credentials: CredentialStore;
  /** undici dispatcher for token requests (pools, TLS, proxy). Default: undici's global one. */
  dispatcher?: Dispatcher;
  userAgent?: string;
  /** Clock in ms since the epoch (tests). Default `Date.now`. */
  now?: () => number;
  /**
   * Hosts credentials may be sent to over plain HTTP, in the registry's `insecureRegistries`
   * form (`host[:port]` or IPv4 CIDR). Loopback hosts always may.
   */
  insecureRegistries?: readonly string[];
}

interface CachedToken {
  header: string;
  /** ms since the epoch after which the header is no longer handed out. */
  usableUntil: number;
}

interface Flight {
  promise: Promise<Token>;
  controller: AbortController;
  waiters: number;
  settled: boolean;
}

/** Refresh this long before a token expires: a fifth of its lifetime, at most 30 s. */
function refreshMarginMs(lifetimeMs: number): number {
  return Math.min(30_000, lifetimeMs / 5);
}

/**
 * Answers registry challenges with credentials from `o.credentials` (see auth-types.ts).
 *
 * - A `registrytoken` credential is sent as `Bearer <token>` whatever the challenge.
 * - `Bearer realm=… service=…` (preferred when several challenges are offered): a token from the
 *   realm for the requested scopes plus any `scope` the challenge names, fetched anonymously,
 *   with Basic credentials, or through the OAuth2 refresh-token grant (see token.ts). Tokens
 *   are cached per (host, service, scopes, identity) until shortly before they expire; a
 *   concurrent request for the same token waits for the one in flight.
 * - `Basic`: `Basic base64(user:password)` for basic credentials, else undefined (anonymous).
 * - No challenge dray understands: undefined.
 *
 * Credentials are looked up per `authorize` call (after a 401), never cached here.
 * `authorize` throws DRAY_UNAUTHORIZED, DRAY_INSECURE_REGISTRY, DRAY_REGISTRY_UNREACHABLE,
 * DRAY_REGISTRY_ERROR, DRAY_TOO_MANY_REQUESTS, DRAY_CREDENTIALS, DRAY_CONFIG or DRAY_ABORTED.
 * No I/O until `authorize`.
 */
export function createAuthenticator(o: AuthenticatorOptions): Authenticator {
  const now = o.now ?? Date.now;
  /** (host, service, scopes, identity) → token. */
  const tokens = new Map<string, CachedToken>();
  /** (host, requested scopes) → tokens key, for `cached()`, which knows neither service nor identity. */
  const latest = new Map<string, string>();
  /** host → a scope-independent answer (Basic, registry token). */
  const hostWide = new Map<string, string>();
  const flights = new Map<string, Flight>();

  const hostKey = (host: string) => host.toLowerCase();
  const requestKey = (host: string, scopes: readonly Scope[]) => `${hostKey(host)}|${scopesKey(scopes)}`;

  function lookup(key: string): string | undefined {
    const t = tokens.get(key);
    if (!t) return undefined;
    if (now() < t.usableUntil) return t.header;
    tokens.delete(key);
    return undefined;
  }

  /** Joins (or starts) the one token request for `key`; a waiter's abort only detaches it. */
  async function shared(key: string, start: (signal: AbortSignal) => Promise<Token>, signal?: AbortSignal) {
    let f = flights.get(key);
    if (!f) {
      const controller = new AbortController();
      const flight: Flight = { controller, waiters: 0, settled: false, promise: Promise.resolve() as never };
      flight.promise = start(controller.signal).finally(() => {
        flight.settled = true;
        if (flights.get(key) === flight) flights.delete(key);
      });
      flight.promise.catch(() => {}); // observed by the waiters; no unhandled rejection if all left
      flights.set(key, flight);
      f = flight;
    }
    const flight = f;
    flight.waiters++;
    try {
      return await raceAbort(flight.promise, signal);
    } finally {
      flight.waiters--;
      if (flight.waiters === 0 && !flight.settled) {
        flight.controller.abort(signal?.reason);
        if (flights.get(key) === flight) flights.delete(key);
      }
    }
  }

  async function bearer(
    host: string,
    challenge: Challenge,
    scopes: Scope[],
    auth: Auth,
    signal?: AbortSignal,
  ) {
    const realm = challenge.params.realm;
    if (!realm) {
      throw new DrayError('DRAY_REGISTRY_ERROR', `registry ${host} sent a Bearer challenge without a realm`, {
        hint: 'the registry cannot issue tokens; check its auth configuration',
      });
    }
    const service = challenge.params.service;
    // The challenge may name the scope it wants (error="insufficient_scope"); ask for both.
    const wanted = normalizeScopes([...scopes, ...challengeScopes(challenge)]);
    const key = [hostKey(host), realm, service ?? '', scopesKey(wanted), identity(auth)].join('|');
    const hit = lookup(key);
    if (hit) {
      latest.set(requestKey(host, scopes), key);
      return hit;
    }
    const token = await shared(
      key,
      (s) =>
        fetchToken({
          registryHost: host,
          realm,
          ...(service !== undefined ? { service } : {}),
          scopes: wanted,
          auth,
          ...(o.dispatcher ? { dispatcher: o.dispatcher } : {}),
          ...(o.userAgent ? { userAgent: o.userAgent } : {}),
          ...(o.insecureRegistries ? { insecureRegistries: o.insecureRegistries } : {}),
          now,
          signal: s,
        }),
      signal,
    );
    const header = `Bearer ${token.token}`;
    tokens.set(key, { header, usableUntil: token.expiresAt - refreshMarginMs(token.lifetimeMs) });
    latest.set(requestKey(host, scopes), key);
    return header;
  }

  return {
    async authorize(host, challenges, scopes, a = {}) {
      throwIfAborted(a.signal, `authorizing to ${host}`);
      const bearerChallenge = challenges.find((c) => c.scheme === 'bearer');
      const basicChallenge = challenges.find((c) => c.scheme === 'basic');
      if (!bearerChallenge && !basicChallenge) return undefined;
      const auth = await o.credentials.get(host, a);
      if (auth.kind === 'registry-token') {
        const header = `Bearer ${auth.token}`;
        hostWide.set(hostKey(host), header);
        return header;
      }
      if (bearerChallenge) return bearer(host, bearerChallenge, [...scopes], auth, a.signal);
      if (auth.kind === 'basic') {
        const header = `Basic ${Buffer.from(`${auth.username}:${auth.password}`, 'utf8').toString('base64')}`;
        hostWide.set(hostKey(host), header);
        return header;
      }
      // Basic challenge without a password (anonymous, or an identity token, which only a
      // token service understands): go anonymous and let the registry's answer decide.
      return undefined;
    },
    cached(host, scopes) {
      const key = latest.get(requestKey(host, scopes));
      if (key) {
        const hit = lookup(key);
        if (hit) return hit;
        latest.delete(requestKey(host, scopes));
      }
      return hostWide.get(hostKey(host));
    },
    invalidate(host, scopes) {
      const rk = requestKey(host, scopes);
      const key = latest.get(rk);
      if (key) tokens.delete(key);
      latest.delete(rk);
      hostWide.delete(hostKey(host));
    },
  };
}

/** The challenge's `scope` parameter (space-separated scopes); unparsable entries are ignored. */
function challengeScopes(c: Challenge): Scope[] {
  const out: Scope[] = [];
  for (const s of (c.params.scope ?? '').split(' ')) {
    if (!s) continue;
    try {
      out.push(parseScope(s));
    } catch {
      // a resource type dray does not request (e.g. `repository(plugin)`): leave it out
    }
  }
  return out;
}

/**
 * Who is asking, for the token cache key: a hash, so that a changed password or token gets
 * its own cache entry while no secret is kept as a map key.
 */
function identity(auth: Auth): string {
  switch (auth.kind) {
    case 'anonymous':
      return 'anonymous';
    case 'basic':
      return `basic:${digest(`${auth.username}\0${auth.password}`)}`;
    case 'identity-token':
      return `identity:${digest(`${auth.username ?? ''}\0${auth.token}`)}`;
    case 'registry-token':
      return `registry:${digest(auth.token)}`;
  }
}

function digest(s: string): string {
  return createHash('sha256').update(s).digest('hex').slice(0, 32);
}

function raceAbort<T>(p: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return p;
  if (signal.aborted) return Promise.reject(abortError(signal));
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(abortError(signal, 'token request'));
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (e: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(e);
      },
    );
  });
}
