import assert from 'node:assert/strict';
import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { startDockerd } from '../harness/docker-engine.ts';
import { startRegistry } from '../harness/registry.ts';
import { requireTool, runCommand, tempDir } from '../harness/tools.ts';
import { runCli } from './helpers.ts';

// Where `dray build` puts its result: -o local/tar/oci/docker, --push to a registry, and
// --load into a real Docker engine.

const hello = fileURLToPath(new URL('../../examples/hello/', import.meta.url));

test('dray build outputs', async (t) => {
  if (!requireTool(t, 'docker-registry', 'dockerd', 'docker', 'skopeo', 'tar')) return;
  const root = await tempDir(t, 'dray-root-');
  const config = await tempDir(t, 'dray-config-');
  const out = await tempDir(t, 'dray-out-');
  const cli = (args: string[], env?: NodeJS.ProcessEnv) =>
    runCli(args, { root, config, ...(env ? { env } : {}) });

  await t.test('-o type=local and a plain directory', async () => {
    const r = await cli(['build', '-q', '-o', `type=local,dest=${join(out, 'local')}`, hello]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(
      await readFile(join(out, 'local', 'greeting.txt'), 'utf8'),
      'Hello from an image dray built!\n',
    );
    const r2 = await cli(['build', '-q', '-o', join(out, 'plain'), hello]);
    assert.equal(r2.code, 0, r2.stderr);
    assert.ok((await stat(join(out, 'plain', 'greeting.txt'))).isFile());
  });

  await t.test('-o type=tar, type=oci (skopeo reads it), type=docker', async () => {
    assert.equal((await cli(['build', '-q', '-o', `type=tar,dest=${join(out, 'fs.tar')}`, hello])).code, 0);
    const list = await runCommand('tar', ['-tf', join(out, 'fs.tar')]);
    assert.match(list.stdout, /greeting\.txt/);
    const oci = await cli([
      'build',
      '-q',
      '-o',
      `type=oci,dest=${join(out, 'img.oci.tar')},name=hello:oci`,
      hello,
    ]);
    assert.equal(oci.code, 0, oci.stderr);
    const inspect = await runCommand('skopeo', ['inspect', `oci-archive:${join(out, 'img.oci.tar')}`]);
    assert.equal(inspect.code, 0, inspect.stderr);
    assert.match(inspect.stdout, /"Layers"/);
    const docker = await cli([
      'build',
      '-q',
      '-o',
      `type=docker,dest=${join(out, 'img.docker.tar')},name=hello:d`,
      hello,
    ]);
    assert.equal(docker.code, 0, docker.stderr);
    assert.match((await runCommand('tar', ['-tf', join(out, 'img.docker.tar')])).stdout, /manifest\.json/);
    // Nothing was stored in the image store by archive outputs.
    assert.equal((await cli(['images', '-q'])).stdout.trim(), '');
    assert.deepEqual((await readdir(out)).sort(), [
      'fs.tar',
      'img.docker.tar',
      'img.oci.tar',
      'local',
      'plain',
    ]);
  });

  await t.test('--push to a registry', async () => {
    const reg = await startRegistry(t);
    const name = `${reg.host}/built/hello:1`;
    const r = await cli(['build', '--push', '-t', name, hello]);
    assert.equal(r.code, 0, r.stderr);
    const res = await fetch(`${reg.url}/v2/built/hello/manifests/1`, {
      headers: { accept: 'application/vnd.oci.image.manifest.v1+json' },
    });
    assert.equal(res.status, 200);
  });

  await t.test('--load into a Docker engine', async () => {
    const engine = await startDockerd(t);
    const r = await cli(['build', '--load', '-t', 'loaded/hello:1', hello], { DOCKER_HOST: engine.host });
    assert.equal(r.code, 0, r.stderr);
    const inspect = await engine.docker(['image', 'inspect', '-f', '{{json .Config.Cmd}}', 'loaded/hello:1']);
    assert.equal(inspect.code, 0, inspect.stderr);
    assert.equal(inspect.stdout.trim(), '["/greeting.txt"]');
    const bad = await cli(['build', '--load', '-t', 'x', hello], {
      DOCKER_HOST: 'unix:///nonexistent/docker.sock',
    });
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /cannot reach the Docker engine/);
  });
});
