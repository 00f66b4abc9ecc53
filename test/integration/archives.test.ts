// `dray load` / `dray save` / `dray export` / `dray unpack` end to end: every docker-archive
// fixture in ../shared/conformance/docker-archive/ behaves as its EXPECTATIONS.md says
// (transcribed from go-containerregistry's pkg/v1/tarball tests), whiteouts merge in unpack
// and export, save → load round-trips through a pipe between two processes, save refuses
// a terminal, and zstd layers are saved as plain tars in the docker format.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { text } from 'node:stream/consumers';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { gunzipSync, zstdDecompressSync } from 'node:zlib';
import { main } from '../../src/cli/main.ts';
import {
  ContentStore,
  type Descriptor,
  inspect,
  isDrayError,
  images as listImages,
  load,
  parseImageConfig,
} from '../../src/index.ts';
import { readDockerArchive } from '../../src/layout/index.ts';
import { requireTool } from '../harness/tools.ts';
import { assertStoreConsistent, runCli } from './helpers.ts';
import {
  cliOk,
  type DrayDirs,
  describeEntry,
  drayDirs,
  listTar,
  listTree,
  pipeSaveLoad,
  rootfsOf,
  writeWhiteoutLayers,
} from './interop-helpers.ts';

const fixtures = fileURLToPath(
  new URL('../../../shared/conformance/docker-archive/tarball/', import.meta.url),
);
const fixture = (name: string) => join(fixtures, name);

const sha = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

/** A stored blob, whole (fixtures are small); `uncompressed` undoes gzip/zstd with node:zlib, not dray. */
async function blobBytes(content: ContentStore, d: Descriptor, uncompressed = false): Promise<Buffer> {
  const bytes = Buffer.concat(await (await content.open(d)).toArray());
  if (!uncompressed) return bytes;
  if (bytes[0] === 0x1f && bytes[1] === 0x8b) return gunzipSync(bytes);
  if (bytes.readUInt32LE(0) === 0xfd2fb528) return zstdDecompressSync(bytes);
  return bytes;
}

/** Runs the CLI in-process with `stdin` as its standard input (binary-safe, unlike runCli's string). */
async function cliWithStdin(args: string[], d: DrayDirs, stdin: Readable) {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  const out = text(stdout);
  const err = text(stderr);
  const code = await main(['--root', d.root, '--config', d.config, ...args], {
    stdout,
    stderr,
    stdin,
    env: { DRAY_ROOT: d.root, DOCKER_CONFIG: d.config },
    isTTY: false,
    stdinIsTTY: false,
  });
  stdout.end();
  stderr.end();
  return { code, stdout: await out, stderr: await err };
}

/**
 * "The image validates" (ggcr `validate.Image`): config digest and size match, one layer per
 * diff_id, each layer blob's uncompressed content hashes to its diff_id and is not empty.
 */
async function assertImageValid(
  root: string,
  manifest: Descriptor,
): Promise<{ layers: number; history: number }> {
  const content = await ContentStore.open(root);
  const m = JSON.parse((await blobBytes(content, manifest)).toString('utf8')) as {
    config: Descriptor;
    layers: Descriptor[];
  };
  const configBytes = await blobBytes(content, m.config);
  assert.equal(sha(configBytes), m.config.digest);
  assert.equal(configBytes.length, m.config.size);
  const config = parseImageConfig(configBytes);
  assert.equal(m.layers.length, config.rootfs.diff_ids.length, 'one layer per diff_id');
  for (const [i, l] of m.layers.entries()) {
    const stored = await blobBytes(content, l);
    assert.equal(sha(stored), l.digest);
    assert.equal(stored.length, l.size);
    const plain = await blobBytes(content, l, true);
    assert.ok(plain.length > 0, `layer ${l.digest} is not empty`);
    assert.equal(sha(plain), config.rootfs.diff_ids[i], `layer ${i}: uncompressed content = diff_id`);
  }
  await assertStoreConsistent(root);
  return { layers: m.layers.length, history: config.history?.length ?? 0 };
}

