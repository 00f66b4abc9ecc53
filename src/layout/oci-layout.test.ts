import assert from 'node:assert/strict';
import { createWriteStream } from 'node:fs';
import { mkdir, readdir, readFile, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import { describe, test } from 'node:test';
import { ContentStore } from '../content/index.ts';
import { blobTargetSuite } from '../content/testsuite.ts';
import { digestOf } from '../digest/index.ts';
import { isDrayError } from '../errors.ts';
import { copyGraph } from '../graph/index.ts';
import { type Descriptor, isDocumentType, MediaTypes } from '../oci/index.ts';
import { validateWithOciSchema } from '../oci/testing.ts';
import { OciArchive, OciLayout, writeOciArchive } from './index.ts';
import { conformanceDir, makeImage, requireTool, run, tempDir } from './testing.ts';

blobTargetSuite('OciLayout', async () => {
  const { mkdtemp, rm } = await import('node:fs/promises');
  const { tmpdir } = await import('node:os');
  const dir = await mkdtemp(join(tmpdir(), 'dray-layout-suite-'));
  const target = await OciLayout.create(join(dir, 'layout'));
  return { target, cleanup: () => rm(dir, { recursive: true, force: true }) };
});

const code = (c: string) => (e: unknown) => {
  assert.ok(isDrayError(e), String(e));
  assert.equal(e.code, c, e.message);
  return true;
};

describe('OciLayout', () => {
  test('create writes oci-layout and an empty index that validate against the OCI schemas', async (t) => {
    const dir = join(await tempDir(t), 'l');
    await OciLayout.create(dir);
    const header = JSON.parse(await readFile(join(dir, 'oci-layout'), 'utf8'));
    assert.deepEqual(header, { imageLayoutVersion: '1.0.0' });
    assert.deepEqual(validateWithOciSchema('layout', header), []);
    assert.deepEqual(
      validateWithOciSchema('index', JSON.parse(await readFile(join(dir, 'index.json'), 'utf8'))),
      [],
    );
  });

  test('open of a directory without oci-layout throws DRAY_NOT_FOUND', async (t) => {
    await assert.rejects(OciLayout.open(await tempDir(t)), code('DRAY_NOT_FOUND'));
  });

  test('refuses blob files that are symlinks or not regular files', async (t) => {
    const root = await tempDir(t);
    const l = await OciLayout.create(join(root, 'l'));
    const bytes = Buffer.from('secret');
    await writeFile(join(root, 'outside'), bytes);
    const d: Descriptor = { mediaType: MediaTypes.ociLayer, digest: digestOf(bytes), size: bytes.length };
    await symlink(join(root, 'outside'), join(root, 'l', 'blobs', 'sha256', d.digest.slice(7)));
    assert.equal(await l.has(d), false);
    await assert.rejects(l.open(d), code('DRAY_STORE'));
    const e = Buffer.from('dir');
    const d2: Descriptor = { mediaType: MediaTypes.ociLayer, digest: digestOf(e), size: 4096 };
    await mkdir(join(root, 'l', 'blobs', 'sha256', d2.digest.slice(7)));
    assert.equal(await l.has(d2), false);
    await assert.rejects(l.open(d2), code('DRAY_STORE'));
    // put replaces the planted symlink with the real content (rename over it)
    await l.put(d, Readable.from([bytes]));
    assert.deepEqual(await buffer(await l.open(d)), bytes);
  });

  test('a corrupt existing blob is re-hashed and replaced by put', async (t) => {
    const l = await OciLayout.create(join(await tempDir(t), 'l'));
    const bytes = Buffer.from('good content');
    const d: Descriptor = { mediaType: MediaTypes.ociLayer, digest: digestOf(bytes), size: bytes.length };
    await writeFile(join(l.dir, 'blobs', 'sha256', d.digest.slice(7)), Buffer.from('evil content'));
    await l.put(d, Readable.from([bytes]));
    assert.deepEqual(await buffer(await l.open(d)), bytes);
  });

  test('tag adds and replaces index entries; resolve finds them by either annotation', async (t) => {
    const dir = await tempDir(t);
    const a = await makeImage(join(dir, 'store'), { seed: 'a' });
    const l = await OciLayout.create(join(dir, 'l'));
    await copyGraph(a.store, l, a.manifest);
    await l.tag('v1', a.manifest);
    await l.tag('registry.example.com/app:1.2', a.manifest);
    assert.equal((await l.resolve('v1')).digest, a.manifest.digest);
    assert.equal((await l.resolve('1.2')).digest, a.manifest.digest);
    assert.equal((await l.resolve('registry.example.com/app:1.2')).digest, a.manifest.digest);
    assert.equal((await l.resolve(a.manifest.digest)).digest, a.manifest.digest);
    await assert.rejects(l.resolve('nope'), code('DRAY_NOT_FOUND'));
    const b = await makeImage(join(dir, 'store2'), { seed: 'b' });
    await copyGraph(b.store, l, b.manifest);
    await l.tag('v1', b.manifest);
    const index = await l.index();
    assert.equal(index.manifests.length, 2);
    assert.equal((await l.resolve('v1')).digest, b.manifest.digest);
    const raw = JSON.parse(await readFile(join(l.dir, 'index.json'), 'utf8'));
    assert.deepEqual(validateWithOciSchema('index', raw), []);
    const e = raw.manifests.find((m: Descriptor) => m.digest === a.manifest.digest);
    assert.deepEqual(e.annotations, {
      'io.containerd.image.name': 'registry.example.com/app:1.2',
      'org.opencontainers.image.ref.name': '1.2',
    });
    await assert.rejects(l.tag('x', { ...a.config, digest: digestOf('absent') }), code('DRAY_BLOB_UNKNOWN'));
  });

  test('concurrent tags of different names all land in index.json', async (t) => {
    const dir = await tempDir(t);
    const a = await makeImage(join(dir, 'store'));
    const l = await OciLayout.create(join(dir, 'l'));
    await copyGraph(a.store, l, a.manifest);
    await Promise.all(['t1', 't2', 't3', 't4'].map((n) => l.tag(n, a.manifest)));
    assert.equal((await l.index()).manifests.length, 4);
  });
});

describe('conformance OCI layouts (ggcr pkg/v1/layout/testdata)', () => {
  const layouts = join(conformanceDir, 'oci-layout');

  /**
   * Copies every document entry; ggcr's fixtures reference some docker manifests as OCI ones,
   * which dray refuses as containerd does (DRAY_INVALID_MANIFEST "media type mismatch").
   */
  async function copyAll(t: { after(fn: () => Promise<void>): void }, name: string) {
    const l = await OciLayout.open(join(layouts, name));
    const index = await l.index();
    assert.ok(index.manifests.length > 0);
    const store = await ContentStore.open(await tempDir(t));
    const result = { copied: 0, refused: 0 };
    for (const m of index.manifests) {
      if (!isDocumentType(m.mediaType)) continue; // e.g. a bare descriptor document: a leaf
      try {
        await copyGraph(l, store, m);
        assert.equal(await store.has(m), true);
        result.copied++;
      } catch (e) {
        assert.ok(
          isDrayError(e, 'DRAY_INVALID_MANIFEST') && /media type mismatch/.test(e.message),
          String(e),
        );
        result.refused++;
      }
    }
    return result;
  }

  for (const name of ['test_index', 'test_index_one_image', 'test_index_media_type', 'test_gc_index']) {
    test(`${name}: document entries copy verified, or are refused for a media-type mismatch`, async (t) => {
      const r = await copyAll(t, name);
      assert.ok(r.copied + r.refused > 0);
      if (name === 'test_index_one_image' || name === 'test_index_media_type') assert.equal(r.refused, 0);
    });
  }

  test('test_index: nested index and ref names resolve', async () => {
    const l = await OciLayout.open(join(layouts, 'test_index'));
    const one = await l.resolve('1');
    assert.equal(one.mediaType, MediaTypes.ociManifest);
    const index = await l.index();
    assert.ok(index.manifests.some((m) => m.mediaType === MediaTypes.ociIndex));
  });

  test('test_gc_index: named entries resolve', async () => {
    const l = await OciLayout.open(join(layouts, 'test_gc_index'));
    assert.equal((await l.resolve('1')).mediaType, MediaTypes.ociManifest);
    assert.equal((await l.resolve('3')).mediaType, MediaTypes.ociIndex);
    assert.equal((await l.resolve('4')).mediaType, MediaTypes.dockerManifestList);
  });

  test('test_gc_image_unknown_mediatype: index readable; the absent blob is DRAY_BLOB_UNKNOWN', async () => {
    const l = await OciLayout.open(join(layouts, 'test_gc_image_unknown_mediatype'));
    const [only] = (await l.index()).manifests;
    assert.ok(only);
    await assert.rejects(l.open(only), code('DRAY_BLOB_UNKNOWN'));
  });
});

describe('OCI archive', () => {
  async function writeArchive(dir: string, name: string, images: Parameters<typeof writeOciArchive>[1]) {
    const p = join(dir, name);
    await writeOciArchive(createWriteStream(p), images);
    return p;
  }

  test('deterministic: two writes are byte-identical', async (t) => {
    const dir = await tempDir(t);
    const a = await makeImage(join(dir, 's'));
    const imgs = [{ name: 'app:1', source: a.store, root: a.manifest }];
    const p1 = await writeArchive(dir, 'a.tar', imgs);
    const p2 = await writeArchive(dir, 'b.tar', imgs);
    assert.deepEqual(await readFile(p1), await readFile(p2));
  });

  test('reads back: resolve by name, every blob verified into a store, documents validate', async (t) => {
    const dir = await tempDir(t);
    const a = await makeImage(join(dir, 's1'), { seed: 'a' });
    const b = await makeImage(join(dir, 's2'), { seed: 'b', docker: true });
    const p = await writeArchive(dir, 'x.tar', [
      { name: 'app:1', source: a.store, root: a.manifest },
      { name: 'registry.example.com/other:2', source: b.store, root: b.manifest },
    ]);
    const arc = await OciArchive.open(p);
    assert.deepEqual(validateWithOciSchema('index', arc.index()), []);
    const ra = await arc.resolve('app:1');
    assert.equal(ra.digest, a.manifest.digest);
    assert.equal((await arc.resolve('docker.io/library/app:1')).digest, a.manifest.digest);
    assert.equal((await arc.resolve('registry.example.com/other:2')).digest, b.manifest.digest);
    const store = await ContentStore.open(join(dir, 'back'));
    await copyGraph(arc, store, ra);
    await copyGraph(arc, store, b.manifest);
    assert.equal(await store.has(a.config), true);
    assert.deepEqual(
      validateWithOciSchema('manifest', JSON.parse((await buffer(await store.open(a.manifest))).toString())),
      [],
    );
    await assert.rejects(arc.resolve('missing:1'), code('DRAY_NOT_FOUND'));
    await assert.rejects(arc.tag('x', ra), code('DRAY_INVALID_ARGUMENT'));
  });

  test('a tar without oci-layout is DRAY_INVALID_ARCHIVE', async () => {
    await assert.rejects(
      OciArchive.open(join(conformanceDir, 'tarball', 'test_image_1.tar')),
      code('DRAY_INVALID_ARCHIVE'),
    );
  });
});

describe('interop: skopeo and umoci accept what dray writes', () => {
  test('skopeo inspect oci:DIR and umoci unpack', async (t) => {
    if (!requireTool(t, 'skopeo', 'umoci')) return;
    const dir = await tempDir(t);
    const a = await makeImage(join(dir, 's'));
    const l = await OciLayout.create(join(dir, 'layout'));
    await copyGraph(a.store, l, a.manifest);
    await l.tag('app:v1', a.manifest);
    const r = await run('skopeo', ['inspect', `oci:${l.dir}:v1`]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(JSON.parse(r.stdout).Digest, a.manifest.digest);
    const u = await run('umoci', ['unpack', '--rootless', '--image', `${l.dir}:v1`, join(dir, 'bundle')]);
    assert.equal(u.code, 0, u.stderr);
    assert.equal(await readFile(join(dir, 'bundle', 'rootfs', 'hello'), 'utf8'), 'hello one\n');
    assert.equal(await readFile(join(dir, 'bundle', 'rootfs', 'etc', 'motd'), 'utf8'), 'motd one\n');
    // umoci leaves no stray files in blobs/
    assert.ok((await readdir(join(l.dir, 'blobs', 'sha256'))).every((n) => /^[a-f0-9]{64}$/.test(n)));
  });

  test('skopeo inspect oci-archive:FILE', async (t) => {
    if (!requireTool(t, 'skopeo')) return;
    const dir = await tempDir(t);
    const a = await makeImage(join(dir, 's'));
    const p = join(dir, 'x.tar');
    await writeOciArchive(createWriteStream(p), [{ name: 'app:v2', source: a.store, root: a.manifest }]);
    const r = await run('skopeo', ['inspect', `oci-archive:${p}:v2`]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(JSON.parse(r.stdout).Digest, a.manifest.digest);
  });
});
