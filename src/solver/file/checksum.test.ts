import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmod, chown, cp, mkdir, readFile, rename, rm, symlink, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { type TestContext, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { tempDir } from '../../../test/harness/tools.ts';
import { isDrayError } from '../../errors.ts';
import type { CopyAction } from '../ops.ts';
import { ChecksumCache, changedPaths, checksumCopySources, checksumTree } from './index.ts';

async function context(t: TestContext): Promise<string> {
  const d = join(await tempDir(t), 'ctx');
  await mkdir(join(d, 'src/lib'), { recursive: true });
  await mkdir(join(d, 'node_modules/dep'), { recursive: true });
  await writeFile(join(d, 'src/main.ts'), 'main');
  await writeFile(join(d, 'src/lib/util.ts'), 'util');
  await writeFile(join(d, 'node_modules/dep/index.js'), 'dep');
  await writeFile(join(d, 'README.md'), 'readme');
  await symlink('src/main.ts', join(d, 'entry'));
  return d;
}

const copy = (src: string, extra: Partial<CopyAction> = {}): CopyAction => ({
  action: 'copy',
  input: 0,
  src,
  dest: '/app/',
  followSymlinks: true,
  dirCopyContents: true,
  allowWildcard: true,
  allowEmptyWildcard: true,
  ...extra,
});

test('checksumTree: content, names, types, modes and link targets count; owners, times and the root path do not', async (t) => {
  const d = await context(t);
  const base = await checksumTree({ root: d });
  assert.match(base, /^sha256:[0-9a-f]{64}$/);
  assert.equal(await checksumTree({ root: d }), base, 'deterministic');

  // Another place on disk, other owners, other times: same key.
  const other = join(await tempDir(t), 'elsewhere');
  await cp(d, other, { recursive: true, verbatimSymlinks: true });
  spawnSync('chown', ['-R', '-h', '4321:4321', other]);
  await utimes(join(other, 'src/main.ts'), 1, 1);
  spawnSync('touch', ['-h', join(other, 'entry')]);
  assert.equal(await checksumTree({ root: other }), base);

  const changes: [string, () => Promise<unknown>][] = [
    ['content', () => writeFile(join(other, 'src/main.ts'), 'main2')],
    ['mode', () => chmod(join(other, 'src/lib/util.ts'), 0o755)],
    ['directory mode', () => chmod(join(other, 'src/lib'), 0o700)],
    ['rename', () => rename(join(other, 'README.md'), join(other, 'README.txt'))],
    ['add', () => writeFile(join(other, 'new'), '')],
    ['remove', () => rm(join(other, 'src/lib/util.ts'))],
    [
      'link target',
      () => rm(join(other, 'entry')).then(() => symlink('src/lib/util.ts', join(other, 'entry'))),
    ],
    ['type', () => rm(join(other, 'entry')).then(() => writeFile(join(other, 'entry'), 'src/lib/util.ts'))],
    ['empty dir', () => mkdir(join(other, 'empty'))],
  ];
  const seen = new Set([base]);
  for (const [what, change] of changes) {
    await change();
    const sum = await checksumTree({ root: other });
    assert.equal(seen.has(sum), false, `${what} changes the checksum`);
    seen.add(sum);
  }
  // Ownership really is out of the key.
  const before = await checksumTree({ root: other });
  await chown(join(other, 'src/main.ts'), 1, 1);
  assert.equal(await checksumTree({ root: other }), before);
});

test('checksumTree: excluded paths do not count, re-included ones do', async (t) => {
  const d = await context(t);
  const tree = { root: d, exclude: ['node_modules', '*.md', '!node_modules/dep/index.js'] };
  const base = await checksumTree(tree);
  await writeFile(join(d, 'README.md'), 'changed');
  await mkdir(join(d, 'node_modules/other'));
  await writeFile(join(d, 'node_modules/other/x.js'), 'x');
  assert.equal(await checksumTree(tree), base, 'excluded changes are invisible');
  await writeFile(join(d, 'node_modules/dep/index.js'), 'changed');
  assert.notEqual(await checksumTree(tree), base, 're-included file counts');
  const m = await checksumTree(tree, { manifest: true });
  assert.deepEqual(Object.keys(m.files).sort(), [
    '/entry',
    '/node_modules',
    '/node_modules/dep',
    '/node_modules/dep/index.js',
    '/src',
    '/src/lib',
    '/src/lib/util.ts',
    '/src/main.ts',
  ]);
});

test('checksumCopySources: only what the copy reads, following its symlink and wildcard rules', async (t) => {
  const d = await context(t);
  const tree = { root: d };
  const src = await checksumCopySources(tree, copy('/src'));
  await writeFile(join(d, 'README.md'), 'elsewhere changed');
  assert.equal(await checksumCopySources(tree, copy('/src')), src, 'files outside the source do not count');
  // Through a symlink: the target's content under the link's name.
  const viaLink = await checksumCopySources(tree, copy('/entry'), { manifest: true });
  assert.deepEqual(Object.keys(viaLink.files), ['/entry']);
  const asLink = await checksumCopySources(tree, copy('/entry', { followSymlinks: false }));
  assert.notEqual(asLink, viaLink.digest, 'the link itself is not its target');
  // Wildcards: names of matches count.
  const wild = await checksumCopySources(tree, copy('/src/*.ts'), { manifest: true });
  assert.deepEqual(Object.keys(wild.files), ['/src/main.ts']);
  await writeFile(join(d, 'src/second.ts'), 'second');
  assert.notEqual(await checksumCopySources(tree, copy('/src/*.ts')), wild.digest);
  // The action's own patterns.
  const excl = copy('/src', { exclude: ['lib'] });
  const e1 = await checksumCopySources(tree, excl);
  await writeFile(join(d, 'src/lib/util.ts'), 'changed');
  assert.equal(await checksumCopySources(tree, excl), e1);
  // Missing sources.
  await assert.rejects(checksumCopySources(tree, copy('/missing')), (e: unknown) => {
    return isDrayError(e, 'DRAY_BUILD') && (e as Error).message === '"/missing": not found';
  });
  await assert.rejects(
    checksumCopySources(tree, copy('/nomatch*', { allowEmptyWildcard: false })),
    (e: unknown) => isDrayError(e, 'DRAY_BUILD'),
  );
  const empty = await checksumCopySources(tree, copy('/nomatch*'));
  assert.match(empty, /^sha256:/);
  // Excluded by the context's .dockerignore: not found.
  await assert.rejects(
    checksumCopySources({ root: d, exclude: ['src'] }, copy('/src/main.ts')),
    (e: unknown) => isDrayError(e, 'DRAY_BUILD'),
  );
});

test('changedPaths lists what differs between two manifests', async (t) => {
  const d = await context(t);
  const a = await checksumTree({ root: d }, { manifest: true });
  await writeFile(join(d, 'src/main.ts'), 'changed');
  await rm(join(d, 'README.md'));
  await writeFile(join(d, 'added'), '');
  const b = await checksumTree({ root: d }, { manifest: true });
  assert.deepEqual(changedPaths(a, b), ['/README.md', '/added', '/src/main.ts']);
  assert.deepEqual(changedPaths(a, a), []);
  assert.notEqual(a.digest, b.digest);
});

test('ChecksumCache: an unchanged file is not read again, across a save and a load', async (t) => {
  const d = await context(t);
  const cacheFile = join(await tempDir(t), 'cache', 'checksums.json');
  // Files changed within the racy window of the clock are not cached; let it pass.
  await sleep(120);
  const reads: string[] = [];
  const onReadFile = (p: string) => reads.push(p);

  const c1 = new ChecksumCache(cacheFile);
  await c1.load();
  const first = await checksumTree({ root: d }, { cache: c1, onReadFile });
  assert.equal(reads.length, 4, 'every file read once');
  await c1.save();

  const c2 = new ChecksumCache(cacheFile);
  await c2.load();
  assert.equal(c2.size, 4);
  reads.length = 0;
  assert.equal(await checksumTree({ root: d }, { cache: c2, onReadFile }), first);
  assert.deepEqual(reads, [], 'nothing read on the second run');
  assert.equal(c2.hits, 4);

  // A change (same size, mtime put back) is still seen: ctime moved.
  await writeFile(join(d, 'src/main.ts'), 'MAIN');
  await utimes(join(d, 'src/main.ts'), 1, 1);
  const again = await checksumTree({ root: d }, { cache: c2, onReadFile });
  assert.equal(reads.length, 1);
  assert.match(String(reads.at(-1)), /\/src\/main\.ts$/);
  assert.notEqual(again, first);
  assert.equal(await readFile(join(d, 'src/main.ts'), 'utf8'), 'MAIN');

  // A corrupt cache file is an empty cache, not an error.
  await writeFile(cacheFile, '{not json');
  const c3 = new ChecksumCache(cacheFile);
  await c3.load();
  assert.equal(c3.size, 0);
});