async function storedNames(root: string): Promise<string[]> {
  return (await listImages({ root })).map((i) => i.name).sort();
}

/** Blob digests and image records of a data root: what "changes nothing" compares. */
async function storeState(root: string) {
  const s = await assertStoreConsistent(root);
  return { blobs: s.blobs, images: await storedNames(root) };
}

test('the docker-archive fixtures are present (missing data fails, never skips)', async () => {
  const have = await readdir(fixtures);
  for (const f of [
    'test_image_1.tar',
    'test_image_2.tar',
    'test_bundle.tar',
    'hello-world-v25.tar',
    'null_manifest.tar',
    'no_manifest.tar',
    'test_link.tar',
    'test_load_manifest.tar',
    'content.tar',
  ]) {
    assert.ok(have.includes(f), `${fixtures}${f} is missing`);
  }
});

test('legacy docker save archives load and validate (test_image_1, test_image_2, test_load_manifest)', async (t) => {
  for (const [file, name] of [
    ['test_image_1.tar', 'bazel/v1/tarball:test_image_1'],
    ['test_image_2.tar', 'bazel/v1/tarball:test_image_2'],
    ['test_load_manifest.tar', 'bazel/v1/tarball:test_image_1'],
  ] as const) {
    const d = await drayDirs(t);
    const out = await cliOk(['load', '-i', fixture(file)], d);
    assert.equal(out, `Loaded image: ${name}\n`, file);
    const info = await inspect(name, { root: d.root });
    const v = await assertImageValid(d.root, info.Descriptor);
    if (file === 'test_image_1.tar') {
      // EXPECTATIONS.md: manifest has 1 layer; config history length 1.
      assert.equal(v.layers, 1);
      assert.equal(v.history, 1);
    }
    assert.deepEqual(await storedNames(d.root), [`docker.io/${name}`]);
  }
});

test('multi-image archive (test_bundle): every image without --tag, exactly one with it', async (t) => {
  const file = fixture('test_bundle.tar');
  // docker load semantics: no tag loads every image of the archive.
  const all = await drayDirs(t);
  const out = await cliOk(['load', '-i', file], all);
  assert.match(out, /Loaded image: test_image_1:latest/);
  assert.match(out, /Loaded image: test_image_2:latest/);
  assert.deepEqual(await storedNames(all.root), [
    'docker.io/library/test_image_1:latest',
    'docker.io/library/test_image_2:latest',
  ]);
  for (const n of ['test_image_1', 'test_image_2']) {
    await assertImageValid(all.root, (await inspect(n, { root: all.root })).Descriptor);
  }
  // ggcr's single-image reader with tag=nil MUST fail on it (ambiguous); so does dray's.
  const archive = await readDockerArchive(file);
  assert.throws(
    () => archive.image(),
    (e: unknown) =>
      isDrayError(e, 'DRAY_INVALID_ARGUMENT') && /holds 2 images: name the one to use/.test(String(e)),
  );

  // Tag matching uses normalised references.
  for (const [tag, want] of [
    ['test_image_1', 'test_image_1'],
    ['test_image_2', 'test_image_2'],
    ['test_image_1:latest', 'test_image_1'],
    ['test_image_2:latest', 'test_image_2'],
    ['index.docker.io/library/test_image_1:latest', 'test_image_1'],
  ] as const) {
    const d = await drayDirs(t);
    const r = await cliOk(['load', '--tag', tag, '-i', file], d);
    assert.equal(r, `Loaded image: ${want}:latest\n`, tag);
    assert.deepEqual(await storedNames(d.root), [`docker.io/library/${want}:latest`], tag);
    await assertImageValid(d.root, (await inspect(want, { root: d.root })).Descriptor);
  }

  // A tag the archive lacks: a clear error naming what it holds; nothing stored.
  const d = await drayDirs(t);
  const r = await runCli(['load', '-t', 'test_image_9', '-i', file], d);
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /error: image test_image_9 not found in docker archive .*test_bundle\.tar/);
  assert.match(r.stderr, /test_image_2, test_image_1/);
  assert.deepEqual(await storeState(d.root), { blobs: [], images: [] });
});

