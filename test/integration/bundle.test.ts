import assert from 'node:assert/strict';
import { mkdir, readFile, rm, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { sourceStamp, stampMatches } from '../../bin/source-stamp.js';
import { isCI, runCommand, tempDir } from '../harness/tools.ts';
import { drayBin, nodeBin, repoRoot } from './helpers.ts';

// The CLI bundle (scripts/bundle.ts, built by setup): bin/dray.js must run it only while it
// matches the sources, and it must do what the sources do, worker threads included.

test('the source stamp stops matching when a source file, a directory or the lock file changes', async (t) => {
  const repo = await tempDir(t, 'dray-stamp-');
  await mkdir(join(repo, 'src', 'a'), { recursive: true });
  await writeFile(join(repo, 'src', 'a', 'x.ts'), 'export const x = 1;\n');
  await writeFile(join(repo, 'src', 'a', 'x.test.ts'), '// tests do not count\n');
  await writeFile(join(repo, 'package-lock.json'), '{}');
  let stamp = sourceStamp(repo);
  assert.ok(stampMatches(repo, stamp));
  assert.equal(sourceStamp(repo), stamp, 'the same tree, the same stamp');
  await writeFile(join(repo, 'src', 'a', 'x.test.ts'), '// changed\n');
  assert.ok(stampMatches(repo, stamp), 'test files are not in the bundle');
  await utimes(join(repo, 'src', 'a', 'x.ts'), 1000, 1000);
  assert.ok(!stampMatches(repo, stamp), 'an edited file');
  stamp = sourceStamp(repo);
  await writeFile(join(repo, 'src', 'a', 'x.ts'), 'export const x = 22;\n');
  await utimes(join(repo, 'src', 'a', 'x.ts'), 1000, 1000);
  assert.ok(!stampMatches(repo, stamp), 'same mtime, other size');
  stamp = sourceStamp(repo);
  await writeFile(join(repo, 'src', 'a', 'y.ts'), 'export {};\n');
  assert.ok(!stampMatches(repo, stamp), 'a new file (its directory changed)');
  stamp = sourceStamp(repo);
  await mkdir(join(repo, 'src', 'b'));
  assert.ok(!stampMatches(repo, stamp), 'a new directory');
  stamp = sourceStamp(repo);
  await rm(join(repo, 'src', 'a', 'y.ts'));
  assert.ok(!stampMatches(repo, stamp), 'a removed file');
  stamp = sourceStamp(repo);
  await writeFile(join(repo, 'package-lock.json'), '{ }');
  assert.ok(!stampMatches(repo, stamp), 'the lock file');
  assert.ok(!stampMatches(repo, 'not json'), 'a damaged stamp');
  assert.ok(!stampMatches(repo, '{}'), 'an old-format stamp');
});

test('the bundle is fresh after setup and builds what the sources build', async (t) => {
  const stamp = await readFile(join(repoRoot, 'dist', 'stamp'), 'utf8').catch(() => undefined);
  if (stamp === undefined) {
    if (isCI()) assert.fail('dist/ is missing: scripts/setup.sh builds it (node scripts/bundle.ts)');
    t.skip('no dist/ (run node scripts/bundle.ts)');
    return;
  }
  assert.ok(stampMatches(repoRoot, stamp), 'dist/ was built from these sources');
  const work = await tempDir(t, 'dray-bundle-');
  const ctx = join(work, 'ctx');
  await mkdir(join(ctx, 'many'), { recursive: true });
  // Enough files that the copy runs on the file workers (a bundle of their own).
  for (let i = 0; i < 700; i++) await writeFile(join(ctx, 'many', `f${i}.txt`), `file ${i}\n`);
  await writeFile(join(ctx, 'Dockerfile'), 'FROM scratch\nCOPY many /many\n');
  const ids: string[] = [];
  for (const fromSource of ['0', '1']) {
    const root = join(work, `root-${fromSource}`);
    const out = join(work, `out-${fromSource}`);
    const r = await runCommand(nodeBin, [drayBin, 'build', '-q', '-o', `type=local,dest=${out}`, ctx], {
      env: {
        ...process.env,
        DRAY_ROOT: root,
        DOCKER_CONFIG: join(work, 'config'),
        DRAY_FROM_SOURCE: fromSource,
        SOURCE_DATE_EPOCH: '1700000000',
      },
      timeoutMs: 120_000,
    });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(await readFile(join(out, 'many', 'f699.txt'), 'utf8'), 'file 699\n');
    const v = await runCommand(nodeBin, [drayBin, '--version'], {
      env: { ...process.env, DRAY_FROM_SOURCE: fromSource },
    });
    ids.push(v.stdout.trim());
  }
  assert.equal(ids[0], ids[1]);
});
