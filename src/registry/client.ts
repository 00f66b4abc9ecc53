import type { Dispatcher } from 'undici';
import { DrayError, throwIfAborted } from '../errors.ts';
import type { RunOptions } from '../progress/index.ts';
import type { Authenticator, Challenge, Scope } from './auth-types.ts';
import { parseChallenges } from './challenge.ts';
import { isInsecureAllowed, isLoopbackHost, registryHost } from './endpoint.ts';
import { networkError, readErrorBody, statusError } from './errors.ts';
import { Repository } from './repository.ts';
import { type ResolvedRetryOptions, type RetryOptions, resolveRetryOptions } from './retry.ts';
import {
  authMiddleware,
  composeTransport,
  discard,
  type Middleware,
  type RetryListener,
  retryMiddleware,
  type Send,
  type TransportRequest,
  type TransportResponse,
  undiciSend,
  userAgentMiddleware,
} from './transport.ts';
import { undici } from './undici.ts';

export interface RegistryClientOptions {
  /** Answers auth challenges; default anonymous (every 401 is final). */
  authenticator?: Authenticator;
  /**
   * Hosts (`host[:port]`, or an IPv4 CIDR) that may be spoken to over plain HTTP. Loopback
   * hosts (localhost, 127.0.0.0/8, [::1]) are always allowed, as in docker.
   */
  insecureRegistries?: string[];
  /** Parallel blob transfers a graph copy should run against this client. Default 4. */
  concurrency?: number;
  /** Retry policy for replayable requests; default 5 attempts, 200 ms … 5 s backoff. */
  retry?: RetryOptions;
  /** Upload blobs in PATCH chunks of this size; default: one monolithic PUT. */
  chunkSizeBytes?: number;
  userAgent?: string;
  /** Use this dispatcher instead of an own undici Agent (it is not closed by `close()`). */
  dispatcher?: Dispatcher;
  /** TLS settings for the client's own Agent (ignored with `dispatcher`). */
  tls?: { ca?: string | Buffer; rejectUnauthorized?: boolean };
  /** Observes retries (tests, debug logs). Receives no credentials. */
  onRetry?: RetryListener;
  /** Extra middlewares, outermost first, inserted outside auth and retry (logging, metrics). */
  middlewares?: Middleware[];
}

/** What a Repository needs from its client; internal to the registry module. */
export interface RegistryContext {
  send(req: TransportRequest): Promise<TransportResponse>;
  origin(host: string, signal?: AbortSignal): Promise<string>;
  readonly retry: ResolvedRetryOptions;
  readonly chunkSizeBytes: number | undefined;
  readonly concurrency: number;
}

export const defaultUserAgent = 'dray/0.1.0';

/** A repository name as the reference module produces it (`{domain, path}`; tag/digest ignored). */
export interface RepositoryName {
  domain: string;
  path: string;
}

/**
 * An OCI distribution-spec client for any number of registries. Holds one connection pool,
 * the transport (user agent → retry → auth → undici) and a per-host cache of the scheme
 * (https, or http for insecure hosts) that worked. Creating one does no I/O.
 */
export class RegistryClient {
  readonly concurrency: number;
  readonly #agent: Dispatcher;
  readonly #ownAgent: boolean;
  readonly #send: Send;
  readonly #probe: Send;
  readonly #insecure: string[];
  readonly #schemes = new Map<string, Promise<'https' | 'http'>>();
  readonly #ctx: RegistryContext;