test('symlinked layer files inside the archive are followed (test_link)', async (t) => {
  const d = await drayDirs(t);
  const out = await cliOk(['load', '-t', 'bazel/v1/tarball:test_image_3', '-i', fixture('test_link.tar')], d);
  assert.equal(out, 'Loaded image: bazel/v1/tarball:test_image_3\n');
  const info = await inspect('bazel/v1/tarball:test_image_3', { root: d.root });
  await assertImageValid(d.root, info.Descriptor);
  const diffId = 'sha256:8897395fd26dc44ad0e2a834335b33198cb41ac4d98dfddf58eced3853fa7b17';
  const i = info.Config.rootfs.diff_ids.map(String).indexOf(diffId);
  assert.ok(i >= 0, 'the image has the layer stored behind the symlink');
  const layer = info.Manifest.layers[i];
  assert.ok(layer);
  const plain = await blobBytes(await ContentStore.open(d.root), layer, true);
  assert.ok(plain.length > 0, 'the symlinked layer has content');
  assert.equal(sha(plain), diffId);
});

test("Docker 25's combined layout (hello-world-v25: OCI layout + manifest.json, RepoTags null)", async (t) => {
  const d = await drayDirs(t);
  const file = fixture('hello-world-v25.tar');
  const r = await load(file, { root: d.root });
  assert.deepEqual(r.names, []);
  assert.equal(r.images.length, 1);
  const [image] = r.images;
  assert.ok(image);
  const v = await assertImageValid(d.root, image);
  assert.equal(v.layers, 1);
  const content = await ContentStore.open(d.root);
  const m = JSON.parse((await blobBytes(content, image)).toString('utf8')) as { config: Descriptor };
  // The config manifest.json names keeps its digest: docker's image ID.
  assert.equal(m.config.digest, 'sha256:ee301c921b8aadc002973b2e0c3da17d701dcd994b606769a7e6eaa100b81d44');
  // The CLI reports the untagged image by ID, as docker load does.
  const d2 = await drayDirs(t);
  assert.match(await cliOk(['load', '-i', file], d2), /^Loaded image ID: sha256:[0-9a-f]{64}\n$/);
});

test('broken archives (null_manifest, no_manifest, a plain layer tar) fail clearly and change nothing', async (t) => {
  const d = await drayDirs(t);
  // A store that already holds an image: a failed load must leave it exactly as it was.
  await cliOk(['load', '-i', fixture('test_image_1.tar')], d);
  const before = await storeState(d.root);
  for (const [file, message] of [
    ['null_manifest.tar', /invalid docker archive .*null_manifest\.tar: manifest\.json is null/],
    ['no_manifest.tar', /no_manifest\.tar is not an image archive: no manifest\.json or oci-layout/],
    ['content.tar', /content\.tar is not an image archive/],
  ] as const) {
    await assert.rejects(
      load(fixture(file), { root: d.root }),
      (e: unknown) => isDrayError(e, 'DRAY_INVALID_ARCHIVE') && message.test((e as Error).message),
      file,
    );
    const r = await runCli(['load', '-i', fixture(file)], d);
    assert.notEqual(r.code, 0, file);
    assert.equal(r.stdout, '');
    assert.match(r.stderr, /^error: /, file);
    assert.match(r.stderr, message, file);
    assert.match(r.stderr, /hint: /, file);
    // Through stdin too (spooled to a temp file first, then refused the same way).
    const viaStdin = await cliWithStdin(['load'], d, createReadStream(fixture(file)));
    assert.notEqual(viaStdin.code, 0);
    assert.match(viaStdin.stderr, /^error: .*not an image archive|^error: invalid docker archive/);
    assert.deepEqual(await storeState(d.root), before, `${file} changed the store`);
  }
});

