import assert from 'node:assert/strict';
import { createWriteStream } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { buffer } from 'node:stream/consumers';
import { describe, test } from 'node:test';
import { gunzipSync } from 'node:zlib';
import { ContentStore } from '../content/index.ts';
import { digestOf } from '../digest/index.ts';
import { isDrayError } from '../errors.ts';
import { copyGraph } from '../graph/index.ts';
import { MediaTypes, parseImageConfig } from '../oci/index.ts';
import { validateWithOciSchema } from '../oci/testing.ts';
import { OciArchive, readDockerArchive, writeDockerArchive } from './index.ts';
import { conformanceDir, file, makeImage, requireTool, run, symlink, tarBytes, tempDir } from './testing.ts';

const tarballs = join(conformanceDir, 'tarball');
const fixture = (n: string) => join(tarballs, n);

const code = (c: string, re?: RegExp) => (e: unknown) => {
  assert.ok(isDrayError(e), String(e));
  assert.equal(e.code, c, e.message);
  if (re) assert.match(e.message, re);
  return true;
};

/** Loads `img` into a fresh store (every blob verified) and checks uncompressed layers against diff_ids. */
async function loadAndValidate(
  t: { after(fn: () => Promise<void>): void },
  arc: Awaited<ReturnType<typeof readDockerArchive>>,
  img: ReturnType<typeof arc.image>,
) {
  const store = await ContentStore.open(await tempDir(t));
  await copyGraph(arc, store, img.manifest);
  const config = parseImageConfig(await buffer(await store.open(img.config)));
  assert.deepEqual(config.rootfs.diff_ids, img.diffIds);
  assert.equal(img.layers.length, img.diffIds.length);
  for (const [i, l] of img.layers.entries()) {
    const bytes = await buffer(await store.open(l));
    const raw = l.mediaType === MediaTypes.ociLayerGzip ? gunzipSync(bytes) : bytes;
    assert.equal(digestOf(raw), img.diffIds[i]);
  }
  return { store, config };
}

describe('docker archive fixtures (EXPECTATIONS.md)', () => {
  test('test_image_1.tar: loads with no tag; 1 layer; history length 1; validates', async (t) => {
    const arc = await readDockerArchive(fixture('test_image_1.tar'));
    const img = arc.image();
    assert.equal(img.layers.length, 1);
    const { config } = await loadAndValidate(t, arc, img);
    assert.equal(config.history?.length, 1);
    assert.equal(
      img.config.digest,
      'sha256:6e0b05049ed9c17d02e1a55e80d6599dbfcce7f4f4b022e3c673e685789c470e',
    );
  });

  test('test_image_2.tar: single image tagged bazel/v1/tarball:test_image_2', async (t) => {
    const arc = await readDockerArchive(fixture('test_image_2.tar'));
    const img = arc.image();
    assert.deepEqual(img.repoTags, ['bazel/v1/tarball:test_image_2']);
    assert.deepEqual(img.names, ['docker.io/bazel/v1/tarball:test_image_2']);
    await loadAndValidate(t, arc, img);
  });

  test('test_bundle.tar: no tag is ambiguous; every spelling of each tag loads', async (t) => {
    const arc = await readDockerArchive(fixture('test_bundle.tar'));
    assert.equal(arc.images.length, 2);
    assert.throws(() => arc.image(), code('DRAY_INVALID_ARGUMENT', /2 images/));
    for (const tag of [
      'test_image_1',
      'test_image_2',
      'test_image_1:latest',
      'test_image_2:latest',
      'index.docker.io/library/test_image_1:latest',
    ]) {
      const img = arc.image(tag);
      assert.ok(img.repoTags[0] && tag.includes(img.repoTags[0]));
      await loadAndValidate(t, arc, img);
      const only = await readDockerArchive(fixture('test_bundle.tar'), { tag });
      assert.equal(only.images.length, 1);
      assert.equal(only.image().config.digest, img.config.digest);
    }
    assert.throws(() => arc.image('test_image_3'), code('DRAY_NOT_FOUND', /test_image_3/));
    await assert.rejects(
      readDockerArchive(fixture('test_bundle.tar'), { tag: 'nope' }),
      code('DRAY_NOT_FOUND'),
    );
  });

  test('hello-world-v25.tar: Docker 25 combined layout loads with no tag, keeping its manifest digest', async (t) => {
    const arc = await readDockerArchive(fixture('hello-world-v25.tar'));
    const img = arc.image();
    assert.deepEqual(img.repoTags, []);
    assert.equal(
      img.manifest.digest,
      'sha256:411caf340c828657e915a83ed561a79d2b8150dabad4dc079d881cbfe6f86afe',
    );
    assert.equal(
      img.config.digest,
      'sha256:ee301c921b8aadc002973b2e0c3da17d701dcd994b606769a7e6eaa100b81d44',
    );
    await loadAndValidate(t, arc, img);
  });

  test('null_manifest.tar: fails with DRAY_INVALID_ARCHIVE', async () => {
    await assert.rejects(
      readDockerArchive(fixture('null_manifest.tar')),
      code('DRAY_INVALID_ARCHIVE', /manifest\.json is null/),
    );
  });

  test('no_manifest.tar: fails with DRAY_INVALID_ARCHIVE (manifest.json required)', async () => {
    await assert.rejects(
      readDockerArchive(fixture('no_manifest.tar')),
      code('DRAY_INVALID_ARCHIVE', /no manifest\.json/),
    );
  });

  test('test_link.tar: symlinked layer.tar is followed; diffID 8897… has content', async (t) => {
    const arc = await readDockerArchive(fixture('test_link.tar'), { tag: 'bazel/v1/tarball:test_image_3' });
    const img = arc.image('bazel/v1/tarball:test_image_3');
    const i = img.diffIds.indexOf(
      'sha256:8897395fd26dc44ad0e2a834335b33198cb41ac4d98dfddf58eced3853fa7b17' as (typeof img.diffIds)[number],
    );
    assert.ok(i >= 0);
    const layer = img.layers[i];
    assert.ok(layer);
    const bytes = await buffer(await arc.open(layer));
    assert.ok(bytes.length > 0);
    await loadAndValidate(t, arc, img);
  });

  test('test_load_manifest.tar: a non-empty list of images', async () => {
    const arc = await readDockerArchive(fixture('test_load_manifest.tar'));
    assert.ok(arc.images.length > 0);
  });

  test('content.tar (a plain layer tar) is not an image archive', async () => {
    await assert.rejects(readDockerArchive(fixture('content.tar')), code('DRAY_INVALID_ARCHIVE'));
  });
});

