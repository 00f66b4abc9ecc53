// pull, push, images, tag, rmi, prune and inspect through the library API, against a real
// Distribution registry (anonymous) fed by skopeo. A fault proxy without faults sits in
// front of the registry where a test counts requests (the registry's access log is off).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  ContentStore,
  formatPlatform,
  hostPlatform,
  ImageStore,
  images,
  inspect,
  isDrayError,
  parseDigest,
  prune,
  pull,
  push,
  pushAllTags,
  removeImage,
  tag,
} from '../../src/index.ts';
import { startFaultProxy } from '../harness/fault-proxy.ts';
import { seededBytes, writeOciLayout } from '../harness/oci-fixture.ts';
import { startRegistry } from '../harness/registry.ts';
import { requireTool, runChecked, tempDir } from '../harness/tools.ts';
import {
  assertStoreConsistent,
  listBlobs,
  runCli,
  skopeoManifestDigest,
  skopeoPush,
  writeMultiPlatformLayout,
  writeSmallImage,
} from './helpers.ts';

const blobGets = /^\/v2\/.+\/blobs\/sha256:/;

test('pull by tag and by digest: stored, named, listed, verified; a second pull transfers nothing', async (t) => {
  if (!requireTool(t, 'docker-registry', 'skopeo')) return;
  const reg = await startRegistry(t);
  const proxy = await startFaultProxy(t, { target: reg.host });
  const fx = await writeSmallImage(await tempDir(t), 1, { layerCount: 3 });
  await skopeoPush(fx.ref, `${reg.host}/app/small:v1`);
  const root = await tempDir(t, 'dray-root-');
  const name = `${proxy.host}/app/small:v1`;

  const [first, ...rest] = await pull(name, { root });
  assert.equal(rest.length, 0);
  assert.ok(first);
  assert.equal(first.name, name);
  assert.equal(first.status, 'downloaded');
  assert.equal(first.descriptor.digest, fx.manifest.digest);
  const layerBytes = fx.layers.reduce((n, l) => n + l.size, 0);
  assert.ok(first.bytes >= layerBytes, `bytes ${first.bytes} < layers ${layerBytes}`);
  assert.equal(proxy.count('GET', blobGets), 4, 'three layers and the config fetched once each');

  // Every blob of the image is in the store, under its digest, with matching content.
  const { blobs, images: names } = await assertStoreConsistent(root);
  for (const d of [fx.manifest, fx.config, ...fx.layers]) assert.ok(blobs.includes(d.digest), d.digest);
  assert.deepEqual(names, [name]);
  const content = await ContentStore.open(root);
  for (const l of fx.layers)
    assert.equal(await content.has({ digest: parseDigest(l.digest), size: l.size }), true);
  assert.deepEqual(await (await ImageStore.open(root)).resolve(name), first.descriptor);

  const list = await images({ root });
  assert.equal(list.length, 1);
  assert.equal(list[0]?.repository, `${proxy.host}/app/small`);
  assert.equal(list[0]?.tag, 'v1');
  assert.equal(list[0]?.digest, fx.manifest.digest);
  assert.equal(list[0]?.size, fx.config.size + layerBytes);
  assert.equal(list[0]?.created, '1970-01-01T00:00:00Z');

  // Again: up to date, no blob fetched.
  const gets = proxy.count('GET', blobGets);
  const [again] = await pull(name, { root });
  assert.equal(again?.status, 'up-to-date');
  assert.equal(again?.bytes, 0);
  assert.equal(proxy.count('GET', blobGets), gets, 'an up-to-date pull fetches no blob');

  // By digest: a second name (repo@digest), still no blob transferred.
  const byDigest = `${proxy.host}/app/small@${fx.manifest.digest}`;
  const [d] = await pull(byDigest, { root });
  assert.equal(d?.name, byDigest);
  assert.equal(d?.descriptor.digest, fx.manifest.digest);
  assert.equal(d?.bytes, 0);
  assert.equal(proxy.count('GET', blobGets), gets);
  const after = await images({ root });
  assert.deepEqual(after.map((i) => i.tag).sort(), ['<none>', 'v1']);
  assert.ok(after.every((i) => i.digest === fx.manifest.digest));

  // By digest into a fresh root downloads the same content.
  const root2 = await tempDir(t, 'dray-root-');
  const [fresh] = await pull(byDigest, { root: root2 });
  assert.equal(fresh?.status, 'downloaded');
  assert.deepEqual((await assertStoreConsistent(root2)).blobs, blobs);
});

