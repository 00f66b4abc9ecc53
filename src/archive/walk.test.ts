import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdir, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { requireTool, tempDir } from '../../test/harness/tools.ts';
import { isDrayError } from '../errors.ts';
import { deviceNumbers, readDirSorted, readXattrs, walkTree } from './walk.ts';

test('walkTree: parents first, siblings by name bytes, symlinks not followed', async (t) => {
  const tmp = await tempDir(t);
  await mkdir(join(tmp, 'a/b'), { recursive: true });
  await writeFile(join(tmp, 'a-b'), '');
  await writeFile(join(tmp, 'B'), '');
  await writeFile(join(tmp, 'é'), '');
  await writeFile(join(tmp, 'a/b/c'), 'xyz');
  await symlink('/etc', join(tmp, 'link'));
  const names: string[] = [];
  for await (const e of walkTree(tmp, { xattrs: false })) names.push(e.name);
  assert.deepEqual(names, ['B', 'a', 'a/b', 'a/b/c', 'a-b', 'link', 'é']);
  assert.deepEqual(await readDirSorted(tmp), ['B', 'a', 'a-b', 'link', 'é']);
});

test('readXattrs: binary values and names that getfattr must quote come back intact', async (t) => {
  if (!requireTool(t, 'getfattr', 'setfattr')) return;
  const tmp = await tempDir(t);
  const odd = join(tmp, 'sp ace\nnl\\bs-ü');
  await writeFile(odd, '');
  const value = Buffer.from([0, 1, 2, 255, 10, 92]);
  const r = spawnSync('setfattr', ['-n', 'user.bin', '-v', `0s${value.toString('base64')}`, odd]);
  assert.equal(r.status, 0, String(r.stderr));
  spawnSync('setfattr', ['-n', 'user.empty', odd]);
  const x = await readXattrs([tmp], { recursive: true });
  assert.deepEqual(x.get(odd)?.get('user.bin'), value);
  assert.deepEqual(x.get(odd)?.get('user.empty'), Buffer.alloc(0));
  const seen: string[] = [];
  for await (const e of walkTree(tmp)) if (e.xattrs) seen.push(e.name);
  assert.deepEqual(seen, ['sp ace\nnl\\bs-ü']);
});

test('readXattrs: a missing path fails with DRAY_INVALID_ARGUMENT', async (t) => {
  if (!requireTool(t, 'getfattr')) return;
  await assert.rejects(readXattrs(['/nonexistent-dray-path']), (e: unknown) =>
    isDrayError(e, 'DRAY_INVALID_ARGUMENT'),
  );
});

test('deviceNumbers: glibc major/minor encoding', () => {
  assert.deepEqual(deviceNumbers(0x0103n), { major: 1, minor: 3 }); // /dev/null
  // glibc makedev(0x12345, 0xabcde)
  const makedev = (ma: bigint, mi: bigint) =>
    ((ma & 0xfffn) << 8n) | ((ma & ~0xfffn) << 32n) | (mi & 0xffn) | ((mi & ~0xffn) << 12n);
  assert.deepEqual(deviceNumbers(makedev(0x12345n, 0xabcden)), { major: 0x12345, minor: 0xabcde });
});
