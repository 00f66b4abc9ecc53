import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import { test } from 'node:test';
import { type Digest, digestOf } from '../digest/index.ts';
import { isDrayError } from '../errors.ts';
import { MediaTypes } from '../oci/media-types.ts';
import type { Descriptor } from '../oci/types.ts';
import type { Authenticator, Challenge, Scope } from './auth-types.ts';
import { createRegistryClient, type RegistryClientOptions } from './client.ts';
import { RegistryError } from './errors.ts';
import {
  seedBlob,
  seedManifest,
  startTestRegistry,
  type TestRegistry,
  type TestRegistryOptions,
} from './test-registry.ts';

const layerType = MediaTypes.ociLayerGzip;
const fast = { attempts: 3, minDelayMs: 1, maxDelayMs: 5 };

async function setup(
  t: { after(fn: () => Promise<void>): void },
  regOptions: TestRegistryOptions = {},
  clientOptions: RegistryClientOptions = {},
) {
  const reg = await startTestRegistry(regOptions);
  t.after(() => reg.close());
  const client = createRegistryClient({ retry: fast, ...clientOptions });
  t.after(() => client.close());
  const repo = client.repository({ domain: reg.host, path: 'team/app' });
  return { reg, client, repo };
}

function blob(size: number): { bytes: Buffer; desc: Descriptor } {
  const bytes = randomBytes(size);
  return { bytes, desc: { mediaType: layerType, digest: digestOf(bytes), size } };
}

function manifestBytes(layer: Descriptor): Buffer {
  return Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MediaTypes.ociManifest,
      config: { mediaType: MediaTypes.ociConfig, digest: layer.digest, size: layer.size },
      layers: [layer],
    }),
  );
}

function code(c: string, msg?: RegExp) {
  return (e: unknown) => {
    assert.ok(isDrayError(e), `expected DrayError ${c}, got ${String(e)}`);
    assert.equal(e.code, c, e.message);
    if (msg) assert.match(e.message, msg);
    return true;
  };
}

function seedImage(reg: TestRegistry, tag = 'v1') {
  const layer = blob(1000);
  seedBlob(reg, 'team/app', layer.bytes);
  const m = manifestBytes(layer.desc);
  const digest = seedManifest(reg, 'team/app', m, MediaTypes.ociManifest, tag) as Digest;
  return { layer, manifest: m, digest };
}

test('resolve and getManifest by tag and by digest', async (t) => {
  const { reg, repo } = await setup(t);
  const { manifest, digest } = seedImage(reg);
  const d = await repo.resolve('v1');
  assert.deepEqual(d, { mediaType: MediaTypes.ociManifest, digest, size: manifest.byteLength });
  assert.equal(reg.requests.at(-1)?.method, 'HEAD');
  assert.match(String(reg.requests.at(-1)?.headers.accept), /application\/vnd\.oci\.image\.index\.v1\+json/);
  const byTag = await repo.getManifest('v1');
  assert.deepEqual(byTag.bytes, manifest);
  assert.equal(byTag.descriptor.digest, digest);
  const byDigest = await repo.getManifest(digest);
  assert.deepEqual(byDigest.descriptor, d);
  assert.equal(await repo.has(d), true);
  assert.deepEqual(await buffer(await repo.open(d)), manifest);
});

test('resolve falls back to GET when HEAD lacks the digest', async (t) => {
  const { reg, repo } = await setup(t, { headWithoutDigest: true });
  const { digest } = seedImage(reg);
  const d = await repo.resolve('v1');
  assert.equal(d.digest, digest);
  assert.deepEqual(
    reg.requests.filter((r) => r.url.includes('/manifests/')).map((r) => r.method),
    ['HEAD', 'GET'],
  );
});

test('unknown manifest: docker wording', async (t) => {
  const { repo } = await setup(t);
  await assert.rejects(
    repo.resolve('nope'),
    code(
      'DRAY_MANIFEST_UNKNOWN',
      /^manifest unknown: manifest for 127\.0\.0\.1:\d+\/team\/app:nope not found$/,
    ),
  );
  await assert.rejects(repo.getManifest('nope'), code('DRAY_MANIFEST_UNKNOWN'));
  const missing = blob(10).desc;
  await assert.rejects(repo.open(missing), code('DRAY_BLOB_UNKNOWN', /blob unknown/));
  assert.equal(await repo.has(missing), false);
});

