import { randomBytes } from 'node:crypto';
import { constants as fsConstants } from 'node:fs';
import { mkdir, open, readFile, realpath, rename, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import * as z from 'zod/mini';
import en from 'zod/v4/locales/en.js';
import { DrayError, throwIfAborted } from '../errors.ts';
import type { Auth } from './auth-types.ts';
import { type CredentialHelperOptions, credentialHelper } from './credential-helper.ts';

/**
 * The docker CLI's `config.json` (`$DOCKER_CONFIG/config.json`, default `~/.docker`), read and
 * written as docker/cli `cli/config/configfile` and `cli/config/credentials` do, so that
 * `dray login` and `docker login` share credentials. Only the credential keys (`auths`,
 * `credHelpers`, `credsStore`) are interpreted; every other key is kept as is on save.
 */

/** The `auths` key docker uses for Docker Hub (its "index server"). */
export const dockerHubAuthKey = 'https://index.docker.io/v1/';

/** Names a registry host may carry for Docker Hub; all map to {@link dockerHubAuthKey}. */
const dockerHubHosts = new Set(['docker.io', 'index.docker.io', 'registry-1.docker.io']);

/** One `auths` entry as stored on disk (docker `types.AuthConfig` JSON names). */
export interface DockerAuthEntry {
  /** base64 of `username:password`. */
  auth?: string;
  username?: string;
  password?: string;
  /** OAuth2 refresh token returned by a registry at login. */
  identitytoken?: string;
  /** Bearer token used as is. */
  registrytoken?: string;
  email?: string;
  [key: string]: unknown;
}

/** The parsed config file: the credential keys plus the raw document (for lossless saving). */
export interface DockerConfig {
  /** Absolute path of `config.json` (whether or not it exists). */
  path: string;
  auths: Record<string, DockerAuthEntry>;
  /** host (or `https://index.docker.io/v1/`) → helper suffix (`docker-credential-<suffix>`). */
  credHelpers: Record<string, string>;
  credsStore?: string;
  /** The whole document as read; unknown keys survive a save untouched. */
  raw: Record<string, unknown>;
}

const authEntrySchema = z.looseObject({
  auth: z.optional(z.string()),
  username: z.optional(z.string()),
  password: z.optional(z.string()),
  identitytoken: z.optional(z.string()),
  registrytoken: z.optional(z.string()),
  email: z.optional(z.string()),
});

// Go's decoder accepts `null` for maps and strings; so do we.
/** zod/mini has no messages of its own: English ones, per parse (no global zod config). */
const english = { error: en().localeError };

const configSchema = z.looseObject({
  auths: z.nullish(z.record(z.string(), authEntrySchema)),
  credHelpers: z.nullish(z.record(z.string(), z.string())),
  credsStore: z.nullish(z.string()),
});

/** `config.json` inside `configDir`. No I/O. */
export function dockerConfigPath(configDir: string): string {
  return join(configDir, 'config.json');
}

/**
 * Reads `config.json` from `configDir`. A missing (or empty) file is an empty config, as in
 * docker. Does I/O.
 * @throws DRAY_CONFIG when the file is not valid JSON, has wrongly typed credential keys, or
 *   holds an `auth` value that is not base64 `user:password` (the message names the path and the
 *   `auths` key, never the value).
 */
export async function loadDockerConfig(
  configDir: string,
  o: { signal?: AbortSignal } = {},
): Promise<DockerConfig> {
  throwIfAborted(o.signal, 'reading docker config');
  const path = dockerConfigPath(configDir);
  let text: string;
  try {
    text = await readFile(path, { encoding: 'utf8', signal: o.signal });
  } catch (e) {
    if (isErrno(e, 'ENOENT') || isErrno(e, 'ENOTDIR')) return { path, auths: {}, credHelpers: {}, raw: {} };
    if (o.signal?.aborted) throwIfAborted(o.signal, 'reading docker config');
    throw new DrayError('DRAY_CONFIG', `cannot read docker config ${path}: ${errnoText(e)}`, {
      cause: e,
      hint: 'check the permissions of the file, or point DOCKER_CONFIG at another directory',
    });
  }
  return parseDockerConfig(text, path);
}

/**
 * Parses the text of a `config.json` (`path` is only used in messages). No I/O.
 * @throws DRAY_CONFIG as {@link loadDockerConfig}.
 */
export function parseDockerConfig(text: string, path: string): DockerConfig {
  const hint = `fix or remove ${path} (it is the docker CLI's config file)`;
  if (text.trim() === '') return { path, auths: {}, credHelpers: {}, raw: {} };
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (e) {
    // JSON.parse messages quote a slice of the input, which may be a secret: keep only the type.
    throw new DrayError('DRAY_CONFIG', `invalid docker config ${path}: not valid JSON`, {
      cause: new Error(e instanceof Error ? e.name : 'SyntaxError'),
      hint,
    });
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) {
    throw new DrayError('DRAY_CONFIG', `invalid docker config ${path}: expected a JSON object`, { hint });
  }
  const parsed = configSchema.safeParse(doc, english);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const where = issue ? issue.path.map(String).join('.') : '';
    // zod issue messages name the expected type, not the received value.
    throw new DrayError(
      'DRAY_CONFIG',
      `invalid docker config ${path}: ${where}: ${issue?.message ?? 'invalid'}`,
      {
        hint,
      },
    );
  }
  const auths = (parsed.data.auths ?? {}) as Record<string, DockerAuthEntry>;
  for (const [key, entry] of Object.entries(auths)) {
    if (entry.auth) decodeAuth(entry.auth, path, key); // docker refuses the whole file too
  }
  const config: DockerConfig = {
    path,
    auths,
    credHelpers: parsed.data.credHelpers ?? {},
    raw: doc as Record<string, unknown>,
  };
  if (parsed.data.credsStore) config.credsStore = parsed.data.credsStore;
  return config;
}