describe('docker archive: synthetic archives (ggcr assertions without fixture files)', () => {
  const config = (diffIds: string[]) =>
    JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: diffIds } });

  test('a symlink cycle between manifest.json and config.json: "link cycle"', async (t) => {
    const p = join(await tempDir(t), 'x.tar');
    await writeFile(
      p,
      await tarBytes([[symlink('manifest.json', 'config.json')], [symlink('config.json', 'manifest.json')]]),
    );
    await assert.rejects(readDockerArchive(p), code('DRAY_INVALID_ARCHIVE', /link cycle/));
  });

  test('config with empty diff_ids but a layer: error mentions diff_ids', async (t) => {
    const p = join(await tempDir(t), 'x.tar');
    const layer = await tarBytes([[file('a'), 'a']]);
    await writeFile(
      p,
      await tarBytes([
        [
          file('manifest.json'),
          JSON.stringify([{ Config: 'c.json', RepoTags: ['x:1'], Layers: ['l/layer.tar'] }]),
        ],
        [file('c.json'), config([])],
        [file('l/layer.tar'), layer],
      ]),
    );
    await assert.rejects(readDockerArchive(p), code('DRAY_INVALID_MANIFEST', /diff_ids/));
  });

  test('more diff_ids than layers: error mentions diff_id', async (t) => {
    const p = join(await tempDir(t), 'x.tar');
    const layer = await tarBytes([[file('a'), 'a']]);
    await writeFile(
      p,
      await tarBytes([
        [
          file('manifest.json'),
          JSON.stringify([{ Config: 'c.json', RepoTags: ['x:1'], Layers: ['l/layer.tar'] }]),
        ],
        [file('c.json'), config([digestOf(layer), digestOf('other')])],
        [file('l/layer.tar'), layer],
      ]),
    );
    await assert.rejects(readDockerArchive(p), code('DRAY_INVALID_MANIFEST', /diff_id/));
  });

  test('./manifest.json containing [] loads as an empty list', async (t) => {
    const p = join(await tempDir(t), 'x.tar');
    await writeFile(p, await tarBytes([[file('./manifest.json'), '[]']]));
    const arc = await readDockerArchive(p);
    assert.equal(arc.images.length, 0);
    assert.throws(() => arc.image(), code('DRAY_NOT_FOUND'));
  });

  test('an uncompressed layer that is not its diff_id: DRAY_DIGEST_MISMATCH', async (t) => {
    const p = join(await tempDir(t), 'x.tar');
    const layer = await tarBytes([[file('a'), 'a']]);
    await writeFile(
      p,
      await tarBytes([
        [
          file('manifest.json'),
          JSON.stringify([{ Config: 'c.json', RepoTags: null, Layers: ['l/layer.tar'] }]),
        ],
        [file('c.json'), config([digestOf('not the layer')])],
        [file('l/layer.tar'), layer],
      ]),
    );
    await assert.rejects(readDockerArchive(p), code('DRAY_DIGEST_MISMATCH'));
  });

  test('a layer symlink pointing out of the archive is refused', async (t) => {
    const p = join(await tempDir(t), 'x.tar');
    await writeFile(
      p,
      await tarBytes([
        [
          file('manifest.json'),
          JSON.stringify([{ Config: 'c.json', RepoTags: null, Layers: ['l/layer.tar'] }]),
        ],
        [file('c.json'), config([digestOf('x')])],
        [symlink('l/layer.tar', '../../etc/passwd')],
      ]),
    );
    await assert.rejects(readDockerArchive(p), code('DRAY_INVALID_ARCHIVE', /outside the archive/));
  });
});