test('getManifest by digest rejects content that does not match', async (t) => {
  const { reg, repo } = await setup(t);
  const { digest } = seedImage(reg);
  const stored = reg.manifests.get('team/app')?.get(digest);
  assert.ok(stored);
  stored.bytes = Buffer.from(`${stored.bytes.toString()} `);
  await assert.rejects(repo.getManifest(digest), code('DRAY_DIGEST_MISMATCH'));
});

test('401 without credentials: pull access denied (docker wording); push denied with login hint', async (t) => {
  const { reg, repo } = await setup(t, {
    hook: (req, res) => {
      if (req.url === '/v2/') return false;
      res.writeHead(401, {
        'www-authenticate': 'Basic realm="test"',
        'content-type': 'application/json',
      });
      res.end(JSON.stringify({ errors: [{ code: 'UNAUTHORIZED', message: 'authentication required' }] }));
      return true;
    },
  });
  await assert.rejects(
    repo.resolve('v1'),
    code(
      'DRAY_PULL_DENIED',
      /^pull access denied for 127\.0\.0\.1:\d+\/team\/app, repository does not exist or may require 'dray login'$/,
    ),
  );
  const { bytes, desc } = blob(10);
  await assert.rejects(repo.put(desc, Readable.from([bytes])), (e) => {
    assert.ok(e instanceof RegistryError);
    assert.equal(e.code, 'DRAY_PUSH_DENIED');
    assert.match(e.hint ?? '', new RegExp(`dray login ${reg.host.replace(/\./g, '\\.')}`));
    assert.equal(e.status, 401);
    return true;
  });
});

/** A tiny Authenticator double: Basic for the `basic` realm, a fixed Bearer token otherwise. */
function testAuthenticator(
  calls: { host: string; scopes: Scope[]; challenges: Challenge[] }[],
): Authenticator {
  const cache = new Map<string, string>();
  const key = (host: string, scopes: Scope[]) => `${host} ${JSON.stringify(scopes)}`;
  return {
    async authorize(host, challenges, scopes) {
      calls.push({ host, scopes, challenges });
      const c = challenges[0];
      const value =
        c?.scheme === 'basic'
          ? `Basic ${Buffer.from('alice:s3cret').toString('base64')}`
          : `Bearer token-for-${scopes.map((s) => `${s.name}:${s.actions.join(',')}`).join('+')}`;
      cache.set(key(host, scopes), value);
      return value;
    },
    cached: (host, scopes) => cache.get(key(host, scopes)),
    invalidate: (host, scopes) => void cache.delete(key(host, scopes)),
  };
}

test('Basic auth: 401 → authorize → retried with credentials, cached for the next request', async (t) => {
  const calls: { host: string; scopes: Scope[]; challenges: Challenge[] }[] = [];
  const expected = `Basic ${Buffer.from('alice:s3cret').toString('base64')}`;
  const { reg, repo } = await setup(
    t,
    {
      hook: (req, res) => {
        if (req.headers.authorization === expected) return false;
        res.writeHead(401, { 'www-authenticate': 'Basic realm="registry"' });
        res.end();
        return true;
      },
    },
    { authenticator: testAuthenticator(calls) },
  );
  const { digest } = seedImage(reg);
  assert.equal((await repo.resolve('v1')).digest, digest);
  assert.equal((await repo.getManifest('v1')).descriptor.digest, digest);
  assert.equal(calls.length, 1);
  assert.deepEqual(calls[0]?.scopes, [{ type: 'repository', name: 'team/app', actions: ['pull'] }]);
  assert.deepEqual(calls[0]?.challenges, [{ scheme: 'basic', params: { realm: 'registry' } }]);
  // HEAD 401, HEAD ok, GET ok (cached header up front)
  assert.deepEqual(
    reg.requests
      .filter((r) => r.url.includes('manifests'))
      .map((r) => [r.method, r.headers.authorization !== undefined]),
    [
      ['HEAD', false],
      ['HEAD', true],
      ['GET', true],
    ],
  );
});

