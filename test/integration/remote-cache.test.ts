import assert from 'node:assert/strict';
import { chown, cp, mkdir, readFile, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { type TestContext, test } from 'node:test';
import { uncompressedDigest } from '../../src/cache/index.ts';
import { ContentStore } from '../../src/content/index.ts';
import { digestOf } from '../../src/digest/index.ts';
import { build, collectProgress, push } from '../../src/index.ts';
import { OciLayout } from '../../src/layout/index.ts';
import { type Descriptor, type ImageManifest, parseManifest, readDocument } from '../../src/oci/index.ts';
import { storeBusyboxImage } from '../harness/busybox-image.ts';
import { type FaultProxy, startFaultProxy } from '../harness/fault-proxy.ts';
import { startRegistry } from '../harness/registry.ts';
import { requireTool, tempDir } from '../harness/tools.ts';
import { runCli } from './helpers.ts';

// Issue 6: two data roots stand for two machines that share only a registry (reached
// through a counting proxy). Steps write a timestamp into their output, so a step that
// reruns changes its layer, and with it the image digest.

const epoch = 1_700_000_000;

interface World {
  proxy: FaultProxy;
  base: string;
  work: string;
  context: string;
  config: string;
}

async function world(t: TestContext): Promise<World | undefined> {
  if (!requireTool(t, 'runc', 'docker-registry')) return undefined;
  const reg = await startRegistry(t);
  const proxy = await startFaultProxy(t, { target: reg.host });
  const work = await tempDir(t, 'dray-rcache-');
  const config = await tempDir(t, 'dray-config-');
  const seed = join(work, 'seed-root');
  await storeBusyboxImage(t, seed, 'docker.io/local/busybox:latest');
  const base = `${proxy.host}/base/busybox:1`;
  const { ImageStore } = await import('../../src/image/index.ts');
  const images = await ImageStore.open(seed);
  await images.tag(base, await images.resolve('docker.io/local/busybox:latest'));
  await push(base, { root: seed, registry: { configDir: config } });
  const context = join(work, 'ctx');
  await mkdir(join(context, 'src'), { recursive: true });
  await writeFile(join(context, 'src', 'a.txt'), 'alpha\n');
  await writeFile(join(context, 'src', 'b.txt'), 'beta\n');
  await writeFile(join(context, 'other.txt'), 'other\n');
  await writeFile(
    join(context, 'Dockerfile'),
    [
      `FROM ${base} AS builder`,
      'COPY src /src',
      "RUN --mount=type=cache,target=/cache sh -c 'mkdir -p /out && cat /src/*.txt > /out/all.txt && date +%s%N > /out/stamp && echo filled > /cache/marker'",
      "RUN sh -c 'wc -c /out/all.txt > /out/size && date +%s%N >> /out/size'",
      `FROM ${base}`,
      'COPY --from=builder /out/all.txt /app/all.txt',
      'COPY other.txt /app/other.txt',
      "RUN sh -c 'cat /app/*.txt > /app/combined && date +%s%N > /app/stamp'",
      '',
    ].join('\n'),
  );
  return { proxy, base, work, context, config };
}

/** A copy of the context elsewhere, with other mtimes and owners: keys must not notice. */
async function machineContext(w: World, name: string): Promise<string> {
  const dir = join(w.work, `${name}-ctx`);
  await cp(w.context, dir, { recursive: true });
  for (const f of ['src/a.txt', 'src/b.txt', 'other.txt', 'Dockerfile']) {
    await utimes(join(dir, f), 1234567, 1234567);
    await chown(join(dir, f), 4321, 4321);
  }
  return dir;
}

async function buildOn(
  w: World,
  root: string,
  context: string,
  o: { cacheFrom?: string[]; cacheTo?: string[]; tags?: string[]; push?: boolean; target?: string } = {},
) {
  const progress = collectProgress();
  const r = await build({
    root,
    registry: { configDir: w.config },
    context,
    sourceDateEpoch: epoch,
    ...(o.tags ? { tags: o.tags } : {}),
    ...(o.push ? { push: true } : {}),
    ...(o.target ? { target: o.target } : {}),
    ...(o.cacheFrom ? { cacheFrom: o.cacheFrom } : {}),
    ...(o.cacheTo ? { cacheTo: o.cacheTo } : {}),
    progress,
  });
  const messages = progress.events.flatMap((e) => (e.message ? [e.message] : []));
  return { ...r, messages };
}

/** Blob GETs through the proxy, per repository path, since `from`. */
function blobGets(w: World, repo: string, from: number): string[] {
  return w.proxy.log
    .slice(from)
    .filter((e) => e.method === 'GET' && e.path.startsWith(`/v2/${repo}/blobs/`) && e.status === 200)
    .map((e) => e.path.slice(`/v2/${repo}/blobs/`.length));
}

async function cacheConfigOf(w: World, repo: string, tag: string) {
  const res = await fetch(`http://${w.proxy.host}/v2/${repo}/manifests/${tag}`, {
    headers: {
      accept: 'application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json',
    },
  });
  const doc = (await res.json()) as {
    mediaType: string;
    manifests?: Array<{ mediaType: string; digest: string; annotations?: Record<string, string> }>;
    config?: { mediaType: string; digest: string };
    layers?: Array<{ digest: string }>;
  };
  const cfgDesc =
    doc.manifests?.find((m) => m.mediaType === 'application/vnd.buildkit.cacheconfig.v0') ?? doc.config;
  assert.ok(cfgDesc, 'the cache manifest names a cache config');
  const cfg = (await (await fetch(`http://${w.proxy.host}/v2/${repo}/blobs/${cfgDesc.digest}`)).json()) as {
    layers: Array<{ blob: string; parent: number }>;
    records: Array<{ digest: string; layers?: unknown[]; inputs?: unknown[] }>;
    mounts?: Array<{ id: string; blob: string }>;
  };
  return { doc, cfg };
}

test('remote cache through a registry (mode=max): a fresh machine runs nothing and fetches only the final layers', async (t) => {
  const w = await world(t);
  if (!w) return;
  const rootA = join(w.work, 'A');
  const a = await buildOn(w, rootA, w.context, {
    cacheTo: [`type=registry,ref=${w.proxy.host}/cache/app:max,mode=max`],
  });
  assert.equal(a.steps.ran, 6, 'A ran every step');
  const { doc, cfg } = await cacheConfigOf(w, 'cache/app', 'max');
  assert.equal(doc.mediaType, 'application/vnd.oci.image.index.v1+json');
  for (const m of doc.manifests ?? [])
    if (m.mediaType !== 'application/vnd.buildkit.cacheconfig.v0')
      assert.match(
        m.annotations?.['containerd.io/uncompressed'] ?? '',
        /^sha256:/,
        'layers carry their diffID',
      );
  assert.equal(cfg.records.filter((r) => r.layers).length, 6, 'max: every step of both stages has a result');
  // Exporting again (a warm rebuild): every blob is there already, nothing is uploaded.
  const before = w.proxy.log.length;
  const again = await buildOn(w, rootA, w.context, {
    cacheTo: [`type=registry,ref=${w.proxy.host}/cache/app:max,mode=max`],
  });
  assert.equal(again.steps.ran, 0);
  const uploads = w.proxy.log
    .slice(before)
    .filter((e) => e.method === 'POST' && e.path.includes('/blobs/uploads'));
  assert.equal(uploads.length, 0, 'no blob uploaded twice');

  const rootB = join(w.work, 'B');
  const ctxB = await machineContext(w, 'B');
  const mark = w.proxy.log.length;
  const b = await buildOn(w, rootB, ctxB, { cacheFrom: [`type=registry,ref=${w.proxy.host}/cache/app:max`] });
  assert.equal(b.steps.ran, 0, `B ran nothing: ${b.messages.join('\n')}`);
  assert.equal(b.imageId, a.imageId, 'the same image, digest for digest');
  const fetched = new Set(blobGets(w, 'cache/app', mark));
  const finalOwn = (b.config.rootfs?.diff_ids ?? []).length - 1; // the base layer comes from base/busybox
  const cfgDigest = doc.manifests?.find(
    (m) => m.mediaType === 'application/vnd.buildkit.cacheconfig.v0',
  )?.digest;
  assert.ok(cfgDigest && fetched.has(cfgDigest), 'the cache config was read');
  fetched.delete(cfgDigest as string);
  assert.equal(
    fetched.size,
    finalOwn,
    `only the final image's own layers were fetched: ${[...fetched].join(' ')}`,
  );

  // One context file changes on B: exactly its dependents rerun.
  await writeFile(join(ctxB, 'other.txt'), 'changed\n');
  const b2 = await buildOn(w, rootB, ctxB, {
    cacheFrom: [`type=registry,ref=${w.proxy.host}/cache/app:max`],
  });
  assert.equal(b2.steps.ran, 2, 'COPY other.txt and the RUN after it');
  assert.notEqual(b2.imageId, a.imageId);
});

test('mode=min exports only the final stage; mode=max also the builder stage', async (t) => {
  const w = await world(t);
  if (!w) return;
  const rootA = join(w.work, 'A');
  await buildOn(w, rootA, w.context, {
    cacheTo: [
      `type=registry,ref=${w.proxy.host}/cache/app:min`,
      `type=registry,ref=${w.proxy.host}/cache/app:max,mode=max`,
    ],
  });
  const min = await cacheConfigOf(w, 'cache/app', 'min');
  assert.equal(min.cfg.records.filter((r) => r.layers).length, 3, 'min: the final stage steps only');
  const fresh = await buildOn(w, join(w.work, 'B1'), await machineContext(w, 'B1'), {
    cacheFrom: [`type=registry,ref=${w.proxy.host}/cache/app:min`],
  });
  assert.equal(fresh.steps.ran, 0, 'the final image comes from a min cache');
  const builderMin = await buildOn(w, join(w.work, 'B2'), await machineContext(w, 'B2'), {
    target: 'builder',
    cacheFrom: [`type=registry,ref=${w.proxy.host}/cache/app:min`],
  });
  assert.equal(builderMin.steps.ran, 3, 'the builder stage is not in a min cache');
  const builderMax = await buildOn(w, join(w.work, 'B3'), await machineContext(w, 'B3'), {
    target: 'builder',
    cacheFrom: [`type=registry,ref=${w.proxy.host}/cache/app:max`],
  });
  assert.equal(builderMax.steps.ran, 0, 'the builder stage is in a max cache');
});

test('local and inline caches round-trip; image-manifest form too', async (t) => {
  const w = await world(t);
  if (!w) return;
  const rootA = join(w.work, 'A');
  const dir = join(w.work, 'local-cache');
  const a = await buildOn(w, rootA, w.context, {
    tags: [`${w.proxy.host}/app/img:inline`],
    push: true,
    cacheTo: [
      `type=local,dest=${dir},mode=max`,
      'type=inline',
      `type=registry,ref=${w.proxy.host}/cache/app:im,image-manifest=true`,
    ],
  });
  const index = JSON.parse(await readFile(join(dir, 'index.json'), 'utf8')) as {
    manifests: Array<{ annotations?: Record<string, string> }>;
  };
  assert.equal(index.manifests[0]?.annotations?.['org.opencontainers.image.ref.name'], 'latest');
  assert.ok(typeof (a.config as Record<string, unknown>)['moby.buildkit.cache.v0'] === 'string');
  const im = await cacheConfigOf(w, 'cache/app', 'im');
  assert.equal(im.doc.mediaType, 'application/vnd.oci.image.manifest.v1+json');
  assert.equal(im.doc.config?.mediaType, 'application/vnd.buildkit.cacheconfig.v0');

  for (const [name, from] of [
    ['local', `type=local,src=${dir}`],
    ['inline', `${w.proxy.host}/app/img:inline`],
    ['image-manifest', `type=registry,ref=${w.proxy.host}/cache/app:im`],
  ] as const) {
    const b = await buildOn(w, join(w.work, `B-${name}`), await machineContext(w, `B-${name}`), {
      cacheFrom: [from],
    });
    assert.equal(b.steps.ran, 0, `${name}: nothing ran (${b.messages.join('; ')})`);
    assert.deepEqual(b.config.rootfs, a.config.rootfs, `${name}: the same layers`);
  }
});

test('a corrupt or missing cache blob warns and the step runs; the image stays right', async (t) => {
  const w = await world(t);
  if (!w) return;
  const a = await buildOn(w, join(w.work, 'A'), w.context, {
    cacheTo: [`type=registry,ref=${w.proxy.host}/cache/app:c`],
  });
  const { doc } = await cacheConfigOf(w, 'cache/app', 'c');
  const layerDigests = (doc.manifests ?? [])
    .filter((m) => m.mediaType.includes('layer'))
    .map((m) => m.digest);
  // The final RUN's layer is the image's last.
  const runLayer = (await manifestOf(join(w.work, 'A'), a.descriptor)).layers.at(-1)?.digest;
  assert.ok(runLayer && layerDigests.includes(runLayer), 'the final layer is in the cache');

  w.proxy.setFaults([
    { method: 'GET', path: new RegExp(`/blobs/${runLayer}`), fault: { kind: 'flip', offset: 40 } },
  ]);
  const corrupt = await buildOn(w, join(w.work, 'B1'), await machineContext(w, 'B1'), {
    cacheFrom: [`type=registry,ref=${w.proxy.host}/cache/app:c`],
  });
  assert.ok(
    corrupt.messages.some((m) => /WARNING: .*unusable/.test(m)),
    corrupt.messages.join('\n'),
  );
  assert.equal(corrupt.steps.ran, 1, 'only the step whose blob was corrupt ran');
  await checkImage(join(w.work, 'B1'), corrupt.config.rootfs?.diff_ids ?? [], corrupt.descriptor);

  w.proxy.setFaults([
    {
      method: 'GET',
      path: new RegExp(`/blobs/${runLayer}`),
      fault: {
        kind: 'status',
        status: 404,
        body: '{"errors":[{"code":"BLOB_UNKNOWN","message":"blob unknown"}]}',
      },
    },
  ]);
  const missing = await buildOn(w, join(w.work, 'B2'), await machineContext(w, 'B2'), {
    cacheFrom: [`type=registry,ref=${w.proxy.host}/cache/app:c`],
  });
  assert.ok(missing.messages.some((m) => /WARNING: .*unusable/.test(m)));
  assert.equal(missing.steps.ran, 1);
  w.proxy.setFaults([]);

  // A cache whose diffID annotation lies: the layer's content is checked, not trusted.
  const dir = join(w.work, 'lying-cache');
  await buildOn(w, join(w.work, 'A'), w.context, { cacheTo: [`type=local,dest=${dir}`] });
  const layout = await OciLayout.open(dir);
  const rootDesc = await layout.resolve('latest');
  const index = JSON.parse((await readDocument(layout, rootDesc)).toString('utf8')) as {
    manifests: Descriptor[];
  };
  const lie = index.manifests.find((m) => m.digest === runLayer);
  assert.ok(lie?.annotations);
  lie.annotations['containerd.io/uncompressed'] = `sha256:${'0'.repeat(64)}`;
  const bytes = Buffer.from(JSON.stringify(index));
  const tampered = { mediaType: rootDesc.mediaType, digest: digestOf(bytes), size: bytes.length };
  await layout.put(tampered, Readable.from([bytes]));
  await layout.tag('latest', tampered);
  const lied = await buildOn(w, join(w.work, 'B4'), await machineContext(w, 'B4'), {
    cacheFrom: [`type=local,src=${dir}`],
  });
  assert.ok(
    lied.messages.some((m) => /unusable .*not the diffID/.test(m)),
    lied.messages.join('\n'),
  );
  assert.equal(lied.steps.ran, 1);
  await checkImage(join(w.work, 'B4'), lied.config.rootfs?.diff_ids ?? [], lied.descriptor);

  const gone = await buildOn(w, join(w.work, 'B3'), await machineContext(w, 'B3'), {
    cacheFrom: [`type=registry,ref=${w.proxy.host}/cache/nothing:here`],
  });
  assert.ok(gone.messages.some((m) => /WARNING: registry cache .* not imported/.test(m)));
  assert.equal(gone.steps.ran, 6, 'no cache: every step runs');
});

async function manifestOf(root: string, d: Descriptor): Promise<ImageManifest> {
  const content = await ContentStore.open(root);
  return parseManifest(await readDocument(content, d));
}

async function checkImage(root: string, diffIds: readonly string[], manifest: Descriptor) {
  const content = await ContentStore.open(root);
  const m = await manifestOf(root, manifest);
  assert.equal(m.layers.length, diffIds.length);
  for (const [i, l] of m.layers.entries())
    assert.equal(await uncompressedDigest(content, l), diffIds[i], `layer ${i} unpacks to its diffID`);
}

test('two builds exporting to one ref at once leave a valid cache', async (t) => {
  const w = await world(t);
  if (!w) return;
  const ref = `type=registry,ref=${w.proxy.host}/cache/app:race,mode=max`;
  const dir = join(w.work, 'race-local');
  const [a1, a2] = await Promise.all([
    buildOn(w, join(w.work, 'A1'), w.context, { cacheTo: [ref, `type=local,dest=${dir}`] }),
    buildOn(w, join(w.work, 'A2'), await machineContext(w, 'A2'), {
      cacheTo: [ref, `type=local,dest=${dir}`],
    }),
  ]);
  for (const from of [`type=registry,ref=${w.proxy.host}/cache/app:race`, `type=local,src=${dir}`]) {
    const b = await buildOn(
      w,
      join(w.work, `B-${from.length}`),
      await machineContext(w, `B-${from.length}`),
      {
        cacheFrom: [from],
      },
    );
    assert.equal(b.steps.ran, 0, from);
    assert.ok([a1.imageId, a2.imageId].includes(b.imageId), 'one of the two caches, whole');
  }
});

test('cache mounts travel with mounts=true, and only then', async (t) => {
  const w = await world(t);
  if (!w) return;
  await buildOn(w, join(w.work, 'A'), w.context, {
    cacheTo: [
      `type=registry,ref=${w.proxy.host}/cache/app:mounts,mode=max,mounts=true`,
      `type=registry,ref=${w.proxy.host}/cache/app:nomounts,mode=max`,
    ],
  });
  const withMounts = await cacheConfigOf(w, 'cache/app', 'mounts');
  assert.deepEqual(
    withMounts.cfg.mounts?.map((m) => m.id),
    ['//cache'], // BuildKit's id for a cache mount without id=: "/" + its target
  );
  const lister = join(w.work, 'lister');
  await mkdir(lister);
  await writeFile(
    join(lister, 'Dockerfile'),
    `FROM ${w.base}\nRUN --mount=type=cache,target=/cache sh -c 'ls /cache > /listing; date +%s%N >> /listing'\n`,
  );
  for (const [tag, expected] of [
    ['mounts', true],
    ['nomounts', false],
  ] as const) {
    const root = join(w.work, `B-${tag}`);
    const out = join(w.work, `out-${tag}`);
    const config = w.config;
    const r = await runCli(
      [
        'build',
        '--progress=plain',
        '--cache-from',
        `type=registry,ref=${w.proxy.host}/cache/app:${tag}`,
        '-o',
        `type=local,dest=${out}`,
        lister,
      ],
      { root, config },
    );
    assert.equal(r.code, 0, r.stderr);
    const listing = await readFile(join(out, 'listing'), 'utf8');
    assert.equal(listing.includes('marker'), expected, `${tag}: ${listing}`);
  }
});

test('compression= recompresses the cache layers; ignore-error=true turns a failed export into a warning', async (t) => {
  const w = await world(t);
  if (!w) return;
  const dir = join(w.work, 'zstd-cache');
  const a = await buildOn(w, join(w.work, 'A'), w.context, {
    cacheTo: [`type=local,dest=${dir},compression=zstd`],
  });
  const index = JSON.parse(await readFile(join(dir, 'index.json'), 'utf8')) as { manifests: Descriptor[] };
  const root = JSON.parse(
    await readFile(join(dir, 'blobs', 'sha256', (index.manifests[0] as Descriptor).digest.slice(7)), 'utf8'),
  ) as { manifests: Descriptor[] };
  const layers = root.manifests.filter((m) => m.mediaType.includes('layer'));
  assert.ok(layers.length > 0);
  for (const l of layers) assert.equal(l.mediaType, 'application/vnd.oci.image.layer.v1.tar+zstd');
  const b = await buildOn(w, join(w.work, 'B'), await machineContext(w, 'B'), {
    cacheFrom: [`type=local,src=${dir}`],
  });
  assert.equal(b.steps.ran, 0);
  assert.deepEqual(b.config.rootfs, {
    type: 'layers',
    diff_ids: a.config.rootfs?.diff_ids,
  });
  await checkImage(join(w.work, 'B'), b.config.rootfs?.diff_ids ?? [], b.descriptor);

  // A registry that refuses everything: the build fails, unless ignore-error=true.
  w.proxy.setFaults([
    {
      method: 'POST',
      path: /\/v2\/cache\/denied\//,
      fault: { kind: 'status', status: 403, body: '{"errors":[{"code":"DENIED","message":"no"}]}' },
    },
  ]);
  const cli = (extra: string) =>
    runCli(
      [
        'build',
        '--progress=plain',
        '--cache-to',
        `type=registry,ref=${w.proxy.host}/cache/denied:x${extra}`,
        w.context,
      ],
      { root: join(w.work, 'A'), config: w.config },
    );
  const failed = await cli('');
  assert.notEqual(failed.code, 0);
  const ignored = await cli(',ignore-error=true');
  assert.equal(ignored.code, 0, ignored.stderr);
  assert.match(ignored.stderr, /not exported \(ignore-error=true\)/);
  w.proxy.setFaults([]);
  // Progress names each blob and the manifest as it exports.
  const shown = await runCli(
    ['build', '--progress=plain', '--cache-to', `type=registry,ref=${w.proxy.host}/cache/shown:x`, w.context],
    { root: join(w.work, 'A'), config: w.config },
  );
  assert.equal(shown.code, 0, shown.stderr);
  assert.match(shown.stderr, /writing cache manifest sha256:/);
  assert.match(shown.stderr, /Pushed|Mounted from|Layer already exists/);
});