/** The merged root filesystem of the whiteout layers: path → type (busybox-free). */
const mergedWhiteouts = [
  'etc dir',
  'etc/keep file',
  'opq dir',
  'opq/c file',
  'swap file',
  'swap2 dir',
  'swap2/again file',
];

test('whiteouts end to end: deleted file, opaque dir, file → dir → file; unpack and export agree', async (t) => {
  if (!requireTool(t, 'tar')) return;
  const d = await drayDirs(t);
  const layers = await writeWhiteoutLayers(t, d.work);
  await cliOk(['append', 'scratch', ...layers, '-t', 'local/wh:1'], d);

  const dir = join(d.work, 'unpacked');
  await cliOk(['unpack', 'local/wh:1', dir], d);
  const tree = await listTree(dir);
  assert.deepEqual(
    tree.map((e) => `${e.path} ${e.type}`),
    mergedWhiteouts,
  );

  const tarFile = join(d.work, 'export.tar');
  await cliOk(['export', 'local/wh:1', '-o', tarFile], d);
  const entries = listTar(await readFile(tarFile));
  assert.equal(new Set(entries.map((e) => e.path)).size, entries.length, 'each path once');
  const merged = [...rootfsOf(entries).values()].sort((a, b) => (a.path < b.path ? -1 : 1));
  assert.deepEqual(
    merged.map((e) => `${e.path} ${e.type}`),
    mergedWhiteouts,
  );
  // Same entries, modes, owners, contents and times (directories' too: unpack restores a
  // parent's mtime after a whiteout removes something in it).
  assert.deepEqual(
    merged.map((e) => describeEntry(e, { mtime: true })),
    tree.map((e) => describeEntry(e, { mtime: true })),
  );
  const swap = merged.find((e) => e.path === 'swap');
  assert.equal(swap?.hash, sha(Buffer.from('file v3\n')));
  // Each file keeps the mtime of the layer that wrote it last.
  assert.equal(merged.find((e) => e.path === 'etc/keep')?.mtime, 1_000_000_000);
  assert.equal(merged.find((e) => e.path === 'opq/c')?.mtime, 1_000_100_000);
  assert.equal(swap?.mtime, 1_000_200_000);

  // `-o -` streams the same tar to stdout.
  const viaStdout = await runCli(['export', 'local/wh:1', '-o', '-'], d);
  assert.equal(viaStdout.code, 0, viaStdout.stderr);
});

async function makeSmallImage(t: test.TestContext, d: DrayDirs, name: string, compression?: 'zstd') {
  const layers = await writeWhiteoutLayers(t, d.work);
  await cliOk(
    ['append', 'scratch', ...layers, '-t', name, ...(compression ? ['--compression', compression] : [])],
    d,
  );
  await cliOk(['mutate', name, '--env', 'A=1', '--cmd', '["/bin/true"]'], d);
}

test('dray save to stdout piped into dray load from stdin (two processes) round-trips', async (t) => {
  if (!requireTool(t, 'tar')) return;
  const src = await drayDirs(t);
  await makeSmallImage(t, src, 'local/piped:1');
  const want = await inspect('local/piped:1', { root: src.root });
  for (const format of ['docker', 'oci']) {
    const dst = await drayDirs(t);
    const r = await pipeSaveLoad(
      { args: ['save', '--format', format, 'local/piped:1'], dirs: src },
      { args: ['load'], dirs: dst },
    );
    assert.equal(r.save.code, 0, r.save.stderr);
    assert.equal(r.load.code, 0, r.load.stderr);
    assert.equal(r.load.stdout, 'Loaded image: local/piped:1\n', format);
    const got = await inspect('local/piped:1', { root: dst.root });
    assert.equal(got.Descriptor.digest, want.Descriptor.digest, `${format}: same manifest digest`);
    assert.deepEqual(got.Config, want.Config);
    await assertImageValid(dst.root, got.Descriptor);
  }
});

