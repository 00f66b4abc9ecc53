import assert from 'node:assert/strict';
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { isDrayError } from '../errors.ts';
import { credentialHelper } from './credential-helper.ts';

/**
 * A fake `docker-credential-<name>` (a node script) backed by a JSON file, with failure modes
 * picked through FAKE_MODE. Returns the env to spawn it with (PATH = its dir only).
 */
async function fakeHelper(t: { after: (fn: () => Promise<void>) => void }, name = 'fake') {
  const dir = await mkdtemp(join(tmpdir(), 'dray-helper-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const db = join(dir, 'db.json');
  const script = `#!${process.execPath}
const fs = require('node:fs');
const action = process.argv[2];
const input = fs.readFileSync(0, 'utf8');
const file = process.env.FAKE_STORE;
const db = fs.existsSync(file) ? JSON.parse(fs.readFileSync(file, 'utf8')) : {};
fs.appendFileSync(file + '.log', action + '\\n');
const mode = process.env.FAKE_MODE || '';
const fail = (msg) => { process.stdout.write(msg + '\\n'); process.exit(1); };
if (mode === 'hang') setTimeout(() => {}, 1e9);
else if (mode === 'fail') fail('keychain is locked; input was: ' + input);
else if (mode === 'json-fail') { process.stdout.write(JSON.stringify(Object.values(db)[0] || {})); process.exit(3); }
else if (mode === 'garbage') process.stdout.write('{not json');
else if (mode === 'empty') process.exit(0);
else if (mode === 'stderr') { process.stderr.write('gpg: decryption failed\\n'); process.exit(2); }
else switch (action) {
  case 'get': { const c = db[input.trim()]; if (!c) fail('credentials not found in native keychain'); process.stdout.write(JSON.stringify(c)); break; }
  case 'store': { const c = JSON.parse(input); db[c.ServerURL] = c; fs.writeFileSync(file, JSON.stringify(db)); break; }
  case 'erase': { if (!db[input.trim()]) fail('credentials not found in native keychain'); delete db[input.trim()]; fs.writeFileSync(file, JSON.stringify(db)); break; }
  case 'list': { const m = {}; for (const [k, v] of Object.entries(db)) m[k] = v.Username; process.stdout.write(JSON.stringify(m)); break; }
  default: fail('unknown action');
}
`;
  const program = join(dir, `docker-credential-${name}`);
  await writeFile(program, script);
  await chmod(program, 0o755);
  const env = { PATH: dir, FAKE_STORE: db };
  return {
    dir,
    env,
    db,
    log: async () => (await readFile(`${db}.log`, 'utf8').catch(() => '')).split('\n').filter(Boolean),
  };
}

test('store, get, list and erase round-trip', async (t) => {
  const f = await fakeHelper(t);
  const h = credentialHelper('fake', { env: f.env });
  assert.equal(h.program, 'docker-credential-fake');
  await h.store({ ServerURL: 'ghcr.io', Username: 'alice', Secret: 's3cret-pw' });
  await h.store({ ServerURL: 'https://index.docker.io/v1/', Username: '<token>', Secret: 'refresh-tok' });
  assert.deepEqual(await h.get('ghcr.io'), { kind: 'basic', username: 'alice', password: 's3cret-pw' });
  assert.deepEqual(await h.get('https://index.docker.io/v1/'), {
    kind: 'identity-token',
    token: 'refresh-tok',
  });
  assert.deepEqual(await h.list(), { 'ghcr.io': 'alice', 'https://index.docker.io/v1/': '<token>' });
  assert.deepEqual(await h.erase('ghcr.io'), { erased: true });
  assert.deepEqual(await h.erase('ghcr.io'), { erased: false });
  assert.deepEqual(await h.get('ghcr.io'), { kind: 'anonymous' });
  assert.deepEqual(await f.log(), ['store', 'store', 'get', 'get', 'list', 'erase', 'erase', 'get']);
});

test('not found and empty answers are anonymous', async (t) => {
  const f = await fakeHelper(t);
  assert.deepEqual(await credentialHelper('fake', { env: f.env }).get('nothing.example'), {
    kind: 'anonymous',
  });
  const empty = credentialHelper('fake', { env: { ...f.env, FAKE_MODE: 'empty' } });
  assert.deepEqual(await empty.get('x.example'), { kind: 'anonymous' });
});

test('missing helper is DRAY_CREDENTIALS naming the program', async (t) => {
  const f = await fakeHelper(t);
  await assert.rejects(
    credentialHelper('absent', { env: f.env }).get('ghcr.io'),
    (e) =>
      isDrayError(e, 'DRAY_CREDENTIALS') &&
      e.message === 'credential helper docker-credential-absent not found on PATH' &&
      (e.hint ?? '').includes('install docker-credential-absent'),
  );
});

test('failing helper: DRAY_CREDENTIALS with its message, secrets redacted', async (t) => {
  const f = await fakeHelper(t);
  const h = credentialHelper('fake', { env: { ...f.env, FAKE_MODE: 'fail' } });
  await assert.rejects(h.get('ghcr.io'), (e) => {
    assert.ok(isDrayError(e, 'DRAY_CREDENTIALS'));
    assert.match(
      e.message,
      /^error getting credentials for ghcr\.io with docker-credential-fake: exit status 1: keychain is locked/,
    );
    return true;
  });
  await assert.rejects(
    h.store({ ServerURL: 'ghcr.io', Username: 'alice', Secret: 'hunter2-secret' }),
    (e) => {
      assert.ok(isDrayError(e, 'DRAY_CREDENTIALS'));
      assert.match(e.message, /^error storing credentials for ghcr\.io with docker-credential-fake/);
      assert.ok(!e.message.includes('hunter2-secret'), e.message);
      assert.ok(!e.message.includes('"Secret"'), e.message);
      return true;
    },
  );
  await assert.rejects(
    h.erase('ghcr.io'),
    (e) => isDrayError(e, 'DRAY_CREDENTIALS') && /erasing/.test(e.message),
  );
  await assert.rejects(h.list(), (e) => isDrayError(e, 'DRAY_CREDENTIALS') && /listing/.test(e.message));
});

test('a failing get that prints credentials has its output withheld', async (t) => {
  const f = await fakeHelper(t);
  await credentialHelper('fake', { env: f.env }).store({
    ServerURL: 'r.example',
    Username: 'u',
    Secret: 'pw-xyz-123',
  });
  const h = credentialHelper('fake', { env: { ...f.env, FAKE_MODE: 'json-fail' } });
  await assert.rejects(h.get('r.example'), (e) => {
    assert.ok(isDrayError(e, 'DRAY_CREDENTIALS'));
    assert.ok(e.message.endsWith('exit status 3: (output withheld)'), e.message);
    assert.ok(!e.message.includes('pw-xyz-123'));
    return true;
  });
});

test('stderr is reported when stdout is empty', async (t) => {
  const f = await fakeHelper(t);
  await assert.rejects(
    credentialHelper('fake', { env: { ...f.env, FAKE_MODE: 'stderr' } }).get('r.example'),
    (e) => isDrayError(e, 'DRAY_CREDENTIALS') && e.message.endsWith('exit status 2: gpg: decryption failed'),
  );
});

test('invalid JSON from get', async (t) => {
  const f = await fakeHelper(t);
  await assert.rejects(
    credentialHelper('fake', { env: { ...f.env, FAKE_MODE: 'garbage' } }).get('r.example'),
    (e) => isDrayError(e, 'DRAY_CREDENTIALS') && e.message.includes('invalid JSON'),
  );
});

test('timeout kills the helper', async (t) => {
  const f = await fakeHelper(t);
  const started = Date.now();
  await assert.rejects(
    credentialHelper('fake', { env: { ...f.env, FAKE_MODE: 'hang' }, timeoutMs: 300 }).get('r.example'),
    (e) => isDrayError(e, 'DRAY_CREDENTIALS') && e.message.includes('timed out after 300 ms'),
  );
  assert.ok(Date.now() - started < 5000);
});

test('abort signal kills the helper with DRAY_ABORTED', async (t) => {
  const f = await fakeHelper(t);
  const ac = new AbortController();
  setTimeout(() => ac.abort(), 200);
  await assert.rejects(
    credentialHelper('fake', { env: { ...f.env, FAKE_MODE: 'hang' } }).get('r.example', {
      signal: ac.signal,
    }),
    (e) => isDrayError(e, 'DRAY_ABORTED'),
  );
  const pre = AbortSignal.abort();
  await assert.rejects(credentialHelper('fake', { env: f.env }).get('r.example', { signal: pre }), (e) =>
    isDrayError(e, 'DRAY_ABORTED'),
  );
  assert.deepEqual(await f.log(), ['get']); // the pre-aborted call never spawned
});

test('helper names that are paths are refused', () => {
  for (const name of ['../bin/sh', 'a b', '', '/abs', '-x']) {
    assert.throws(
      () => credentialHelper(name),
      (e) => isDrayError(e, 'DRAY_CONFIG'),
      name,
    );
  }
});
