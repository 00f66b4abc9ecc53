import assert from 'node:assert/strict';
import { mkdir, stat, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { tempDir } from '../../test/harness/tools.ts';
import { isDrayError } from '../errors.ts';
import { mkdirAllInRoot, readFileInRoot, resolveInRoot } from './root-path.ts';

test('resolveInRoot follows symlinks without leaving the root', async (t) => {
  const root = await tempDir(t, 'dray-rootpath-');
  await mkdir(join(root, 'a', 'b'), { recursive: true });
  await symlink('/a', join(root, 'abs'));
  await symlink('../../../../..', join(root, 'a', 'up'));
  await symlink('b', join(root, 'a', 'rel'));
  await symlink('/etc', join(root, 'a', 'b', 'etc'));

  assert.equal(await resolveInRoot(root, '/'), root);
  assert.equal(await resolveInRoot(root, '/abs/b'), join(root, 'a', 'b'));
  assert.equal(await resolveInRoot(root, 'abs/rel/x'), join(root, 'a', 'b', 'x'));
  assert.equal(await resolveInRoot(root, '/a/up/etc/passwd'), join(root, 'etc', 'passwd'));
  assert.equal(await resolveInRoot(root, '/../../etc'), join(root, 'etc'));
  assert.equal(await resolveInRoot(root, '/a/b/etc/passwd'), join(root, 'etc', 'passwd'));
  // Missing components are kept as written, `..` after them applied lexically.
  assert.equal(await resolveInRoot(root, '/a/missing/x/../y'), join(root, 'a', 'missing', 'y'));

  await symlink('loop2', join(root, 'loop1'));
  await symlink('loop1', join(root, 'loop2'));
  await assert.rejects(resolveInRoot(root, '/loop1/x'), (e) => isDrayError(e, 'DRAY_BUILD'));
});

test('readFileInRoot reads only regular files inside the root', async (t) => {
  const root = await tempDir(t, 'dray-rootpath-');
  await mkdir(join(root, 'etc'));
  await writeFile(join(root, 'etc', 'real'), 'inside\n');
  await symlink('/etc/real', join(root, 'etc', 'passwd'));
  assert.equal(await readFileInRoot(root, '/etc/passwd'), 'inside\n');
  assert.equal(await readFileInRoot(root, '/etc/nothing'), undefined);
  await mkdir(join(root, 'etc', 'dir'));
  await assert.rejects(readFileInRoot(root, '/etc/dir'), (e) => isDrayError(e, 'DRAY_BUILD'));
});

test('mkdirAllInRoot creates missing directories 0755 owned by the user, through in-root symlinks', async (t) => {
  const root = await tempDir(t, 'dray-rootpath-');
  await mkdir(join(root, 'srv'), { mode: 0o700 });
  await symlink('/srv', join(root, 'link'));
  await mkdirAllInRoot(root, '/link/app/data', 1234, 5678);
  const created = await stat(join(root, 'srv', 'app', 'data'));
  assert.equal(created.mode & 0o7777, 0o755);
  assert.equal(created.uid, 1234);
  assert.equal(created.gid, 5678);
  assert.equal((await stat(join(root, 'srv', 'app'))).uid, 1234);
  // Existing directories keep their owner and mode.
  const srv = await stat(join(root, 'srv'));
  assert.equal(srv.uid, 0);
  assert.equal(srv.mode & 0o7777, 0o700);

  await writeFile(join(root, 'file'), '');
  await assert.rejects(mkdirAllInRoot(root, '/file/x', 0, 0), (e) => isDrayError(e, 'DRAY_BUILD'));
});
