// Self-tests of the integration harness: the real registry in each auth mode, the
// ES256 token issuer against registry 2.8, the fault proxy's faults, the credential
// helper, and pushing a generated OCI layout with skopeo.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { TestContext } from 'node:test';
import { test } from 'node:test';
import { installCredentialHelper } from './cred-helper.ts';
import { startFaultProxy } from './fault-proxy.ts';
import { seededBytes, writeOciLayout } from './oci-fixture.ts';
import { startRegistry } from './registry.ts';
import { requireTool, runCommand, tempDir } from './tools.ts';

const basic = (u: string, p: string) => `Basic ${Buffer.from(`${u}:${p}`).toString('base64')}`;

async function status(url: string, init?: RequestInit): Promise<Response> {
  const res = await fetch(url, init);
  await res.arrayBuffer();
  return res;
}

async function pushFixture(t: TestContext, host: string, repo: string, creds?: string) {
  const dir = await tempDir(t, 'dray-oci-');
  const fx = await writeOciLayout(dir, [
    { 'etc/hello.txt': 'hello\n' },
    { 'data/r.bin': seededBytes(1, 4096) },
  ]);
  const args = ['copy', '-q', '--dest-tls-verify=false'];
  if (creds !== undefined) args.push('--dest-creds', creds);
  args.push(`oci:${fx.ref}`, `docker://${host}/${repo}:latest`);
  return { fx, result: await runCommand('skopeo', args, { timeoutMs: 60_000 }) };
}

test('registry: anonymous GET /v2/ is 200, and skopeo pushes a generated OCI layout', async (t) => {
  if (!requireTool(t, 'docker-registry', 'skopeo')) return;
  const reg = await startRegistry(t);
  assert.equal((await status(`${reg.url}/v2/`)).status, 200);
  const { fx, result } = await pushFixture(t, reg.host, 'fixture/small');
  assert.equal(result.code, 0, result.stderr);
  const head = await status(`${reg.url}/v2/fixture/small/manifests/latest`, {
    method: 'HEAD',
    headers: { accept: 'application/vnd.oci.image.manifest.v1+json' },
  });
  assert.equal(head.status, 200);
  assert.equal(head.headers.get('docker-content-digest'), fx.manifest.digest);
  for (const l of fx.layers) {
    const res = await fetch(`${reg.url}/v2/fixture/small/blobs/${l.digest}`);
    const body = Buffer.from(await res.arrayBuffer());
    assert.equal(`sha256:${createHash('sha256').update(body).digest('hex')}`, l.digest);
  }
});

test('registry: htpasswd mode answers 401 with a Basic challenge, then 200 with credentials', async (t) => {
  if (!requireTool(t, 'docker-registry', 'htpasswd')) return;
  const reg = await startRegistry(t, { auth: 'htpasswd', users: { alice: 's3cret' } });
  const r1 = await status(`${reg.url}/v2/`);
  assert.equal(r1.status, 401);
  assert.match(r1.headers.get('www-authenticate') ?? '', /^Basic realm="dray-test-realm"/);
  assert.equal(
    (await status(`${reg.url}/v2/`, { headers: { authorization: basic('alice', 'wrong') } })).status,
    401,
  );
  assert.equal(
    (await status(`${reg.url}/v2/`, { headers: { authorization: basic('alice', 's3cret') } })).status,
    200,
  );
});

