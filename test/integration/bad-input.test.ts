// Bad input from the user and from registries: invalid references (docker's wording through
// the CLI), unknown repositories and tags on the real registry, and documents a real registry
// refuses to store (oversized, malformed, schema 1) served by an in-process node:http server
// playing the registry. Nothing may be stored when a pull fails.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readdir } from 'node:fs/promises';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import type { TestContext } from 'node:test';
import { test } from 'node:test';
import { main } from '../../src/cli/main.ts';
import { ContentStore, type DrayErrorCode, ImageStore, isDrayError, pull, push } from '../../src/index.ts';
import { seededBytes, writeOciLayout } from '../harness/oci-fixture.ts';
import { startRegistry } from '../harness/registry.ts';
import { requireTool, runCommand, tempDir } from '../harness/tools.ts';

interface Outcome {
  code: number;
  stdout: string;
  stderr: string;
}

async function cli(args: string[], root: string, configDir: string): Promise<Outcome> {
  const out = new PassThrough();
  const err = new PassThrough();
  const o: Buffer[] = [];
  const e: Buffer[] = [];
  out.on('data', (b: Buffer) => o.push(b));
  err.on('data', (b: Buffer) => e.push(b));
  const code = await main(['--root', root, '--config', configDir, ...args], {
    stdout: out,
    stderr: err,
    stdin: Readable.from([]),
    env: {},
    isTTY: false,
    stdinIsTTY: false,
  });
  return { code, stdout: Buffer.concat(o).toString('utf8'), stderr: Buffer.concat(e).toString('utf8') };
}

async function dirs(t: TestContext): Promise<{ root: string; configDir: string }> {
  const base = await tempDir(t, 'dray-bad-');
  return { root: join(base, 'root'), configDir: join(base, 'docker') };
}

/** True when the data root holds no committed blob and no image record. */
async function assertNothingStored(root: string): Promise<void> {
  const content = await ContentStore.open(root);
  const blobs: string[] = [];
  for await (const b of content.list()) blobs.push(b.digest);
  assert.deepEqual(blobs, [], 'blobs were committed');
  const images = await ImageStore.open(root);
  assert.deepEqual(await images.list(), [], 'an image was recorded');
  // No ingest left behind either (a failed document read never starts one).
  const ingest = await readdir(join(root, 'content', 'ingest')).catch(() => []);
  assert.deepEqual(ingest, [], 'an ingest was left behind');
}

// --- references ---

const badReferences: Array<{ ref: string; message: RegExp }> = [
  {
    ref: 'Upper/Case',
    message: /^error: invalid reference format: repository name \(Case\) must be lowercase$/m,
  },
  {
    ref: 'UPPER',
    message: /^error: invalid reference format: repository name \(.*UPPER\) must be lowercase$/m,
  },
  {
    ref: '',
    message: /^error: (invalid reference format|repository name must have at least one component)/m,
  },
  { ref: ':tag', message: /^error: invalid reference format$/m },
  {
    ref: 'a'.repeat(256),
    message: /^error: (invalid reference format: )?repository name must not be more than 255 characters$/m,
  },
  { ref: 'busybox:bad tag', message: /^error: invalid reference format$/m },
  { ref: 'busybox@sha256:123', message: /^error: invalid (reference|digest) format/m },
  { ref: 'busybox::latest', message: /^error: invalid reference format$/m },
];

for (const { ref, message } of badReferences) {
  test(`invalid reference ${JSON.stringify(ref.length > 40 ? `${ref.slice(0, 10)}…(${ref.length})` : ref)}: DRAY_INVALID_REFERENCE, docker wording, exit 1`, async (t) => {
    const { root, configDir } = await dirs(t);
    for (const verb of ['pull', 'push']) {
      const r = await cli([verb, ref], root, configDir);
      assert.equal(r.code, 1, `${verb}: ${r.stderr}`);
      assert.match(r.stderr, message, `${verb}: ${r.stderr}`);
      assert.doesNotMatch(r.stderr, /\n\s+at /, 'a stack trace was printed without --debug');
    }
    await assert.rejects(pull(ref, { root }), (e: unknown) => {
      assert.ok(isDrayError(e, 'DRAY_INVALID_REFERENCE'), String(e));
      return true;
    });
    await assert.rejects(push(ref, { root }), (e: unknown) => {
      assert.ok(isDrayError(e, 'DRAY_INVALID_REFERENCE'), String(e));
      return true;
    });
  });
}

