import { spawn } from 'node:child_process';
import { abortError, DrayError, throwIfAborted } from '../errors.ts';
import type { Auth } from './auth-types.ts';

/**
 * The docker-credential-helpers protocol: run `docker-credential-<name> <action>`, write the
 * input on stdin, read stdout. `get` takes the server URL and prints
 * `{"ServerURL","Username","Secret"}`; `store` takes that JSON; `erase` takes the server URL;
 * `list` prints `{url: username}`. A failing helper exits non-zero and prints its error on
 * stdout; `credentials not found in native keychain` means "no credentials". A `Username` of
 * `<token>` marks `Secret` as an identity (OAuth2 refresh) token.
 */

/** The JSON a helper reads on `store` and prints on `get`. */
export interface HelperCredentials {
  ServerURL: string;
  Username: string;
  Secret: string;
}

/** How helpers are spawned. */
export interface CredentialHelperOptions {
  /**
   * Environment of the helper; its `PATH` is where `docker-credential-<name>` is looked up.
   * Default: the process environment (spawn's default).
   */
  env?: NodeJS.ProcessEnv;
  /** Kill the helper after this long (default 60 s; helpers may prompt, e.g. a GPG pinentry). */
  timeoutMs?: number;
  signal?: AbortSignal;
}

/** One helper program. Every method spawns it once. */
export interface CredentialHelper {
  /** The executable name, `docker-credential-<name>`. */
  readonly program: string;
  /**
   * Credentials for `serverUrl`; anonymous when the helper has none.
   * @throws DRAY_CREDENTIALS (missing, failing or timed-out helper, bad output), DRAY_ABORTED.
   */
  get(serverUrl: string, o?: { signal?: AbortSignal }): Promise<Auth>;
  /** @throws DRAY_CREDENTIALS, DRAY_ABORTED. */
  store(creds: HelperCredentials, o?: { signal?: AbortSignal }): Promise<void>;
  /** `erased: false` when the helper had nothing for `serverUrl`. @throws DRAY_CREDENTIALS, DRAY_ABORTED. */
  erase(serverUrl: string, o?: { signal?: AbortSignal }): Promise<{ erased: boolean }>;
  /** Server URL → user name. @throws DRAY_CREDENTIALS, DRAY_ABORTED. */
  list(o?: { signal?: AbortSignal }): Promise<Record<string, string>>;
}

/** docker-credential-helpers' `credentials.NewErrCredentialsNotFound()` text. */
const notFoundMessage = 'credentials not found in native keychain';
/** The user name helpers store identity tokens under (docker/cli native_store.go). */
export const identityTokenUsername = '<token>';
const defaultTimeoutMs = 60_000;
const maxOutputBytes = 1 << 20;

/**
 * A handle on `docker-credential-<name>`. No I/O until a method is called.
 * @throws DRAY_CONFIG when `name` is not a plain program suffix (`../x`, spaces…): a config file
 *   must not be able to run arbitrary paths.
 */
export function credentialHelper(name: string, defaults: CredentialHelperOptions = {}): CredentialHelper {
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(name)) {
    throw new DrayError('DRAY_CONFIG', `invalid credential helper name "${name}"`, {
      hint: "a credential helper is named by the suffix of its program 'docker-credential-<name>'",
    });
  }
  const program = `docker-credential-${name}`;
  const run = (action: string, input: string, secrets: string[], o: { signal?: AbortSignal } = {}) =>
    runHelper(program, action, input, secrets, {
      ...defaults,
      signal: joinSignals(defaults.signal, o.signal),
    });

  return {
    program,
    async get(serverUrl, o) {
      const r = await run('get', serverUrl, [], o);
      if (r.code !== 0) {
        if (isNotFound(r.stdout)) return { kind: 'anonymous' };
        throw helperFailed(program, 'get', serverUrl, r, []);
      }
      // Some helpers answer "no credentials" with exit 0 and an empty body.
      if (r.stdout.trim() === '' || isNotFound(r.stdout)) return { kind: 'anonymous' };
      let doc: unknown;
      try {
        doc = JSON.parse(r.stdout);
      } catch {
        throw new DrayError(
          'DRAY_CREDENTIALS',
          `credential helper ${program} printed invalid JSON for ${serverUrl}`,
          {
            hint: `check that ${program} works: echo ${serverUrl} | ${program} get`,
          },
        );
      }
      const c = (typeof doc === 'object' && doc !== null ? doc : {}) as Record<string, unknown>;
      const username = typeof c.Username === 'string' ? c.Username : '';
      const secret = typeof c.Secret === 'string' ? c.Secret : '';
      if (username === identityTokenUsername) {
        return secret ? { kind: 'identity-token', token: secret } : { kind: 'anonymous' };
      }
      if (!username && !secret) return { kind: 'anonymous' };
      return { kind: 'basic', username, password: secret };
    },
    async store(creds, o) {
      const r = await run('store', JSON.stringify(creds), [creds.Secret], o);
      if (r.code !== 0) throw helperFailed(program, 'store', creds.ServerURL, r, [creds.Secret]);
    },
    async erase(serverUrl, o) {
      const r = await run('erase', serverUrl, [], o);
      if (r.code === 0) return { erased: true };
      if (isNotFound(r.stdout)) return { erased: false };
      throw helperFailed(program, 'erase', serverUrl, r, []);
    },
    async list(o) {
      const r = await run('list', 'unused', [], o);
      if (r.code !== 0) throw helperFailed(program, 'list', undefined, r, []);
      try {
        const doc: unknown = JSON.parse(r.stdout);
        if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw new Error('not an object');
        const out: Record<string, string> = {};
        for (const [k, v] of Object.entries(doc)) if (typeof v === 'string') out[k] = v;
        return out;
      } catch {
        throw new DrayError('DRAY_CREDENTIALS', `credential helper ${program} printed an invalid list`, {
          hint: `check that ${program} works: ${program} list`,
        });
      }
    },
  };
}