test('registry: token mode works with ES256 x5c tokens from the in-test issuer (registry 2.8)', async (t) => {
  if (!requireTool(t, 'docker-registry', 'openssl', 'skopeo')) return;
  const reg = await startRegistry(t, { auth: 'token', users: { bob: 'pw-bob' } });
  const iss = reg.tokenIssuer;
  assert.ok(iss);
  const r1 = await status(`${reg.url}/v2/`);
  assert.equal(r1.status, 401);
  assert.equal(r1.headers.get('www-authenticate'), `Bearer realm="${iss.realm}",service="${iss.service}"`);

  // Wrong password: 401 from the issuer.
  const bad = await status(`${iss.realm}?service=${iss.service}&scope=registry:catalog:*`, {
    headers: { authorization: basic('bob', 'nope') },
  });
  assert.equal(bad.status, 401);

  // GET flow with Basic credentials: the token opens the catalog.
  const tr = await fetch(`${iss.realm}?service=${iss.service}&scope=registry:catalog:*`, {
    headers: { authorization: basic('bob', 'pw-bob') },
  });
  assert.equal(tr.status, 200);
  const { token } = (await tr.json()) as { token: string };
  const [h] = token.split('.');
  assert.deepEqual(Object.keys(JSON.parse(Buffer.from(h ?? '', 'base64url').toString())), [
    'typ',
    'alg',
    'x5c',
  ]);
  assert.equal(
    (await status(`${reg.url}/v2/_catalog`, { headers: { authorization: `Bearer ${token}` } })).status,
    200,
  );

  // Authorised push through the whole flow (skopeo does challenge → token → upload).
  const { fx, result } = await pushFixture(t, reg.host, 'team/app', 'bob:pw-bob');
  assert.equal(result.code, 0, result.stderr);
  assert.ok(iss.count((r) => r.user === 'bob' && r.status === 200) >= 1);

  // Anonymous pull works (default grant: pull for everyone) …
  const anon = (await (
    await fetch(`${iss.realm}?service=${iss.service}&scope=repository:team/app:pull,push`)
  ).json()) as { token: string };
  const m = await status(`${reg.url}/v2/team/app/manifests/latest`, {
    method: 'HEAD',
    headers: { authorization: `Bearer ${anon.token}`, accept: 'application/vnd.oci.image.manifest.v1+json' },
  });
  assert.equal(m.status, 200);
  assert.equal(m.headers.get('docker-content-digest'), fx.manifest.digest);
  // … but the same anonymous token cannot start an upload.
  const up = await status(`${reg.url}/v2/team/app/blobs/uploads/`, {
    method: 'POST',
    headers: { authorization: `Bearer ${anon.token}` },
  });
  assert.equal(up.status, 401);
  // And skopeo without credentials is denied.
  const denied = await pushFixture(t, reg.host, 'team/other');
  assert.notEqual(denied.result.code, 0);

  // OAuth2 POST flow: password grant → refresh token → refresh grant.
  const form = (o: Record<string, string>) => ({
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams(o).toString(),
  });
  const pw = await fetch(
    iss.realm,
    form({
      grant_type: 'password',
      username: 'bob',
      password: 'pw-bob',
      service: iss.service,
      scope: 'repository:team/app:pull',
      client_id: 'dray',
    }),
  );
  assert.equal(pw.status, 200);
  const pwBody = (await pw.json()) as { access_token: string; refresh_token: string };
  assert.ok(pwBody.refresh_token);
  const rf = await fetch(
    iss.realm,
    form({
      grant_type: 'refresh_token',
      refresh_token: pwBody.refresh_token,
      service: iss.service,
      scope: 'repository:team/app:push,pull',
      client_id: 'dray',
    }),
  );
  assert.equal(rf.status, 200);
  const rfBody = (await rf.json()) as { access_token: string };
  const up2 = await status(`${reg.url}/v2/team/app/blobs/uploads/`, {
    method: 'POST',
    headers: { authorization: `Bearer ${rfBody.access_token}` },
  });
  assert.equal(up2.status, 202);
  assert.equal(
    (await status(iss.realm, form({ grant_type: 'password', username: 'bob', password: 'x' }))).status,
    401,
  );

  // An expired token is refused by the registry.
  const expired = iss.mint('bob', ['registry:catalog:*'], { expiresInSec: -120 });
  assert.equal(
    (await status(`${reg.url}/v2/_catalog`, { headers: { authorization: `Bearer ${expired}` } })).status,
    401,
  );
});

async function startOrigin(t: TestContext) {
  const body = seededBytes(7, 100_000);
  const server = createServer((req, res) => {
    if (req.url === '/echo') {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const b = Buffer.concat(chunks);
        res.end(createHash('sha256').update(b).digest('hex'));
      });
      return;
    }
    res.writeHead(200, { 'content-length': body.length, 'content-type': 'application/octet-stream' });
    res.end(body);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.after(() => new Promise<void>((r) => server.close(() => r())));
  return { body, target: `127.0.0.1:${(server.address() as AddressInfo).port}` };
}

test('fault proxy: passes through, forces one request per connection, logs and counts', async (t) => {
  const origin = await startOrigin(t);
  const proxy = await startFaultProxy(t, { target: origin.target });
  for (let i = 0; i < 3; i++) {
    const res = await fetch(`${proxy.url}/blob`);
    assert.equal(res.headers.get('connection'), 'close');
    assert.deepEqual(Buffer.from(await res.arrayBuffer()), origin.body);
  }
  const payload = seededBytes(8, 300_000);
  const res = await fetch(`${proxy.url}/echo`, { method: 'POST', body: payload });
  assert.equal(await res.text(), createHash('sha256').update(payload).digest('hex'));
  assert.equal(proxy.count('GET', /^\/blob$/), 3);
  assert.equal(proxy.count('POST'), 1);
  assert.deepEqual(proxy.log[0], { id: 1, method: 'GET', path: '/blob', status: 200, bodyBytes: 100_000 });
});

