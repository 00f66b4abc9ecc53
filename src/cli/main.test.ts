// Exit codes, error reporting, and that no credential reaches stderr even with --debug.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { test } from 'node:test';
import { DrayError, ErrorCodes } from '../index.ts';
import type { CliIO } from './context.ts';
import { exitCodeFor, main, reportError } from './main.ts';

function capture(o: { stdin?: string } = {}): { io: CliIO; out: () => string; err: () => string } {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  let out = '';
  let err = '';
  stdout.on('data', (b: Buffer) => {
    out += b.toString();
  });
  stderr.on('data', (b: Buffer) => {
    err += b.toString();
  });
  return {
    io: {
      stdout,
      stderr,
      stdin: Readable.from(o.stdin === undefined ? [] : [o.stdin]),
      env: {},
      isTTY: false,
      stdinIsTTY: false,
    },
    out: () => out,
    err: () => err,
  };
}

async function tmp(t: { after(fn: () => Promise<void>): void }): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'dray-main-'));
  t.after(() => rm(d, { recursive: true, force: true }));
  return d;
}

test('exitCodeFor: 1 for failures, 2 for invalid arguments, 130 when aborted', () => {
  for (const code of ErrorCodes) {
    const expected = code === 'DRAY_ABORTED' ? 130 : code === 'DRAY_INVALID_ARGUMENT' ? 2 : 1;
    assert.equal(exitCodeFor(new DrayError(code, 'x')), expected, code);
  }
  assert.equal(exitCodeFor(new Error('plain')), 1);
  assert.equal(exitCodeFor('a string'), 1);
  assert.equal(exitCodeFor(undefined), 1);
});

test('reportError: message and hint; --debug adds code, cause chain and stack', () => {
  const root = new Error('ECONNRESET at the socket');
  const mid = new TypeError('fetch failed', { cause: root });
  const e = new DrayError('DRAY_REGISTRY_UNREACHABLE', 'cannot reach reg.example: connection reset', {
    cause: mid,
    hint: 'check the network',
  });
  const plain = capture();
  reportError(plain.io, e, false);
  assert.equal(plain.err(), 'error: cannot reach reg.example: connection reset\nhint: check the network\n');
  assert.equal(plain.out(), '', 'errors never go to stdout');

  const debug = capture();
  reportError(debug.io, e, true);
  const lines = debug.err().split('\n');
  assert.deepEqual(lines.slice(0, 5), [
    'error: cannot reach reg.example: connection reset',
    'hint: check the network',
    'code: DRAY_REGISTRY_UNREACHABLE',
    'caused by: TypeError: fetch failed',
    'caused by: Error: ECONNRESET at the socket',
  ]);
  assert.match(lines[5] ?? '', /^DrayError: cannot reach/);

  const other = capture();
  reportError(other.io, 'just a string', true);
  assert.equal(other.err(), 'error: just a string\n');
});

test('main: usage errors exit 2; --help and --version exit 0', async () => {
  const c = capture();
  assert.equal(await main(['no-such-command'], c.io), 2);
  assert.match(c.err(), /unknown command/);
  assert.equal(await main(['pull'], capture().io), 2, 'missing argument');
  assert.equal(await main(['pull', '--bogus', 'x'], capture().io), 2, 'unknown option');
  const h = capture();
  assert.equal(await main(['--help'], h.io), 0);
  for (const cmd of ['pull', 'push', 'images', 'tag', 'rmi', 'inspect', 'prune', 'login', 'logout']) {
    assert.match(h.out(), new RegExp(`^  ${cmd}\\b`, 'm'), cmd);
  }
  const v = capture();
  assert.equal(await main(['--version'], v.io), 0);
  assert.equal(v.out(), '0.1.0\n');
});

test('main: a DrayError from a command prints error: … and exits by its code', async (t) => {
  const root = await tmp(t);
  const bad = capture();
  assert.equal(await main(['--root', root, '--config', root, 'pull', 'Bad/Name'], bad.io), 1);
  assert.match(
    bad.err(),
    /^error: invalid reference format: repository name \(library\/Bad\/Name\)|^error: invalid reference format/m,
  );
  const login = capture();
  assert.equal(
    await main(['--root', root, '--config', root, 'login', '--password-stdin', 'reg.example'], login.io),
    2,
    'DRAY_INVALID_ARGUMENT exits 2',
  );
  assert.match(login.err(), /^error: must provide --username with --password-stdin$/m);
});

/**
 * A registry that wants Basic auth, serves one image, and redirects its layer to "storage"
 * with a signed URL that then refuses (403), as S3 does with an expired signature.
 */