test('dray save refuses to write an archive to a terminal', async (t) => {
  const d = await drayDirs(t);
  await cliOk(['load', '-i', fixture('test_image_1.tar')], d);
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  const outText = text(stdout);
  const errText = text(stderr);
  const code = await main(['--root', d.root, '--config', d.config, 'save', 'bazel/v1/tarball:test_image_1'], {
    stdout,
    stderr,
    stdin: Readable.from([]),
    env: { DRAY_ROOT: d.root, DOCKER_CONFIG: d.config },
    isTTY: true,
    stdinIsTTY: true,
  });
  stdout.end();
  stderr.end();
  assert.notEqual(code, 0);
  assert.equal(await outText, '', 'nothing written to the terminal');
  const err = await errText;
  assert.match(err, /error: cowardly refusing to write an archive to a terminal/);
  assert.match(err, /hint: use the -o flag or redirect/);
});

test('save of an image with zstd layers: plain tars in docker format (same image ID), zstd kept in oci format', async (t) => {
  if (!requireTool(t, 'tar')) return;
  const d = await drayDirs(t);
  await makeSmallImage(t, d, 'local/zstd:1', 'zstd');
  const info = await inspect('local/zstd:1', { root: d.root });
  assert.ok(info.Manifest.layers.every((l) => l.mediaType.endsWith('+zstd')));
  const out = join(d.work, 'zstd-docker.tar');
  await cliOk(['save', '-o', out, 'local/zstd:1'], d);
  // manifest.json: the same config; each layer the plain tar whose digest is its diffID
  const entries = new Map(listTar(await readFile(out)).map((e) => [e.path, e]));
  const items = JSON.parse(
    execFileSync('tar', ['-xOf', out, 'manifest.json'], { encoding: 'utf8' }),
  ) as Array<{
    Config: string;
    Layers: string[];
  }>;
  assert.equal(items[0]?.Config, `blobs/sha256/${info.Manifest.config.digest.slice(7)}`);
  assert.deepEqual(
    items[0]?.Layers,
    info.Config.rootfs.diff_ids.map((id) => `blobs/sha256/${id.slice(7)}`),
  );
  // each layer file's content hashes to its name: the diffID, so it is the plain tar
  for (const p of items[0]?.Layers ?? [])
    assert.equal(entries.get(p)?.hash, `sha256:${p.slice('blobs/sha256/'.length)}`);
  // dray loads it back as the same image (config) with plain layers
  const back = await drayDirs(t);
  assert.equal(await cliOk(['load', '-i', out], back), 'Loaded image: local/zstd:1\n');
  const loaded = await inspect('local/zstd:1', { root: back.root });
  assert.equal(loaded.Manifest.config.digest, info.Manifest.config.digest);
  assert.ok(loaded.Manifest.layers.every((l) => !l.mediaType.endsWith('+zstd')));
  await assertImageValid(back.root, loaded.Descriptor);

  const oci = join(d.work, 'zstd-oci.tar');
  await cliOk(['save', '--format', 'oci', '-o', oci, 'local/zstd:1'], d);
  const back2 = await drayDirs(t);
  assert.equal(await cliOk(['load', '-i', oci], back2), 'Loaded image: local/zstd:1\n');
  const kept = await inspect('local/zstd:1', { root: back2.root });
  assert.equal(kept.Descriptor.digest, info.Descriptor.digest, 'oci format keeps the zstd manifest');
  await assertImageValid(back2.root, kept.Descriptor);
});

