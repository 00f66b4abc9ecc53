import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import { test } from 'node:test';
import { gzipSync, zstdCompressSync } from 'node:zlib';
import { createTarWriter } from '../archive/index.ts';
import { digestOf } from '../digest/index.ts';
import { isDrayError } from '../errors.ts';
import {
  type BlobSource,
  type Descriptor,
  type ImageConfig,
  type ImageManifest,
  MediaTypes,
} from '../oci/index.ts';
import { withPlainTarLayers } from './zstd-layers.ts';

async function tarOf(name: string, body: string): Promise<Buffer> {
  const w = createTarWriter();
  const out = buffer(w.readable);
  await w.add(
    { name, type: 'file', mode: 0o644, uid: 0, gid: 0, size: body.length, mtime: 0 },
    Buffer.from(body),
  );
  await w.finish();
  return out;
}

async function setup(lie = false) {
  const plainA = await tarOf('a', 'gzip layer');
  const plainB = await tarOf('b', 'zstd layer');
  const blobs = new Map<string, Buffer>();
  const put = (mediaType: string, b: Buffer): Descriptor => {
    const d = { mediaType, digest: digestOf(b), size: b.length };
    blobs.set(d.digest, b);
    return d;
  };
  const layers = [
    put(MediaTypes.ociLayerGzip, gzipSync(plainA)),
    put(MediaTypes.ociLayerZstd, zstdCompressSync(plainB)),
  ];
  const config = {
    architecture: 'amd64',
    os: 'linux',
    rootfs: { type: 'layers', diff_ids: [digestOf(plainA), lie ? digestOf(plainA) : digestOf(plainB)] },
  } as ImageConfig;
  const manifest: ImageManifest = {
    schemaVersion: 2,
    mediaType: MediaTypes.ociManifest,
    config: put(MediaTypes.ociConfig, Buffer.from(JSON.stringify(config))),
    layers,
  };
  const manifestDescriptor = put(MediaTypes.ociManifest, Buffer.from(JSON.stringify(manifest)));
  const source: BlobSource = {
    async open(d) {
      return Readable.from([blobs.get(d.digest) as Buffer]);
    },
  };
  return { source, manifest, manifestDescriptor, config, plainB };
}

test('withPlainTarLayers: a zstd layer becomes its plain tar (digest = diffID); the rest is kept', async () => {
  const s = await setup();
  const out = await withPlainTarLayers(s, s.config);
  assert.deepEqual(out.manifest.layers[0], s.manifest.layers[0]);
  assert.deepEqual(out.manifest.layers[1], {
    mediaType: MediaTypes.ociLayer,
    digest: s.config.rootfs.diff_ids[1],
    size: s.plainB.length,
  });
  assert.deepEqual(out.manifest.config, s.manifest.config);
  const layer = await buffer(await out.source.open(out.manifest.layers[1] as Descriptor));
  assert.deepEqual(layer, s.plainB);
  const doc = await buffer(await out.source.open(out.manifestDescriptor));
  assert.equal(digestOf(doc), out.manifestDescriptor.digest);
  assert.deepEqual(JSON.parse(doc.toString()), out.manifest);
  // without zstd layers nothing changes
  const same = { ...s, manifest: { ...s.manifest, layers: [s.manifest.layers[0] as Descriptor] } };
  assert.equal(await withPlainTarLayers(same, s.config), same);
});

test('withPlainTarLayers: a layer that does not decompress to its diffID is refused', async () => {
  const s = await setup(true);
  await assert.rejects(withPlainTarLayers(s, s.config), (e) => isDrayError(e, 'DRAY_DIGEST_MISMATCH'));
});
