import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { isDrayError } from '../errors.ts';
import { createCredentialStore, staticCredentials } from './credential-store.ts';
import { fakeHelper } from './testdata/fake-helper.ts';

type T = { after: (fn: () => Promise<void>) => void };
const b64 = (s: string) => Buffer.from(s).toString('base64');

async function configWith(t: T, doc: unknown): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'dray-store-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  await writeFile(join(dir, 'config.json'), JSON.stringify(doc));
  return dir;
}

/** The same fake helper as credential-helper.test.ts (a node script over a JSON file). */

async function seed(f: { db: string }, creds: Record<string, { Username: string; Secret: string }>) {
  const db: Record<string, unknown> = {};
  for (const [url, c] of Object.entries(creds)) db[url] = { ServerURL: url, ...c };
  await writeFile(f.db, JSON.stringify(db));
}

test('lookup order: credHelpers[host], then credsStore, then auths', async (t) => {
  const perHost = await fakeHelper(t, 'perhost');
  const store = await fakeHelper(t, 'store');
  await seed(perHost, { 'gcr.example': { Username: 'g', Secret: 'from-perhost' } });
  await seed(store, {
    'ghcr.example': { Username: 'h', Secret: 'from-store' },
    'https://index.docker.io/v1/': { Username: '<token>', Secret: 'hub-identity' },
  });
  const dir = await configWith(t, {
    auths: {
      'gcr.example': { auth: b64('file:ignored') },
      'ghcr.example': { auth: b64('file:ignored') },
      'other.example': { auth: b64('file:used') },
    },
    credHelpers: { 'gcr.example': 'perhost' },
    credsStore: 'store',
  });
  const env = { PATH: `${perHost.dir}:${store.dir}`, FAKE_STORE: store.db };
  const creds = createCredentialStore({ configDir: dir, helperEnv: env });
  assert.deepEqual(await creds.get('ghcr.example'), { kind: 'basic', username: 'h', password: 'from-store' });
  assert.deepEqual(await creds.get('docker.io'), { kind: 'identity-token', token: 'hub-identity' });
  // credsStore is authoritative: a host it lacks is anonymous even with an auths entry (docker's nativeStore)
  assert.deepEqual(await creds.get('other.example'), { kind: 'anonymous' });
  const perHostCreds = createCredentialStore({
    configDir: dir,
    helperEnv: { PATH: `${perHost.dir}:${store.dir}`, FAKE_STORE: perHost.db },
  });
  assert.deepEqual(await perHostCreds.get('gcr.example'), {
    kind: 'basic',
    username: 'g',
    password: 'from-perhost',
  });
  assert.deepEqual(await perHost.log(), ['get']);
  // three lookups went to the credsStore helper, none fell through to `auths`
  assert.deepEqual(await store.log(), ['get', 'get', 'get']);
});

test('auths only: basic, identity token, registry token, Docker Hub aliases, anonymous', async (t) => {
  const dir = await configWith(t, {
    auths: {
      'https://index.docker.io/v1/': { auth: b64('hub:pw') },
      'id.example': { auth: b64('me:'), identitytoken: 'refresh' },
      'rt.example': { registrytoken: 'bearer-tok' },
      'https://legacy.example/v1/': { username: 'l', password: 'lpw' },
      'helper-managed.example': {},
    },
  });
  const creds = createCredentialStore({ configDir: dir });
  for (const h of ['docker.io', 'index.docker.io', 'registry-1.docker.io']) {
    assert.deepEqual(await creds.get(h), { kind: 'basic', username: 'hub', password: 'pw' });
  }
  assert.deepEqual(await creds.get('id.example'), {
    kind: 'identity-token',
    username: 'me',
    token: 'refresh',
  });
  assert.deepEqual(await creds.get('rt.example'), { kind: 'registry-token', token: 'bearer-tok' });
  assert.deepEqual(await creds.get('legacy.example'), { kind: 'basic', username: 'l', password: 'lpw' });
  assert.deepEqual(await creds.get('helper-managed.example'), { kind: 'anonymous' });
  assert.deepEqual(await creds.get('unknown.example'), { kind: 'anonymous' });
});

test('the config is re-read on every get', async (t) => {
  const dir = await configWith(t, {});
  const creds = createCredentialStore({ configDir: dir });
  assert.deepEqual(await creds.get('r.example'), { kind: 'anonymous' });
  await writeFile(join(dir, 'config.json'), JSON.stringify({ auths: { 'r.example': { auth: b64('u:p') } } }));
  assert.deepEqual(await creds.get('r.example'), { kind: 'basic', username: 'u', password: 'p' });
});

test('a configured but missing helper is DRAY_CREDENTIALS, not anonymous', async (t) => {
  const dir = await configWith(t, { credsStore: 'desktop' });
  const creds = createCredentialStore({ configDir: dir, helperEnv: { PATH: '/nonexistent' } });
  await assert.rejects(
    creds.get('ghcr.io'),
    (e) => isDrayError(e, 'DRAY_CREDENTIALS') && e.message.includes('docker-credential-desktop not found'),
  );
});

test('helper timeout option is honoured', async (t) => {
  const f = await fakeHelper(t);
  const dir = await configWith(t, { credsStore: 'fake' });
  const creds = createCredentialStore({
    configDir: dir,
    helperEnv: { ...f.env, FAKE_MODE: 'hang' },
    helperTimeoutMs: 200,
  });
  await assert.rejects(
    creds.get('r.example'),
    (e) => isDrayError(e, 'DRAY_CREDENTIALS') && /timed out/.test(e.message),
  );
});

test('malformed config is DRAY_CONFIG; aborted lookups are DRAY_ABORTED', async (t) => {
  const dir = await configWith(t, {});
  await writeFile(join(dir, 'config.json'), '{');
  const creds = createCredentialStore({ configDir: dir });
  await assert.rejects(creds.get('r.example'), (e) => isDrayError(e, 'DRAY_CONFIG'));
  await assert.rejects(creds.get('r.example', { signal: AbortSignal.abort() }), (e) =>
    isDrayError(e, 'DRAY_ABORTED'),
  );
});

test('staticCredentials: hosts, docker keys, Docker Hub aliases', async () => {
  const creds = staticCredentials({
    'ghcr.io': { kind: 'basic', username: 'u', password: 'p' },
    'https://index.docker.io/v1/': { kind: 'registry-token', token: 't' },
    'https://r.example:5000/v2/': { kind: 'identity-token', token: 'i' },
  });
  assert.deepEqual(await creds.get('ghcr.io'), { kind: 'basic', username: 'u', password: 'p' });
  assert.deepEqual(await creds.get('GHCR.IO'), { kind: 'basic', username: 'u', password: 'p' });
  assert.deepEqual(await creds.get('registry-1.docker.io'), { kind: 'registry-token', token: 't' });
  assert.deepEqual(await creds.get('docker.io'), { kind: 'registry-token', token: 't' });
  assert.deepEqual(await creds.get('r.example:5000'), { kind: 'identity-token', token: 'i' });
  assert.deepEqual(await creds.get('r.example'), { kind: 'anonymous' });
  const fromMap = staticCredentials(new Map([['a.example', { kind: 'anonymous' as const }]]));
  assert.deepEqual(await fromMap.get('a.example'), { kind: 'anonymous' });
  assert.throws(
    () =>
      staticCredentials({
        'docker.io': { kind: 'anonymous' },
        'index.docker.io': { kind: 'anonymous' },
      }),
    (e) => isDrayError(e, 'DRAY_INVALID_ARGUMENT'),
  );
});