test('Bearer auth: push asks for pull,push; mount adds pull on the source repository', async (t) => {
  const calls: { host: string; scopes: Scope[]; challenges: Challenge[] }[] = [];
  const { reg, repo } = await setup(
    t,
    {
      hook: (req, res) => {
        if (req.headers.authorization?.startsWith('Bearer token-for-')) return false;
        res.writeHead(401, {
          'www-authenticate':
            'Bearer realm="https://auth.example/token",service="registry.example",scope="repository:team/app:pull"',
        });
        res.end();
        return true;
      },
    },
    { authenticator: testAuthenticator(calls) },
  );
  const { bytes, desc } = blob(2000);
  await repo.put(desc, Readable.from([bytes]));
  assert.ok(reg.blobs.get('team/app')?.has(desc.digest));
  assert.deepEqual(
    calls.map((c) => c.scopes),
    [[{ type: 'repository', name: 'team/app', actions: ['pull', 'push'] }]], // one token for HEAD, POST, PUT
  );
  const other = blob(100);
  seedBlob(reg, 'team/base', other.bytes);
  assert.equal(await repo.mount(other.desc, 'team/base'), true);
  assert.deepEqual(calls.at(-1)?.scopes, [
    { type: 'repository', name: 'team/app', actions: ['pull', 'push'] },
    { type: 'repository', name: 'team/base', actions: ['pull'] },
  ]);
  assert.equal(calls[0]?.challenges[0]?.params.service, 'registry.example');
});

test('500 is retried, then succeeds', async (t) => {
  let failures = 2;
  const retries: number[] = [];
  const { reg, repo } = await setup(
    t,
    {
      hook: (req, res) => {
        if (req.method === 'HEAD' && failures > 0) {
          failures--;
          res.writeHead(500);
          res.end();
          return true;
        }
        return false;
      },
    },
    { onRetry: (i) => retries.push(i.status ?? 0) },
  );
  const { digest } = seedImage(reg);
  assert.equal((await repo.resolve('v1')).digest, digest);
  assert.deepEqual(retries, [500, 500]);
});

test('503 forever: a clear error after N attempts; Retry-After honoured (capped)', async (t) => {
  const { reg, repo } = await setup(
    t,
    {
      hook: (req, res) => {
        if (req.url === '/v2/') return false;
        res.writeHead(503, { 'retry-after': '1', 'content-type': 'application/json' });
        res.end(JSON.stringify({ errors: [{ code: 'UNAVAILABLE', message: 'try later' }] }));
        return true;
      },
    },
    { retry: { attempts: 4, minDelayMs: 1, maxDelayMs: 10 } },
  );
  const started = Date.now();
  await assert.rejects(repo.getManifest('v1'), (e) => {
    assert.ok(e instanceof RegistryError);
    assert.equal(e.code, 'DRAY_REGISTRY_ERROR');
    assert.equal(e.status, 503);
    assert.equal(e.retryable, true);
    assert.deepEqual(e.registryCodes, ['UNAVAILABLE']);
    assert.match(
      e.message,
      /^GET http:\/\/127\.0\.0\.1:\d+\/v2\/team\/app\/manifests\/v1: unexpected status 503 Service Unavailable: unavailable: try later$/,
    );
    return true;
  });
  assert.ok(Date.now() - started < 900, 'Retry-After is capped at maxDelayMs');
  assert.equal(reg.requests.filter((r) => r.url.includes('/manifests/')).length, 4);
});

test('429: DRAY_TOO_MANY_REQUESTS with the registry message', async (t) => {
  const { repo } = await setup(
    t,
    {
      hook: (req, res) => {
        if (req.url === '/v2/') return false;
        res.writeHead(429, { 'content-type': 'application/json' });
        res.end(
          JSON.stringify({
            errors: [{ code: 'TOOMANYREQUESTS', message: 'You have reached your pull rate limit.' }],
          }),
        );
        return true;
      },
    },
    { retry: { attempts: 2, minDelayMs: 1, maxDelayMs: 2 } },
  );
  await assert.rejects(
    repo.getManifest('v1'),
    code('DRAY_TOO_MANY_REQUESTS', /^toomanyrequests: You have reached your pull rate limit\.$/),
  );
});

test('error messages redact query strings; error bodies are capped at 64 KiB', async (t) => {
  let bodyBytesSent = 0;
  const { reg, repo } = await setup(t, {
    hook: (req, res) => {
      if (req.method === 'PUT' && req.url?.includes('/blobs/uploads/')) {
        req.resume();
        const huge = `{"errors":[{"code":"BLOB_UPLOAD_INVALID","message":"${'x'.repeat(200_000)}"}]}`;
        bodyBytesSent = huge.length;
        res.writeHead(400, { 'content-type': 'application/json' });
        res.end(huge);
        return true;
      }
      return false;
    },
  });
  void reg;
  const { bytes, desc } = blob(50);
  await assert.rejects(repo.put(desc, Readable.from([bytes])), (e) => {
    assert.ok(e instanceof RegistryError);
    assert.equal(e.code, 'DRAY_REGISTRY_ERROR');
    assert.equal(e.status, 400);
    assert.doesNotMatch(e.message, /_state|abc|digest=sha256/);
    assert.match(e.message, /\/blobs\/uploads\/[0-9a-f-]+\?REDACTED/);
    assert.equal(e.request?.url.endsWith('?REDACTED'), true);
    assert.ok(e.message.length < 1000);
    return true;
  });
  assert.ok(bodyBytesSent > 64 * 1024);
});

