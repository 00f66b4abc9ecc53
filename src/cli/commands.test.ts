// The options every command builds from its flags, without running the verbs.
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { test } from 'node:test';
import { isDrayError } from '../index.ts';
import { buildOptions, parseOutput, parseSecret } from './commands/build.ts';
import { imagesOptions, renderImages } from './commands/images.ts';
import { inspectOptions } from './commands/inspect.ts';
import { loginCredentials, loginOptions, logoutOptions } from './commands/login.ts';
import { pruneOptions } from './commands/prune.ts';
import { pullOptions } from './commands/pull.ts';
import { pushOptions } from './commands/push.ts';
import { rmiOptions, tagOptions } from './commands/tag.ts';
import { CliContext, type CliIO, type GlobalFlags } from './context.ts';

function io(o: Partial<CliIO> & { stdinText?: string } = {}): CliIO & { err: () => string } {
  const stderr = new PassThrough();
  let err = '';
  stderr.on('data', (b: Buffer) => {
    err += b.toString();
  });
  return {
    stdout: new PassThrough(),
    stderr,
    stdin: Readable.from(o.stdinText === undefined ? [] : [o.stdinText]),
    env: {},
    isTTY: false,
    stdinIsTTY: false,
    ...o,
    err: () => err,
  };
}

async function context(
  t: { after(fn: () => Promise<void>): void },
  flags: GlobalFlags = {},
  o: Partial<CliIO> & { stdinText?: string } = {},
) {
  const config = await mkdtemp(join(tmpdir(), 'dray-cli-config-'));
  t.after(() => rm(config, { recursive: true, force: true }));
  const cio = io(o);
  return { ctx: new CliContext(cio, { root: '/data/root', config, ...flags }), config, io: cio };
}

test('pull: flags → PullOptions', async (t) => {
  const { ctx, config } = await context(t, { insecureRegistry: ['reg.local:5000'] });
  assert.deepEqual(pullOptions(ctx, { progress: 'auto' }), {
    root: '/data/root',
    registry: { configDir: config, insecureRegistries: ['reg.local:5000'] },
  });
  assert.deepEqual(
    pullOptions(ctx, { progress: 'plain', platform: 'linux/arm64', allTags: true, quiet: true }),
    {
      root: '/data/root',
      registry: { configDir: config, insecureRegistries: ['reg.local:5000'] },
      platform: 'linux/arm64',
      allTags: true,
    },
  );
});

test('pull: the signal of the CLI is passed on', async (t) => {
  const ac = new AbortController();
  const { ctx } = await context(t, {}, { signal: ac.signal });
  assert.equal(pullOptions(ctx, { progress: 'auto' }).signal, ac.signal);
  assert.equal(pushOptions(ctx, { progress: 'auto' }).signal, ac.signal);
  assert.equal(imagesOptions(ctx, {}).signal, ac.signal);
  assert.equal(pruneOptions(ctx).signal, ac.signal);
  assert.equal(tagOptions(ctx).signal, ac.signal);
  assert.equal(rmiOptions(ctx).signal, ac.signal);
  assert.equal(inspectOptions(ctx, {}).signal, ac.signal);
  assert.equal(logoutOptions(ctx).signal, ac.signal);
});

test('push: flags → PushOptions', async (t) => {
  const { ctx, config } = await context(t);
  assert.deepEqual(pushOptions(ctx, { progress: 'rawjson', quiet: true }), {
    root: '/data/root',
    registry: { configDir: config, insecureRegistries: [] },
  });
});

test('images: flags → ImagesOptions, and what it prints', async (t) => {
  const { ctx } = await context(t);
  assert.deepEqual(imagesOptions(ctx, { quiet: true }), { root: '/data/root' });
  assert.deepEqual(imagesOptions(ctx, {}, 'team/*:v1'), { root: '/data/root', reference: 'team/*:v1' });
  const digest = `sha256:${'ab'.repeat(32)}`;
  const list = [
    {
      name: 'docker.io/library/busybox:latest',
      repository: 'busybox',
      tag: 'latest',
      digest,
      descriptor: { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest, size: 10 },
      size: 2_150_000,
      created: '2024-01-01T00:00:00Z',
    },
    {
      name: `docker.io/library/busybox@${digest}`,
      repository: 'busybox',
      tag: '<none>',
      digest,
      descriptor: { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest, size: 10 },
      size: 2_150_000,
    },
  ] as Parameters<typeof renderImages>[0];
  const now = Date.parse('2024-01-03T00:00:00Z');
  assert.deepEqual(renderImages(list, {}, now), [
    [
      'REPOSITORY   TAG      DIGEST         SIZE     CREATED',
      'busybox      latest   abababababab   2.15MB   2 days ago',
      'busybox      <none>   abababababab   2.15MB   N/A',
    ].join('\n'),
  ]);
  // -q: each digest once.
  assert.deepEqual(renderImages(list, { quiet: true }, now), ['abababababab']);
  // --no-trunc: commander gives { trunc: false }.
  assert.deepEqual(renderImages(list, { quiet: true, trunc: false }, now), [digest]);
  assert.ok(renderImages(list, { trunc: false }, now)[0]?.includes(digest));
  const json = renderImages(list, { format: 'json' }, now).map((l) => JSON.parse(l) as { name: string });
  assert.deepEqual(
    json.map((j) => j.name),
    list.map((i) => i.name),
  );
  assert.deepEqual(renderImages([], {}, now), ['REPOSITORY   TAG   DIGEST   SIZE   CREATED']);
});