test('fault proxy: canned status k times, then pass-through; nth selects one occurrence', async (t) => {
  const origin = await startOrigin(t);
  const proxy = await startFaultProxy(t, {
    target: origin.target,
    faults: [
      { method: 'GET', path: /^\/blob/, times: 2, fault: { kind: 'status', status: 500 } },
      {
        method: 'HEAD',
        path: /^\/blob/,
        nth: 2,
        fault: { kind: 'status', status: 503, headers: { 'Retry-After': '1' } },
      },
    ],
  });
  const codes: number[] = [];
  for (let i = 0; i < 3; i++) codes.push((await status(`${proxy.url}/blob`)).status);
  assert.deepEqual(codes, [500, 500, 200]);
  const heads: number[] = [];
  for (let i = 0; i < 3; i++) heads.push((await status(`${proxy.url}/blob`, { method: 'HEAD' })).status);
  assert.deepEqual(heads, [200, 503, 200]);
  assert.deepEqual(
    proxy.log.map((e) => [e.method, e.status, e.fault]),
    [
      ['GET', 500, 'status'],
      ['GET', 500, 'status'],
      ['GET', 200, undefined],
      ['HEAD', 200, undefined],
      ['HEAD', 503, 'status'],
      ['HEAD', 200, undefined],
    ],
  );
});

test('fault proxy: drop after N body bytes cuts the response short', async (t) => {
  const origin = await startOrigin(t);
  const proxy = await startFaultProxy(t, {
    target: origin.target,
    faults: [{ path: /^\/blob/, nth: 1, fault: { kind: 'drop', afterBytes: 12_345 } }],
  });
  const res = await fetch(`${proxy.url}/blob`);
  assert.equal(res.status, 200);
  const reader = res.body?.getReader();
  assert.ok(reader);
  let got = 0;
  await assert.rejects(async () => {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      got += value.length;
    }
  });
  assert.equal(got, 12_345);
  assert.equal(proxy.log[0]?.bodyBytes, 12_345);
  // Second request is not faulted.
  assert.equal((await fetch(`${proxy.url}/blob`).then((r) => r.arrayBuffer())).byteLength, 100_000);
  // 'close' answers nothing at all.
  proxy.setFaults([{ fault: { kind: 'close' } }]);
  await assert.rejects(fetch(`${proxy.url}/blob`));
});

test('fault proxy: delay holds the head, or stalls mid-body', async (t) => {
  const origin = await startOrigin(t);
  const proxy = await startFaultProxy(t, {
    target: origin.target,
    faults: [
      { nth: 1, fault: { kind: 'delay', ms: 400 } },
      { nth: 2, fault: { kind: 'delay', ms: 400, afterBytes: 50_000 } },
    ],
  });
  let t0 = performance.now();
  let res = await fetch(`${proxy.url}/blob`);
  assert.ok(performance.now() - t0 >= 380, 'head delayed');
  assert.deepEqual(Buffer.from(await res.arrayBuffer()), origin.body);

  t0 = performance.now();
  res = await fetch(`${proxy.url}/blob`);
  const headAt = performance.now() - t0;
  assert.ok(headAt < 300, `head not delayed (${headAt} ms)`);
  assert.deepEqual(Buffer.from(await res.arrayBuffer()), origin.body);
  assert.ok(performance.now() - t0 >= 380, 'body stalled');
  // A timeout shorter than the delay aborts.
  proxy.setFaults([{ fault: { kind: 'delay', ms: 1000 } }]);
  await assert.rejects(fetch(`${proxy.url}/blob`, { signal: AbortSignal.timeout(200) }));
});

test('fault proxy: flip changes exactly one body byte at the offset', async (t) => {
  const origin = await startOrigin(t);
  const proxy = await startFaultProxy(t, {
    target: origin.target,
    faults: [{ method: 'GET', nth: 1, fault: { kind: 'flip', offset: 70_000 } }],
  });
  const got = Buffer.from(await (await fetch(`${proxy.url}/blob`)).arrayBuffer());
  assert.equal(got.length, origin.body.length);
  const diffs: number[] = [];
  for (let i = 0; i < got.length; i++) if (got[i] !== origin.body[i]) diffs.push(i);
  assert.deepEqual(diffs, [70_000]);
  assert.equal(got[70_000], (origin.body[70_000] ?? 0) ^ 0xff);
});