test('connection destroyed mid-blob: openVerified resumes with Range and verifies', async (t) => {
  const { bytes, desc } = blob(256 * 1024);
  let drops = 2;
  const { reg, repo } = await setup(t, {
    hook: (req, res) => {
      if (req.method === 'GET' && req.url?.includes('/blobs/') && drops > 0) {
        drops--;
        const start = Number(/bytes=(\d+)-/.exec(req.headers.range ?? '')?.[1] ?? 0);
        const status = start > 0 ? 206 : 200;
        res.writeHead(status, {
          'content-length': bytes.byteLength - start,
          ...(start > 0
            ? { 'content-range': `bytes ${start}-${bytes.byteLength - 1}/${bytes.byteLength}` }
            : {}),
        });
        res.write(bytes.subarray(start, start + 50_000), () => setTimeout(() => res.destroy(), 20));
        return true;
      }
      return false;
    },
  });
  seedBlob(reg, 'team/app', bytes);
  const got = await buffer(await repo.openVerified(desc));
  assert.deepEqual(got, bytes);
  const gets = reg.requests.filter((r) => r.method === 'GET' && r.url.includes('/blobs/'));
  assert.deepEqual(
    gets.map((r) => r.headers.range),
    [undefined, 'bytes=50000-', 'bytes=100000-'],
  );
});

test('a corrupted byte: openVerified fails with DRAY_DIGEST_MISMATCH', async (t) => {
  const { reg, repo } = await setup(t);
  const { bytes, desc } = blob(10_000);
  const bad = Buffer.from(bytes);
  bad[5000] = (bad[5000] ?? 0) ^ 0xff;
  seedBlob(reg, 'team/app', bytes);
  reg.blobs.get('team/app')?.set(desc.digest, bad);
  await assert.rejects(buffer(await repo.openVerified(desc)), code('DRAY_DIGEST_MISMATCH'));
  // and too many bytes fail before EOF
  reg.blobs.get('team/app')?.set(desc.digest, Buffer.concat([bytes, Buffer.from('x')]));
  await assert.rejects(buffer(await repo.openVerified(desc)), code('DRAY_SIZE_MISMATCH'));
});

test('open with offset sends Range and checks the 206', async (t) => {
  const { reg, repo } = await setup(t);
  const { bytes, desc } = blob(5000);
  seedBlob(reg, 'team/app', bytes);
  assert.deepEqual(await buffer(await repo.open(desc, { offset: 1234 })), bytes.subarray(1234));
  assert.equal(reg.requests.at(-1)?.headers.range, 'bytes=1234-');
});

test('open with offset: a server that ignores Range is an error', async (t) => {
  const { reg, repo } = await setup(t, {
    hook: (req) => {
      delete req.headers.range;
      return false;
    },
  });
  const { bytes, desc } = blob(5000);
  seedBlob(reg, 'team/app', bytes);
  await assert.rejects(repo.open(desc, { offset: 10 }), code('DRAY_REGISTRY_ERROR', /range request/));
});

test('redirect to another origin: the blob arrives, Authorization does not', async (t) => {
  const { bytes, desc } = blob(3000);
  const seen: IncomingMessage['headers'][] = [];
  const storage = createServer((req, res) => {
    seen.push(req.headers);
    res.writeHead(200, { 'content-length': bytes.byteLength });
    res.end(bytes);
  });
  await new Promise<void>((r) => storage.listen(0, '127.0.0.1', r));
  t.after(() => new Promise<void>((r) => storage.close(() => r())));
  const storageOrigin = `http://127.0.0.1:${(storage.address() as AddressInfo).port}`;
  const calls: { host: string; scopes: Scope[]; challenges: Challenge[] }[] = [];
  const { repo, reg } = await setup(
    t,
    {
      blobRedirect: storageOrigin,
      hook: (req, res) => {
        if (req.headers.authorization) return false;
        res.writeHead(401, { 'www-authenticate': 'Bearer realm="https://auth.example/token",service="x"' });
        res.end();
        return true;
      },
    },
    { authenticator: testAuthenticator(calls) },
  );
  assert.deepEqual(await buffer(await repo.openVerified(desc)), bytes);
  assert.equal(seen.length, 1);
  assert.equal(seen[0]?.authorization, undefined);
  assert.ok(reg.requests.some((r) => r.method === 'GET' && r.headers.authorization?.startsWith('Bearer ')));
});

