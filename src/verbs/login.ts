import { DrayError, throwIfAborted } from '../errors.ts';
import type { RunOptions } from '../progress/index.ts';
import {
  createAuthenticator,
  createRegistryClient,
  credentialHost,
  removeCredentials,
  saveCredentials,
  staticCredentials,
} from '../registry/index.ts';

export interface LoginOptions extends RunOptions {
  /** docker-compatible config dir whose config.json (or credential helper) receives the credentials. */
  configDir: string;
  username: string;
  password: string;
  insecureRegistries?: string[];
}

export interface LoginResult {
  /** The host the credentials were checked against and stored for (docker.io for Docker Hub). */
  host: string;
}

/** docker login's default server. */
const defaultServer = 'docker.io';

/**
 * Checks `username`/`password` against the registry (Basic, or a Bearer token fetched
 * with them, exactly as a pull would authenticate) and, when they work, stores them in the
 * config dir as `docker login` does (credential helper, credsStore, or base64 in config.json,
 * mode 0600). Nothing is stored when the check fails.
 * Throws DRAY_UNAUTHORIZED (`unauthorized: incorrect username or password`),
 * DRAY_REGISTRY_UNREACHABLE, DRAY_CREDENTIALS, DRAY_CONFIG, DRAY_INVALID_ARGUMENT.
 */
export async function login(server: string | undefined, o: LoginOptions): Promise<LoginResult> {
  throwIfAborted(o.signal);
  const host = credentialHost(serverHost(server ?? defaultServer));
  if (!o.username)
    throw new DrayError('DRAY_INVALID_ARGUMENT', 'username is empty', { hint: 'pass -u USER' });
  if (!o.password) {
    throw new DrayError('DRAY_INVALID_ARGUMENT', 'password is empty', {
      hint: 'pass --password-stdin or -p',
    });
  }
  const credentials = staticCredentials({
    [host]: { kind: 'basic', username: o.username, password: o.password },
  });
  const client = createRegistryClient({
    authenticator: createAuthenticator({ credentials }),
    ...(o.insecureRegistries ? { insecureRegistries: o.insecureRegistries } : {}),
  });
  try {
    const answer = await client.ping(host, { ...(o.signal ? { signal: o.signal } : {}) });
    if (!answer.authenticated) {
      throw new DrayError(
        'DRAY_UNAUTHORIZED',
        `login to ${host} failed: unauthorized: incorrect username or password`,
        {
          hint: 'check the user name and password (or access token)',
        },
      );
    }
  } finally {
    await client.close();
  }
  await saveCredentials(
    o.configDir,
    host,
    { username: o.username, password: o.password },
    { ...(o.signal ? { signal: o.signal } : {}) },
  );
  return { host };
}

export interface LogoutOptions extends RunOptions {
  configDir: string;
}

/** Removes stored credentials for a server (docker logout). Returns false when there were none. */
export async function logout(
  server: string | undefined,
  o: LogoutOptions,
): Promise<{ host: string; removed: boolean }> {
  throwIfAborted(o.signal);
  const host = credentialHost(serverHost(server ?? defaultServer));
  const { removed } = await removeCredentials(o.configDir, host, {
    ...(o.signal ? { signal: o.signal } : {}),
  });
  return { host, removed };
}

/** Accepts `host[:port]` or a URL (`https://host/v1/`) as docker login does. */
function serverHost(server: string): string {
  const s = server.trim();
  if (/^[a-z]+:\/\//i.test(s)) {
    try {
      return new URL(s).host;
    } catch {
      throw new DrayError('DRAY_INVALID_ARGUMENT', `invalid registry address: ${s}`);
    }
  }
  const host = s.split('/')[0] ?? '';
  if (!host)
    throw new DrayError('DRAY_INVALID_ARGUMENT', `invalid registry address: ${JSON.stringify(server)}`);
  return host;
}
