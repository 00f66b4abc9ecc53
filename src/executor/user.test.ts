import assert from 'node:assert/strict';
import { mkdir, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { type TestContext, test } from 'node:test';
import { tempDir } from '../../test/harness/tools.ts';
import { isDrayError } from '../errors.ts';
import { resolveChown, resolveUser } from './index.ts';
import { parseGroup, parsePasswd } from './user.ts';

const passwd = [
  'root:x:0:0:root:/root:/bin/sh',
  'daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin',
  '  app:x:1000:1001:App:/home/app:/bin/sh  ',
  '',
  'nohome:x:1002:1002:::/bin/sh',
  'dup:x:1000:5::/home/dup:/bin/sh',
  'bad:x:abc:7::/bad:/bin/sh',
].join('\n');

const group = [
  'root:x:0:root',
  '# a comment line',
  'daemon:x:1:',
  'wheel:x:10:root,app',
  'appgrp:x:1001:',
  'docker:x:999:app,other',
  'staff:x:50:nohome',
].join('\n');

async function fixture(t: TestContext, files: { passwd?: string; group?: string } = { passwd, group }) {
  const root = await tempDir(t, 'dray-user-');
  await mkdir(join(root, 'etc'));
  if (files.passwd !== undefined) await writeFile(join(root, 'etc', 'passwd'), files.passwd);
  if (files.group !== undefined) await writeFile(join(root, 'etc', 'group'), files.group);
  return root;
}

function code(c: string, msg?: RegExp) {
  return (e: unknown) => {
    assert.ok(isDrayError(e, c as never), `expected ${c}, got ${String(e)}`);
    if (msg) assert.match((e as Error).message, msg);
    return true;
  };
}

test('parsePasswd and parseGroup follow moby/sys/user', () => {
  const users = parsePasswd(passwd);
  assert.deepEqual(users[2], { name: 'app', uid: 1000, gid: 1001, home: '/home/app' });
  assert.equal(users.find((u) => u.name === 'bad')?.uid, 0, 'unparsable numbers read as 0');
  assert.equal(users.length, 6);
  const groups = parseGroup(group);
  assert.equal(groups.length, 6, 'comments skipped');
  assert.deepEqual(groups.find((g) => g.name === 'daemon')?.members, []);
  assert.deepEqual(groups.find((g) => g.name === 'docker')?.members, ['app', 'other']);
});

test('resolveUser: default is root with the groups listing root', async (t) => {
  const root = await fixture(t);
  assert.deepEqual(await resolveUser(root, undefined), {
    uid: 0,
    gid: 0,
    additionalGids: [0, 10],
    home: '/root',
  });
  assert.deepEqual(await resolveUser(root, ''), { uid: 0, gid: 0, additionalGids: [0, 10], home: '/root' });
  assert.deepEqual(await resolveUser(root, 'root'), {
    uid: 0,
    gid: 0,
    additionalGids: [0, 10],
    home: '/root',
  });
});

test('resolveUser: a name gives uid, primary gid, home and supplementary groups', async (t) => {
  const root = await fixture(t);
  assert.deepEqual(await resolveUser(root, 'app'), {
    uid: 1000,
    gid: 1001,
    additionalGids: [10, 999],
    home: '/home/app',
  });
  // Empty home field: `/`.
  assert.deepEqual(await resolveUser(root, 'nohome'), {
    uid: 1002,
    gid: 1002,
    additionalGids: [50],
    home: '/',
  });
});

test('resolveUser: a uid is looked up (first entry wins) but need not exist', async (t) => {
  const root = await fixture(t);
  assert.deepEqual(await resolveUser(root, '1000'), {
    uid: 1000,
    gid: 1001,
    additionalGids: [10, 999],
    home: '/home/app',
  });
  assert.deepEqual(await resolveUser(root, '4242'), { uid: 4242, gid: 0, additionalGids: [], home: '/' });
});

test('resolveUser: name:group and uid:groupname set the gid and drop supplementary groups', async (t) => {
  const root = await fixture(t);
  assert.deepEqual(await resolveUser(root, 'app:docker'), {
    uid: 1000,
    gid: 999,
    additionalGids: [],
    home: '/home/app',
  });
  assert.deepEqual(await resolveUser(root, 'app:77'), {
    uid: 1000,
    gid: 77,
    additionalGids: [],
    home: '/home/app',
  });
  assert.deepEqual(await resolveUser(root, '4242:wheel'), {
    uid: 4242,
    gid: 10,
    additionalGids: [],
    home: '/',
  });
});

test('resolveUser: uid:gid needs no files and gets no supplementary groups', async (t) => {
  const root = await fixture(t);
  assert.deepEqual(await resolveUser(root, '1000:5'), {
    uid: 1000,
    gid: 5,
    additionalGids: [],
    home: '/home/app',
  });
  assert.deepEqual(await resolveUser(root, '4242:4343'), {
    uid: 4242,
    gid: 4343,
    additionalGids: [],
    home: '/',
  });
  assert.deepEqual(await resolveUser(root, 'root:root'), {
    uid: 0,
    gid: 0,
    additionalGids: [],
    home: '/root',
  });
  const empty = await fixture(t, {});
  assert.deepEqual(await resolveUser(empty, '7:8'), { uid: 7, gid: 8, additionalGids: [], home: '/' });
});

test('resolveUser: unknown names fail with BuildKit wording', async (t) => {
  const root = await fixture(t);
  await assert.rejects(
    resolveUser(root, 'nobody2'),
    code('DRAY_BUILD', /^unable to find user nobody2: no matching entries in passwd file$/),
  );
  await assert.rejects(
    resolveUser(root, 'app:nogroup'),
    code('DRAY_BUILD', /^unable to find group nogroup: no matching entries in group file$/),
  );
  await assert.rejects(
    resolveUser(root, '99999999999'),
    code('DRAY_BUILD', /uids and gids must be in range/),
  );
  // No passwd at all: names fail, numbers work.
  const empty = await fixture(t, {});
  await assert.rejects(resolveUser(empty, 'app'), code('DRAY_BUILD', /unable to find user app/));
  assert.deepEqual(await resolveUser(empty, '12'), { uid: 12, gid: 0, additionalGids: [], home: '/' });
  assert.deepEqual(await resolveUser(empty, undefined), { uid: 0, gid: 0, additionalGids: [], home: '/' });
});

test('resolveUser: a symlinked /etc/passwd is resolved inside the rootfs, never on the host', async (t) => {
  const outside = await tempDir(t, 'dray-outside-');
  await writeFile(join(outside, 'passwd'), 'escapee:x:4242:4242::/home/escapee:/bin/sh\n');
  await writeFile(join(outside, 'group'), 'escgrp:x:4343:escapee\n');

  // Absolute target: means <rootfs>/<outside>/passwd, which does not exist.
  const abs = await fixture(t, {});
  await symlink(join(outside, 'passwd'), join(abs, 'etc', 'passwd'));
  await symlink(join(outside, 'group'), join(abs, 'etc', 'group'));
  await assert.rejects(resolveUser(abs, 'escapee'), code('DRAY_BUILD', /unable to find user escapee/));
  await assert.rejects(resolveUser(abs, '0:escgrp'), code('DRAY_BUILD', /unable to find group escgrp/));

  // Relative target climbing out: `..` stops at the rootfs.
  const rel = await fixture(t, {});
  await symlink(`../../../../../../../..${outside}/passwd`, join(rel, 'etc', 'passwd'));
  await assert.rejects(resolveUser(rel, 'escapee'), code('DRAY_BUILD', /unable to find user escapee/));

  // The same absolute target does work when it exists inside the rootfs.
  await mkdir(join(abs, outside), { recursive: true });
  await writeFile(join(abs, outside, 'passwd'), 'inside:x:77:78::/in:/bin/sh\n');
  assert.deepEqual(await resolveUser(abs, 'inside'), { uid: 77, gid: 78, additionalGids: [], home: '/in' });
  await assert.rejects(resolveUser(abs, 'escapee'), code('DRAY_BUILD', /unable to find user escapee/));

  // A symlink loop is "no file", not a hang.
  const loop = await fixture(t, {});
  await symlink('/etc/passwd', join(loop, 'etc', 'passwd'));
  await assert.rejects(resolveUser(loop, 'root'), code('DRAY_BUILD', /unable to find user root/));
});

test('resolveChown: numbers and root', async (t) => {
  const root = await fixture(t);
  assert.deepEqual(await resolveChown(root, '1234'), { uid: 1234, gid: 1234 });
  assert.deepEqual(await resolveChown(root, '1234', '55'), { uid: 1234, gid: 55 });
  assert.deepEqual(await resolveChown(root, 'root'), { uid: 0, gid: 0 });
  assert.deepEqual(await resolveChown(root, '1000', 'root'), { uid: 1000, gid: 0 });
  await assert.rejects(resolveChown(root, '-1'), code('DRAY_BUILD', /invalid chown id -1/));
});

test('resolveChown: a user name takes its passwd uid and primary gid, a group name its gid', async (t) => {
  const root = await fixture(t);
  assert.deepEqual(await resolveChown(root, 'app'), { uid: 1000, gid: 1001 });
  assert.deepEqual(await resolveChown(root, 'app', 'docker'), { uid: 1000, gid: 999 });
  assert.deepEqual(await resolveChown(root, 'app', '3'), { uid: 1000, gid: 3 });
  assert.deepEqual(await resolveChown(root, '42', 'wheel'), { uid: 42, gid: 10 });
});

test('resolveChown: unknown names fall back silently, as BuildKit', async (t) => {
  const root = await fixture(t);
  assert.deepEqual(await resolveChown(root, 'nosuch'), { uid: 0, gid: 0 });
  assert.deepEqual(await resolveChown(root, 'app', 'nosuch'), { uid: 1000, gid: 1001 });
  assert.deepEqual(await resolveChown(root, '42', 'nosuch'), { uid: 42, gid: 42 });
  // `user:` (empty group) is gid 0 in BuildKit (moby/buildkit#3555).
  assert.deepEqual(await resolveChown(root, 'app', ''), { uid: 1000, gid: 0 });
  // `:group`
  assert.deepEqual(await resolveChown(root, '', 'docker'), { uid: 0, gid: 999 });
  const empty = await fixture(t, {});
  assert.deepEqual(await resolveChown(empty, 'app', 'docker'), { uid: 0, gid: 0 });
});

test('resolveChown: unreadable user database fails; symlinks stay inside the rootfs', async (t) => {
  const root = await fixture(t, { group });
  await mkdir(join(root, 'etc', 'passwd'));
  await assert.rejects(resolveChown(root, 'app'), code('DRAY_BUILD', /not a regular file/));

  const outside = await tempDir(t, 'dray-outside-');
  await writeFile(join(outside, 'passwd'), 'escapee:x:4242:4242::/home/escapee:/bin/sh\n');
  const esc = await fixture(t, {});
  await symlink(join(outside, 'passwd'), join(esc, 'etc', 'passwd'));
  assert.deepEqual(await resolveChown(esc, 'escapee'), { uid: 0, gid: 0 });
});