test('multi-platform index: --platform selects one manifest, default is the host, unknown platform fails', async (t) => {
  if (!requireTool(t, 'docker-registry', 'skopeo')) return;
  const reg = await startRegistry(t);
  const mp = await writeMultiPlatformLayout(await tempDir(t), [
    { os: 'linux', architecture: 'amd64' },
    { os: 'linux', architecture: 'arm64', variant: 'v8' },
    { os: 'linux', architecture: 'arm', variant: 'v7' },
  ]);
  await skopeoPush(mp.ref, `${reg.host}/multi/app:1`, { all: true });
  const name = `${reg.host}/multi/app:1`;
  assert.equal(await skopeoManifestDigest(name), mp.index.digest, 'skopeo --all kept the index as is');
  const parts = (key: string) => {
    const p = mp.platforms.get(key);
    assert.ok(p, key);
    return [p.manifest.digest, p.config.digest, ...p.layers.map((l) => l.digest)];
  };

  await t.test('pull --platform linux/arm64 stores only that platform', async (t) => {
    const root = await tempDir(t, 'dray-root-');
    const [r] = await pull(name, { root, platform: 'linux/arm64' });
    assert.equal(r?.descriptor.digest, mp.index.digest, 'the image is named by its index');
    const { blobs } = await assertStoreConsistent(root);
    assert.deepEqual(blobs, [mp.index.digest, ...parts('linux/arm64/v8')].sort());

    const local = await inspect(name, { root, platform: 'linux/arm64' });
    assert.equal(local.Descriptor.digest, mp.index.digest);
    assert.equal(local.ManifestDescriptor.digest, mp.platforms.get('linux/arm64/v8')?.manifest.digest);
    assert.equal(local.Config.architecture, 'arm64');
    assert.equal(local.Index?.manifests.length, 3);

    // The CLI's inspect --platform prints the same.
    const cfg = await tempDir(t, 'dray-config-');
    const out = await runCli(['inspect', '--platform', 'linux/arm64/v8', name], { root, config: cfg });
    assert.equal(out.code, 0, out.stderr);
    const [doc] = JSON.parse(out.stdout) as Array<{ Config: { architecture: string; variant?: string } }>;
    assert.equal(doc?.Config.architecture, 'arm64');
    assert.equal(doc?.Config.variant, 'v8');
  });

  await t.test('pull without --platform takes the host platform', async (t) => {
    const root = await tempDir(t, 'dray-root-');
    const host = hostPlatform();
    const key = [...mp.platforms.keys()].find((k) => k.startsWith(`${host.os}/${host.architecture}`));
    if (!key) {
      t.skip(`host platform ${formatPlatform(host)} is not in the fixture`);
      return;
    }
    await pull(name, { root });
    const { blobs } = await assertStoreConsistent(root);
    assert.deepEqual(blobs, [mp.index.digest, ...parts(key)].sort());
  });

  await t.test(
    '--platform linux/s390x: DRAY_PLATFORM_NOT_FOUND in docker words, nothing named',
    async (t) => {
      const root = await tempDir(t, 'dray-root-');
      await assert.rejects(pull(name, { root, platform: 'linux/s390x' }), (e: unknown) => {
        assert.ok(isDrayError(e, 'DRAY_PLATFORM_NOT_FOUND'), String(e));
        assert.match(e.message, /no matching manifest for linux\/s390x in the manifest list entries/);
        return true;
      });
      assert.deepEqual((await assertStoreConsistent(root)).images, []);
      const cfg = await tempDir(t, 'dray-config-');
      const out = await runCli(['pull', '--platform', 'linux/s390x', name], { root, config: cfg });
      assert.equal(out.code, 1);
      assert.match(out.stderr, /^error: no matching manifest for linux\/s390x in the manifest list entries/m);
    },
  );

  await t.test(
    'inspect --remote --platform linux/arm/v7 reads the registry and stores nothing',
    async (t) => {
      const root = await tempDir(t, 'dray-root-');
      const r = await inspect(name, { root, remote: true, platform: 'linux/arm/v7' });
      assert.equal(r.ManifestDescriptor.digest, mp.platforms.get('linux/arm/v7')?.manifest.digest);
      assert.equal(r.Config.architecture, 'arm');
      assert.equal(r.Config.variant, 'v7');
      assert.deepEqual(await listBlobs(root), []);
      assert.deepEqual(await images({ root }), []);
    },
  );

  await t.test('--platform all stores every platform', async (t) => {
    const root = await tempDir(t, 'dray-root-');
    await pull(name, { root, platform: 'all' });
    const { blobs } = await assertStoreConsistent(root);
    const all = [mp.index.digest, ...[...mp.platforms.keys()].flatMap(parts)];
    assert.deepEqual(blobs, [...new Set(all)].sort());
  });
});