test('an untagged image (hello-world-v25) is kept under its digest: listed as <none>, taggable, removable', async (t) => {
  const work = await mkdtemp(join(tmpdir(), 'dray-unnamed-'));
  t.after(() => rm(work, { recursive: true, force: true }));
  const o = { root: join(work, 'root'), config: join(work, 'config') };
  const loaded = await runCli(['load', '-i', fixture('hello-world-v25.tar')], o);
  assert.equal(loaded.code, 0, loaded.stderr);
  const id = /Loaded image ID: (sha256:[a-f0-9]{64})/.exec(loaded.stdout)?.[1];
  assert.ok(id, loaded.stdout);
  const listed = await runCli(['images'], o);
  assert.match(listed.stdout, /^<none>\s+<none>\s+[a-f0-9]{12}\s/m);
  assert.equal((await runCli(['inspect', id], o)).code, 0);
  assert.equal((await runCli(['tag', id, 'local/hello:1'], o)).code, 0);
  assert.equal((await runCli(['rmi', id], o)).code, 0);
  const after = await runCli(['images'], o);
  assert.doesNotMatch(after.stdout, /<none>/);
  assert.match(after.stdout, /local\/hello\s+1\s/);
});

test('images are found by ID as docker finds them: the shown 12 characters, a unique prefix, sha256:…', async (t) => {
  const work = await mkdtemp(join(tmpdir(), 'dray-byid-'));
  t.after(() => rm(work, { recursive: true, force: true }));
  const o = { root: join(work, 'root'), config: join(work, 'config') };
  assert.equal((await runCli(['load', '-i', fixture('hello-world-v25.tar')], o)).code, 0);
  const full = /[a-f0-9]{64}/.exec((await runCli(['images', '--no-trunc'], o)).stdout)?.[0] as string;
  assert.ok(full);
  const short = full.slice(0, 12);
  // tag by the short ID, then the named image is found by its ID too (prefix, sha256:, whole)
  const tagged = await runCli(['tag', short, 'local/hello:1'], o);
  assert.equal(tagged.code, 0, tagged.stderr);
  for (const id of [full.slice(0, 6), `sha256:${short}`, full, `sha256:${full}`]) {
    const r = await runCli(['inspect', id], o);
    assert.equal(r.code, 0, `${id}: ${r.stderr}`);
    assert.equal(JSON.parse(r.stdout)[0].Descriptor.digest, `sha256:${full}`);
  }
  const out = join(work, 'x.tar');
  assert.equal((await runCli(['save', '-o', out, short], o)).code, 0);
  assert.equal((await runCli(['mutate', short, '--label', 'a=b', '-t', 'local/hello:2'], o)).code, 0);
  // a name wins over an ID prefix, an unknown prefix is not found, a shared prefix is ambiguous
  assert.equal((await runCli(['tag', 'local/hello:2', short.slice(0, 4)], o)).code, 0);
  const byName = await runCli(['inspect', short.slice(0, 4)], o);
  assert.notEqual(JSON.parse(byName.stdout)[0].Descriptor.digest, `sha256:${full}`);
  const unknown = await runCli(['inspect', 'ffffffffffff'], o);
  assert.equal(unknown.code, 1);
  assert.match(unknown.stderr, /no such image/);
  // rmi by ID: an image with two names (its digest record and local/hello:1) only with -f
  const refused = await runCli(['rmi', short], o);
  assert.notEqual(refused.code, 0);
  assert.match(refused.stderr, /must be forced/);
  const forced = await runCli(['rmi', '-f', short], o);
  assert.equal(forced.code, 0, forced.stderr);
  assert.match(forced.stdout, /^Untagged: local\/hello:1$/m);
  assert.match(forced.stdout, new RegExp(`^Untagged: sha256:${full}$`, 'm'));
  assert.equal((await runCli(['inspect', short], o)).code, 1);
  // a name still removes just that name
  const rmiName = await runCli(['rmi', 'local/hello:2'], o);
  assert.equal(rmiName.stdout.split('\n')[0], 'Untagged: local/hello:2');
  assert.equal((await runCli(['inspect', short.slice(0, 4)], o)).code, 0, 'its other name stays');
});
