// Interop with OCI tools: `skopeo inspect` reads the OCI archive `dray save --format oci`
// writes and the OCI layout directory the oci exporter writes; `umoci unpack` unpacks that
// layout to the same root filesystem `dray unpack` makes; and every JSON document dray
// writes there (oci-layout, index.json, indexes, manifests, configs) validates against the
// OCI image-spec schemas.
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { type TestContext, test } from 'node:test';
import { resolveExporter } from '../../src/exporter/index.ts';
import { ContentStore, inspect } from '../../src/index.ts';
import { type OciSchemaKind, validateWithOciSchema } from '../../src/oci/testing.ts';
import { startRegistry } from '../harness/registry.ts';
import { requireTool, runChecked, tempDir } from '../harness/tools.ts';
import { platformKey, skopeoPush, writeMultiPlatformLayout } from './helpers.ts';
import {
  busyboxLayerTar,
  cliOk,
  type DrayDirs,
  describeEntry,
  drayDirs,
  listTree,
  writeWhiteoutLayers,
} from './interop-helpers.ts';

interface Desc {
  mediaType: string;
  digest: string;
  size: number;
}

const kindOf: Record<string, OciSchemaKind> = {
  'application/vnd.oci.image.index.v1+json': 'index',
  'application/vnd.oci.image.manifest.v1+json': 'manifest',
  'application/vnd.oci.image.config.v1+json': 'config',
};

/**
 * Validates every JSON document of the OCI layout in `dir` (oci-layout, index.json and each
 * index, manifest and config reachable from it) with the image-spec schemas; returns how
 * many documents of each kind it checked.
 */
async function validateLayout(dir: string): Promise<Record<string, number>> {
  const counts: Record<string, number> = {};
  const check = (kind: OciSchemaKind, doc: unknown, what: string) => {
    assert.deepEqual(validateWithOciSchema(kind, doc), [], `${what} (${kind}) does not validate`);
    counts[kind] = (counts[kind] ?? 0) + 1;
  };
  check('layout', JSON.parse(await readFile(join(dir, 'oci-layout'), 'utf8')), 'oci-layout');
  const top = JSON.parse(await readFile(join(dir, 'index.json'), 'utf8')) as { manifests: Desc[] };
  check('index', top, 'index.json');
  const blob = (d: Desc) => readFile(join(dir, 'blobs', ...d.digest.split(':')));
  const visit = async (d: Desc): Promise<void> => {
    check('descriptor', d, `descriptor of ${d.digest}`);
    const kind = kindOf[d.mediaType];
    assert.ok(kind, `${d.digest}: dray wrote an OCI layout entry of media type ${d.mediaType}`);
    const bytes = await blob(d);
    assert.equal(bytes.length, d.size, `${d.digest}: size`);
    const doc = JSON.parse(bytes.toString('utf8')) as {
      manifests?: Desc[];
      config?: Desc;
      layers?: Desc[];
    };
    check(kind, doc, d.digest);
    if (kind === 'index') for (const m of doc.manifests ?? []) await visit(m);
    if (kind !== 'manifest') return;
    if (doc.config) await visit(doc.config);
    for (const l of doc.layers ?? []) {
      check('descriptor', l, `layer descriptor ${l.digest}`);
      assert.equal((await blob(l)).length, l.size, `${l.digest}: size`);
    }
  };
  for (const m of top.manifests) await visit(m);
  return counts;
}

/**
 * An image made by dray: a busybox layer, the three whiteout layers (a deleted file, an
 * opaque dir, a file replaced by a dir and back), and config changes.
 */
async function makeImage(t: TestContext, d: DrayDirs, name: string): Promise<void> {
  const layers = [
    await busyboxLayerTar(t, join(d.work, 'busybox.tar')),
    ...(await writeWhiteoutLayers(t, d.work)),
  ];
  await cliOk(['append', 'scratch', ...layers, '-t', name], d);
  await cliOk(
    [
      'mutate',
      name,
      '--cmd',
      '["/bin/sh","-c","cat /etc/keep"]',
      '--env',
      'GREETING=hello',
      '--label',
      'org.example.made-by=dray',
      '--workdir',
      '/opq',
    ],
    d,
  );
}

test('skopeo inspect accepts dray save --format oci; every document validates', async (t) => {
  if (!requireTool(t, 'skopeo', 'tar')) return;
  const d = await drayDirs(t);
  await makeImage(t, d, 'local/oci:1');
  const info = await inspect('local/oci:1', { root: d.root });
  const file = join(d.work, 'oci.tar');
  await cliOk(['save', '--format', 'oci', '-o', file, 'local/oci:1'], d);

  for (const ref of [`oci-archive:${file}`, `oci-archive:${file}:1`]) {
    const r = JSON.parse((await runChecked('skopeo', ['inspect', ref])).stdout) as {
      Digest: string;
      Layers: string[];
      Env: string[];
      Labels: Record<string, string>;
      Os: string;
      Architecture: string;
    };
    assert.equal(r.Digest, info.ManifestDescriptor.digest, ref);
    assert.deepEqual(
      r.Layers,
      info.Manifest.layers.map((l) => l.digest),
    );
    assert.ok(r.Env.includes('GREETING=hello'));
    assert.equal(r.Labels['org.example.made-by'], 'dray');
    assert.equal(r.Os, info.Config.os);
    assert.equal(r.Architecture, info.Config.architecture);
    const config = JSON.parse((await runChecked('skopeo', ['inspect', '--config', ref])).stdout) as {
      rootfs: { diff_ids: string[] };
    };
    assert.deepEqual(config.rootfs.diff_ids, info.Config.rootfs.diff_ids);
  }

  const dir = await tempDir(t, 'dray-oci-archive-');
  await runChecked('tar', ['-C', dir, '-xf', file]);
  const counts = await validateLayout(dir);
  assert.equal(counts.manifest, 1);
  assert.equal(counts.config, 1);
  // skopeo reads its own copy the same way: copy the archive into a layout dir and compare.
  const copied = join(await tempDir(t, 'dray-skopeo-copy-'), 'layout');
  await runChecked('skopeo', ['copy', '-q', `oci-archive:${file}`, `oci:${copied}:copy`]);
  const s = JSON.parse((await runChecked('skopeo', ['inspect', `oci:${copied}:copy`])).stdout) as {
    Digest: string;
  };
  assert.equal(s.Digest, info.ManifestDescriptor.digest, 'skopeo copy kept the manifest byte for byte');
});