test('pull -a pulls every tag of a repository', async (t) => {
  if (!requireTool(t, 'docker-registry', 'skopeo')) return;
  const reg = await startRegistry(t);
  const digests = new Map<string, string>();
  for (const [i, tg] of ['1.0', '1.1', 'latest'].entries()) {
    const fx = await writeSmallImage(await tempDir(t), 20 + i, { layerCount: 2 });
    await skopeoPush(fx.ref, `${reg.host}/tags/app:${tg}`);
    digests.set(tg, fx.manifest.digest);
  }
  const root = await tempDir(t, 'dray-root-');
  const results = await pull(`${reg.host}/tags/app`, { root, allTags: true });
  assert.deepEqual(
    results.map((r) => r.name).sort(),
    [...digests.keys()].map((tg) => `${reg.host}/tags/app:${tg}`).sort(),
  );
  const list = await images({ root });
  assert.deepEqual(list.map((i) => [i.tag, i.digest]).sort(), [...digests.entries()].sort());
  await assertStoreConsistent(root);

  // The CLI flag does the same.
  const root2 = await tempDir(t, 'dray-root-');
  const out = await runCli(['pull', '-a', `${reg.host}/tags/app`], { root: root2, config: await tempDir(t) });
  assert.equal(out.code, 0, out.stderr);
  assert.equal((await images({ root: root2 })).length, 3);

  // As docker: a tag (or digest) together with -a is refused, before any request.
  await assert.rejects(pull(`${reg.host}/tags/app:1.0`, { root, allTags: true }), (e: unknown) =>
    isDrayError(e, 'DRAY_INVALID_ARGUMENT'),
  );
  const tagged = await runCli(['pull', '-a', `${reg.host}/tags/app:1.0`], { root, config: await tempDir(t) });
  assert.notEqual(tagged.code, 0);
  assert.match(tagged.stderr, /tag can't be used with --all-tags\/-a/);

  // push -a: every local tag of the repository goes to another registry, shared blobs once.
  const dst = await startRegistry(t);
  for (const tg of digests.keys())
    await tag(`${reg.host}/tags/app:${tg}`, `${dst.host}/mirror/app:${tg}`, { root });
  await tag(`${reg.host}/tags/app:1.0`, `${dst.host}/elsewhere/app:x`, { root }); // another repository: not pushed
  const pushed = await pushAllTags(`${dst.host}/mirror/app`, { root });
  assert.deepEqual(
    pushed.map((r) => r.name),
    [...digests.keys()].sort().map((tg) => `${dst.host}/mirror/app:${tg}`),
  );
  for (const [tg, d] of digests) assert.equal(await skopeoManifestDigest(`${dst.host}/mirror/app:${tg}`), d);
  await assert.rejects(skopeoManifestDigest(`${dst.host}/elsewhere/app:x`));
  await assert.rejects(pushAllTags(`${dst.host}/mirror/app:1.0`, { root }), (e: unknown) =>
    isDrayError(e, 'DRAY_INVALID_ARGUMENT'),
  );
  await assert.rejects(pushAllTags(`${dst.host}/nothing/here`, { root }), (e: unknown) =>
    isDrayError(e, 'DRAY_NOT_FOUND'),
  );
  const plain = await runCli(['push', '-a', '--progress', 'plain', `${dst.host}/mirror/app`], {
    root,
    config: await tempDir(t),
  });
  assert.equal(plain.code, 0, plain.stderr);
  // As docker push -a: the repository line once, then a digest line per tag.
  assert.equal(plain.stdout.match(/^The push refers to repository /gm)?.length, 1, plain.stdout);
  assert.equal(plain.stdout.match(/^[^ ]+: digest: sha256:[0-9a-f]{64} size: \d+$/gm)?.length, digests.size);
  const cli = await runCli(['push', '-a', '-q', `${dst.host}/mirror/app`], {
    root,
    config: await tempDir(t),
  });
  assert.equal(cli.code, 0, cli.stderr);
  assert.deepEqual(
    cli.stdout.trimEnd().split('\n'),
    [...digests.keys()].sort().map((tg) => `${dst.host}/mirror/app:${tg}@${digests.get(tg)}`),
  );
});

test('push, tag + cross-repo mount, rmi, prune, inspect --remote', async (t) => {
  if (!requireTool(t, 'docker-registry', 'skopeo')) return;
  const src = await startRegistry(t);
  const dst = await startRegistry(t);
  const proxy = await startFaultProxy(t, { target: dst.host });
  const root = await tempDir(t, 'dray-root-');

  // Two images sharing their first layer (the fixture writer is deterministic).
  const shared = { 'data/shared.bin': seededBytes(500, 5000) };
  const fxA = await writeOciLayout(await tempDir(t), [shared, { 'a.txt': 'only in a\n' }]);
  const fxB = await writeOciLayout(await tempDir(t), [shared, { 'b.txt': 'only in b\n' }]);
  assert.equal(fxA.layers[0]?.digest, fxB.layers[0]?.digest);
  await skopeoPush(fxA.ref, `${src.host}/lib/a:1`);
  await skopeoPush(fxB.ref, `${src.host}/lib/b:1`);
  await pull(`${src.host}/lib/a:1`, { root });
  await pull(`${src.host}/lib/b:1`, { root });

  await t.test(
    'push to a fresh registry: skopeo sees the same manifest and copies it out verified',
    async (t) => {
      const target = `${proxy.host}/copy/a:1`;
      await tag(`${src.host}/lib/a:1`, target, { root });
      const r = await push(target, { root });
      assert.equal(r.descriptor.digest, fxA.manifest.digest);
      assert.ok(r.bytes >= fxA.layers.reduce((n, l) => n + l.size, 0));
      assert.equal(await skopeoManifestDigest(`${dst.host}/copy/a:1`), fxA.manifest.digest);
      const out = await tempDir(t);
      await runChecked('skopeo', [
        'copy',
        '-q',
        '--src-tls-verify=false',
        `docker://${dst.host}/copy/a:1`,
        `oci:${out}:x`,
      ]);
      // Pushing again uploads nothing (every blob exists).
      const again = await push(target, { root });
      assert.equal(again.bytes, 0);
    },
  );

  await t.test(
    'tag to another repo on the same registry, push: blobs are mounted, not uploaded',
    async () => {
      const target = `${proxy.host}/other/a:2`;
      await tag(`${proxy.host}/copy/a:1`, target, { root });
      const start = proxy.log.length;
      const r = await push(target, { root });
      const reqs = proxy.log.slice(start);
      const uploads = reqs.filter(
        (e) => (e.method === 'PATCH' || e.method === 'PUT') && /\/blobs\/uploads\//.test(e.path),
      );
      assert.deepEqual(uploads, [], 'no blob data was uploaded');
      const mounts = reqs.filter(
        (e) => e.method === 'POST' && /[?&]mount=sha256:/.test(decodeURIComponent(e.path)),
      );
      assert.equal(mounts.length, fxA.layers.length + 1, 'config and layers mounted');
      assert.ok(
        mounts.every((e) => e.status === 201),
        JSON.stringify(mounts),
      );
      assert.equal(r.bytes, 0);
      assert.equal(await skopeoManifestDigest(`${dst.host}/other/a:2`), fxA.manifest.digest);
    },
  );

  await t.test('push of a single-platform pull of an index pushes that platform manifest', async (t) => {
    const mp = await writeMultiPlatformLayout(await tempDir(t), [
      { os: 'linux', architecture: 'amd64' },
      { os: 'linux', architecture: 'arm64', variant: 'v8' },
    ]);
    await skopeoPush(mp.ref, `${src.host}/multi/app:1`, { all: true });
    const r2 = await tempDir(t, 'dray-root-');
    await pull(`${src.host}/multi/app:1`, { root: r2, platform: 'linux/arm64' });
    await tag(`${src.host}/multi/app:1`, `${dst.host}/multi/arm:1`, { root: r2 });
    const r = await push(`${dst.host}/multi/arm:1`, { root: r2 });
    const arm = mp.platforms.get('linux/arm64/v8');
    assert.equal(r.descriptor.digest, arm?.manifest.digest);
    assert.equal(await skopeoManifestDigest(`${dst.host}/multi/arm:1`), arm?.manifest.digest);
  });

  await t.test('rmi deletes only the blobs no other image references', async () => {
    // A second name for b: removing one name deletes nothing.
    await tag(`${src.host}/lib/b:1`, `${src.host}/lib/b:alias`, { root });
    const alias = await removeImage(`${src.host}/lib/b:alias`, { root });
    assert.deepEqual(alias.deleted, []);

    const before = await listBlobs(root);
    // a:1 is also named copy/a:1 and other/a:2: untag those first, then a:1 goes with its content.
    assert.deepEqual((await removeImage(`${proxy.host}/copy/a:1`, { root })).deleted, []);
    assert.deepEqual((await removeImage(`${proxy.host}/other/a:2`, { root })).deleted, []);
    const r = await removeImage(`${src.host}/lib/a:1`, { root });
    assert.deepEqual(r.untagged, [`${src.host}/lib/a:1`]);
    assert.deepEqual(
      [...r.deleted].sort(),
      [fxA.manifest.digest, fxA.config.digest, fxA.layers[1]?.digest].sort(),
      'the shared layer stays (b uses it)',
    );
    const after = await listBlobs(root);
    assert.deepEqual(
      after,
      before.filter((d) => !r.deleted.includes(d)),
    );
    assert.ok(after.includes(fxB.layers[0]?.digest ?? ''));
    await assertStoreConsistent(root);
    const b = await inspect(`${src.host}/lib/b:1`, { root });
    assert.equal(b.Manifest.layers.length, 2);
    await assert.rejects(removeImage(`${src.host}/lib/a:1`, { root }), (e: unknown) =>
      isDrayError(e, 'DRAY_NOT_FOUND'),
    );
  });

  await t.test('prune removes unreferenced blobs and keeps referenced ones', async () => {
    // Drop b's name without deleting content (the image store alone), then pull a again.
    await pull(`${src.host}/lib/a:1`, { root });
    await (await ImageStore.open(root)).remove(`${src.host}/lib/b:1`);
    const r = await prune({ root });
    assert.deepEqual(
      [...r.deleted].sort(),
      [fxB.manifest.digest, fxB.config.digest, fxB.layers[1]?.digest].sort(),
    );
    const expectedBytes = fxB.manifest.size + fxB.config.size + (fxB.layers[1]?.size ?? 0);
    assert.equal(r.reclaimedBytes, expectedBytes);
    const { blobs } = await assertStoreConsistent(root);
    assert.deepEqual(
      blobs,
      [fxA.manifest.digest, fxA.config.digest, ...fxA.layers.map((l) => l.digest)].sort(),
    );
    assert.deepEqual((await prune({ root })).deleted, [], 'a second prune finds nothing');
  });

  await t.test('inspect --remote reads without storing anything', async (t) => {
    const empty = await tempDir(t, 'dray-root-');
    const r = await inspect(`${src.host}/lib/b:1`, { root: empty, remote: true });
    assert.equal(r.Descriptor.digest, fxB.manifest.digest);
    assert.equal(r.Manifest.layers.length, 2);
    assert.deepEqual(
      r.Config.rootfs.diff_ids,
      fxB.layers.map((l) => l.diffId),
    );
    assert.deepEqual(await listBlobs(empty), []);
    assert.deepEqual(await images({ root: empty }), []);
  });
});
