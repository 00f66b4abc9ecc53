import assert from 'node:assert/strict';
import { test } from 'node:test';
import { type Digest, digestOf } from '../digest/index.ts';
import type { Descriptor, ImageConfig, ImageManifest } from '../oci/index.ts';
import { buildCacheConfig, type CacheExportRecord, parseCacheConfig } from './config.ts';
import { cacheManifest, inlineCacheRecords, readCacheRoot, readInlineCache } from './document.ts';
import { selectExportRecords } from './exporter.ts';
import { parseCacheExportSpec, parseCacheImportSpec } from './spec.ts';

const d = (s: string): Digest => digestOf(Buffer.from(s));
const blob = (s: string): Descriptor => ({
  mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip',
  digest: d(`blob ${s}`),
  size: s.length,
});
const layer = (s: string, created?: number) => ({
  diffId: d(`diff ${s}`),
  blob: blob(s),
  ...(created !== undefined ? { created } : {}),
});

// base ← a ← b (one stage), base ← c (another)
const records: CacheExportRecord[] = [
  { key: d('k1'), layers: [layer('base'), layer('a', 1000)], created: 1000 },
  {
    key: d('k2'),
    inputs: [d('k1')],
    layers: [layer('base'), layer('a', 1000), layer('b', 2000)],
    created: 2000,
  },
  { key: d('k3'), inputs: [d('local')], layers: [layer('base'), layer('c', 3000)], created: 3000 },
];

function blobsOf(layers: Descriptor[]): Map<string, Descriptor> {
  return new Map(layers.map((l) => [l.digest, l]));
}

test('a cache config round-trips: every key gets its layers, diffIDs and times back', () => {
  const { config, layers } = buildCacheConfig(records);
  assert.equal(config.layers?.length, 4, 'base, a, b and c: a shared prefix is one layer entry');
  assert.equal(layers.length, 4);
  assert.ok(config.layers?.some((l) => l.parent === -1));
  const parsed = parseCacheConfig(Buffer.from(JSON.stringify(config)), blobsOf(layers), 'test');
  for (const r of records) {
    const got = parsed.results.get(r.key);
    assert.ok(got, r.key);
    assert.deepEqual(
      got.layers.map((l) => [l.diffId, l.blob.digest, l.created]),
      r.layers.map((l) => [l.diffId, l.blob.digest, l.created]),
    );
    assert.equal(got.created, r.created);
  }
  // An input that was not exported is a record without results, so every link resolves.
  const local = config.records?.find((r) => r.digest === d('local'));
  assert.ok(local && !local.layers);
  assert.equal(parsed.results.has(d('local')), false);
});

test('building a config is deterministic whatever the record order', () => {
  const a = JSON.stringify(buildCacheConfig(records).config);
  const b = JSON.stringify(buildCacheConfig([...records].reverse()).config);
  assert.equal(a, b);
});

test('results naming a blob the manifest lacks are left out; malformed configs are refused', () => {
  const { config, layers } = buildCacheConfig(records);
  const without = blobsOf(layers.filter((l) => l.digest !== blob('b').digest));
  const parsed = parseCacheConfig(Buffer.from(JSON.stringify(config)), without, 'test');
  assert.equal(parsed.results.has(d('k2')), false);
  assert.equal(parsed.results.has(d('k1')), true);
  const bad = (doc: unknown) =>
    assert.throws(
      () => parseCacheConfig(Buffer.from(JSON.stringify(doc)), blobsOf(layers), 'test'),
      (e: unknown) => (e as { code?: string }).code === 'DRAY_INVALID_MANIFEST',
    );
  bad([]);
  bad({ layers: 'x' });
  bad({ layers: [{ blob: 'nope' }] });
  bad({ layers: [{ blob: blob('a').digest, parent: 5 }] });
  // A layer that is its own parent (BuildKit's Go omits parent 0, so absent = 0).
  bad({ layers: [{ blob: blob('a').digest }], records: [{ digest: d('x'), layers: [{ layer: 0 }] }] });
  bad({ records: [{ digest: d('x'), inputs: [[]] }] });
  bad({ records: [{ digest: d('x'), inputs: [[{ link: 7 }]] }] });
  assert.throws(() => parseCacheConfig(Buffer.from('{'), new Map(), 'test'), /not JSON/);
});

test('mode=min keeps the results on the final chain, mode=max all', () => {
  const final = [blob('base').digest, blob('a').digest, blob('b').digest];
  assert.deepEqual(
    selectExportRecords(records, final, 'min').map((r) => r.key),
    [d('k1'), d('k2')],
  );
  assert.equal(selectExportRecords(records, final, 'max').length, 3);
});

