/**
 * A docker credential helper (`docker-credential-<name>`, the protocol of
 * docker/docker-credential-helpers: get/store/erase/list over stdin/stdout) backed
 * by a JSON file, for tests to put on PATH.
 */
import { appendFileSync, chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { tempDir } from './tools.ts';

export interface HelperCredential {
  Username: string;
  Secret: string;
}

export interface CredentialHelper {
  /** Dir holding `docker-credential-<name>`: prepend to PATH. */
  binDir: string;
  /** Absolute path of the executable. */
  bin: string;
  /** JSON file: { [serverURL]: { Username, Secret } }. */
  storeFile: string;
  /** One JSON line per invocation: { action, input }. Secrets sent to `store` are replaced by "<redacted>". */
  callsFile: string;
  /** Current contents of the store. */
  read(): Record<string, HelperCredential>;
  /** Invocations so far, in order. */
  calls(): Array<{ action: string; input: string }>;
  /** PATH with binDir in front, for a child's env. */
  path: string;
}

// The helper protocol: `get` reads a server URL, prints {ServerURL, Username, Secret};
// a missing entry prints "credentials not found in native keychain" and exits 1.
// `store` reads {ServerURL, Username, Secret}; `erase` reads a server URL; `list` prints
// {serverURL: username}. The script is plain JS so node runs it without type stripping.
const SCRIPT = `
const fs = require('node:fs');
const [storeFile, callsFile] = [process.env.DRAY_TEST_CRED_STORE || __STORE__, __CALLS__];
const action = process.argv[2] || '';
const input = fs.readFileSync(0, 'utf8');
const load = () => { try { return JSON.parse(fs.readFileSync(storeFile, 'utf8')); } catch { return {}; } };
const save = (s) => { fs.writeFileSync(storeFile + '.tmp', JSON.stringify(s, null, 2)); fs.renameSync(storeFile + '.tmp', storeFile); };
let logged = input.trim();
if (action === 'store') { try { const j = JSON.parse(input); j.Secret = '<redacted>'; logged = JSON.stringify(j); } catch {} }
fs.appendFileSync(callsFile, JSON.stringify({ action, input: logged }) + '\\n');
const s = load();
switch (action) {
  case 'get': {
    const url = input.trim();
    const c = s[url];
    if (!c) { process.stdout.write('credentials not found in native keychain\\n'); process.exit(1); }
    process.stdout.write(JSON.stringify({ ServerURL: url, Username: c.Username, Secret: c.Secret }) + '\\n');
    break;
  }
  case 'store': {
    let j;
    try { j = JSON.parse(input); } catch { process.stdout.write('bad input\\n'); process.exit(1); }
    if (!j.ServerURL) { process.stdout.write('no credentials server URL\\n'); process.exit(1); }
    s[j.ServerURL] = { Username: j.Username, Secret: j.Secret };
    save(s);
    break;
  }
  case 'erase': {
    const url = input.trim();
    if (!s[url]) { process.stdout.write('credentials not found in native keychain\\n'); process.exit(1); }
    delete s[url];
    save(s);
    break;
  }
  case 'list': {
    const out = {};
    for (const [k, v] of Object.entries(s)) out[k] = v.Username;
    process.stdout.write(JSON.stringify(out) + '\\n');
    break;
  }
  case 'version': process.stdout.write('dray-test-helper 0.0.0\\n'); break;
  default: process.stdout.write('unknown action: ' + action + '\\n'); process.exit(1);
}
`;

/**
 * Writes `<tmp>/bin/docker-credential-<name>` (shebang: the running node binary, so it
 * works whatever PATH the child gets) and its store, initialised from `store`.
 */
export async function installCredentialHelper(
  t: Pick<TestContext, 'after'>,
  name: string,
  store: Record<string, HelperCredential> = {},
): Promise<CredentialHelper> {
  if (!/^[A-Za-z0-9_.-]+$/.test(name)) throw new Error(`bad helper name ${name}`);
  const dir = await tempDir(t, 'dray-credhelper-');
  const binDir = join(dir, 'bin');
  const storeFile = join(dir, 'store.json');
  const callsFile = join(dir, 'calls.jsonl');
  mkdirSync(binDir);
  writeFileSync(storeFile, JSON.stringify(store, null, 2));
  appendFileSync(callsFile, '');
  const bin = join(binDir, `docker-credential-${name}`);
  const body = SCRIPT.replace('__STORE__', JSON.stringify(storeFile)).replace(
    '__CALLS__',
    JSON.stringify(callsFile),
  );
  writeFileSync(bin, `#!${process.execPath}\n'use strict';${body}`);
  chmodSync(bin, 0o755);
  return {
    binDir,
    bin,
    storeFile,
    callsFile,
    path: `${binDir}:${process.env.PATH ?? ''}`,
    read: () => JSON.parse(readFileSync(storeFile, 'utf8')) as Record<string, HelperCredential>,
    calls: () =>
      readFileSync(callsFile, 'utf8')
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as { action: string; input: string }),
  };
}
