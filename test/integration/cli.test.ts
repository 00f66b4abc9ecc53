// The CLI's output shapes, run in-process through main(argv, io) against a real registry:
// docker's pull lines, rawjson progress, -q, the images table, and errors on stderr with
// exit code 1. One spawned `bin/dray.js` checks the real entry point.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { startRegistry } from '../harness/registry.ts';
import { requireTool, tempDir } from '../harness/tools.ts';
import { assertStoreConsistent, runCli, runDrayProcess, skopeoPush, writeSmallImage } from './helpers.ts';

test('dray CLI against a registry: pull, images, push, tag, rmi, inspect, prune output', async (t) => {
  if (!requireTool(t, 'docker-registry', 'skopeo')) return;
  const reg = await startRegistry(t);
  const fx = await writeSmallImage(await tempDir(t), 3, { layerCount: 2 });
  await skopeoPush(fx.ref, `${reg.host}/cli/app:v1`);
  const name = `${reg.host}/cli/app:v1`;
  const config = await tempDir(t, 'dray-config-');

  await t.test('plain pull prints per-layer lines, Digest and Status', async (t) => {
    const root = await tempDir(t, 'dray-root-');
    const r = await runCli(['pull', name], { root, config });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stderr, '');
    const lines = r.stdout.trimEnd().split('\n');
    assert.equal(lines[0], `v1: Pulling from ${reg.host}/cli/app`);
    for (const l of fx.layers) {
      assert.ok(lines.includes(`${l.digest.slice(7, 19)}: Pull complete`), `${l.digest}\n${r.stdout}`);
    }
    assert.ok(lines.includes(`Digest: ${fx.manifest.digest}`), r.stdout);
    assert.equal(lines.at(-1), `Status: Downloaded newer image for ${name}`);
    assert.doesNotMatch(r.stdout, /\x1b\[/, 'no terminal escapes when stdout is not a TTY');

    const again = await runCli(['pull', name], { root, config });
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stdout, /^Status: Image is up to date for .*cli\/app:v1$/m);
    assert.doesNotMatch(again.stdout, /Pull complete/);
  });

  await t.test('--progress rawjson prints JSON lines only', async (t) => {
    const root = await tempDir(t, 'dray-root-');
    const r = await runCli(['pull', '--progress', 'rawjson', name], { root, config });
    assert.equal(r.code, 0, r.stderr);
    const events = r.stdout
      .trimEnd()
      .split('\n')
      .map((l) => JSON.parse(l) as { id: string; timestamp: number; message?: string });
    assert.ok(events.length > 3);
    for (const e of events) {
      assert.equal(typeof e.id, 'string');
      assert.equal(typeof e.timestamp, 'number');
    }
    assert.ok(events.some((e) => e.message === `Digest: ${fx.manifest.digest}`));
    for (const l of fx.layers)
      assert.ok(
        events.some((e) => e.id === l.digest),
        l.digest,
      );
  });

  await t.test('pull -q prints only the name', async (t) => {
    const root = await tempDir(t, 'dray-root-');
    const r = await runCli(['pull', '-q', name], { root, config });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, `${name}\n`);
  });

  await t.test('images: header and a row per name; -q and --format json', async (t) => {
    const root = await tempDir(t, 'dray-root-');
    assert.equal((await runCli(['pull', '-q', name], { root, config })).code, 0);
    const r = await runCli(['images'], { root, config });
    assert.equal(r.code, 0, r.stderr);
    const [header, row, ...rest] = r.stdout.trimEnd().split('\n');
    assert.equal(rest.length, 0);
    assert.match(header ?? '', /^REPOSITORY {3,}TAG {3,}DIGEST {3,}SIZE {3,}CREATED$/);
    const cells = (row ?? '').split(/ {3,}/);
    assert.equal(cells[0], `${reg.host}/cli/app`);
    assert.equal(cells[1], 'v1');
    assert.equal(cells[2], fx.manifest.digest.slice(7, 19));
    assert.match(cells[3] ?? '', /^\d+(\.\d+)?kB$/);
    assert.match(cells[4] ?? '', /years ago$/, 'created 1970');
    // Header columns line up with the row's.
    assert.equal(header?.indexOf('TAG'), row?.indexOf('v1'));

    const q = await runCli(['images', '-q'], { root, config });
    assert.equal(q.stdout, `${fx.manifest.digest.slice(7, 19)}\n`);
    const noTrunc = await runCli(['images', '--no-trunc'], { root, config });
    assert.ok(noTrunc.stdout.includes(fx.manifest.digest));
    const json = await runCli(['images', '--format', 'json'], { root, config });
    const obj = JSON.parse(json.stdout.trim()) as { name: string; digest: string };
    assert.equal(obj.digest, fx.manifest.digest);

    // docker images REPOSITORY[:TAG]: distribution's FamiliarMatch on the name.
    const rows = async (...args: string[]) => {
      const res = await runCli(['images', '--format', 'json', ...args], { root, config });
      assert.equal(res.code, 0, res.stderr);
      return res.stdout.trim() === '' ? 0 : res.stdout.trim().split('\n').length;
    };
    assert.equal(await rows(`${reg.host}/cli/app`), 1);
    assert.equal(await rows(`${reg.host}/cli/app:v1`), 1);
    assert.equal(await rows(`${reg.host}/cli/*`), 1);
    assert.equal(await rows(`${reg.host}/cli/*:v?`), 1);
    assert.equal(await rows(`${reg.host}/*:v?`), 0);
    assert.equal(await rows(`${reg.host}/*`), 0, '* does not cross a /');
    assert.equal(await rows(`${reg.host}/cli/app:v2`), 0);
    const bad = await runCli(['images', `${reg.host}/cli/[`], { root, config });
    assert.notEqual(bad.code, 0);
    assert.match(bad.stderr, /syntax error in pattern/);
  });

  await t.test('tag, push, inspect, rmi and prune print docker-like lines', async (t) => {
    const root = await tempDir(t, 'dray-root-');
    assert.equal((await runCli(['pull', '-q', name], { root, config })).code, 0);
    const target = `${reg.host}/cli/copy:v2`;
    const tagged = await runCli(['tag', name, target], { root, config });
    assert.equal(tagged.code, 0, tagged.stderr);
    assert.equal(tagged.stdout, '');

    const pushed = await runCli(['push', target], { root, config });
    assert.equal(pushed.code, 0, pushed.stderr);
    assert.match(
      pushed.stdout,
      new RegExp(`^The push refers to repository \\[${reg.host}/cli/copy\\]$`, 'm'),
    );
    assert.match(
      pushed.stdout,
      new RegExp(`^v2: digest: ${fx.manifest.digest} size: ${fx.manifest.size}$`, 'm'),
    );
    const q = await runCli(['push', '-q', target], { root, config });
    assert.equal(q.stdout, `${target}@${fx.manifest.digest}\n`);

    const ins = await runCli(['inspect', target], { root, config });
    assert.equal(ins.code, 0, ins.stderr);
    const [doc] = JSON.parse(ins.stdout) as Array<{ Name: string; Descriptor: { digest: string } }>;
    assert.equal(doc?.Name, target);
    assert.equal(doc?.Descriptor.digest, fx.manifest.digest);
    const remote = await runCli(['inspect', '--remote', target], { root: await tempDir(t), config });
    assert.equal(remote.code, 0, remote.stderr);

    const rmi1 = await runCli(['rmi', target], { root, config });
    assert.equal(rmi1.stdout, `Untagged: ${target}\n`);
    const rmi2 = await runCli(['rmi', name], { root, config });
    assert.equal(rmi2.code, 0, rmi2.stderr);
    const deleted = rmi2.stdout.split('\n').filter((l) => l.startsWith('Deleted: sha256:'));
    assert.equal(deleted.length, 2 + fx.layers.length);
    const p = await runCli(['prune'], { root, config });
    assert.equal(p.stdout, 'Total reclaimed space: 0B\n');
    assert.deepEqual(await assertStoreConsistent(root), { blobs: [], images: [] });
  });

  await t.test('errors: exit 1 and `error: …` on stderr', async (t) => {
    const root = await tempDir(t, 'dray-root-');
    const missing = await runCli(['pull', `${reg.host}/cli/app:nope`], { root, config });
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /^error: .*manifest unknown/m);
    assert.doesNotMatch(missing.stdout, /Status:/);

    const missingRepo = await runCli(['pull', `${reg.host}/no/such:1`], { root, config });
    assert.equal(missingRepo.code, 1);
    assert.match(missingRepo.stderr, /^error: /m);

    const bad = await runCli(['pull', 'Bad/Name'], { root, config });
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /^error: invalid reference format/m);

    const notLocal = await runCli(['inspect', `${reg.host}/cli/none:1`], { root, config });
    assert.equal(notLocal.code, 1);
    assert.match(notLocal.stderr, /^error: /m);

    const rmi = await runCli(['rmi', `${reg.host}/cli/none:1`], { root, config });
    assert.equal(rmi.code, 1);

    const usage = await runCli(['pull'], { root, config });
    assert.equal(usage.code, 2, 'a usage error exits 2');
    const unknown = await runCli(['frobnicate'], { root, config });
    assert.equal(unknown.code, 2);
  });

  await t.test('bin/dray.js as a process: DRAY_ROOT and DOCKER_CONFIG from the environment', async (t) => {
    const root = await tempDir(t, 'dray-root-');
    const r = await runDrayProcess(['pull', '-q', name], { root, config });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, `${name}\n`);
    const { images } = await assertStoreConsistent(root);
    assert.deepEqual(images, [name]);
    const bad = await runDrayProcess(['pull', 'UPPER'], { root, config });
    assert.equal(bad.code, 1);
    assert.match(
      bad.stderr,
      /^error: invalid reference format: repository name \(library\/UPPER\) must be lowercase/m,
    );
  });
});
