// The published package: `npm pack` (its prepack bundles the CLI and the library and emits
// declarations), then `npm install` of the tarball into an empty project — offline, from the
// npm cache that setup's install filled — must give a working `dray` command, a library that
// imports and runs (worker threads included) and types a TypeScript consumer compiles with.
import assert from 'node:assert/strict';
import { cp, mkdir, readFile, symlink, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { requireTool, runChecked, tempDir } from '../harness/tools.ts';
import { nodeBin, repoRoot } from './helpers.ts';

test('npm pack + offline npm install give a working CLI, library and types', async (t) => {
  if (!requireTool(t, 'npm', 'tar')) return;
  const work = await tempDir(t, 'dray-pack-');
  // Packed from a copy: prepack rebuilds dist/, which other tests are running meanwhile.
  const src = join(work, 'src-copy');
  await mkdir(src);
  for (const f of [
    'src',
    'bin',
    'scripts',
    'docs',
    'package.json',
    'package-lock.json',
    'README.md',
    'tsconfig.json',
    'tsconfig.build.json',
  ])
    await cp(join(repoRoot, f), join(src, f), { recursive: true });
  await symlink(join(repoRoot, 'node_modules'), join(src, 'node_modules'));
  const path = `${dirname(nodeBin)}:${join(repoRoot, 'node_modules', '.bin')}:${process.env.PATH ?? ''}`;
  const env = { PATH: path, npm_config_loglevel: 'error', npm_config_update_notifier: 'false' };
  await runChecked('npm', ['pack', '--pack-destination', work], { cwd: src, env, timeoutMs: 180_000 });
  const { version } = JSON.parse(await readFile(join(repoRoot, 'package.json'), 'utf8')) as {
    version: string;
  };
  const tgz = join(work, `dray-${version}.tgz`);
  const listing = (await runChecked('tar', ['-tzf', tgz])).stdout;
  assert.match(listing, /package\/dist\/index\.mjs/);
  assert.match(listing, /package\/dist\/types\/index\.d\.ts/);
  assert.doesNotMatch(listing, /package\/src\//, 'sources are not published');

  const app = join(work, 'app');
  await mkdir(app);
  await writeFile(
    join(app, 'package.json'),
    '{"name":"app","version":"1.0.0","type":"module","private":true}',
  );
  await runChecked('npm', ['install', '--offline', '--no-audit', '--no-fund', tgz], { cwd: app, env });

  // the command
  const dray = join(app, 'node_modules', '.bin', 'dray');
  assert.equal((await runChecked(dray, ['--version'], { env })).stdout.trim(), version);

  // the library, with worker threads: gzip of the layer, and 300 small files take the unpack
  // worker (dist/apply-worker.mjs)
  const tree = join(work, 'tree');
  await mkdir(join(tree, 'many'), { recursive: true });
  for (let i = 0; i < 300; i++) await writeFile(join(tree, 'many', `f${i}`), `file ${i}\n`);
  const layer = join(work, 'layer.tar');
  await runChecked('tar', ['-cf', layer, '-C', tree, '.']);
  const script = `
    import { readFileSync, readdirSync } from 'node:fs';
    import { append, parseReference, unpack } from 'dray';
    const root = ${JSON.stringify(join(work, 'root'))};
    const out = ${JSON.stringify(join(work, 'out'))};
    await append('scratch', [${JSON.stringify(layer)}], { root, tag: 'local/many:1' });
    await unpack('local/many:1', out, { root });
    console.log(parseReference('busybox').path, readdirSync(out + '/many').length, readFileSync(out + '/many/f299', 'utf8').trim());
  `;
  const run = await runChecked(nodeBin, ['--input-type=module', '-e', script], { cwd: app, env });
  assert.equal(run.stdout.trim(), 'library/busybox 300 file 299');

  // the types
  await writeFile(
    join(app, 'use.ts'),
    "import { type ImageConfig, parseReference } from 'dray';\nconst domain: string = parseReference('busybox').domain;\nconst config: ImageConfig | undefined = undefined;\nexport { config, domain };\n",
  );
  await writeFile(
    join(app, 'tsconfig.json'),
    JSON.stringify({
      compilerOptions: {
        module: 'nodenext',
        moduleResolution: 'nodenext',
        target: 'es2024',
        strict: true,
        noEmit: true,
        typeRoots: [join(repoRoot, 'node_modules', '@types')],
        types: ['node'],
      },
      files: ['use.ts'],
    }),
  );
  await runChecked(join(repoRoot, 'node_modules', '.bin', 'tsc'), ['-p', '.'], { cwd: app, env });
});
