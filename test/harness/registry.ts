/**
 * A real Distribution registry (`docker-registry serve`, Debian package, 2.8) on a free
 * loopback port with filesystem storage in a temp dir, in one of three auth modes:
 * none (anonymous), htpasswd (Basic, bcrypt file) or token (Bearer, ES256 JWTs from
 * the in-test issuer in token-issuer.ts). Stopped (SIGTERM, then SIGKILL) and its
 * storage removed when the test ends.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { startProcess } from './process.ts';
import { startTokenIssuer, type TokenIssuer } from './token-issuer.ts';
import { freePort, runChecked, waitFor } from './tools.ts';

/** Anything with `after(fn)`: a node:test TestContext, or the bench's cleanup stack. */
export type Cleanup = Pick<TestContext, 'after'>;

export interface RegistryOptions {
  /** Default 'none'. */
  auth?: 'none' | 'htpasswd' | 'token';
  /** htpasswd mode: user → password (default { dray: 'dray-pass' }). Token mode: passed to the issuer this starts when `tokenIssuer` is absent. */
  users?: Record<string, string>;
  /** Token mode: the issuer to trust. Default: a new one started for this registry. */
  tokenIssuer?: TokenIssuer;
  /** storage.delete.enabled (default true). */
  deleteEnabled?: boolean;
  /** Fixed storage dir (e.g. to restart a registry over the same data). Default: a new temp dir, removed at the end. */
  dataDir?: string;
  /** Registry log level (default 'warn'). */
  logLevel?: 'error' | 'warn' | 'info' | 'debug';
}

export interface Registry {
  /** `127.0.0.1:PORT`: use as the registry part of a reference. */
  host: string;
  port: number;
  /** `http://127.0.0.1:PORT` */
  url: string;
  /** Filesystem storage root. */
  dataDir: string;
  /** Dir holding config.yml, the htpasswd file and registry.log. */
  configDir: string;
  auth: 'none' | 'htpasswd' | 'token';
  /** htpasswd/token users (user → password). */
  users: Record<string, string>;
  /** Token mode only. */
  tokenIssuer?: TokenIssuer;
  /** Tail of the registry's log (for failure messages). */
  logTail(bytes?: number): string;
  /** Stops the registry (idempotent); it is also stopped in t.after. */
  stop(): Promise<void>;
}

const DEFAULT_USERS: Record<string, string> = { dray: 'dray-pass' };

/**
 * Writes config.yml, starts `docker-registry serve config.yml` and waits until
 * `GET /v2/` answers 200 or 401. The caller must have checked `requireTool(t, 'docker-registry')`
 * (and `htpasswd` for htpasswd mode, `openssl` for token mode).
 */
export async function startRegistry(t: Cleanup, o: RegistryOptions = {}): Promise<Registry> {
  const auth = o.auth ?? 'none';
  const configDir = await mkdtemp(join(tmpdir(), 'dray-registry-'));
  const dataDir = o.dataDir ?? join(configDir, 'data');
  let users: Record<string, string> = o.users ?? DEFAULT_USERS;
  let issuer = o.tokenIssuer;
  if (auth === 'token' && issuer === undefined) {
    issuer = await startTokenIssuer(t, { users });
  }
  if (auth === 'token' && issuer !== undefined) users = issuer.users;

  let authYaml = '';
  if (auth === 'htpasswd') {
    const lines: string[] = [];
    for (const [user, pass] of Object.entries(users)) {
      // -B bcrypt (the only hash distribution accepts), -b password on the command line, -n print.
      const r = await runChecked('htpasswd', ['-Bbn', user, pass]);
      lines.push(r.stdout.trim());
    }
    const file = join(configDir, 'htpasswd');
    await writeFile(file, `${lines.join('\n')}\n`);
    authYaml = `auth:\n  htpasswd:\n    realm: dray-test-realm\n    path: ${file}\n`;
  } else if (auth === 'token') {
    if (issuer === undefined) throw new Error('token auth needs a token issuer');
    authYaml =
      'auth:\n  token:\n' +
      `    realm: ${issuer.realm}\n` +
      `    service: ${issuer.service}\n` +
      `    issuer: ${issuer.issuer}\n` +
      `    rootcertbundle: ${issuer.rootCertBundle}\n`;
  }

  let lastErr: unknown;
  // A port picked by freePort() can be taken before the registry binds it: retry a few times.
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await freePort();
    const config =
      'version: 0.1\n' +
      `log:\n  level: ${o.logLevel ?? 'warn'}\n  accesslog:\n    disabled: true\n` +
      `storage:\n  filesystem:\n    rootdirectory: ${dataDir}\n  delete:\n    enabled: ${o.deleteEnabled ?? true}\n` +
      '  cache:\n    blobdescriptor: inmemory\n' +
      `http:\n  addr: 127.0.0.1:${port}\n  secret: dray-test-secret-${port}\n` +
      authYaml;
    const configFile = join(configDir, 'config.yml');
    await writeFile(configFile, config);
    const proc = await startProcess('docker-registry', ['serve', configFile], {
      cwd: configDir,
      logFile: join(configDir, 'registry.log'),
    });
    const url = `http://127.0.0.1:${port}`;
    try {
      await waitFor(
        `docker-registry on ${url}`,
        async () => {
          if (proc.exited) throw new Error(`docker-registry exited: ${proc.logTail(1500)}`);
          const res = await fetch(`${url}/v2/`, { signal: AbortSignal.timeout(1000) });
          await res.body?.cancel();
          return res.status === 200 || res.status === 401;
        },
        { timeoutMs: 15_000 },
      );
    } catch (e) {
      lastErr = e;
      await proc.stop();
      continue;
    }
    let stopped: Promise<void> | undefined;
    const stop = () => {
      stopped ??= proc.stop();
      return stopped;
    };
    t.after(async () => {
      await stop();
      await rm(configDir, { recursive: true, force: true, maxRetries: 3 });
    });
    const reg: Registry = {
      host: `127.0.0.1:${port}`,
      port,
      url,
      dataDir,
      configDir,
      auth,
      users,
      logTail: proc.logTail,
      stop,
    };
    if (issuer !== undefined) reg.tokenIssuer = issuer;
    return reg;
  }
  await rm(configDir, { recursive: true, force: true });
  throw new Error('docker-registry did not start', { cause: lastErr });
}