test('monolithic upload: POST then one PUT ?digest= keeping the upload state', async (t) => {
  const { reg, repo } = await setup(t);
  const { bytes, desc } = blob(100_000);
  await repo.put(desc, Readable.from([bytes.subarray(0, 40_000), bytes.subarray(40_000)]));
  assert.deepEqual(reg.blobs.get('team/app')?.get(desc.digest), bytes);
  const ups = reg.requests.filter((r) => r.url.includes('/blobs/'));
  assert.deepEqual(
    ups.map((r) => r.method),
    ['HEAD', 'POST', 'PUT'],
  );
  assert.match(ups[2]?.url ?? '', /\?_state=abc%3D%3D&digest=sha256%3A[0-9a-f]{64}$/);
  // present now: put is a no-op that does not read the body
  const body = Readable.from([bytes]);
  await repo.put(desc, body);
  assert.equal(body.destroyed, true);
  assert.equal(reg.requests.filter((r) => r.method === 'POST').length, 1);
});

test('upload of a blob the caller already found absent: no second HEAD', async (t) => {
  const { reg, repo } = await setup(t);
  const { bytes, desc } = blob(10_000);
  assert.equal(await repo.has(desc), false);
  await repo.put(desc, Readable.from([bytes]), { absent: true });
  assert.deepEqual(reg.blobs.get('team/app')?.get(desc.digest), bytes);
  assert.deepEqual(
    reg.requests.filter((r) => r.url.includes('/blobs/')).map((r) => r.method),
    ['HEAD', 'POST', 'PUT'],
  );
});

test('chunked upload: PATCH chunks with Content-Range, then PUT', async (t) => {
  const { reg, repo } = await setup(t, {}, { chunkSizeBytes: 30_000 });
  const { bytes, desc } = blob(100_000);
  await repo.put(desc, Readable.from([bytes]));
  assert.deepEqual(reg.blobs.get('team/app')?.get(desc.digest), bytes);
  const patches = reg.requests.filter((r) => r.method === 'PATCH');
  assert.deepEqual(
    patches.map((r) => r.headers['content-range']),
    ['0-29999', '30000-59999', '60000-89999', '90000-99999'],
  );
  assert.equal(reg.requests.at(-1)?.method, 'PUT');
});

test('upload of a body that does not match its descriptor: DRAY_DIGEST_MISMATCH, nothing stored', async (t) => {
  const { reg, repo } = await setup(t);
  const { desc } = blob(1000);
  await assert.rejects(repo.put(desc, Readable.from([randomBytes(1000)])), code('DRAY_DIGEST_MISMATCH'));
  assert.equal(reg.blobs.get('team/app')?.has(desc.digest) ?? false, false);
});

test('a failed streamed upload restarts from a fresh stream only with reopen', async (t) => {
  let fail = 1;
  const { reg, repo } = await setup(t, {
    hook: (req, res) => {
      if (req.method === 'PUT' && req.url?.includes('/uploads/') && fail > 0) {
        fail--;
        req.resume();
        req.on('end', () => {
          res.writeHead(503);
          res.end();
        });
        return true;
      }
      return false;
    },
  });
  const { bytes, desc } = blob(10_000);
  await assert.rejects(repo.put(desc, Readable.from([bytes])), code('DRAY_REGISTRY_ERROR'));
  fail = 1;
  let reopened = 0;
  await repo.put(desc, Readable.from([bytes]), {
    reopen: async () => {
      reopened++;
      return Readable.from([bytes]);
    },
  });
  assert.equal(reopened, 1);
  assert.ok(reg.blobs.get('team/app')?.has(desc.digest));
});

