// Registry authentication against the real Distribution registry: htpasswd Basic, token
// auth with the in-test ES256 issuer, and docker credential helpers (credHelpers and
// credsStore). Every command's output is checked for the password and its base64.
import assert from 'node:assert/strict';
import { readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import type { TestContext } from 'node:test';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { main } from '../../src/cli/main.ts';
import {
  ContentStore,
  createAuthenticator,
  createCredentialStore,
  createRegistryClient,
  ImageStore,
  isDrayError,
  pull,
  push,
  tag,
} from '../../src/index.ts';
import { installCredentialHelper } from '../harness/cred-helper.ts';
import { seededBytes, writeOciLayout } from '../harness/oci-fixture.ts';
import { type Registry, startRegistry } from '../harness/registry.ts';
import { startTokenIssuer } from '../harness/token-issuer.ts';
import { requireTool, runCommand, tempDir } from '../harness/tools.ts';

const drayBin = fileURLToPath(new URL('../../bin/dray.js', import.meta.url));

interface Outcome {
  code: number;
  stdout: string;
  stderr: string;
}

/** Every command's output, to check at the end that no secret ever appeared. */
class OutputLog {
  readonly all: string[] = [];
  add(o: Outcome): Outcome {
    this.all.push(o.stdout, o.stderr);
    return o;
  }
  assertNoSecret(...secrets: string[]): void {
    const text = this.all.join('\n');
    for (const s of secrets) {
      assert.ok(!text.includes(s), `a secret appeared in the output:\n${text}`);
    }
  }
}

/** Runs the CLI in-process (main) with its own stdio and env. */
async function cli(args: string[], env: Record<string, string>, input?: string): Promise<Outcome> {
  const out = new PassThrough();
  const err = new PassThrough();
  const o: Buffer[] = [];
  const e: Buffer[] = [];
  out.on('data', (b: Buffer) => o.push(b));
  err.on('data', (b: Buffer) => e.push(b));
  const code = await main(args, {
    stdout: out,
    stderr: err,
    stdin: Readable.from(input === undefined ? [] : [Buffer.from(input)]),
    env,
    isTTY: false,
    stdinIsTTY: false,
  });
  return { code, stdout: Buffer.concat(o).toString('utf8'), stderr: Buffer.concat(e).toString('utf8') };
}

/** Runs bin/dray.js as a child process (for credential helpers, which are looked up on its PATH). */
async function spawnCli(args: string[], env: Record<string, string>, input?: string): Promise<Outcome> {
  const r = await runCommand(process.execPath, [drayBin, ...args], {
    env,
    ...(input !== undefined ? { input } : {}),
    timeoutMs: 60_000,
  });
  return { code: r.code ?? -1, stdout: r.stdout, stderr: r.stderr };
}

/** A data root and docker config dir of its own (never ~/.docker). */
async function sandbox(
  t: TestContext,
): Promise<{ root: string; configDir: string; env: Record<string, string> }> {
  const base = await tempDir(t, 'dray-auth-');
  const root = join(base, 'root');
  const configDir = join(base, 'docker');
  return {
    root,
    configDir,
    env: { DRAY_ROOT: root, DOCKER_CONFIG: configDir, HOME: base, PATH: process.env.PATH ?? '' },
  };
}

/** Pushes a small generated image (three layers) with skopeo; returns the fixture. */
async function pushFixture(t: TestContext, reg: Registry, repo: string, creds?: string, seed = 1) {
  const dir = await tempDir(t, 'dray-oci-');
  const fx = await writeOciLayout(dir, [
    { 'etc/hello.txt': `hello ${seed}\n` },
    { 'data/a.bin': seededBytes(seed, 64 * 1024) },
    { 'data/b.bin': seededBytes(seed + 100, 32 * 1024) },
  ]);
  const args = ['copy', '-q', '--dest-tls-verify=false'];
  if (creds !== undefined) args.push('--dest-creds', creds);
  args.push(`oci:${fx.ref}`, `docker://${reg.host}/${repo}`);
  const r = await runCommand('skopeo', args, { timeoutMs: 60_000 });
  assert.equal(r.code, 0, `skopeo copy failed: ${r.stderr}\n${reg.logTail()}`);
  return fx;
}

const b64 = (s: string) => Buffer.from(s).toString('base64');

async function readConfig(configDir: string): Promise<Record<string, unknown>> {
  return JSON.parse(await readFile(join(configDir, 'config.json'), 'utf8')) as Record<string, unknown>;
}

async function exists(p: string): Promise<boolean> {
  try {
    await stat(p);
    return true;
  } catch {
    return false;
  }
}

test('htpasswd: anonymous pull denied, login, pull, push, wrong password, logout; no secret printed', async (t) => {
  if (!requireTool(t, 'docker-registry', 'htpasswd', 'skopeo')) return;
  const password = 'htp-S3cret-pw!';
  const reg = await startRegistry(t, { auth: 'htpasswd', users: { alice: password } });
  await pushFixture(t, reg, 'team/app:v1', `alice:${password}`);
  const { root, configDir, env } = await sandbox(t);
  const log = new OutputLog();

  // Anonymous pull: docker's wording, with the login hint.
  const anon = log.add(await cli(['pull', '--progress', 'plain', `${reg.host}/team/app:v1`], env));
  assert.equal(anon.code, 1, anon.stderr);
  assert.match(
    anon.stderr,
    new RegExp(
      `error: pull access denied for ${reg.host.replace(/\./g, '\\.')}/team/app, repository does not exist or may require 'dray login'`,
    ),
  );
  await assert.rejects(pull(`${reg.host}/team/app:v1`, { root, registry: { configDir } }), (e: unknown) => {
    assert.ok(isDrayError(e, 'DRAY_PULL_DENIED'), String(e));
    assert.match(
      e.message,
      /pull access denied for .*team\/app, repository does not exist or may require 'dray login'/,
    );
    return true;
  });

  // Wrong password: fails with docker's wording and writes nothing.
  const wrong = log.add(
    await cli(['login', '-u', 'alice', '--password-stdin', reg.host], env, 'not-the-password\n'),
  );
  assert.equal(wrong.code, 1, wrong.stderr);
  assert.match(wrong.stderr, /incorrect username or password/);
  assert.doesNotMatch(wrong.stdout, /Login Succeeded/);
  assert.equal(await exists(join(configDir, 'config.json')), false, 'a failed login wrote config.json');

  // Login: config.json mode 0600 with base64(user:password).
  const ok = log.add(await cli(['login', '-u', 'alice', '--password-stdin', reg.host], env, `${password}\n`));
  assert.equal(ok.code, 0, ok.stderr);
  assert.match(ok.stdout, /Login Succeeded/);
  const st = await stat(join(configDir, 'config.json'));
  assert.equal(st.mode & 0o777, 0o600);
  const config = (await readConfig(configDir)) as { auths: Record<string, { auth?: string }> };
  assert.equal(config.auths[reg.host]?.auth, b64(`alice:${password}`));

  // Pull and push now work.
  const pulled = log.add(await cli(['pull', '--progress', 'plain', `${reg.host}/team/app:v1`], env));
  assert.equal(pulled.code, 0, pulled.stderr);
  assert.match(pulled.stdout, /Status: Downloaded newer image/);
  const tagged = log.add(await cli(['tag', `${reg.host}/team/app:v1`, `${reg.host}/team/copy:v2`], env));
  assert.equal(tagged.code, 0, tagged.stderr);
  const pushed = log.add(await cli(['push', '--progress', 'plain', `${reg.host}/team/copy:v2`], env));
  assert.equal(pushed.code, 0, pushed.stderr);
  assert.match(pushed.stdout, /v2: digest: sha256:[0-9a-f]{64} size: \d+/);
  const check = await runCommand('skopeo', [
    'inspect',
    '--tls-verify=false',
    '--creds',
    `alice:${password}`,
    `docker://${reg.host}/team/copy:v2`,
  ]);
  assert.equal(check.code, 0, check.stderr);

  // Debug output of a failure carries the cause chain: still no secret.
  const dbg = log.add(await cli(['-D', 'pull', `${reg.host}/team/missing:v1`], env));
  assert.equal(dbg.code, 1);

  // Logout removes the entry; the next pull is anonymous again.
  const out = log.add(await cli(['logout', reg.host], env));
  assert.equal(out.code, 0, out.stderr);
  assert.match(out.stdout, new RegExp(`Removing login credentials for ${reg.host.replace(/\./g, '\\.')}`));
  const after = (await readConfig(configDir)) as { auths?: Record<string, unknown> };
  assert.equal(after.auths?.[reg.host], undefined);
  const again = log.add(await cli(['logout', reg.host], env));
  assert.equal(again.code, 0);
  assert.match(again.stdout, /Not logged in to/);
  const denied = log.add(await cli(['pull', `${reg.host}/team/app:v1`], env));
  assert.equal(denied.code, 1);
  assert.match(denied.stderr, /pull access denied/);

  log.assertNoSecret(password, b64(`alice:${password}`), b64(password));
});

test('token auth: anonymous pull, anonymous push denied, login + push, token cache, wrong password', async (t) => {
  if (!requireTool(t, 'docker-registry', 'openssl', 'skopeo')) return;
  const password = 'tok-Pa55word';
  const issuer = await startTokenIssuer(t, { users: { bob: password } });
  const reg = await startRegistry(t, { auth: 'token', tokenIssuer: issuer });
  const fx = await pushFixture(t, reg, 'proj/img:latest', `bob:${password}`);
  const { root, configDir, env } = await sandbox(t);
  const log = new OutputLog();

  // Anonymous pull is granted by the issuer, with few token requests for five blobs.
  const before = issuer.count();
  const pulled = log.add(await cli(['pull', '--progress', 'plain', `${reg.host}/proj/img`], env));
  assert.equal(pulled.code, 0, `${pulled.stderr}\n${reg.logTail()}`);
  const tokenFetches = issuer.count() - before;
  assert.ok(tokenFetches >= 1 && tokenFetches <= 2, `${tokenFetches} token requests for one pull`);
  assert.ok(issuer.requests.slice(before).every((r) => r.user === undefined));
  const content = await ContentStore.open(root);
  for (const l of fx.layers) assert.ok(await content.has({ digest: l.digest as never }), l.digest);

  // Anonymous push is denied (the issuer grants pull only) with a login hint.
  await tag(`${reg.host}/proj/img`, `${reg.host}/proj/pushed:v1`, { root });
  const anonPush = log.add(await cli(['push', `${reg.host}/proj/pushed:v1`], env));
  assert.equal(anonPush.code, 1, anonPush.stderr);
  assert.match(anonPush.stderr, /error: denied: requested access to the resource is denied/);
  assert.match(anonPush.stderr, new RegExp(`hint: run 'dray login ${reg.host.replace(/\./g, '\\.')}'`));
  await assert.rejects(
    push(`${reg.host}/proj/pushed:v1`, { root, registry: { configDir } }),
    (e: unknown) => {
      assert.ok(isDrayError(e, 'DRAY_PUSH_DENIED'), String(e));
      assert.ok(e.hint?.includes('dray login'));
      return true;
    },
  );

  // Wrong password: login fails, nothing stored.
  const wrong = log.add(await cli(['login', '-u', 'bob', '--password-stdin', reg.host], env, 'nope\n'));
  assert.equal(wrong.code, 1, wrong.stderr);
  assert.match(wrong.stderr, /incorrect username or password|unauthorized/);
  assert.equal(await exists(join(configDir, 'config.json')), false);

  // Stored wrong credentials: the token fetch fails with DRAY_UNAUTHORIZED.
  const badDir = join(configDir, '..', 'bad-docker');
  const { mkdir } = await import('node:fs/promises');
  await mkdir(badDir, { recursive: true });
  await writeFile(
    join(badDir, 'config.json'),
    JSON.stringify({ auths: { [reg.host]: { auth: b64('bob:wrong-pass') } } }),
    { mode: 0o600 },
  );
  await assert.rejects(
    pull(`${reg.host}/proj/img`, { root, registry: { configDir: badDir } }),
    (e: unknown) => {
      assert.ok(isDrayError(e, 'DRAY_UNAUTHORIZED'), String(e));
      assert.ok(!e.message.includes('wrong-pass'));
      return true;
    },
  );

  // Login, then push works; the tokens were fetched with Basic credentials.
  const ok = log.add(await cli(['login', '-u', 'bob', '--password-stdin', reg.host], env, password));
  assert.equal(ok.code, 0, ok.stderr);
  assert.match(ok.stdout, /Login Succeeded/);
  const mark = issuer.count();
  const pushed = log.add(await cli(['push', '--progress', 'plain', `${reg.host}/proj/pushed:v1`], env));
  assert.equal(pushed.code, 0, `${pushed.stderr}\n${reg.logTail()}`);
  const pushTokens = issuer.requests.slice(mark);
  assert.ok(
    pushTokens.length >= 1 && pushTokens.length <= 3,
    `${pushTokens.length} token requests for one push`,
  );
  assert.ok(pushTokens.some((r) => r.user === 'bob'));

  // An authenticated pull of a second image (5 blobs) fetches at most 2 tokens.
  await pushFixture(t, reg, 'proj/other:latest', `bob:${password}`, 7);
  const mark2 = issuer.count();
  const p2 = log.add(await cli(['pull', '--progress', 'plain', `${reg.host}/proj/other`], env));
  assert.equal(p2.code, 0, p2.stderr);
  assert.ok(issuer.count() - mark2 <= 2, `${issuer.count() - mark2} token requests for one pull`);

  log.assertNoSecret(password, b64(`bob:${password}`), b64(password), 'wrong-pass');
  // No token either: tokens never reach the output.
  const out = log.all.join('\n');
  assert.doesNotMatch(out, /eyJ[A-Za-z0-9_-]{10,}\./, 'a JWT appeared in the output');
});

test('token auth: a cached token past its expiry is refreshed', async (t) => {
  if (!requireTool(t, 'docker-registry', 'openssl', 'skopeo')) return;
  // The issuer's tokens live 60 s (dray, like docker, treats shorter lifetimes as 60 s), so
  // the client's clock is moved forward instead of waiting.
  const issuer = await startTokenIssuer(t, { users: { bob: 'pw' }, expiresInSec: 60 });
  const reg = await startRegistry(t, { auth: 'token', tokenIssuer: issuer });
  await pushFixture(t, reg, 'exp/one:latest', 'bob:pw', 11);
  await pushFixture(t, reg, 'exp/one:second', 'bob:pw', 12);
  const { root } = await sandbox(t);
  let skewMs = 0;
  const client = createRegistryClient({
    authenticator: createAuthenticator({
      credentials: { get: async () => ({ kind: 'basic', username: 'bob', password: 'pw' }) },
      now: () => Date.now() + skewMs,
    }),
  });
  t.after(() => client.close());
  const a = issuer.count();
  await pull(`${reg.host}/exp/one:latest`, { root, registry: { client } });
  const first = issuer.count() - a;
  assert.ok(first >= 1 && first <= 2, `${first}`);

  // Still fresh: the cached token is reused, no new request.
  const b = issuer.count();
  await pull(`${reg.host}/exp/one:latest`, { root, registry: { client } });
  assert.equal(issuer.count() - b, 0, 'a fresh cached token was not reused');

  // Ten minutes later (client clock): the token is refreshed before use, and the pull works.
  skewMs = 10 * 60_000;
  const c = issuer.count();
  const [r] = await pull(`${reg.host}/exp/one:second`, { root, registry: { client } });
  assert.equal(r?.status, 'downloaded');
  assert.ok(issuer.count() - c >= 1, 'an expired token was used without refreshing');
});

test('credential helpers: credHelpers and credsStore authenticate pull/push; login stores through the helper', async (t) => {
  if (!requireTool(t, 'docker-registry', 'htpasswd', 'skopeo')) return;
  const password = 'helper-Secret-77';
  const reg = await startRegistry(t, { auth: 'htpasswd', users: { carol: password } });
  await pushFixture(t, reg, 'h/app:v1', `carol:${password}`, 21);
  const log = new OutputLog();

  // credHelpers: the helper holds the secret; config.json only names the helper.
  {
    const helper = await installCredentialHelper(t, 'test', {
      [reg.host]: { Username: 'carol', Secret: password },
    });
    const { configDir, env } = await sandbox(t);
    const { mkdir } = await import('node:fs/promises');
    await mkdir(configDir, { recursive: true });
    await writeFile(join(configDir, 'config.json'), JSON.stringify({ credHelpers: { [reg.host]: 'test' } }));
    const e = { ...env, PATH: helper.path };
    const p = log.add(await spawnCli(['pull', '--progress', 'plain', `${reg.host}/h/app:v1`], e));
    assert.equal(p.code, 0, p.stderr);
    assert.ok(
      helper.calls().some((c) => c.action === 'get' && c.input === reg.host),
      JSON.stringify(helper.calls()),
    );
    const tg = log.add(await spawnCli(['tag', `${reg.host}/h/app:v1`, `${reg.host}/h/helper-push:v1`], e));
    assert.equal(tg.code, 0, tg.stderr);
    const ps = log.add(await spawnCli(['push', '--progress', 'plain', `${reg.host}/h/helper-push:v1`], e));
    assert.equal(ps.code, 0, ps.stderr);

    // Without the helper's credentials the same pull is denied (so the helper really was used).
    const { env: env2 } = await sandbox(t);
    const denied = log.add(await spawnCli(['pull', `${reg.host}/h/app:v1`], { ...env2, PATH: helper.path }));
    assert.equal(denied.code, 1);
  }

  // credsStore: login stores through the helper, the file keeps no secret; pull uses it; logout erases.
  {
    const helper = await installCredentialHelper(t, 'teststore');
    const { configDir, env } = await sandbox(t);
    const { mkdir } = await import('node:fs/promises');
    await mkdir(configDir, { recursive: true });
    await writeFile(join(configDir, 'config.json'), JSON.stringify({ credsStore: 'teststore' }));
    const e = { ...env, PATH: helper.path };
    const li = log.add(await spawnCli(['login', '-u', 'carol', '--password-stdin', reg.host], e, password));
    assert.equal(li.code, 0, li.stderr);
    assert.match(li.stdout, /Login Succeeded/);
    assert.deepEqual(helper.read()[reg.host], { Username: 'carol', Secret: password });
    const file = await readFile(join(configDir, 'config.json'), 'utf8');
    assert.ok(!file.includes(password) && !file.includes(b64(`carol:${password}`)), file);
    assert.equal((JSON.parse(file) as { credsStore?: string }).credsStore, 'teststore');

    const p = log.add(await spawnCli(['pull', '--progress', 'plain', `${reg.host}/h/app:v1`], e));
    assert.equal(p.code, 0, p.stderr);
    const tg = log.add(await spawnCli(['tag', `${reg.host}/h/app:v1`, `${reg.host}/h/store-push:v1`], e));
    assert.equal(tg.code, 0, tg.stderr);
    const ps = log.add(await spawnCli(['push', '--progress', 'plain', `${reg.host}/h/store-push:v1`], e));
    assert.equal(ps.code, 0, ps.stderr);
    assert.ok(helper.calls().some((c) => c.action === 'get'));

    // Library path: createCredentialStore with the helper's PATH.
    const creds = createCredentialStore({ configDir, helperEnv: { ...process.env, PATH: helper.path } });
    const got = await creds.get(reg.host);
    assert.equal(got.kind, 'basic');

    const lo = log.add(await spawnCli(['logout', reg.host], e));
    assert.equal(lo.code, 0, lo.stderr);
    assert.equal(helper.read()[reg.host], undefined);
    assert.ok(helper.calls().some((c) => c.action === 'erase'));
  }

  // credHelpers + login: stored through the named helper, not in the file.
  {
    const helper = await installCredentialHelper(t, 'test2');
    const { configDir, env, root } = await sandbox(t);
    const { mkdir } = await import('node:fs/promises');
    await mkdir(configDir, { recursive: true });
    await writeFile(join(configDir, 'config.json'), JSON.stringify({ credHelpers: { [reg.host]: 'test2' } }));
    const e = { ...env, PATH: helper.path };
    const li = log.add(
      await spawnCli(['login', '-u', 'carol', '--password-stdin', reg.host], e, `${password}\n`),
    );
    assert.equal(li.code, 0, li.stderr);
    assert.equal(helper.read()[reg.host]?.Secret, password);
    const file = await readFile(join(configDir, 'config.json'), 'utf8');
    assert.ok(!file.includes(password) && !file.includes(b64(`carol:${password}`)), file);
    const p = log.add(await spawnCli(['pull', '-q', `${reg.host}/h/app:v1`], e));
    assert.equal(p.code, 0, p.stderr);
    const images = await ImageStore.open(root);
    assert.ok(await images.get(`${reg.host}/h/app:v1`));
  }

  log.assertNoSecret(password, b64(`carol:${password}`), b64(password));
});
