import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { test } from 'node:test';
import { isInsecureAllowed, isLoopbackHost, redactUrl, registryHost } from './endpoint.ts';
import { parseRegistryErrors, RegistryError, statusError } from './errors.ts';
import { nextLink } from './repository.ts';
import { backoffMs, parseRetryAfterMs, resolveRetryOptions } from './retry.ts';
import { readChunks, withDigest } from './upload.ts';

test('registryHost: Docker Hub aliases map to registry-1.docker.io', () => {
  assert.equal(registryHost('docker.io'), 'registry-1.docker.io');
  assert.equal(registryHost('index.docker.io'), 'registry-1.docker.io');
  assert.equal(registryHost('GHCR.io'), 'ghcr.io');
  assert.equal(registryHost('localhost:5000'), 'localhost:5000');
});

test('loopback and insecure registries', () => {
  for (const h of ['localhost', 'localhost:5000', '127.0.0.1', '127.1.2.3:80', '[::1]:5000', '[::1]']) {
    assert.equal(isLoopbackHost(h), true, h);
  }
  for (const h of ['example.com', '10.0.0.1:5000', '128.0.0.1', 'localhost.example.com']) {
    assert.equal(isLoopbackHost(h), false, h);
  }
  assert.equal(isInsecureAllowed('reg.lan:5000', ['reg.lan:5000']), true);
  assert.equal(isInsecureAllowed('reg.lan:5000', ['reg.lan']), true);
  assert.equal(isInsecureAllowed('reg.lan:5001', ['reg.lan:5000']), false);
  assert.equal(isInsecureAllowed('10.1.2.3:5000', ['10.0.0.0/8']), true);
  assert.equal(isInsecureAllowed('11.1.2.3', ['10.0.0.0/8']), false);
  assert.equal(isInsecureAllowed('reg.lan', ['http://reg.lan/']), true);
  assert.equal(isInsecureAllowed('ghcr.io'), false);
});

test('redactUrl drops queries and userinfo', () => {
  assert.equal(
    redactUrl('https://s3.example/bucket/blob?X-Amz-Signature=abc&X-Amz-Credential=k'),
    'https://s3.example/bucket/blob?REDACTED',
  );
  assert.equal(redactUrl('https://user:pw@reg.example/v2/'), 'https://REDACTED@reg.example/v2/');
  assert.equal(redactUrl('https://reg.example/v2/'), 'https://reg.example/v2/');
});

test('statusError maps statuses and codes to docker-worded DrayErrors', () => {
  const req = { method: 'GET', url: 'https://r.example/v2/a/manifests/v1?token=secret' };
  const ctx = {
    action: 'pull',
    repository: 'r.example/a',
    host: 'r.example',
    what: { kind: 'manifest', ref: 'v1' },
  } as const;
  const e404 = statusError({ status: 404, body: '{"errors":[{"code":"MANIFEST_UNKNOWN"}]}' }, req, ctx);
  assert.equal(e404.code, 'DRAY_MANIFEST_UNKNOWN');
  assert.equal(e404.message, 'manifest unknown: manifest for r.example/a:v1 not found');
  assert.equal(e404.request?.url, 'https://r.example/v2/a/manifests/v1?REDACTED');
  const nameUnknown = statusError({ status: 404, body: '{"errors":[{"code":"NAME_UNKNOWN"}]}' }, req, ctx);
  assert.equal(nameUnknown.code, 'DRAY_PULL_DENIED');
  assert.equal(statusError({ status: 403 }, req, ctx).code, 'DRAY_PULL_DENIED');
  assert.equal(statusError({ status: 403 }, req, { ...ctx, action: 'push' }).code, 'DRAY_PUSH_DENIED');
  const blob = statusError(
    { status: 404 },
    { method: 'HEAD', url: 'https://r.example/v2/a/blobs/sha256:ab' },
    { ...ctx, what: { kind: 'blob', digest: 'sha256:ab' } },
  );
  assert.equal(blob.code, 'DRAY_BLOB_UNKNOWN');
  const e502 = statusError({ status: 502, statusText: 'Bad Gateway' }, { method: 'HEAD', url: req.url }, ctx);
  assert.equal(e502.code, 'DRAY_REGISTRY_ERROR');
  assert.equal(e502.retryable, true);
  assert.match(e502.message, /use GET for details/);
  assert.doesNotMatch(e502.message, /secret/);
  assert.ok(e502 instanceof RegistryError);
  assert.equal(new Error('x') instanceof RegistryError, false);
  const digestInvalid = statusError(
    { status: 400, body: '{"errors":[{"code":"DIGEST_INVALID","message":"bad"}]}' },
    req,
    { ...ctx, action: 'push' },
  );
  assert.equal(digestInvalid.code, 'DRAY_DIGEST_MISMATCH');
  assert.deepEqual(parseRegistryErrors('not json'), []);
});

test('retry policy: defaults, backoff bounds, Retry-After', () => {
  const p = resolveRetryOptions();
  assert.deepEqual(p, { attempts: 5, minDelayMs: 200, maxDelayMs: 5000 });
  for (let i = 1; i <= 8; i++) {
    const ms = backoffMs(i, p);
    assert.ok(ms >= Math.min(5000, 200 * 2 ** (i - 1)) / 2 - 1 && ms <= 5000, `${i}: ${ms}`);
  }
  assert.equal(backoffMs(1, p, '2'), 2000);
  assert.equal(backoffMs(1, p, '3600'), 5000);
  assert.equal(parseRetryAfterMs('soon'), undefined);
  assert.ok((parseRetryAfterMs(new Date(Date.now() + 3000).toUTCString()) ?? 0) > 1000);
});

test('upload helpers: digest appended without re-encoding the query; fixed-size chunks', async () => {
  assert.equal(
    withDigest(new URL('https://r/v2/a/blobs/uploads/u?_state=ab%3D%3D&X-Sig=a+b'), 'sha256:00').href,
    'https://r/v2/a/blobs/uploads/u?_state=ab%3D%3D&X-Sig=a+b&digest=sha256%3A00',
  );
  assert.equal(withDigest(new URL('https://r/up'), 'sha256:00').href, 'https://r/up?digest=sha256%3A00');
  const chunks: number[] = [];
  for await (const c of readChunks(Readable.from([Buffer.alloc(7), Buffer.alloc(10), Buffer.alloc(1)]), 5))
    chunks.push(c.byteLength);
  assert.deepEqual(chunks, [5, 5, 5, 3]);
});

test('nextLink parses rel="next" relative to the page', () => {
  const base = new URL('https://r.example/v2/a/tags/list?n=2');
  assert.equal(
    nextLink('</v2/a/tags/list?n=2&last=b>; rel="next"', base)?.href,
    'https://r.example/v2/a/tags/list?n=2&last=b',
  );
  assert.equal(nextLink('<https://x/p>; rel="prev", <https://x/n>; rel=next', base)?.href, 'https://x/n');
  assert.equal(nextLink(undefined, base), undefined);
  assert.equal(nextLink('<https://x/p>; rel="prev"', base), undefined);
});