/**
 * docker/cli `credentials.ConvertToHostname`: `https://host:port/v1/` → `host:port`,
 * `host/path` → `host`. Used to match legacy `auths` keys. No I/O.
 */
export function convertToHostname(maybeUrl: string): string {
  let s = maybeUrl;
  const scheme = s.indexOf('://');
  if (scheme >= 0) s = s.slice(scheme + 3);
  const slash = s.indexOf('/');
  return slash >= 0 ? s.slice(0, slash) : s;
}

/**
 * The key docker files credentials for `host` under: `https://index.docker.io/v1/` for Docker
 * Hub (`docker.io`, `index.docker.io`, `registry-1.docker.io`), otherwise the host itself
 * (scheme and path dropped). No I/O.
 */
export function authConfigKey(host: string): string {
  const h = convertToHostname(host.trim());
  return dockerHubHosts.has(h.toLowerCase()) ? dockerHubAuthKey : h;
}

/** True when an `auths`/`credHelpers` key names the same registry as `key` (an {@link authConfigKey}). */
function sameRegistry(configKey: string, key: string): boolean {
  if (configKey === key) return true;
  return authConfigKey(configKey).toLowerCase() === key.toLowerCase();
}

/**
 * The `auths` entry for `host`: the exact key first, then any legacy key that names the same
 * host (docker's fileStore.Get). No I/O.
 */
export function findAuthEntry(
  config: DockerConfig,
  host: string,
): { key: string; entry: DockerAuthEntry } | undefined {
  const key = authConfigKey(host);
  const exact = config.auths[key];
  if (exact) return { key, entry: exact };
  for (const [k, entry] of Object.entries(config.auths)) {
    if (sameRegistry(k, key)) return { key: k, entry };
  }
  return undefined;
}

/**
 * The credential helper configured for `host`: `credHelpers[host]`, else `credsStore`
 * (docker's getConfiguredCredentialStore). No I/O.
 */
export function credentialHelperFor(config: DockerConfig, host: string): string | undefined {
  const key = authConfigKey(host);
  const exact = config.credHelpers[key];
  if (exact) return exact;
  for (const [k, helper] of Object.entries(config.credHelpers)) {
    if (helper && sameRegistry(k, key)) return helper;
  }
  return config.credsStore || undefined;
}