test('cache manifests: index (OCI or Docker), or an image manifest; read back as caches', () => {
  const { config, layers } = buildCacheConfig(records);
  const cfgBytes = Buffer.from(JSON.stringify(config));
  const cfg = {
    mediaType: 'application/vnd.buildkit.cacheconfig.v0',
    digest: digestOf(cfgBytes),
    size: cfgBytes.length,
  };
  for (const o of [{}, { oci: false }, { imageManifest: true }]) {
    const m = cacheManifest(cfg, layers, o);
    const root = readCacheRoot(m.bytes, m.descriptor.mediaType);
    assert.equal(root.kind, 'cache');
    if (root.kind === 'cache') {
      assert.equal(root.config.digest, cfg.digest);
      assert.equal(root.blobs.size, 4);
    }
  }
  assert.throws(() => cacheManifest(cfg, layers, { imageManifest: true, oci: false }), /OCI media types/);
});

test('inline cache: records point into the image layers and read back from its config', () => {
  const { config } = buildCacheConfig(
    selectExportRecords(records, [blob('base').digest, blob('a').digest, blob('b').digest], 'min'),
  );
  const imageBlobs = [blob('base'), blob('a'), blob('b')];
  const inline = inlineCacheRecords(
    config,
    imageBlobs.map((b) => b.digest),
  );
  assert.ok(inline);
  const manifest: ImageManifest = {
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: d('cfg'), size: 1 },
    layers: imageBlobs,
  };
  const image = {
    architecture: 'amd64',
    os: 'linux',
    rootfs: { type: 'layers', diff_ids: ['base', 'a', 'b'].map((s) => d(`diff ${s}`)) },
    history: [
      { created: '2024-01-01T00:00:00Z' },
      { created: '2024-01-01T00:00:01Z', empty_layer: true },
      { created: new Date(1000).toISOString() },
      { created: new Date(2000).toISOString() },
    ],
    'moby.buildkit.cache.v0': Buffer.from(JSON.stringify(inline)).toString('base64'),
  } as unknown as ImageConfig;
  const parsed = readInlineCache(manifest, image, 'test');
  assert.ok(parsed);
  assert.deepEqual(
    parsed.results.get(d('k2'))?.layers.map((l) => [l.blob.digest, l.diffId, l.created]),
    [
      [blob('base').digest, d('diff base'), Date.parse('2024-01-01T00:00:00Z')],
      [blob('a').digest, d('diff a'), 1000],
      [blob('b').digest, d('diff b'), 2000],
    ],
  );
  assert.equal(
    readInlineCache(manifest, { ...image, 'moby.buildkit.cache.v0': undefined } as ImageConfig, 't'),
    undefined,
  );
});

test('--cache-to and --cache-from values as buildx takes them', () => {
  assert.deepEqual(parseCacheExportSpec('type=registry,ref=r.example/app:cache,mode=max,mounts=true'), {
    type: 'registry',
    ref: 'r.example/app:cache',
    mode: 'max',
    imageManifest: false,
    ociMediaTypes: true,
    ignoreError: false,
    mounts: true,
  });
  assert.equal(parseCacheExportSpec('r.example/app:cache').type, 'registry');
  assert.deepEqual(parseCacheExportSpec('type=local,dest=/tmp/c,compression=zstd,compression-level=3'), {
    type: 'local',
    dest: '/tmp/c',
    tag: 'latest',
    mode: 'min',
    compression: 'zstd',
    compressionLevel: 3,
    imageManifest: false,
    ociMediaTypes: true,
    ignoreError: false,
    mounts: false,
  });
  assert.deepEqual(parseCacheExportSpec('type=inline'), { type: 'inline', mode: 'min', ignoreError: false });
  assert.deepEqual(parseCacheImportSpec('r.example/app:cache'), {
    type: 'registry',
    ref: 'r.example/app:cache',
  });
  assert.deepEqual(parseCacheImportSpec('type=local,src=/tmp/c,tag=v1'), {
    type: 'local',
    src: '/tmp/c',
    tag: 'v1',
  });
  const bad = (f: () => unknown, re: RegExp) =>
    assert.throws(
      f,
      (e: unknown) => (e as { code?: string }).code === 'DRAY_INVALID_ARGUMENT' && re.test(String(e)),
    );
  bad(() => parseCacheExportSpec('type=inline,mode=max'), /mode=min/);
  bad(() => parseCacheExportSpec('type=registry,mode=max'), /needs ref=/);
  bad(() => parseCacheExportSpec('type=registry,ref=x,mode=all'), /not min or max/);
  bad(() => parseCacheExportSpec('type=gha'), /not supported/);
  bad(() => parseCacheExportSpec('type=local,dest=/x,colour=red'), /unknown attribute colour/);
  bad(
    () => parseCacheExportSpec('type=registry,ref=x,image-manifest=true,oci-mediatypes=false'),
    /OCI media types/,
  );
  bad(() => parseCacheExportSpec('type=registry,ref=x,mounts=yes'), /true or false/);
  bad(() => parseCacheImportSpec('type=local'), /needs src=/);
  bad(() => parseCacheImportSpec(''), /needs a value/);
});