test('a 255-character repository name is valid (the limit is exclusive)', async (t) => {
  const { root } = await dirs(t);
  // A 255-character path (distribution/reference limits the path, not domain + path) is valid;
  // nothing listens on port 9, so the pull fails later, and not on the reference.
  const short = `127.0.0.1:9/${'a'.repeat(255)}`;
  await assert.rejects(pull(`${short}:v1`, { root }), (e: unknown) => {
    assert.ok(isDrayError(e) && e.code !== 'DRAY_INVALID_REFERENCE', String(e));
    return true;
  });
});

// --- unknown repository or tag on the real registry ---

test('unknown repository and unknown tag: manifest unknown, clear message, nothing stored', async (t) => {
  if (!requireTool(t, 'docker-registry', 'skopeo')) return;
  const reg = await startRegistry(t);
  const dir = await tempDir(t, 'dray-oci-');
  const fx = await writeOciLayout(dir, [{ 'a.bin': seededBytes(3, 1024) }]);
  const r = await runCommand('skopeo', [
    'copy',
    '-q',
    '--dest-tls-verify=false',
    `oci:${fx.ref}`,
    `docker://${reg.host}/known/repo:v1`,
  ]);
  assert.equal(r.code, 0, r.stderr);
  const { root, configDir } = await dirs(t);

  const cases: Array<{ ref: string; message: RegExp }> = [
    {
      ref: `${reg.host}/known/repo:nope`,
      message: new RegExp(`manifest unknown: manifest for ${reg.host}/known/repo:nope not found`),
    },
    {
      ref: `${reg.host}/no/such-repo:v1`,
      message: new RegExp(`manifest unknown: manifest for ${reg.host}/no/such-repo:v1 not found`),
    },
    {
      ref: `${reg.host}/known/repo@sha256:${'0'.repeat(64)}`,
      message: new RegExp(`manifest unknown: manifest for ${reg.host}/known/repo@sha256:0{64} not found`),
    },
  ];
  for (const c of cases) {
    await assert.rejects(pull(c.ref, { root }), (e: unknown) => {
      assert.ok(isDrayError(e, 'DRAY_MANIFEST_UNKNOWN'), `${c.ref}: ${String(e)}`);
      assert.match(e.message, c.message);
      return true;
    });
    const out = await cli(['pull', c.ref], root, configDir);
    assert.equal(out.code, 1);
    assert.match(out.stderr, new RegExp(`^error: ${c.message.source}`, 'm'));
  }
  await assertNothingStored(root);
});

// --- documents a real registry would not store: an in-process registry ---

interface FakeManifest {
  body: Buffer;
  contentType: string;
  /** Send Content-Length (default true); false streams it chunked. */
  contentLength?: boolean;
  /** Answer HEAD with the document's headers (default) or 404-free 405 to force a GET. */
  head?: 'headers' | 'refuse';
}

/** A registry on a loopback port: /v2/ and one manifest at `repo:tag`; counts requests. */
async function fakeRegistry(t: TestContext, manifests: Record<string, FakeManifest>) {
  const requests: string[] = [];
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    requests.push(`${req.method} ${req.url}`);
    if (req.url === '/v2/') {
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
      return;
    }
    const m = /^\/v2\/(.+)\/manifests\/([^/]+)$/.exec(req.url ?? '');
    const doc = m ? (manifests[`${m[1]}:${m[2]}`] ?? digestIndex.get(`${m[1]}@${m[2]}`)) : undefined;
    if (!doc) {
      res.writeHead(404, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ errors: [{ code: 'MANIFEST_UNKNOWN', message: 'manifest unknown' }] }));
      return;
    }
    if (req.method === 'HEAD' && doc.head === 'refuse') {
      res.writeHead(405).end();
      return;
    }
    const digest = `sha256:${createHash('sha256').update(doc.body).digest('hex')}`;
    const headers: Record<string, string> = {
      'content-type': doc.contentType,
      'docker-content-digest': digest,
    };
    if (doc.contentLength !== false) headers['content-length'] = String(doc.body.byteLength);
    res.writeHead(200, headers);
    if (req.method === 'HEAD') {
      res.end();
      return;
    }
    if (doc.contentLength === false) {
      // Chunked, in pieces, so the size is known only by reading.
      const step = 256 * 1024;
      for (let i = 0; i < doc.body.byteLength; i += step) res.write(doc.body.subarray(i, i + step));
      res.end();
    } else res.end(doc.body);
  });
  const digestIndex = new Map<string, FakeManifest>();
  for (const [key, doc] of Object.entries(manifests)) {
    const repo = key.slice(0, key.lastIndexOf(':'));
    digestIndex.set(`${repo}@sha256:${createHash('sha256').update(doc.body).digest('hex')}`, doc);
  }
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(
    () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  );
  return { host: `127.0.0.1:${(server.address() as AddressInfo).port}`, requests };
}