test('tag, rmi, prune: the data root', async (t) => {
  const { ctx } = await context(t);
  assert.deepEqual(tagOptions(ctx), { root: '/data/root' });
  assert.deepEqual(rmiOptions(ctx), { root: '/data/root' });
  assert.deepEqual(pruneOptions(ctx), { root: '/data/root' });
});

test('inspect: flags → InspectOptions', async (t) => {
  const { ctx, config } = await context(t);
  const registry = { configDir: config, insecureRegistries: [] };
  assert.deepEqual(inspectOptions(ctx, {}), { root: '/data/root', registry });
  assert.deepEqual(inspectOptions(ctx, { remote: true, platform: 'linux/arm/v7' }), {
    root: '/data/root',
    registry,
    remote: true,
    platform: 'linux/arm/v7',
  });
});

test('login/logout: flags → options; dray.json insecure registries are used', async (t) => {
  const { config } = await context(t);
  await writeFile(join(config, 'dray.json'), JSON.stringify({ 'insecure-registries': ['r.example:5000'] }));
  const ctx = new CliContext(io(), { config, insecureRegistry: ['flag.example'] });
  assert.deepEqual(loginOptions(ctx, { username: 'u', password: 'p' }), {
    configDir: config,
    insecureRegistries: ['flag.example', 'r.example:5000'],
    username: 'u',
    password: 'p',
  });
  assert.deepEqual(logoutOptions(ctx), { configDir: config });
});

test('login: credentials from flags and stdin, docker rules', async (t) => {
  const invalid = (message: RegExp) => (e: unknown) =>
    isDrayError(e, 'DRAY_INVALID_ARGUMENT') && message.test(e.message);

  const a = await context(t, {}, { stdinText: 's3cret\n' });
  assert.deepEqual(await loginCredentials(a.ctx, { username: 'u', passwordStdin: true }), {
    username: 'u',
    password: 's3cret',
  });
  const crlf = await context(t, {}, { stdinText: 'pw with spaces \r\n' });
  assert.equal(
    (await loginCredentials(crlf.ctx, { username: 'u', passwordStdin: true })).password,
    'pw with spaces ',
  );

  const p = await context(t);
  assert.deepEqual(await loginCredentials(p.ctx, { username: 'u', password: 'pw' }), {
    username: 'u',
    password: 'pw',
  });
  assert.match(p.io.err(), /WARNING! Using --password via the CLI is insecure/);
  assert.doesNotMatch(p.io.err(), /pw/);

  const both = await context(t);
  await assert.rejects(
    loginCredentials(both.ctx, { username: 'u', password: 'x', passwordStdin: true }),
    invalid(/--password and --password-stdin are mutually exclusive/),
  );
  await assert.rejects(
    loginCredentials(both.ctx, { passwordStdin: true }),
    invalid(/must provide --username with --password-stdin/),
  );
  // No TTY and something missing: no prompt, a clear error.
  await assert.rejects(loginCredentials(both.ctx, {}), invalid(/non TTY device/));
  await assert.rejects(loginCredentials(both.ctx, { username: 'u' }), invalid(/non TTY device/));
});

test('--max-concurrent-transfers reaches the registry options; bad values and progress modes are refused', async (t) => {
  const { ctx } = await context(t, { maxConcurrentTransfers: '8' });
  assert.equal(pullOptions(ctx, { progress: 'auto' }).registry?.concurrency, 8);
  assert.equal(pushOptions(ctx, { progress: 'auto' }).registry?.concurrency, 8);
  for (const bad of ['0', '65', '2.5', 'many']) {
    await assert.rejects(
      context(t, { maxConcurrentTransfers: bad }),
      (e) => isDrayError(e, 'DRAY_INVALID_ARGUMENT') && /max-concurrent-transfers/.test(e.message),
    );
  }
  assert.throws(
    () => ctx.progress('fancy' as 'auto'),
    (e) => isDrayError(e, 'DRAY_INVALID_ARGUMENT') && /progress mode/.test(e.message),
  );
});