/**
 * The {@link Auth} an `auths` entry stands for. docker's order: `registrytoken` (sent as a
 * bearer token), `identitytoken` (an OAuth2 refresh token), then `auth`/`username`+`password`.
 * An entry with none of these (docker writes `{}` when a helper holds the secret) is anonymous.
 * No I/O.
 * @throws DRAY_CONFIG when `auth` is not base64 `user:password`.
 */
export function authFromEntry(entry: DockerAuthEntry, where: { path: string; key: string }): Auth {
  let username = entry.username ?? '';
  let password = entry.password ?? '';
  if (entry.auth) ({ username, password } = decodeAuth(entry.auth, where.path, where.key));
  if (entry.registrytoken) return { kind: 'registry-token', token: entry.registrytoken };
  if (entry.identitytoken) {
    return username
      ? { kind: 'identity-token', username, token: entry.identitytoken }
      : { kind: 'identity-token', token: entry.identitytoken };
  }
  if (username) return { kind: 'basic', username, password };
  return { kind: 'anonymous' };
}

function decodeAuth(auth: string, path: string, key: string): { username: string; password: string } {
  const fail = () =>
    new DrayError(
      'DRAY_CONFIG',
      `invalid docker config ${path}: auths["${key}"].auth is not base64 "user:password"`,
      {
        hint: `run 'dray login ${displayHost(key)}' again, or fix the entry in ${path}`,
      },
    );
  // Go's StdEncoding is strict: padded standard alphabet only.
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(auth) || auth.length % 4 !== 0) throw fail();
  const decoded = Buffer.from(auth, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon <= 0) throw fail();
  // docker trims NULs some old clients padded the password with.
  return { username: decoded.slice(0, colon), password: decoded.slice(colon + 1).replace(/^\0+|\0+$/g, '') };
}

/** What `saveCredentials` stores: a password, or an identity (refresh) token from a login. */
export type SavedCredentials =
  | { username: string; password: string }
  | { username: string; identityToken: string };

/** Options for saving or removing credentials (the helper may be spawned). */
export interface SaveCredentialsOptions extends CredentialHelperOptions {}

/**
 * Stores credentials for `host` as `docker login` does: through `credHelpers[host]` or
 * `credsStore` when one is configured (the file then keeps an empty `auths` entry, as docker's
 * native store does), otherwise as base64 `auth` (+ `identitytoken`) in `auths`. Docker Hub is
 * filed under `https://index.docker.io/v1/`. Every other key of the file is kept. The file is
 * written atomically (temp + fsync + rename) with mode 0600; `configDir` is created 0700.
 * Does I/O and may spawn a helper.
 * @throws DRAY_CONFIG (unreadable/unwritable file), DRAY_CREDENTIALS (helper failed), DRAY_ABORTED.
 */
export async function saveCredentials(
  configDir: string,
  host: string,
  creds: SavedCredentials,
  o: SaveCredentialsOptions = {},
): Promise<void> {
  if (!creds.username)
    throw new DrayError('DRAY_INVALID_ARGUMENT', `cannot save credentials for ${host}: empty username`);
  const config = await loadDockerConfig(configDir, o);
  const key = authConfigKey(host);
  const helper = credentialHelperFor(config, host);
  const previous = config.auths[key] ?? {};
  const entry: DockerAuthEntry = stripSecrets(previous);
  if (helper) {
    await credentialHelper(helper, o).store(
      'identityToken' in creds
        ? { ServerURL: key, Username: '<token>', Secret: creds.identityToken }
        : { ServerURL: key, Username: creds.username, Secret: creds.password },
      o,
    );
  } else if ('identityToken' in creds) {
    // docker login keeps the user name (with an empty password) next to the identity token.
    entry.auth = encodeAuth(creds.username, '');
    entry.identitytoken = creds.identityToken;
  } else {
    entry.auth = encodeAuth(creds.username, creds.password);
  }
  const auths = { ...config.auths, [key]: entry };
  await writeDockerConfig(config, { ...config.raw, auths }, o);
}