async function startSecretRegistry(t: { after(fn: () => Promise<void>): void }, user: string, pass: string) {
  const sha = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;
  const layer = Buffer.from('not really a layer');
  const config = Buffer.from(
    JSON.stringify({
      architecture: 'amd64',
      os: 'linux',
      rootfs: { type: 'layers', diff_ids: [sha(layer)] },
    }),
  );
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: {
        mediaType: 'application/vnd.oci.image.config.v1+json',
        digest: sha(config),
        size: config.length,
      },
      layers: [
        { mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: sha(layer), size: layer.length },
      ],
    }),
  );
  const good = `Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}`;
  let port = 0;
  const server: Server = createServer((req, res) => {
    const url = req.url ?? '';
    if (url.startsWith('/storage/')) {
      res.writeHead(403, { 'content-type': 'application/xml' });
      res.end('<Error><Code>AccessDenied</Code><Message>Request has expired</Message></Error>');
      return;
    }
    if (req.headers.authorization !== good) {
      res.writeHead(401, {
        'www-authenticate': 'Basic realm="secret-test"',
        'content-type': 'application/json',
      });
      res.end(JSON.stringify({ errors: [{ code: 'UNAUTHORIZED', message: 'authentication required' }] }));
      return;
    }
    if (url === '/v2/') {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{}');
    } else if (url === '/v2/app/manifests/v1' || url === `/v2/app/manifests/${sha(manifest)}`) {
      res.writeHead(200, {
        'content-type': 'application/vnd.oci.image.manifest.v1+json',
        'docker-content-digest': sha(manifest),
        'content-length': manifest.length,
      });
      res.end(req.method === 'HEAD' ? undefined : manifest);
    } else if (url === `/v2/app/blobs/${sha(config)}`) {
      res.writeHead(200, { 'content-length': config.length });
      res.end(req.method === 'HEAD' ? undefined : config);
    } else if (url === `/v2/app/blobs/${sha(layer)}`) {
      res.writeHead(307, {
        location: `http://127.0.0.1:${port}/storage/layer?X-Amz-Credential=CREDSECRET42&X-Amz-Signature=SIGSECRET42`,
      });
      res.end();
    } else {
      res.writeHead(404, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ errors: [{ code: 'NOT_FOUND', message: 'not found' }] }));
    }
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  port = (server.address() as AddressInfo).port;
  t.after(
    () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  );
  return { host: `127.0.0.1:${port}`, good };
}

test('no credential, token or signed URL query reaches stderr, even with --debug', async (t) => {
  const user = 'alice';
  const pass = 'Pa55-w0rd-SECRET';
  const reg = await startSecretRegistry(t, user, pass);
  const secrets = [
    pass,
    Buffer.from(`${user}:${pass}`).toString('base64'),
    'wrong-SECRET-pw',
    Buffer.from(`${user}:wrong-SECRET-pw`).toString('base64'),
    'SIGSECRET42',
    'CREDSECRET42',
  ];
  const clean = (s: string, what: string) => {
    for (const secret of secrets) assert.ok(!s.includes(secret), `${what} leaks ${secret}:\n${s}`);
  };
  const root = await tmp(t);
  const config = await tmp(t);
  const g = ['-D', '--root', root, '--config', config];

  // A wrong password: login fails and says so, without echoing what was typed.
  const wrong = capture({ stdin: 'wrong-SECRET-pw\n' });
  assert.equal(await main([...g, 'login', '-u', user, '--password-stdin', reg.host], wrong.io), 1);
  assert.match(wrong.err(), /^error: .*unauthorized: incorrect username or password/m);
  clean(wrong.err() + wrong.out(), 'failed login');

  // -p is accepted (with docker's warning) and still never printed.
  const ok = capture();
  assert.equal(await main([...g, 'login', '-u', user, '-p', pass, reg.host], ok.io), 0, ok.err());
  assert.match(ok.out(), /Login Succeeded/);
  clean(ok.err() + ok.out(), 'login');

  // A pull whose layer redirect to signed storage is refused.
  const pull = capture();
  assert.equal(await main([...g, 'pull', `${reg.host}/app:v1`], pull.io), 1);
  assert.match(pull.err(), /^error: /m);
  clean(pull.err() + pull.out(), 'failed pull');

  // Credentials from config.json directly (auth field), same result.
  const config2 = await tmp(t);
  await writeFile(
    join(config2, 'config.json'),
    JSON.stringify({ auths: { [reg.host]: { auth: Buffer.from(`${user}:${pass}`).toString('base64') } } }),
  );
  const pull2 = capture();
  assert.equal(
    await main(['-D', '--root', root, '--config', config2, 'pull', `${reg.host}/app:v1`], pull2.io),
    1,
  );
  clean(pull2.err() + pull2.out(), 'failed pull with config.json credentials');

  // Unauthenticated: denied, in docker's words.
  const anon = capture();
  assert.equal(
    await main(['-D', '--root', root, '--config', await tmp(t), 'pull', `${reg.host}/app:v1`], anon.io),
    1,
  );
  assert.match(anon.err(), /^error: .*(pull access denied|unauthorized)/m);
  clean(anon.err(), 'anonymous pull');
});