test('mount: 201 mounted; 202 falls back and the session is reused by put', async (t) => {
  const { reg, repo } = await setup(t);
  const a = blob(500);
  seedBlob(reg, 'team/base', a.bytes);
  assert.equal(await repo.mount(a.desc, 'team/base'), true);
  assert.ok(reg.blobs.get('team/app')?.has(a.desc.digest));
  assert.match(reg.requests.at(-1)?.url ?? '', /\?mount=sha256%3A[0-9a-f]+&from=team%2Fbase$/);

  const b = blob(700);
  assert.equal(await repo.mount(b.desc, `${reg.host}/team/elsewhere`), false);
  assert.match(reg.requests.at(-1)?.url ?? '', /&from=team%2Felsewhere$/);
  const postsBefore = reg.requests.filter((r) => r.method === 'POST').length;
  await repo.put(b.desc, Readable.from([b.bytes]));
  assert.equal(reg.requests.filter((r) => r.method === 'POST').length, postsBefore, 'no new upload session');
  assert.ok(reg.blobs.get('team/app')?.has(b.desc.digest));
  // another registry: not mountable, no request
  const before = reg.requests.length;
  assert.equal(await repo.mount(b.desc, 'ghcr.io/team/base'), false);
  assert.equal(reg.requests.length, before);
});

test('mount refused by the registry returns false', async (t) => {
  const { repo } = await setup(t, {
    hook: (req, res) => {
      if (req.url?.includes('mount=')) {
        res.writeHead(403);
        res.end();
        return true;
      }
      return false;
    },
  });
  assert.equal(await repo.mount(blob(5).desc, 'x/y'), false);
});

test('putManifest, tag from the put cache, put of a manifest descriptor', async (t) => {
  const { reg, repo } = await setup(t);
  const layer = blob(100);
  await repo.put(layer.desc, Readable.from([layer.bytes]));
  const m = manifestBytes(layer.desc);
  const d = await repo.putManifest(digestOf(m), m, MediaTypes.ociManifest);
  assert.equal(d.digest, digestOf(m));
  const before = reg.requests.length;
  await repo.tag('latest', d);
  assert.deepEqual(
    reg.requests.slice(before).map((r) => r.method),
    ['PUT'],
  );
  assert.equal((await repo.resolve('latest')).digest, d.digest);
  // manifests through put() go to /manifests/<digest>
  const m2 = Buffer.from(`${m.toString()}\n`);
  const d2: Descriptor = { mediaType: MediaTypes.ociManifest, digest: digestOf(m2), size: m2.byteLength };
  await repo.put(d2, Readable.from([m2]));
  assert.ok(reg.manifests.get('team/app')?.has(d2.digest));
  // tag of a manifest not put by this Repository fetches it by digest first
  const other = createRegistryClient({ retry: fast });
  t.after(() => other.close());
  const repo2 = other.repository({ domain: reg.host, path: 'team/app' });
  await repo2.tag('v2', d2);
  assert.equal((await repo2.resolve('v2')).digest, d2.digest);
});

test('tags: paginates over 3 pages with Link rel="next"', async (t) => {
  const { reg, repo } = await setup(t);
  reg.tags.set('team/app', ['a', 'b', 'c', 'd', 'e', 'f', 'g']);
  const got: string[] = [];
  for await (const tag of repo.tags({ pageSize: 3 })) got.push(tag);
  assert.deepEqual(got, ['a', 'b', 'c', 'd', 'e', 'f', 'g']);
  const lists = reg.requests.filter((r) => r.url.includes('/tags/list'));
  assert.deepEqual(
    lists.map((r) => r.url.replace(/^.*\/tags\/list/, '')),
    ['?n=3', '?n=3&last=c', '?n=3&last=f'],
  );
});

test('abort via signal mid-download', async (t) => {
  const { bytes, desc } = blob(200_000);
  const { reg, repo } = await setup(t, {
    hook: (req, res) => {
      if (req.method === 'GET' && req.url?.includes('/blobs/')) {
        res.writeHead(200, { 'content-length': bytes.byteLength });
        res.write(bytes.subarray(0, 10_000)); // then stall
        return true;
      }
      return false;
    },
  });
  void reg;
  const ac = new AbortController();
  const stream = await repo.openVerified(desc, { signal: ac.signal });
  let n = 0;
  await assert.rejects(
    (async () => {
      for await (const c of stream) {
        n += (c as Buffer).byteLength;
        if (n >= 10_000) ac.abort();
      }
    })(),
    code('DRAY_ABORTED'),
  );
  // already aborted: rejected up front, no request
  const before = reg.requests.length;
  await assert.rejects(repo.open(desc, { signal: ac.signal }), code('DRAY_ABORTED'));
  assert.equal(reg.requests.length, before);
});