  constructor(o: RegistryClientOptions = {}) {
    if (o.chunkSizeBytes !== undefined && !(Number.isInteger(o.chunkSizeBytes) && o.chunkSizeBytes > 0)) {
      throw new DrayError('DRAY_INVALID_ARGUMENT', `invalid chunk size: ${o.chunkSizeBytes}`, {
        hint: 'chunkSizeBytes must be a positive integer',
      });
    }
    this.concurrency = Math.max(1, Math.floor(o.concurrency ?? 4));
    this.#ownAgent = o.dispatcher === undefined;
    this.#agent =
      o.dispatcher ??
      new (undici().Agent)({
        connections: Math.max(8, this.concurrency * 2),
        ...(o.tls
          ? {
              connect: {
                ...(o.tls.ca !== undefined ? { ca: o.tls.ca } : {}),
                ...(o.tls.rejectUnauthorized !== undefined
                  ? { rejectUnauthorized: o.tls.rejectUnauthorized }
                  : {}),
              },
            }
          : {}),
      });
    const redirecting = this.#agent.compose(undici().interceptors.redirect({ maxRedirections: 5 }));
    const base = undiciSend({ dispatcher: this.#agent, redirecting });
    const retry = resolveRetryOptions(o.retry);
    const ua = userAgentMiddleware(o.userAgent ?? defaultUserAgent);
    const mws: Middleware[] = [ua, ...(o.middlewares ?? []), retryMiddleware(retry, o.onRetry)];
    if (o.authenticator) mws.push(authMiddleware(o.authenticator));
    this.#send = composeTransport(base, ...mws);
    this.#probe = composeTransport(base, ua);
    this.#insecure = o.insecureRegistries ?? [];
    const self = this;
    this.#ctx = {
      send: (req) => this.#send(req),
      origin: (host, signal) => this.#origin(host, signal),
      retry,
      chunkSizeBytes: o.chunkSizeBytes,
      get concurrency() {
        return self.concurrency;
      },
    };
  }

  /** A handle on one repository (no I/O). `docker.io` names are served by registry-1.docker.io. */
  repository(name: RepositoryName): Repository {
    return new Repository(this.#ctx, name);
  }

  /**
   * GET /v2/ on `host`: which scheme answered and the auth challenges it returned (none for
   * an anonymous registry). Throws DRAY_REGISTRY_UNREACHABLE, DRAY_INSECURE_REGISTRY, or
   * DRAY_REGISTRY_ERROR for a status other than 200/401.
   */
  async ping(
    host: string,
    o: RunOptions = {},
  ): Promise<{ scheme: 'https' | 'http'; challenges: Challenge[]; authenticated: boolean }> {
    throwIfAborted(o.signal, `ping ${host}`);
    const h = registryHost(host);
    const origin = await this.#origin(h, o.signal);
    const url = new URL('/v2/', origin);
    const req: TransportRequest = {
      method: 'GET',
      url,
      headers: {},
      registry: h,
      scopes: [],
      ...sig(o.signal),
    };
    let res: TransportResponse;
    try {
      res = await this.#send(req);
    } catch (e) {
      throw networkError(e, req, h, o.signal);
    }
    const scheme = url.protocol === 'http:' ? 'http' : 'https';
    if (res.status === 200 || res.status === 401) {
      discard(res);
      // 200 after the auth middleware answered any challenge = the credentials work (docker login's check).
      return {
        scheme,
        challenges: parseChallenges(res.headers['www-authenticate']),
        authenticated: res.status === 200,
      };
    }
    const body = await readErrorBody(res.body);
    throw statusError({ status: res.status, statusText: res.statusText, body }, req, {
      action: 'pull',
      repository: h,
      host: h,
      what: { kind: 'ping' },
    });
  }

  /** Closes the connection pool (unless it was passed in). */
  async close(): Promise<void> {
    if (this.#ownAgent) await this.#agent.close();
  }

  /**
   * The origin (`https://host`) to use for a host. Secure hosts are https without a probe.
   * Insecure-allowed hosts are probed once with GET /v2/ and the scheme that answered is
   * cached: https first then http (docker's order), except loopback hosts, which try http
   * first because a local test registry almost always speaks plain HTTP.
   */
  async #origin(host: string, signal?: AbortSignal): Promise<string> {
    if (!isInsecureAllowed(host, this.#insecure)) return `https://${host}`;
    let p = this.#schemes.get(host);
    if (!p) {
      p = this.#detectScheme(host, signal);
      this.#schemes.set(host, p);
      p.catch(() => this.#schemes.delete(host));
    }
    return `${await p}://${host}`;
  }

  async #detectScheme(host: string, signal?: AbortSignal): Promise<'https' | 'http'> {
    const order: ('https' | 'http')[] = isLoopbackHost(host) ? ['http', 'https'] : ['https', 'http'];
    let first: unknown;
    for (const scheme of order) {
      const req: TransportRequest = {
        method: 'GET',
        url: new URL(`${scheme}://${host}/v2/`),
        headers: {},
        registry: host,
        scopes: [],
        ...sig(signal),
      };
      try {
        const res = await this.#probe(req);
        discard(res);
        return scheme;
      } catch (e) {
        if (signal?.aborted) throw networkError(e, req, host, signal);
        first ??= networkError(e, req, host, signal);
      }
    }
    throw first;
  }
}

function sig(signal: AbortSignal | undefined): { signal?: AbortSignal } {
  return signal ? { signal } : {};
}

/** Creates a RegistryClient (no I/O). See RegistryClientOptions for defaults. */
export function createRegistryClient(o: RegistryClientOptions = {}): RegistryClient {
  return new RegistryClient(o);
}

/** Scopes for a repository (distribution token spec `repository:<name>:<actions>`). */
export function repositoryScope(name: string, actions: string[]): Scope {
  return { type: 'repository', name, actions };
}
