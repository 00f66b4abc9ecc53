import { DrayError, throwIfAborted } from '../errors.ts';
import type { Auth, CredentialStore } from './auth-types.ts';
import { credentialHelper } from './credential-helper.ts';
import {
  authConfigKey,
  authFromEntry,
  credentialHelperFor,
  findAuthEntry,
  loadDockerConfig,
} from './docker-config.ts';

/** Where credentials come from: a docker-compatible config dir. */
export interface CredentialStoreOptions {
  /** The directory holding `config.json` (the CLI resolves `DOCKER_CONFIG` / `~/.docker`). */
  configDir: string;
  /** Environment for credential helpers (their `PATH` finds `docker-credential-*`). Default: the process's. */
  helperEnv?: NodeJS.ProcessEnv;
  /** Kill a credential helper after this long (default 60 s). */
  helperTimeoutMs?: number;
}

/**
 * Credentials from the docker config in `configDir`, looked up per host as docker does:
 * `credHelpers[host]`, else `credsStore`, else the `auths` entry (exact key, then legacy
 * `https://host/…` keys). When a helper is configured for a host it is authoritative: if it has
 * nothing the host is anonymous, even when `auths` holds an old `auth` (docker's nativeStore).
 * Docker Hub (`docker.io`, `index.docker.io`, `registry-1.docker.io`) is looked up under
 * `https://index.docker.io/v1/`. The file is re-read on every `get`, so a `dray login` in
 * another process is seen. No I/O until `get`.
 *
 * `get` throws DRAY_CONFIG (malformed config.json), DRAY_CREDENTIALS (helper missing, failing or
 * timed out) or DRAY_ABORTED.
 */
export function createCredentialStore(o: CredentialStoreOptions): CredentialStore {
  const helperOptions = {
    ...(o.helperEnv ? { env: o.helperEnv } : {}),
    ...(o.helperTimeoutMs !== undefined ? { timeoutMs: o.helperTimeoutMs } : {}),
  };
  return {
    async get(host, g = {}) {
      throwIfAborted(g.signal, `looking up credentials for ${host}`);
      const config = await loadDockerConfig(o.configDir, g);
      const helper = credentialHelperFor(config, host);
      if (helper) return credentialHelper(helper, helperOptions).get(authConfigKey(host), g);
      const found = findAuthEntry(config, host);
      return found
        ? authFromEntry(found.entry, { path: config.path, key: found.key })
        : { kind: 'anonymous' };
    },
  };
}

/**
 * Credentials passed in directly by a library user: `{ 'ghcr.io': { kind: 'basic', … } }`.
 * Keys are hosts (`host[:port]`) or docker-style keys (`https://index.docker.io/v1/`,
 * `https://host/`); Docker Hub aliases are one host. Unknown hosts are anonymous. No I/O.
 * @throws DRAY_INVALID_ARGUMENT when two keys name the same host.
 */
export function staticCredentials(map: Record<string, Auth> | ReadonlyMap<string, Auth>): CredentialStore {
  const byKey = new Map<string, Auth>();
  const entries = map instanceof Map ? [...map.entries()] : Object.entries(map as Record<string, Auth>);
  for (const [host, auth] of entries) {
    const key = authConfigKey(host).toLowerCase();
    if (byKey.has(key)) {
      throw new DrayError('DRAY_INVALID_ARGUMENT', `credentials given twice for registry ${host}`);
    }
    byKey.set(key, auth);
  }
  return {
    async get(host, g = {}) {
      throwIfAborted(g.signal, `looking up credentials for ${host}`);
      return byKey.get(authConfigKey(host).toLowerCase()) ?? { kind: 'anonymous' };
    },
  };
}
