import assert from 'node:assert/strict';
import { chmod, lstat, mkdir, mkdtemp, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { isDrayError } from '../errors.ts';
import {
  authConfigKey,
  authFromEntry,
  convertToHostname,
  credentialHelperFor,
  dockerHubAuthKey,
  findAuthEntry,
  loadDockerConfig,
  removeCredentials,
  saveCredentials,
} from './docker-config.ts';
import { fakeHelper } from './testdata/fake-helper.ts';

type T = { after: (fn: () => Promise<void>) => void };

async function tempDir(t: T): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'dray-config-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

const b64 = (s: string) => Buffer.from(s).toString('base64');

/** The same fake helper as credential-helper.test.ts (a node script over a JSON file). */

async function configWith(t: T, doc: unknown): Promise<string> {
  const dir = await tempDir(t);
  await writeFile(join(dir, 'config.json'), typeof doc === 'string' ? doc : JSON.stringify(doc));
  return dir;
}

describe('loadDockerConfig', () => {
  test('missing dir, missing file and empty file are an empty config', async (t) => {
    const dir = await tempDir(t);
    for (const d of [join(dir, 'nope'), dir, await configWith(t, ''), await configWith(t, ' \n')]) {
      const c = await loadDockerConfig(d);
      assert.deepEqual(c.auths, {});
      assert.deepEqual(c.credHelpers, {});
      assert.equal(c.credsStore, undefined);
      assert.equal(c.path, join(d, 'config.json'));
    }
  });

  test('malformed JSON is DRAY_CONFIG naming the path, without quoting the file', async (t) => {
    const dir = await configWith(t, '{"auths": {"r.example": {"auth": "c2VjcmV0LXZhbHVl"');
    await assert.rejects(loadDockerConfig(dir), (e) => {
      assert.ok(isDrayError(e, 'DRAY_CONFIG'));
      assert.equal(e.message, `invalid docker config ${join(dir, 'config.json')}: not valid JSON`);
      assert.match(e.hint ?? '', /fix or remove/);
      assert.ok(!JSON.stringify({ m: e.message, c: String(e.cause), s: e.stack }).includes('c2VjcmV0'));
      return true;
    });
  });

  test('wrongly typed credential keys are DRAY_CONFIG naming the key', async (t) => {
    for (const [doc, where] of [
      [{ credsStore: 5 }, 'credsStore'],
      [{ auths: { 'r.example': { auth: 1 } } }, 'auths.r.example.auth'],
      [{ credHelpers: { 'r.example': true } }, 'credHelpers.r.example'],
      [[], 'expected a JSON object'],
    ] as const) {
      const dir = await configWith(t, doc);
      await assert.rejects(
        loadDockerConfig(dir),
        (e) => isDrayError(e, 'DRAY_CONFIG') && e.message.includes(where),
      );
    }
  });

  test('an auth that is not base64 user:password names the key, not the value', async (t) => {
    for (const auth of ['!!notbase64', b64('no-colon-secret'), b64(':pw-only-secret')]) {
      const dir = await configWith(t, { auths: { 'r.example': { auth } } });
      await assert.rejects(loadDockerConfig(dir), (e) => {
        assert.ok(isDrayError(e, 'DRAY_CONFIG'));
        assert.match(e.message, /auths\["r\.example"\]\.auth is not base64 "user:password"/);
        assert.ok(!e.message.includes(auth) && !e.message.includes('secret'));
        assert.match(e.hint ?? '', /dray login r\.example/);
        return true;
      });
    }
  });

  test('null maps are accepted as Go does', async (t) => {
    const c = await loadDockerConfig(
      await configWith(t, { auths: null, credHelpers: null, credsStore: null }),
    );
    assert.deepEqual(c.auths, {});
    assert.equal(c.credsStore, undefined);
  });
});

describe('auth entries', () => {
  const where = { path: '/x/config.json', key: 'k' };
  test('every entry shape', () => {
    assert.deepEqual(authFromEntry({ auth: b64('alice:pw:with:colons') }, where), {
      kind: 'basic',
      username: 'alice',
      password: 'pw:with:colons',
    });
    assert.deepEqual(authFromEntry({ username: 'bob', password: 'pw' }, where), {
      kind: 'basic',
      username: 'bob',
      password: 'pw',
    });
    // `auth` wins over the split fields, as docker decodes it over them
    assert.deepEqual(authFromEntry({ auth: b64('a:b'), username: 'x', password: 'y' }, where), {
      kind: 'basic',
      username: 'a',
      password: 'b',
    });
    assert.deepEqual(authFromEntry({ auth: b64('carol:'), identitytoken: 'refresh' }, where), {
      kind: 'identity-token',
      username: 'carol',
      token: 'refresh',
    });
    assert.deepEqual(authFromEntry({ identitytoken: 'refresh' }, where), {
      kind: 'identity-token',
      token: 'refresh',
    });
    assert.deepEqual(authFromEntry({ registrytoken: 'rt', auth: b64('a:b') }, where), {
      kind: 'registry-token',
      token: 'rt',
    });
    assert.deepEqual(authFromEntry({}, where), { kind: 'anonymous' });
    assert.deepEqual(authFromEntry({ email: 'x@example.com' }, where), { kind: 'anonymous' });
    assert.deepEqual(authFromEntry({ auth: b64('dave:pw\0\0') }, where), {
      kind: 'basic',
      username: 'dave',
      password: 'pw',
    });
  });

  test('convertToHostname and authConfigKey', () => {
    assert.equal(convertToHostname('https://index.docker.io/v1/'), 'index.docker.io');
    assert.equal(convertToHostname('http://r.example:5000/v2/'), 'r.example:5000');
    assert.equal(convertToHostname('r.example/path'), 'r.example');
    assert.equal(convertToHostname('r.example'), 'r.example');
    assert.equal(convertToHostname('https://[::1]:5000'), '[::1]:5000');
    for (const h of ['docker.io', 'index.docker.io', 'registry-1.docker.io', 'https://index.docker.io/v1/']) {
      assert.equal(authConfigKey(h), dockerHubAuthKey);
    }
    assert.equal(authConfigKey('ghcr.io'), 'ghcr.io');
    assert.equal(authConfigKey('https://r.example:5000/'), 'r.example:5000');
  });

  test('lookup: exact key, Docker Hub aliases, legacy URL keys', async (t) => {
    const dir = await configWith(t, {
      auths: {
        'https://index.docker.io/v1/': { auth: b64('hub:1') },
        'https://legacy.example:5000/v2/': { auth: b64('legacy:2') },
        'http://plain.example': { auth: b64('plain:3') },
        'both.example': { auth: b64('exact:4') },
        'https://both.example/v1/': { auth: b64('legacy:5') },
      },
    });
    const c = await loadDockerConfig(dir);
    const user = (host: string) => {
      const f = findAuthEntry(c, host);
      return f ? authFromEntry(f.entry, { path: c.path, key: f.key }) : undefined;
    };
    for (const h of ['docker.io', 'index.docker.io', 'registry-1.docker.io']) {
      assert.deepEqual(user(h), { kind: 'basic', username: 'hub', password: '1' });
    }
    assert.deepEqual(user('legacy.example:5000'), { kind: 'basic', username: 'legacy', password: '2' });
    assert.equal(user('legacy.example'), undefined);
    assert.deepEqual(user('plain.example'), { kind: 'basic', username: 'plain', password: '3' });
    assert.deepEqual(user('both.example'), { kind: 'basic', username: 'exact', password: '4' });
    assert.equal(user('ghcr.io'), undefined);
  });

  test('helper selection: credHelpers[host] then credsStore', async (t) => {
    const c = await loadDockerConfig(
      await configWith(t, {
        credHelpers: {
          'gcr.io': 'gcloud',
          'https://index.docker.io/v1/': 'hub-helper',
          'https://legacy.example': 'l',
        },
        credsStore: 'desktop',
      }),
    );
    assert.equal(credentialHelperFor(c, 'gcr.io'), 'gcloud');
    assert.equal(credentialHelperFor(c, 'docker.io'), 'hub-helper');
    assert.equal(credentialHelperFor(c, 'legacy.example'), 'l');
    assert.equal(credentialHelperFor(c, 'ghcr.io'), 'desktop');
    const none = await loadDockerConfig(await configWith(t, { credHelpers: { 'gcr.io': 'gcloud' } }));
    assert.equal(credentialHelperFor(none, 'ghcr.io'), undefined);
  });
});

describe('saveCredentials / removeCredentials', () => {
  test('creates the dir 0700 and the file 0600 with base64 auth', async (t) => {
    const dir = join(await tempDir(t), 'sub', '.docker');
    await saveCredentials(dir, 'r.example:5000', { username: 'alice', password: 'pw' });
    assert.equal((await stat(dir)).mode & 0o777, 0o700);
    assert.equal((await stat(join(dir, 'config.json'))).mode & 0o777, 0o600);
    const doc = JSON.parse(await readFile(join(dir, 'config.json'), 'utf8'));
    assert.deepEqual(doc, { auths: { 'r.example:5000': { auth: b64('alice:pw') } } });
    assert.match(await readFile(join(dir, 'config.json'), 'utf8'), /^\{\n\t"auths"/); // docker's tab indent
  });

  test('Docker Hub is filed under https://index.docker.io/v1/; identity tokens keep the user', async (t) => {
    const dir = await tempDir(t);
    await saveCredentials(dir, 'docker.io', { username: 'hubuser', identityToken: 'refresh-1' });
    const doc = JSON.parse(await readFile(join(dir, 'config.json'), 'utf8'));
    assert.deepEqual(doc.auths, {
      [dockerHubAuthKey]: { auth: b64('hubuser:'), identitytoken: 'refresh-1' },
    });
    // and it reads back as docker would
    const c = await loadDockerConfig(dir);
    const f = findAuthEntry(c, 'registry-1.docker.io');
    assert.deepEqual(f && authFromEntry(f.entry, { path: c.path, key: f.key }), {
      kind: 'identity-token',
      username: 'hubuser',
      token: 'refresh-1',
    });
    // a later password login replaces the identity token
    await saveCredentials(dir, 'index.docker.io', { username: 'hubuser', password: 'pw2' });
    const doc2 = JSON.parse(await readFile(join(dir, 'config.json'), 'utf8'));
    assert.deepEqual(doc2.auths, { [dockerHubAuthKey]: { auth: b64('hubuser:pw2') } });
  });

  test('every other key survives, and a 0644 file becomes 0600', async (t) => {
    const original = {
      auths: {
        'other.example': { auth: b64('o:p'), email: 'o@example.com', futureField: { x: 1 } },
        'r.example': { auth: b64('old:old'), email: 'keep@example.com', somethingNew: true },
      },
      HttpHeaders: { 'X-Meta': 'yes' },
      psFormat: 'table {{.ID}}',
      credHelpers: { 'gcr.io': 'gcloud' },
      plugins: { buildx: { enabled: 'true' } },
      unknownTopLevel: [1, 2, { deep: null }],
      currentContext: 'remote',
    };
    const dir = await configWith(t, original);
    await chmod(join(dir, 'config.json'), 0o644);
    await saveCredentials(dir, 'r.example', { username: 'new', password: 'pw' });
    const doc = JSON.parse(await readFile(join(dir, 'config.json'), 'utf8'));
    assert.deepEqual(doc, {
      ...original,
      auths: {
        'other.example': original.auths['other.example'],
        'r.example': { email: 'keep@example.com', somethingNew: true, auth: b64('new:pw') },
      },
    });
    assert.equal((await stat(join(dir, 'config.json'))).mode & 0o777, 0o600);

    assert.deepEqual(await removeCredentials(dir, 'r.example'), { removed: true });
    const after = JSON.parse(await readFile(join(dir, 'config.json'), 'utf8'));
    assert.deepEqual(after, { ...original, auths: { 'other.example': original.auths['other.example'] } });
  });

  test('remove drops legacy keys too; nothing to remove leaves the file untouched', async (t) => {
    const text =
      '{"auths":{"https://r.example/v1/":{"auth":"YTpi"},"r.example":{"auth":"YTpi"},"k.example":{}}}';
    const dir = await configWith(t, text);
    assert.deepEqual(await removeCredentials(dir, 'r.example'), { removed: true });
    assert.deepEqual(JSON.parse(await readFile(join(dir, 'config.json'), 'utf8')).auths, { 'k.example': {} });
    const dir2 = await configWith(t, text);
    assert.deepEqual(await removeCredentials(dir2, 'absent.example'), { removed: false });
    assert.equal(await readFile(join(dir2, 'config.json'), 'utf8'), text);
    assert.deepEqual(await removeCredentials(join(dir2, 'missing'), 'absent.example'), { removed: false });
  });

  test('a symlinked config.json has its target replaced', async (t) => {
    const dir = await tempDir(t);
    const real = join(dir, 'real');
    await mkdir(real);
    await writeFile(join(real, 'config.json'), '{"auths":{}}');
    const cfg = join(dir, 'cfg');
    await mkdir(cfg);
    await symlink(join(real, 'config.json'), join(cfg, 'config.json'));
    await saveCredentials(cfg, 'r.example', { username: 'u', password: 'p' });
    assert.ok((await lstat(join(cfg, 'config.json'))).isSymbolicLink());
    assert.deepEqual(JSON.parse(await readFile(join(real, 'config.json'), 'utf8')).auths, {
      'r.example': { auth: b64('u:p') },
    });
  });

  test('with credsStore the secret goes to the helper and the file keeps an empty entry', async (t) => {
    const f = await fakeHelper(t);
    const dir = await configWith(t, {
      auths: { 'r.example': { auth: b64('old:old'), email: 'e@example.com' } },
      credsStore: 'fake',
    });
    await saveCredentials(dir, 'r.example', { username: 'alice', password: 'helper-pw' }, { env: f.env });
    await saveCredentials(
      dir,
      'docker.io',
      { username: 'hub', identityToken: 'hub-refresh' },
      { env: f.env },
    );
    const text = await readFile(join(dir, 'config.json'), 'utf8');
    assert.ok(
      !text.includes(b64('alice:helper-pw')) && !text.includes('hub-refresh') && !text.includes('old'),
    );
    assert.deepEqual(JSON.parse(text), {
      auths: { 'r.example': { email: 'e@example.com' }, [dockerHubAuthKey]: {} },
      credsStore: 'fake',
    });
    const db = JSON.parse(await readFile(f.db, 'utf8'));
    assert.deepEqual(db, {
      'r.example': { ServerURL: 'r.example', Username: 'alice', Secret: 'helper-pw' },
      [dockerHubAuthKey]: { ServerURL: dockerHubAuthKey, Username: '<token>', Secret: 'hub-refresh' },
    });

    assert.deepEqual(await removeCredentials(dir, 'r.example', { env: f.env }), { removed: true });
    assert.deepEqual(Object.keys(JSON.parse(await readFile(f.db, 'utf8'))), [dockerHubAuthKey]);
    assert.deepEqual(JSON.parse(await readFile(join(dir, 'config.json'), 'utf8')).auths, {
      [dockerHubAuthKey]: {},
    });
    assert.deepEqual(await removeCredentials(dir, 'r.example', { env: f.env }), { removed: false });
  });

  test('credHelpers[host] is used for that host only', async (t) => {
    const f = await fakeHelper(t);
    const dir = await configWith(t, { credHelpers: { 'gcr.example': 'fake' } });
    await saveCredentials(dir, 'gcr.example', { username: 'g', password: 'gpw' }, { env: f.env });
    await saveCredentials(dir, 'plain.example', { username: 'p', password: 'ppw' }, { env: f.env });
    const doc = JSON.parse(await readFile(join(dir, 'config.json'), 'utf8'));
    assert.deepEqual(doc.auths, { 'gcr.example': {}, 'plain.example': { auth: b64('p:ppw') } });
    assert.deepEqual(Object.keys(JSON.parse(await readFile(f.db, 'utf8'))), ['gcr.example']);
  });

  test('a failing helper leaves the file alone', async (t) => {
    const f = await fakeHelper(t);
    const text = JSON.stringify({ auths: {}, credsStore: 'fake' });
    const dir = await configWith(t, text);
    await assert.rejects(
      saveCredentials(
        dir,
        'r.example',
        { username: 'u', password: 'pw-never-shown' },
        {
          env: { ...f.env, FAKE_MODE: 'fail' },
        },
      ),
      (e) => isDrayError(e, 'DRAY_CREDENTIALS') && !e.message.includes('pw-never-shown'),
    );
    assert.equal(await readFile(join(dir, 'config.json'), 'utf8'), text);
  });

  test('an unwritable config dir is DRAY_CONFIG', async (t) => {
    // a regular file where the directory should be: fails for root too
    const file = join(await tempDir(t), 'not-a-dir');
    await writeFile(file, 'x');
    await assert.rejects(
      saveCredentials(file, 'r.example', { username: 'u', password: 'p' }),
      (e) => isDrayError(e, 'DRAY_CONFIG') && e.message.startsWith(`cannot write docker config ${file}`),
    );
  });
});