test('build: flags → BuildOptions (docker build flags)', async (t) => {
  const { ctx } = await context(t, {}, { env: { FROM_ENV: 'v1', SOURCE_DATE_EPOCH: '1700000000' } });
  const o = buildOptions(ctx, 'ctx', {
    progress: 'plain',
    file: 'ctx/Dockerfile.dev',
    tag: ['a:1', 'b'],
    buildArg: ['X=1', 'FROM_ENV', 'UNSET_VAR', 'EMPTY='],
    target: 'final',
    cache: false,
    pull: true,
    label: ['k=v=w'],
    secret: ['id=tok,src=/run/tok', 'id=api,env=API_KEY'],
    network: 'none',
    push: true,
  });
  assert.equal(o.context, 'ctx');
  assert.equal(o.file, 'ctx/Dockerfile.dev');
  assert.deepEqual(o.tags, ['a:1', 'b']);
  assert.deepEqual(
    o.buildArgs,
    { X: '1', FROM_ENV: 'v1', EMPTY: '' },
    'a bare name takes the environment value, unset ones are left out',
  );
  assert.equal(o.target, 'final');
  assert.equal(o.noCache, true);
  assert.equal(o.pull, true);
  assert.deepEqual(o.labels, { k: 'v=w' });
  assert.deepEqual(o.secrets, { tok: { file: '/run/tok' }, api: { env: 'API_KEY' } });
  assert.equal(o.network, 'none');
  assert.equal(o.push, true);
  assert.equal(o.sourceDateEpoch, 1700000000);
  assert.throws(
    () => buildOptions(ctx, '.', { progress: 'plain', network: 'bridge' }),
    (e) => isDrayError(e, 'DRAY_INVALID_ARGUMENT'),
  );
  assert.throws(
    () => buildOptions(ctx, '.', { progress: 'plain', label: ['=x'] }),
    (e) => isDrayError(e, 'DRAY_INVALID_ARGUMENT'),
  );
});

test('build: --output as buildx parses it', async (t) => {
  const { ctx } = await context(t);
  assert.deepEqual(parseOutput(ctx, 'out-dir').export, { type: 'local', dest: 'out-dir' });
  assert.deepEqual(parseOutput(ctx, 'type=local,dest=d').export, { type: 'local', dest: 'd' });
  assert.deepEqual(parseOutput(ctx, 'type=registry,name=r/x:1').export, {
    type: 'image',
    names: ['r/x:1'],
    push: true,
  });
  assert.deepEqual(parseOutput(ctx, 'type=image,"name=a,b",push=true').export, {
    type: 'image',
    names: ['a', 'b'],
    push: true,
  });
  const oci = parseOutput(ctx, 'type=oci,dest=o.tar,compression=zstd,compression-level=3');
  assert.deepEqual(oci.export, { type: 'oci', dest: { kind: 'file', path: 'o.tar' } });
  assert.equal(oci.compression, 'zstd');
  assert.equal(oci.level, 3);
  assert.equal(parseOutput(ctx, 'type=docker,dest=d.tar,compression=uncompressed').compression, 'none');
  assert.equal(parseOutput(ctx, '-').export.type, 'tar');
  for (const bad of [
    'type=nope',
    'type=local',
    'type=oci,compression=lz4',
    'type=oci,compression-level=x',
    'novalue,type=tar',
  ])
    assert.throws(
      () => parseOutput(ctx, bad),
      (e) => isDrayError(e, 'DRAY_INVALID_ARGUMENT'),
      bad,
    );
  const tty = await context(t, {}, { isTTY: true });
  assert.throws(
    () => parseOutput(tty.ctx, 'type=tar'),
    (e) => isDrayError(e, 'DRAY_INVALID_ARGUMENT'),
  );
});

test('build: --secret forms', () => {
  assert.deepEqual(parseSecret('id=a,src=/f'), ['a', { file: '/f' }]);
  assert.deepEqual(parseSecret('id=a,source=/f'), ['a', { file: '/f' }]);
  assert.deepEqual(parseSecret('id=a,env=V'), ['a', { env: 'V' }]);
  assert.deepEqual(parseSecret('type=env,id=a'), ['a', { env: 'a' }]);
  assert.deepEqual(parseSecret('id=a'), ['a', { env: 'a' }]);
  assert.throws(
    () => parseSecret('src=/f'),
    (e) => isDrayError(e, 'DRAY_INVALID_ARGUMENT'),
  );
});
