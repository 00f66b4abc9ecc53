// `dray append`: tarballs as new layers on scratch or on a pulled image, checked through
// the stored documents and by decompressing the stored blobs.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { gunzipSync, zstdDecompressSync } from 'node:zlib';
import { ContentStore, inspect } from '../../src/index.ts';
import { requireTool, runChecked, tempDir } from '../harness/tools.ts';
import { runCli } from './helpers.ts';

const sha = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

test('append: plain, gzip and zstd tarballs onto scratch and onto an image', async (t) => {
  if (!requireTool(t, 'tar', 'zstd')) return;
  const work = await tempDir(t);
  const root = join(work, 'root');
  const config = join(work, 'config');
  const tree = join(work, 'tree');
  await mkdir(join(tree, 'etc'), { recursive: true });
  await writeFile(join(tree, 'etc', 'greeting'), 'hello\n');
  const plain = join(work, 'one.tar');
  await runChecked('tar', [
    '-C',
    tree,
    '--sort=name',
    '--mtime=@0',
    '--owner=0',
    '--group=0',
    '-cf',
    plain,
    '.',
  ]);
  await writeFile(join(tree, 'etc', 'greeting'), 'hello again\n');
  const second = join(work, 'two.tar');
  await runChecked('tar', [
    '-C',
    tree,
    '--sort=name',
    '--mtime=@0',
    '--owner=0',
    '--group=0',
    '-cf',
    second,
    '.',
  ]);
  await runChecked('gzip', ['-k', second]);
  await runChecked('zstd', ['-q', second, '-o', `${second}.zst`]);

  const a = await runCli(['append', 'scratch', plain, '-t', 'local/app:1'], { root, config });
  assert.equal(a.code, 0, a.stderr);
  const b = await runCli(['append', 'local/app:1', `${second}.gz`, `${second}.zst`, '-t', 'local/app:2'], {
    root,
    config,
  });
  assert.equal(b.code, 0, b.stderr);

  const one = await inspect('local/app:1', { root });
  const two = await inspect('local/app:2', { root });
  assert.equal(one.Config.rootfs.diff_ids[0], sha(await readFile(plain)));
  assert.deepEqual(two.Config.rootfs.diff_ids, [
    sha(await readFile(plain)),
    sha(await readFile(second)),
    sha(await readFile(second)),
  ]);
  assert.equal(two.Manifest.layers.length, 3);
  assert.equal(two.Config.history?.length, 3);
  assert.ok(two.Config.history?.every((h) => h.created_by === 'dray append' && !h.empty_layer));
  assert.deepEqual(
    two.Manifest.layers.map((l) => l.mediaType),
    [
      'application/vnd.oci.image.layer.v1.tar+gzip',
      'application/vnd.oci.image.layer.v1.tar+gzip',
      'application/vnd.oci.image.layer.v1.tar+zstd',
    ],
  );
  // The compressed tarballs were stored byte for byte; the plain one was gzipped.
  assert.equal(two.Manifest.layers[1]!.digest, sha(await readFile(`${second}.gz`)));
  assert.equal(two.Manifest.layers[2]!.digest, sha(await readFile(`${second}.zst`)));
  const store = await ContentStore.open(root);
  const blob0 = await readFile(store.blobPath(two.Manifest.layers[0]!.digest));
  assert.deepEqual(gunzipSync(blob0), await readFile(plain));
  const blob2 = await readFile(store.blobPath(two.Manifest.layers[2]!.digest));
  assert.deepEqual(zstdDecompressSync(blob2), await readFile(second));

  const bad = await runCli(['append', 'scratch', join(work, 'missing.tar'), '-t', 'local/x'], {
    root,
    config,
  });
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /cannot read layer tarball/);
  const badc = await runCli(['append', 'scratch', plain, '-t', 'local/x', '--compression', 'xz'], {
    root,
    config,
  });
  assert.equal(badc.code, 2);
});