const ociManifest = 'application/vnd.oci.image.manifest.v1+json';

function bigManifest(bytes: number): Buffer {
  const layer = {
    mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip',
    digest: `sha256:${'a'.repeat(64)}`,
    size: 1,
  };
  const base = {
    schemaVersion: 2,
    mediaType: ociManifest,
    config: {
      mediaType: 'application/vnd.oci.image.config.v1+json',
      digest: `sha256:${'b'.repeat(64)}`,
      size: 2,
    },
    layers: [] as unknown[],
    annotations: { pad: '' },
  };
  const doc = Buffer.from(JSON.stringify({ ...base, layers: [layer] }));
  base.layers = [layer];
  base.annotations.pad = 'x'.repeat(Math.max(0, bytes - doc.byteLength));
  return Buffer.from(JSON.stringify(base));
}

const schema1 = Buffer.from(
  JSON.stringify({
    schemaVersion: 1,
    name: 'old/image',
    tag: 'latest',
    architecture: 'amd64',
    fsLayers: [{ blobSum: `sha256:${'c'.repeat(64)}` }],
    history: [{ v1Compatibility: '{"id":"x"}' }],
    signatures: [],
  }),
);

const documentCases: Array<{
  name: string;
  doc: FakeManifest;
  code: DrayErrorCode;
  message: RegExp;
}> = [
  {
    name: 'oversized manifest (5 MiB, Content-Length)',
    doc: { body: bigManifest(5 * 1024 * 1024), contentType: ociManifest },
    code: 'DRAY_DOCUMENT_TOO_LARGE',
    message: /manifest .*(5242880 bytes|size 5242880).* exceeds the (4 MiB|4194304-byte) limit/,
  },
  {
    name: 'oversized manifest (5 MiB, chunked, HEAD refused)',
    doc: {
      body: bigManifest(5 * 1024 * 1024),
      contentType: ociManifest,
      contentLength: false,
      head: 'refuse',
    },
    code: 'DRAY_DOCUMENT_TOO_LARGE',
    message: /manifest .*exceeds the (4 MiB|4194304-byte) limit/,
  },
  {
    name: 'malformed manifest (not JSON)',
    doc: { body: Buffer.from('{"schemaVersion": 2, "mediaType": '), contentType: ociManifest },
    code: 'DRAY_INVALID_MANIFEST',
    message: /invalid .*manifest.*malformed JSON/,
  },
  {
    name: 'malformed manifest (JSON without config)',
    doc: {
      body: Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: ociManifest, layers: [] })),
      contentType: ociManifest,
    },
    code: 'DRAY_INVALID_MANIFEST',
    message: /invalid .*manifest.*config/,
  },
  {
    name: 'schema 1 manifest (signed media type)',
    doc: { body: schema1, contentType: 'application/vnd.docker.distribution.manifest.v1+prettyjws' },
    code: 'DRAY_UNSUPPORTED_MEDIA_TYPE',
    message: /unsupported manifest format: Docker Image Manifest Version 2, Schema 1/,
  },
  {
    name: 'schema 1 manifest (served as application/json)',
    doc: { body: schema1, contentType: 'application/json' },
    code: 'DRAY_UNSUPPORTED_MEDIA_TYPE',
    message: /unsupported manifest format: Docker Image Manifest Version 2, Schema 1/,
  },
];

for (const c of documentCases) {
  test(`${c.name}: ${c.code}, clear message, nothing stored`, async (t) => {
    const reg = await fakeRegistry(t, { 'bad/doc:v1': c.doc });
    const { root, configDir } = await dirs(t);
    const ref = `${reg.host}/bad/doc:v1`;
    await assert.rejects(pull(ref, { root }), (e: unknown) => {
      assert.ok(isDrayError(e, c.code), `${String(e)} (${(e as { code?: string }).code})`);
      assert.match(e.message, c.message);
      assert.ok(e.message.length < 400, `message too long: ${e.message.length} chars`);
      return true;
    });
    await assertNothingStored(root);
    const out = await cli(['pull', ref], root, configDir);
    assert.equal(out.code, 1, out.stderr);
    assert.match(out.stderr, new RegExp(`^error: .*${c.message.source}`, 'm'));
    await assertNothingStored(root);
    assert.ok(reg.requests.some((r) => r.startsWith('GET /v2/bad/doc/manifests/') || r.startsWith('HEAD ')));
  });
}