interface HelperResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

function isNotFound(out: string): boolean {
  const t = out.trim().toLowerCase();
  // docker matches the exact text; a few helpers word it slightly differently.
  return t === notFoundMessage || t === 'credentials not found';
}

/**
 * Spawns the helper with `input` on stdin. Resolves with its exit status and output; rejects
 * only for spawn failures (missing program), timeouts and aborts.
 */
function runHelper(
  program: string,
  action: string,
  input: string,
  secrets: string[],
  o: CredentialHelperOptions,
): Promise<HelperResult> {
  throwIfAborted(o.signal, `${program} ${action}`);
  const timeoutMs = o.timeoutMs ?? defaultTimeoutMs;
  const timeout = AbortSignal.timeout(timeoutMs);
  const signal = joinSignals(o.signal, timeout) ?? timeout;
  return new Promise<HelperResult>((resolve, reject) => {
    const child = spawn(program, [action], {
      env: o.env,
      signal,
      killSignal: 'SIGKILL',
      stdio: ['pipe', 'pipe', 'pipe'],
      windowsHide: true,
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let outBytes = 0;
    let errBytes = 0;
    let tooLarge = false;
    child.stdout.on('data', (b: Buffer) => {
      outBytes += b.length;
      if (outBytes > maxOutputBytes) {
        tooLarge = true;
        child.kill('SIGKILL');
      } else out.push(b);
    });
    child.stderr.on('data', (b: Buffer) => {
      errBytes += b.length;
      if (errBytes <= 64 * 1024) err.push(b);
    });
    // A helper that exits without reading stdin makes our write fail with EPIPE: not our error.
    child.stdin.on('error', () => {});
    child.stdin.end(input);
    child.on('error', (e: NodeJS.ErrnoException) => {
      if (o.signal?.aborted) return reject(abortError(o.signal, `${program} ${action}`));
      if (timeout.aborted) {
        return reject(
          new DrayError(
            'DRAY_CREDENTIALS',
            `credential helper ${program} timed out after ${timeoutMs} ms (${action})`,
            {
              hint: `check that ${program} does not wait for input, or raise its timeout`,
            },
          ),
        );
      }
      if (e.code === 'ENOENT') {
        return reject(
          new DrayError('DRAY_CREDENTIALS', `credential helper ${program} not found on PATH`, {
            cause: new Error(`spawn ${program} ENOENT`),
            hint: `install ${program}, or remove it from credsStore/credHelpers in the docker config`,
          }),
        );
      }
      reject(
        new DrayError('DRAY_CREDENTIALS', `cannot run credential helper ${program}: ${e.code ?? 'error'}`, {
          cause: new Error(redact(e.message, secrets)),
          hint: `check that ${program} is executable`,
        }),
      );
    });
    child.on('close', (code, sig) => {
      if (signal.aborted) return; // 'error' reported it
      if (tooLarge) {
        return reject(
          new DrayError(
            'DRAY_CREDENTIALS',
            `credential helper ${program} printed more than ${maxOutputBytes} bytes`,
          ),
        );
      }
      resolve({
        code,
        signal: sig,
        stdout: Buffer.concat(out).toString('utf8'),
        stderr: Buffer.concat(err).toString('utf8'),
      });
    });
  });
}

function helperFailed(
  program: string,
  action: string,
  serverUrl: string | undefined,
  r: HelperResult,
  secrets: string[],
): DrayError {
  const status = r.signal ? `killed by ${r.signal}` : `exit status ${r.code}`;
  const said = helperOutput(r.stdout, secrets) || helperOutput(r.stderr, secrets);
  const verb = { get: 'getting', store: 'storing', erase: 'erasing', list: 'listing' }[action] ?? action;
  const target = serverUrl ? ` for ${serverUrl}` : '';
  return new DrayError(
    'DRAY_CREDENTIALS',
    `error ${verb} credentials${target} with ${program}: ${status}${said ? `: ${said}` : ''}`,
    { hint: `check that ${program} works and is unlocked, or remove it from the docker config` },
  );
}

/**
 * A short excerpt of what the helper printed, safe to show: one line, at most 200 characters,
 * any secret we know of replaced, and nothing that looks like a credentials document.
 */
function helperOutput(text: string, secrets: string[]): string {
  const t = text.trim();
  if (!t) return '';
  if (/"Secret"|"password"|"token"/i.test(t)) return '(output withheld)';
  const line = redact(t.split(/\r?\n/, 1)[0] ?? '', secrets);
  return line.length > 200 ? `${line.slice(0, 200)}…` : line;
}

function redact(text: string, secrets: string[]): string {
  let s = text;
  for (const secret of secrets) if (secret) s = s.split(secret).join('REDACTED');
  return s;
}

function joinSignals(a: AbortSignal | undefined, b: AbortSignal | undefined): AbortSignal | undefined {
  if (a && b) return AbortSignal.any([a, b]);
  return a ?? b;
}