/**
 * Forgets the credentials for `host` as `docker logout` does: erase through the configured
 * helper (a "not found" answer is fine), then drop every `auths` key naming that host (legacy
 * scheme/path keys too, so none keeps authenticating). Other keys are kept; the file is only
 * rewritten when it changed. Does I/O and may spawn a helper.
 * @returns whether anything was removed (false = "not logged in").
 * @throws DRAY_CONFIG, DRAY_CREDENTIALS, DRAY_ABORTED.
 */
export async function removeCredentials(
  configDir: string,
  host: string,
  o: SaveCredentialsOptions = {},
): Promise<{ removed: boolean }> {
  const config = await loadDockerConfig(configDir, o);
  const key = authConfigKey(host);
  const helper = credentialHelperFor(config, host);
  let removed = false;
  if (helper) removed = (await credentialHelper(helper, o).erase(key, o)).erased;
  const auths: Record<string, DockerAuthEntry> = {};
  for (const [k, entry] of Object.entries(config.auths)) {
    if (sameRegistry(k, key)) removed = true;
    else auths[k] = entry;
  }
  if (Object.keys(auths).length !== Object.keys(config.auths).length) {
    await writeDockerConfig(config, { ...config.raw, auths }, o);
  }
  return { removed };
}

function stripSecrets(entry: DockerAuthEntry): DockerAuthEntry {
  const { auth: _a, username: _u, password: _p, identitytoken: _i, registrytoken: _r, ...rest } = entry;
  return rest;
}

function encodeAuth(username: string, password: string): string {
  return Buffer.from(`${username}:${password}`, 'utf8').toString('base64');
}

/**
 * Writes `doc` to the config's path: temp file (0600) in the same directory, fsync, rename,
 * fsync the directory. A symlinked config.json is followed and its target replaced, as docker
 * does. Docker copies the old file's mode; dray always writes 0600 since the file may hold
 * secrets.
 */
async function writeDockerConfig(
  config: DockerConfig,
  doc: Record<string, unknown>,
  o: { signal?: AbortSignal },
): Promise<void> {
  throwIfAborted(o.signal, 'writing docker config');
  const fail = (e: unknown) =>
    new DrayError('DRAY_CONFIG', `cannot write docker config ${config.path}: ${errnoText(e)}`, {
      cause: e,
      hint: 'check that the directory is writable, or point DOCKER_CONFIG at another directory',
    });
  const dir = dirname(config.path);
  let target = config.path;
  let tmp: string | undefined;
  try {
    await mkdir(dir, { recursive: true, mode: 0o700 });
    try {
      target = await realpath(config.path);
    } catch {
      // missing or dangling: write the path itself
    }
    tmp = join(dirname(target), `.config.json.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
    const fh = await open(tmp, fsConstants.O_WRONLY | fsConstants.O_CREAT | fsConstants.O_EXCL, 0o600);
    try {
      await fh.writeFile(JSON.stringify(doc, null, '\t'), 'utf8');
      await fh.chmod(0o600); // umask may have narrowed it; never widen past 0600
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, target);
    tmp = undefined;
    await syncDir(dirname(target));
  } catch (e) {
    if (tmp) await rm(tmp, { force: true }).catch(() => {});
    throw fail(e);
  }
}

async function syncDir(dir: string): Promise<void> {
  let fh: Awaited<ReturnType<typeof open>> | undefined;
  try {
    fh = await open(dir, 'r');
    await fh.sync();
  } catch {
    // some file systems refuse fsync on directories; the rename is still atomic
  } finally {
    await fh?.close();
  }
}

/** `docker.io` for Docker Hub keys, else the host: what to type after `dray login`. */
export function displayHost(hostOrKey: string): string {
  return authConfigKey(hostOrKey) === dockerHubAuthKey ? 'docker.io' : authConfigKey(hostOrKey);
}

function isErrno(e: unknown, code: string): boolean {
  return typeof e === 'object' && e !== null && (e as { code?: unknown }).code === code;
}

function errnoText(e: unknown): string {
  const code = typeof e === 'object' && e !== null ? (e as { code?: unknown }).code : undefined;
  return typeof code === 'string' ? code : e instanceof Error ? e.message : String(e);
}