test('fault proxy: in front of the registry, counts blob GETs and fails a blob fetch', async (t) => {
  if (!requireTool(t, 'docker-registry', 'skopeo')) return;
  const reg = await startRegistry(t);
  const proxy = await startFaultProxy(t, { target: reg.host });
  const { fx, result } = await pushFixture(t, proxy.host, 'via/proxy');
  assert.equal(result.code, 0, result.stderr);
  assert.ok(proxy.count('PUT', /\/blobs\/uploads\//) >= 3, JSON.stringify(proxy.log));
  const layer = fx.layers[1];
  assert.ok(layer);
  proxy.setFaults([
    { method: 'GET', path: /\/blobs\/sha256:/, nth: 1, fault: { kind: 'status', status: 500 } },
  ]);
  const url = `${proxy.url}/v2/via/proxy/blobs/${layer.digest}`;
  assert.equal((await status(url)).status, 500);
  assert.equal((await status(url)).status, 200);
  assert.equal(proxy.count('GET', /\/blobs\/sha256:/), 2);
});

test('credential helper: store, get, list, erase round trip', async (t) => {
  const h = await installCredentialHelper(t, 'dray-test', {
    'https://index.docker.io/v1/': { Username: 'u0', Secret: 's0' },
  });
  const run = (action: string, input: string) =>
    runCommand(`docker-credential-dray-test`, [action], { input, env: { PATH: h.path } });
  let r = await run('get', 'https://index.docker.io/v1/');
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(JSON.parse(r.stdout), {
    ServerURL: 'https://index.docker.io/v1/',
    Username: 'u0',
    Secret: 's0',
  });
  r = await run('store', JSON.stringify({ ServerURL: '127.0.0.1:5000', Username: 'me', Secret: 'tok' }));
  assert.equal(r.code, 0, r.stdout);
  assert.deepEqual(h.read()['127.0.0.1:5000'], { Username: 'me', Secret: 'tok' });
  r = await run('list', '');
  assert.deepEqual(JSON.parse(r.stdout), { 'https://index.docker.io/v1/': 'u0', '127.0.0.1:5000': 'me' });
  r = await run('erase', '127.0.0.1:5000');
  assert.equal(r.code, 0);
  r = await run('get', '127.0.0.1:5000');
  assert.equal(r.code, 1);
  assert.equal(r.stdout.trim(), 'credentials not found in native keychain');
  assert.deepEqual(
    h.calls().map((c) => c.action),
    ['get', 'store', 'list', 'erase', 'get'],
  );
  assert.ok(!JSON.stringify(h.calls()).includes('tok'), 'stored secrets are not logged');
});

test('docker engine: private dockerd, busybox import, run, push to and pull from the test registry', async (t) => {
  if (!requireTool(t, 'dockerd', 'docker', 'containerd', 'runc', 'docker-registry')) return;
  const { startDockerd, busyboxImageDir, importRootfs } = await import('./docker-engine.ts');
  const reg = await startRegistry(t);
  const engine = await startDockerd(t, { insecureRegistries: [reg.host] });
  const rootfs = await busyboxImageDir(t);
  const ref = `${reg.host}/busybox:latest`;
  const id = await importRootfs(engine, rootfs, ref);
  assert.match(id, /^sha256:[0-9a-f]{64}$/);
  const run = await engine.docker([
    'run',
    '--rm',
    '--network=none',
    ref,
    'sh',
    '-c',
    'echo hi from $(busybox | head -1 | cut -c1-7)',
  ]);
  assert.equal(run.code, 0, run.stderr);
  assert.equal(run.stdout.trim(), 'hi from BusyBox');
  const push = await engine.docker(['push', ref]);
  assert.equal(push.code, 0, push.stderr);
  assert.equal((await engine.docker(['rmi', ref])).code, 0);
  const pull = await engine.docker(['pull', ref]);
  assert.equal(pull.code, 0, pull.stderr);
});

test('requireTool: skips loudly without CI, throws under CI=true', async (t) => {
  const saved = process.env.CI;
  t.after(() => {
    if (saved === undefined) delete process.env.CI;
    else process.env.CI = saved;
  });
  const skipped: string[] = [];
  const fake = { fullName: 'fake', skip: (m?: string) => skipped.push(m ?? '') } as unknown as TestContext;
  delete process.env.CI;
  assert.equal(requireTool(fake, 'node', 'dray-no-such-tool'), false);
  assert.deepEqual(skipped, ['dray-no-such-tool not on PATH']);
  process.env.CI = 'true';
  assert.throws(() => requireTool(fake, 'dray-no-such-tool'), /dray-no-such-tool not on PATH/);
  assert.equal(requireTool(fake, 'node'), true);
});
