// `dray mutate` against a real registry: pull an image, change its config, check the new
// image keeps the layers and carries the changes, and push it back.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { inspect } from '../../src/index.ts';
import { startRegistry } from '../harness/registry.ts';
import { requireTool, tempDir } from '../harness/tools.ts';
import { runCli, skopeoPush, writeSmallImage } from './helpers.ts';

test('mutate changes env, cmd, entrypoint, workdir, user and labels and keeps the layers', async (t) => {
  if (!requireTool(t, 'docker-registry', 'skopeo')) return;
  const reg = await startRegistry(t);
  const work = await tempDir(t);
  const root = join(work, 'root');
  const config = join(work, 'config');
  const fx = await writeSmallImage(join(work, 'layout'), 7, { layerCount: 2 });
  const src = `${reg.host}/m/app:1`;
  await skopeoPush(fx.ref, src);
  assert.equal((await runCli(['pull', '-q', src], { root, config })).code, 0);

  const r = await runCli(
    [
      'mutate',
      src,
      '--env',
      'A=1',
      '--env',
      'PATH=/opt/bin',
      '--entrypoint',
      '["/bin/app","--serve"]',
      '--cmd',
      '--port,80',
      '--workdir',
      '/srv',
      '--user',
      '1000:1000',
      '--label',
      'org.example=yes',
      '-t',
      `${reg.host}/m/app:2`,
    ],
    { root, config },
  );
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout.trim(), /^sha256:[a-f0-9]{64}$/);

  const before = await inspect(src, { root });
  const after = await inspect(`${reg.host}/m/app:2`, { root });
  assert.deepEqual(after.Manifest.layers, before.Manifest.layers);
  assert.deepEqual(after.Config.rootfs, before.Config.rootfs);
  const c = after.Config.config!;
  assert.ok(c.Env?.includes('A=1'));
  assert.ok(c.Env?.includes('PATH=/opt/bin'));
  assert.equal(c.Env?.filter((e) => e.startsWith('PATH=')).length, 1);
  assert.deepEqual(c.Entrypoint, ['/bin/app', '--serve']);
  assert.deepEqual(c.Cmd, ['--port', '80']);
  assert.equal(c.WorkingDir, '/srv');
  assert.equal(c.User, '1000:1000');
  assert.equal(c.Labels?.['org.example'], 'yes');

  const push = await runCli(['push', '-q', `${reg.host}/m/app:2`], { root, config });
  assert.equal(push.code, 0, push.stderr);

  const bad = await runCli(['mutate', src, '--cmd', '["unterminated'], { root, config });
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /--cmd: not a JSON array of strings/);
});