describe('docker archive writer', () => {
  async function save(dir: string, name: string, images: Parameters<typeof writeDockerArchive>[1]) {
    const p = join(dir, name);
    await writeDockerArchive(createWriteStream(p), images);
    return p;
  }

  test('deterministic: two writes are byte-identical', async (t) => {
    const dir = await tempDir(t);
    const a = await makeImage(join(dir, 's'), { docker: true });
    const imgs = [{ tags: ['app:1', 'registry.example.com/app:2'], source: a.store, root: a.manifest }];
    assert.deepEqual(
      await readFile(await save(dir, 'a.tar', imgs)),
      await readFile(await save(dir, 'b.tar', imgs)),
    );
  });

  test('round trip: store → docker archive → read back keeps config, manifest and diff_ids', async (t) => {
    const dir = await tempDir(t);
    const a = await makeImage(join(dir, 's1'), { seed: 'a', docker: true });
    const b = await makeImage(join(dir, 's2'), { seed: 'b' });
    const p = await save(dir, 'x.tar', [
      { tags: ['app:1'], source: a.store, root: a.manifest },
      { tags: ['registry.example.com/team/other:2'], source: b.store, root: b.manifest },
    ]);
    const arc = await readDockerArchive(p);
    assert.equal(arc.images.length, 2);
    const ra = arc.image('app:1');
    assert.deepEqual(ra.repoTags, ['app:1']);
    assert.equal(ra.config.digest, a.config.digest);
    assert.equal(ra.manifest.digest, a.manifest.digest);
    assert.deepEqual(ra.diffIds, a.diffIds);
    const rb = arc.image('registry.example.com/team/other:2');
    assert.equal(rb.config.digest, b.config.digest);
    assert.equal(rb.manifest.digest, b.manifest.digest);
    await loadAndValidate(t, arc, ra);
    await loadAndValidate(t, arc, rb);
  });

  test('manifest.json, repositories and index.json have the docker and OCI shapes', async (t) => {
    const dir = await tempDir(t);
    const a = await makeImage(join(dir, 's'));
    const p = await save(dir, 'x.tar', [{ tags: ['app:1'], source: a.store, root: a.manifest }]);
    const r = await run('tar', ['-xOf', p, 'manifest.json']);
    const items = JSON.parse(r.stdout);
    assert.deepEqual(items, [
      {
        Config: `blobs/sha256/${a.config.digest.slice(7)}`,
        RepoTags: ['app:1'],
        Layers: a.layers.map((l) => `blobs/sha256/${l.digest.slice(7)}`),
      },
    ]);
    const repos = JSON.parse((await run('tar', ['-xOf', p, 'repositories'])).stdout);
    assert.deepEqual(repos, { app: { '1': a.layers[1]?.digest.slice(7) } });
    const arc = await OciArchive.open(p);
    assert.deepEqual(validateWithOciSchema('index', arc.index()), []);
    assert.equal((await arc.resolve('app:1')).digest, a.manifest.digest);
  });

  test('the combined layout is also an oci-archive skopeo reads', async (t) => {
    if (!requireTool(t, 'skopeo')) return;
    const dir = await tempDir(t);
    const a = await makeImage(join(dir, 's'));
    const p = await save(dir, 'x.tar', [{ tags: ['app:1'], source: a.store, root: a.manifest }]);
    const oci = await run('skopeo', ['inspect', `oci-archive:${p}:1`]);
    assert.equal(oci.code, 0, oci.stderr);
    assert.equal(JSON.parse(oci.stdout).Digest, a.manifest.digest);
    const docker = await run('skopeo', ['inspect', `docker-archive:${p}`]);
    assert.equal(docker.code, 0, docker.stderr);
  });

  test('a tag without a tag part is DRAY_INVALID_ARGUMENT', async (t) => {
    const dir = await tempDir(t);
    const a = await makeImage(join(dir, 's'));
    await assert.rejects(
      save(dir, 'x.tar', [{ tags: [`app@sha256:${'a'.repeat(64)}`], source: a.store, root: a.manifest }]),
      code('DRAY_INVALID_ARGUMENT'),
    );
  });
});
