/**
 * The seam between credentials (what the user has: docker config.json, credential helpers)
 * and the transport (what a registry asks for: a WWW-Authenticate challenge).
 */

/** What dray may present to a registry host. Never logged or printed. */
export type Auth =
  | { kind: 'anonymous' }
  | { kind: 'basic'; username: string; password: string }
  /** An OAuth2 refresh token (docker config `identitytoken`), exchanged at the token realm. */
  | { kind: 'identity-token'; username?: string; token: string }
  /** A ready bearer token used as is (docker config `registrytoken`). */
  | { kind: 'registry-token'; token: string };

/** Looks up credentials for a registry host (`host[:port]`, docker.io as `docker.io`). */
export interface CredentialStore {
  get(host: string, o?: { signal?: AbortSignal }): Promise<Auth>;
}

/** A parsed WWW-Authenticate challenge (RFC 7235), scheme lower-cased, parameter names lower-cased. */
export interface Challenge {
  scheme: string;
  params: Record<string, string>;
}

/** A repository scope as the distribution token spec writes it: `repository:name:pull,push`. */
export interface Scope {
  type: 'repository' | 'registry';
  name: string;
  actions: string[];
}

/**
 * Answers a registry's challenge. The transport calls it after a 401 (and up front when it
 * already has a cached answer for the host and scopes).
 */
export interface Authenticator {
  /**
   * The `Authorization` header value to send to `host` for `scopes`, given the challenges
   * the host returned; undefined = go anonymous. Bearer tokens are fetched from the realm
   * and cached until they expire.
   * Throws DRAY_UNAUTHORIZED when the token service rejects the credentials.
   */
  authorize(
    host: string,
    challenges: Challenge[],
    scopes: Scope[],
    o?: { signal?: AbortSignal },
  ): Promise<string | undefined>;
  /** A cached header for host+scopes, if any (lets the transport skip the first 401). */
  cached(host: string, scopes: Scope[]): string | undefined;
  /** Forget cached answers for host+scopes (after the registry rejected one). */
  invalidate(host: string, scopes: Scope[]): void;
}
