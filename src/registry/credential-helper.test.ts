import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isDrayError } from '../errors.ts';
import { credentialHelper } from './credential-helper.ts';
import { fakeHelper } from './testdata/fake-helper.ts';

/**
 * A fake `docker-credential-<name>` (a node script) backed by a JSON file, with failure modes
 * picked through FAKE_MODE. Returns the env to spawn it with (PATH = its dir only).
 */

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
