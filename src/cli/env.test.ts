// Where the CLI finds its data root, config dir and insecure registries.
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { configuredInsecureRegistries, defaultConfigDir, defaultRoot, resolveEnvironment } from './env.ts';

async function dir(t: { after(fn: () => Promise<void>): void }): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'dray-env-'));
  t.after(() => rm(d, { recursive: true, force: true }));
  return d;
}

test('data root: --root, then DRAY_ROOT, then $XDG_DATA_HOME/dray, then ~/.local/share/dray', () => {
  assert.equal(defaultRoot({ DRAY_ROOT: '/r', XDG_DATA_HOME: '/x' }), '/r');
  assert.equal(defaultRoot({ XDG_DATA_HOME: '/x' }), '/x/dray');
  assert.equal(defaultRoot({ XDG_DATA_HOME: '' }), join(homedir(), '.local', 'share', 'dray'));
  assert.equal(defaultRoot({}), join(homedir(), '.local', 'share', 'dray'));
  assert.equal(resolveEnvironment({ root: '/flag' }, { DRAY_ROOT: '/r' }, false).root, '/flag');
  assert.equal(resolveEnvironment({}, { DRAY_ROOT: '/r' }, false).root, '/r');
});

test('config dir: --config, then DOCKER_CONFIG, then ~/.docker', () => {
  assert.equal(defaultConfigDir({ DOCKER_CONFIG: '/c' }), '/c');
  assert.equal(defaultConfigDir({}), join(homedir(), '.docker'));
  assert.equal(resolveEnvironment({ config: '/flag' }, { DOCKER_CONFIG: '/c' }, false).configDir, '/flag');
  assert.equal(resolveEnvironment({}, { DOCKER_CONFIG: '/c' }, false).configDir, '/c');
});

test('insecure registries: flags first, then dray.json of the config dir in use', async (t) => {
  const config = await dir(t);
  assert.deepEqual(configuredInsecureRegistries(config), [], 'no dray.json: none');
  await writeFile(
    join(config, 'dray.json'),
    JSON.stringify({ 'insecure-registries': ['a.example:5000', 7, 'b.example'], other: true }),
  );
  assert.deepEqual(
    configuredInsecureRegistries(config),
    ['a.example:5000', 'b.example'],
    'non-strings ignored',
  );
  const env = resolveEnvironment({ insecureRegistry: ['flag.example'] }, { DOCKER_CONFIG: config }, true);
  assert.deepEqual(env.insecureRegistries, ['flag.example', 'a.example:5000', 'b.example']);
  assert.equal(env.isTTY, true);

  // --config wins over DOCKER_CONFIG for dray.json too.
  const other = await dir(t);
  assert.deepEqual(
    resolveEnvironment({ config: other }, { DOCKER_CONFIG: config }, false).insecureRegistries,
    [],
  );
});

test('insecure registries: a malformed dray.json counts as none', async (t) => {
  const config = await dir(t);
  await writeFile(join(config, 'dray.json'), '{not json');
  assert.deepEqual(configuredInsecureRegistries(config), []);
  await writeFile(join(config, 'dray.json'), JSON.stringify({ 'insecure-registries': 'a.example' }));
  assert.deepEqual(configuredInsecureRegistries(config), []);
  await rm(join(config, 'dray.json'));
  await mkdir(join(config, 'dray.json'));
  assert.deepEqual(configuredInsecureRegistries(config), []);
});
