import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import type { lookup as dnsLookup } from 'node:dns';
import { Readable } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import { test } from 'node:test';
import { Agent } from 'undici';
import { digestOf } from '../digest/index.ts';
import { isDrayError } from '../errors.ts';
import { MediaTypes } from '../oci/media-types.ts';
import { createAuthenticator } from './auth.ts';
import { createRegistryClient } from './client.ts';
import { staticCredentials } from './credential-store.ts';
import { seedBlob, startTestRegistry } from './test-registry.ts';

const fast = { attempts: 2, minDelayMs: 1, maxDelayMs: 2 };

function code(c: string, msg?: RegExp) {
  return (e: unknown) => {
    assert.ok(isDrayError(e), `expected DrayError ${c}, got ${String(e)}`);
    assert.equal(e.code, c, e.message);
    if (msg) assert.match(e.message, msg);
    return true;
  };
}

test('ping: loopback is reached over http; challenges are returned', async (t) => {
  const reg = await startTestRegistry({
    hook: (req, res) => {
      if (req.url !== '/v2/' || req.headers.authorization) return false;
      res.writeHead(401, { 'www-authenticate': 'Bearer realm="http://x/token",service="reg"' });
      res.end();
      return true;
    },
  });
  t.after(() => reg.close());
  const client = createRegistryClient({ retry: fast });
  t.after(() => client.close());
  const p = await client.ping(reg.host);
  assert.equal(p.scheme, 'http');
  assert.deepEqual(p.challenges, [{ scheme: 'bearer', params: { realm: 'http://x/token', service: 'reg' } }]);
  assert.match(String(reg.requests[0]?.headers['user-agent']), /^dray\//);
});

test('a plain-http host not in insecureRegistries: DRAY_INSECURE_REGISTRY with the flag as hint', async (t) => {
  const reg = await startTestRegistry();
  t.after(() => reg.close());
  const port = reg.host.split(':')[1];
  // registry.test resolves to 127.0.0.1 for this Agent only: a non-loopback name on a local server.
  const lookup = ((_h: string, o: { all?: boolean }, cb: (...a: unknown[]) => void) =>
    o?.all
      ? cb(null, [{ address: '127.0.0.1', family: 4 }])
      : cb(null, '127.0.0.1', 4)) as unknown as typeof dnsLookup;
  const dispatcher = new Agent({ connect: { lookup } });
  t.after(() => dispatcher.close());
  const host = `registry.test:${port}`;
  const client = createRegistryClient({ retry: fast, dispatcher });
  await assert.rejects(client.repository({ domain: host, path: 'a/b' }).resolve('v1'), (e: unknown) => {
    assert.ok(isDrayError(e, 'DRAY_INSECURE_REGISTRY'), String(e));
    assert.equal(
      e.hint,
      `if ${host} is a trusted plain-HTTP registry, allow it with --insecure-registry ${host}`,
    );
    return true;
  });
  // allowed: https is tried first, then http works and is cached
  const ok = createRegistryClient({ retry: fast, dispatcher, insecureRegistries: ['registry.test'] });
  const p = await ok.ping(host);
  assert.equal(p.scheme, 'http');
  const { bytes } = { bytes: randomBytes(10) };
  seedBlob(reg, 'a/b', bytes);
  const repo = ok.repository({ domain: host, path: 'a/b' });
  const d = { mediaType: MediaTypes.ociLayer, digest: digestOf(bytes), size: 10 };
  assert.deepEqual(await buffer(await repo.open(d)), bytes);
});

test('connection refused: DRAY_REGISTRY_UNREACHABLE with a hint', async (t) => {
  const reg = await startTestRegistry();
  const host = reg.host;
  await reg.close();
  const client = createRegistryClient({ retry: fast });
  t.after(() => client.close());
  await assert.rejects(
    client.repository({ domain: host, path: 'a/b' }).resolve('v1'),
    code('DRAY_REGISTRY_UNREACHABLE', /connection refused/),
  );
  await assert.rejects(client.ping(host), code('DRAY_REGISTRY_UNREACHABLE'));
});

test('repository names: docker.io is served by registry-1.docker.io; messages use the familiar name', () => {
  const client = createRegistryClient();
  const hub = client.repository({ domain: 'docker.io', path: 'library/ubuntu' });
  assert.equal(hub.host, 'registry-1.docker.io');
  assert.equal(hub.path, 'library/ubuntu');
  assert.equal(hub.displayName, 'ubuntu');
  assert.equal(client.repository({ domain: 'index.docker.io', path: 'me/app' }).displayName, 'me/app');
  assert.equal(client.repository({ domain: 'ghcr.io', path: 'o/r' }).displayName, 'ghcr.io/o/r');
  assert.throws(() => createRegistryClient({ chunkSizeBytes: 0 }), code('DRAY_INVALID_ARGUMENT'));
});

test('token auth end to end with the real Authenticator: Basic to the realm, Bearer to the registry', async (t) => {
  const tokenRequests: string[] = [];
  const reg = await startTestRegistry({
    hook: (req, res, r) => {
      const url = new URL(req.url ?? '/', 'http://x');
      if (url.pathname === '/token') {
        tokenRequests.push(url.search);
        if (req.headers.authorization !== `Basic ${Buffer.from('bob:pw').toString('base64')}`) {
          res.writeHead(401);
          res.end();
          return true;
        }
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(
          JSON.stringify({ token: `tok-${url.searchParams.getAll('scope').join('+')}`, expires_in: 300 }),
        );
        return true;
      }
      if (req.headers.authorization?.startsWith('Bearer tok-')) return false;
      res.writeHead(401, {
        'www-authenticate': `Bearer realm="${r.origin}/token",service="test-registry"`,
        'content-type': 'application/json',
      });
      res.end('{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}');
      return true;
    },
  });
  t.after(() => reg.close());
  const authenticator = createAuthenticator({
    credentials: staticCredentials({ [reg.host]: { kind: 'basic', username: 'bob', password: 'pw' } }),
  });
  const client = createRegistryClient({ retry: fast, authenticator });
  t.after(() => client.close());
  const repo = client.repository({ domain: reg.host, path: 'team/app' });
  const bytes = randomBytes(5000);
  const d = { mediaType: MediaTypes.ociLayerGzip, digest: digestOf(bytes), size: bytes.byteLength };
  await repo.put(d, Readable.from([bytes]));
  assert.deepEqual(await buffer(await repo.openVerified(d)), bytes);
  assert.ok(
    tokenRequests.some((q) => q.includes('scope=repository%3Ateam%2Fapp%3Apull%2Cpush')),
    tokenRequests.join('\n'),
  );
  assert.ok(reg.blobs.get('team/app')?.has(d.digest));
  // wrong password: the token service refuses → DRAY_UNAUTHORIZED from the Authenticator
  const bad = createRegistryClient({
    retry: fast,
    authenticator: createAuthenticator({
      credentials: staticCredentials({ [reg.host]: { kind: 'basic', username: 'bob', password: 'nope' } }),
    }),
  });
  t.after(() => bad.close());
  await assert.rejects(bad.repository({ domain: reg.host, path: 'team/app' }).resolve('v1'), (e: unknown) => {
    assert.ok(isDrayError(e), String(e));
    assert.doesNotMatch(`${e.message} ${e.hint ?? ''}`, /nope|Basic /);
    return true;
  });
});