test('OCI layout dir from the oci exporter: skopeo inspect, umoci unpack = dray unpack, schemas', async (t) => {
  if (!requireTool(t, 'skopeo', 'umoci', 'tar')) return;
  const d = await drayDirs(t);
  await makeImage(t, d, 'local/oci:1');
  const info = await inspect('local/oci:1', { root: d.root });
  const layout = join(d.work, 'layout');
  const content = await ContentStore.open(d.root);
  await resolveExporter({
    type: 'oci',
    dest: { kind: 'dir', path: layout },
    names: ['local/oci:1'],
  }).export({ source: content, root: info.Descriptor });

  const counts = await validateLayout(layout);
  assert.equal(counts.manifest, 1);
  assert.equal(counts.config, 1);
  const index = JSON.parse(await readFile(join(layout, 'index.json'), 'utf8')) as {
    manifests: Array<Desc & { annotations?: Record<string, string> }>;
  };
  assert.equal(index.manifests.length, 1);
  assert.equal(index.manifests[0]?.annotations?.['org.opencontainers.image.ref.name'], '1');

  const r = JSON.parse((await runChecked('skopeo', ['inspect', `oci:${layout}:1`])).stdout) as {
    Digest: string;
    Layers: string[];
  };
  assert.equal(r.Digest, info.ManifestDescriptor.digest);
  assert.equal(r.Layers.length, 4);

  const bundle = join(await tempDir(t, 'dray-umoci-'), 'bundle');
  await runChecked('umoci', ['unpack', '--image', `${layout}:1`, bundle]);
  const mine = join(d.work, 'unpacked');
  await cliOk(['unpack', 'local/oci:1', mine], d);

  // Entry by entry, mtimes included (directories too: both restore a parent's time after
  // a whiteout deletes an entry in it).
  const theirs = (await listTree(join(bundle, 'rootfs'))).map((e) => describeEntry(e, { mtime: true }));
  const ours = (await listTree(mine)).map((e) => describeEntry(e, { mtime: true }));
  assert.deepEqual(ours, theirs);

  // The merged result, spelled out.
  const top = (await listTree(mine)).filter((e) => !e.path.startsWith('bin'));
  assert.deepEqual(
    top.map((e) => `${e.path} ${e.type}`),
    [
      'etc dir',
      'etc/group file',
      'etc/keep file',
      'etc/passwd file',
      'opq dir',
      'opq/c file',
      'root dir',
      'swap file',
      'swap2 dir',
      'swap2/again file',
      'tmp dir',
    ],
  );
  assert.equal(await readFile(join(mine, 'swap'), 'utf8'), 'file v3\n');
});

test('a multi-platform image pulled from a registry: dray save --format oci writes an index skopeo reads', async (t) => {
  if (!requireTool(t, 'skopeo', 'docker-registry', 'tar')) return;
  const reg = await startRegistry(t);
  const d = await drayDirs(t);
  const platforms = [
    { os: 'linux', architecture: 'amd64' },
    { os: 'linux', architecture: 'arm64', variant: 'v8' },
  ];
  const src = await writeMultiPlatformLayout(join(d.work, 'src'), platforms);
  const remote = `${reg.host}/interop/multi:1`;
  await skopeoPush(src.ref, remote, { all: true });
  await cliOk(['pull', '--platform', 'all', remote], d);
  const file = join(d.work, 'multi.tar');
  await cliOk(['save', '--format', 'oci', '-o', file, remote], d);
  const dir = await tempDir(t, 'dray-oci-multi-');
  await runChecked('tar', ['-C', dir, '-xf', file]);
  // index.json + the image index, one manifest and one config per platform.
  assert.deepEqual(await validateLayout(dir), { layout: 1, index: 2, descriptor: 9, manifest: 2, config: 2 });
  for (const p of platforms) {
    const key = platformKey(p);
    const want = src.platforms.get(key);
    assert.ok(want);
    const args = ['inspect', '--override-os', p.os, '--override-arch', p.architecture];
    if (p.variant) args.push('--override-variant', p.variant);
    // skopeo's Digest is that of the manifest the name points at: the index, kept byte for byte.
    const r = JSON.parse((await runChecked('skopeo', [...args, `oci-archive:${file}`])).stdout) as {
      Digest: string;
      Layers: string[];
      Architecture: string;
    };
    assert.equal(r.Digest, src.index.digest, key);
    assert.deepEqual(
      r.Layers,
      want.layers.map((l) => l.digest),
      key,
    );
    assert.equal(r.Architecture, p.architecture);
  }
});
