import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, lstat, mkdir, readFile, readlink, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { type TestContext, test } from 'node:test';
import { requireTool, tempDir } from '../../../test/harness/tools.ts';
import { isDrayError } from '../../errors.ts';
import type { FileAction } from '../ops.ts';
import { applyFileActions } from './index.ts';

async function root(t: TestContext): Promise<string> {
  const d = join(await tempDir(t), 'root');
  await mkdir(d);
  return d;
}

const run = (dst: string, actions: FileAction[], src = dst) =>
  applyFileActions(dst, actions, () => ({ root: src }));
const buildError = (re: RegExp) => (e: unknown) =>
  isDrayError(e, 'DRAY_BUILD') && re.test((e as Error).message);

test('mkdir: parents, mode, owner, timestamp; an existing directory is fine', async (t) => {
  const d = await root(t);
  await run(d, [
    {
      action: 'mkdir',
      path: '/a/b/c',
      mode: 0o750,
      makeParents: true,
      chown: { user: '7', group: '8' },
      mtime: 1234567890,
    },
    { action: 'mkdir', path: '/single', mode: 0o711 },
    { action: 'mkdir', path: '/single', mode: 0o700 },
    { action: 'mkdir', path: '/a/b/c', mode: 0o700, makeParents: true },
  ]);
  for (const p of ['a', 'a/b', 'a/b/c']) {
    const s = await lstat(join(d, p));
    assert.equal(s.mode & 0o7777, 0o750, p);
    assert.deepEqual([s.uid, s.gid], [7, 8]);
  }
  // As in BuildKit, each directory gets the time when made; making the next one moves its parent's.
  assert.equal((await lstat(join(d, 'a/b/c'))).mtimeMs, 1234567890000);
  assert.equal((await lstat(join(d, 'single'))).mode & 0o7777, 0o711, 'existing: left alone');
  await assert.rejects(
    run(d, [{ action: 'mkdir', path: '/x/y', mode: 0o755 }]),
    buildError(/mkdir \/x\/y: no such file/),
  );
  await assert.rejects(
    run(d, [
      { action: 'mkfile', path: '/file', mode: 0o644, data: '' },
      { action: 'mkdir', path: '/file/sub', mode: 0o755, makeParents: true },
    ]),
    buildError(/not a directory/),
  );
});

test('mkfile: data and mode; an existing file is truncated and keeps its mode; owner and timestamp', async (t) => {
  const d = await root(t);
  await writeFile(join(d, 'old'), 'previous content');
  await chmod(join(d, 'old'), 0o600);
  await run(d, [
    { action: 'mkfile', path: '/new', mode: 0o640, data: 'héllo', chown: { user: '1000' }, mtime: 1000 },
    { action: 'mkfile', path: 'old', mode: 0o777, data: 'x' },
  ]);
  const s = await lstat(join(d, 'new'));
  assert.equal(await readFile(join(d, 'new'), 'utf8'), 'héllo');
  assert.equal(s.mode & 0o7777, 0o640);
  assert.deepEqual([s.uid, s.gid], [1000, 1000]);
  assert.equal(s.mtimeMs, 1_000_000);
  assert.equal(await readFile(join(d, 'old'), 'utf8'), 'x');
  assert.equal((await lstat(join(d, 'old'))).mode & 0o7777, 0o600);
  // Through a symlink to the host: lands inside the root.
  await symlink('/etc/dray-mkfile-test', join(d, 'lnk'));
  await mkdir(join(d, 'etc'));
  await run(d, [{ action: 'mkfile', path: '/lnk', mode: 0o644, data: 'in root' }]);
  assert.equal(await readFile(join(d, 'etc/dray-mkfile-test'), 'utf8'), 'in root');
  assert.equal(existsSync('/etc/dray-mkfile-test'), false);
});

test('rm: files, trees, wildcards, missing paths; a symlink is removed, not followed', async (t) => {
  const d = await root(t);
  const outside = await tempDir(t);
  await writeFile(join(outside, 'keep'), 'keep');
  await mkdir(join(d, 'tree/sub'), { recursive: true });
  await writeFile(join(d, 'tree/sub/f'), 'f');
  await writeFile(join(d, 'a.log'), '');
  await writeFile(join(d, 'b.log'), '');
  await writeFile(join(d, 'c.txt'), '');
  await symlink(outside, join(d, 'link'));
  await run(d, [
    { action: 'rm', path: '/tree' },
    { action: 'rm', path: '/*.log', allowWildcard: true },
    { action: 'rm', path: '/link' },
    { action: 'rm', path: '/missing', allowNotFound: true },
  ]);
  assert.equal(existsSync(join(d, 'tree')), false);
  assert.equal(existsSync(join(d, 'a.log')), false);
  assert.equal(existsSync(join(d, 'b.log')), false);
  assert.equal(existsSync(join(d, 'c.txt')), true);
  assert.equal(existsSync(join(d, 'link')), false);
  assert.equal(await readFile(join(outside, 'keep'), 'utf8'), 'keep');
  await assert.rejects(
    run(d, [{ action: 'rm', path: '/missing' }]),
    buildError(/stat \/missing: no such file/),
  );
  await assert.rejects(run(d, [{ action: 'rm', path: '/' }]), buildError(/invalid empty path/));
  // A parent symlink to the host resolves inside the root: nothing outside is removed.
  await symlink(outside, join(d, 'out'));
  await run(d, [{ action: 'rm', path: '/out/keep', allowNotFound: true }]);
  assert.equal(await readFile(join(outside, 'keep'), 'utf8'), 'keep');
});

test('symlink: the target is stored as given; owner and timestamp; an existing path fails', async (t) => {
  const d = await root(t);
  await mkdir(join(d, 'dir'));
  await run(d, [
    {
      action: 'symlink',
      target: '../etc/../x',
      path: '/dir/l',
      chown: { user: '5', group: '6' },
      mtime: 2000,
    },
  ]);
  const s = await lstat(join(d, 'dir/l'));
  assert.equal(await readlink(join(d, 'dir/l')), '../etc/../x');
  assert.deepEqual([s.uid, s.gid], [5, 6]);
  assert.equal(s.mtimeMs, 2_000_000);
  await writeFile(join(d, 'dir/file'), '');
  await assert.rejects(
    run(d, [{ action: 'symlink', target: 'y', path: '/dir/file' }]),
    buildError(/file exists/),
  );
  // Like BuildKit, the link's own path is resolved through an existing symlink (inside the root).
  await run(d, [{ action: 'symlink', target: 'z', path: '/dir/l' }]);
  assert.equal(await readlink(join(d, 'x')), 'z');
});

test('actions apply in order, each seeing the previous ones', async (t) => {
  const d = await root(t);
  const src = await tempDir(t);
  await writeFile(join(src, 'f'), 'from context');
  await applyFileActions(
    d,
    [
      { action: 'mkdir', path: '/app', mode: 0o755, makeParents: true },
      { action: 'copy', input: 0, src: '/f', dest: '/app/' },
      { action: 'mkfile', path: '/app/g', mode: 0o644, data: 'g' },
      { action: 'rm', path: '/app/f' },
      { action: 'symlink', target: 'g', path: '/app/h' },
    ],
    () => ({ root: src }),
  );
  assert.equal(existsSync(join(d, 'app/f')), false);
  assert.equal(await readFile(join(d, 'app/h'), 'utf8'), 'g');
  const ac = new AbortController();
  ac.abort();
  await assert.rejects(
    applyFileActions(d, [{ action: 'mkdir', path: '/z', mode: 0o755 }], () => ({ root: src }), {
      signal: ac.signal,
    }),
    (e: unknown) => isDrayError(e, 'DRAY_ABORTED'),
  );
});

/** Makes an archive of `dir` with GNU tar, as `<name>`, compressed by `flag` (-z, -j, -J or none). */
function tar(dir: string, out: string, flag: string | undefined, extra: string[] = []): void {
  const args = ['-c', '-f', out, '--numeric-owner', '--owner=1000', '--group=1001', ...extra, '-C', dir, '.'];
  if (flag) args.unshift(flag);
  const r = spawnSync('tar', args);
  assert.equal(r.status, 0, String(r.stderr));
}

test('ADD of local archives: gzip, bzip2, xz and plain tars are extracted; other files are copied', async (t) => {
  if (!requireTool(t, 'tar', 'gzip', 'bzip2', 'xz')) return;
  const base = await tempDir(t);
  const content = join(base, 'content');
  const ctx = join(base, 'ctx');
  await mkdir(join(content, 'bin'), { recursive: true });
  await mkdir(ctx);
  await writeFile(join(content, 'bin/tool'), '#!/bin/sh\n');
  await chmod(join(content, 'bin/tool'), 0o755);
  await symlink('bin/tool', join(content, 'link'));
  await writeFile(join(content, '.wh.marker'), 'not a whiteout here');
  spawnSync('touch', ['-h', '-d', '2010-01-01 00:00:00Z', join(content, 'bin/tool')]);
  tar(content, join(ctx, 'a.tar.gz'), '-z');
  tar(content, join(ctx, 'a.tar.bz2'), '-j');
  tar(content, join(ctx, 'a.tar.xz'), '-J');
  tar(content, join(ctx, 'plain.bin'), undefined);
  await writeFile(join(ctx, 'fake.tar.gz'), 'just text');
  const d = await root(t);
  const add = (src: string, dest: string, extra = {}): FileAction => ({
    action: 'copy',
    input: 0,
    src,
    dest,
    followSymlinks: true,
    dirCopyContents: true,
    createDestPath: true,
    allowWildcard: true,
    allowEmptyWildcard: true,
    extractArchive: true,
    ...extra,
  });
  await applyFileActions(
    d,
    [
      add('/a.tar.gz', '/gz'),
      add('/a.tar.bz2', '/bz/'),
      add('/a.tar.xz', '/xz'),
      add('/plain.bin', '/plain'),
      add('/fake.tar.gz', '/fake/'),
      add('/a.tar.gz', '/owned', { chown: { user: '42', group: '43' }, chmod: '0600', mtime: 5 }),
    ],
    () => ({ root: ctx }),
  );
  for (const dir of ['gz', 'bz', 'xz', 'plain']) {
    const s = await lstat(join(d, dir, 'bin/tool'));
    assert.equal(await readFile(join(d, dir, 'bin/tool'), 'utf8'), '#!/bin/sh\n', dir);
    assert.equal(s.mode & 0o7777, 0o755);
    assert.deepEqual([s.uid, s.gid], [1000, 1001], 'owners come from the archive');
    assert.equal(s.mtime.toISOString(), '2010-01-01T00:00:00.000Z');
    assert.equal(await readlink(join(d, dir, 'link')), 'bin/tool');
    assert.equal(await readFile(join(d, dir, '.wh.marker'), 'utf8'), 'not a whiteout here');
  }
  assert.equal(await readFile(join(d, 'fake/fake.tar.gz'), 'utf8'), 'just text', 'not an archive: copied');
  // --chown applies to every entry; --chmod and the timestamp only to the created destination.
  const o = await lstat(join(d, 'owned/bin/tool'));
  assert.deepEqual([o.uid, o.gid], [42, 43]);
  assert.equal(o.mode & 0o7777, 0o755);
  assert.equal(o.mtime.toISOString(), '2010-01-01T00:00:00.000Z');
  const top = await lstat(join(d, 'owned'));
  assert.deepEqual([top.uid, top.gid, top.mode & 0o7777], [42, 43, 0o755]);
});

test('ADD extraction stays inside the destination: symlinks in the archive or the destination cannot lead out', async (t) => {
  if (!requireTool(t, 'tar')) return;
  const base = await tempDir(t);
  const content = join(base, 'content');
  const ctx = join(base, 'ctx');
  await mkdir(content);
  await mkdir(ctx);
  // An archive that first plants a link to /etc, then writes through it.
  await symlink('/etc', join(content, 'etc-link'));
  await mkdir(join(content, 'x'));
  const name = `dray-untar-${process.pid}`;
  await writeFile(join(content, 'x', name), 'payload');
  const list = join(base, 'list');
  await writeFile(list, `etc-link\nx/${name}\n`);
  const r = spawnSync('tar', [
    '-c',
    '-f',
    join(ctx, 'evil.tar'),
    '-C',
    content,
    '--transform',
    `s,^x/,etc-link/,`,
    '-T',
    list,
  ]);
  assert.equal(r.status, 0, String(r.stderr));
  const d = await root(t);
  await applyFileActions(
    d,
    [
      {
        action: 'copy',
        input: 0,
        src: '/evil.tar',
        dest: '/out/',
        createDestPath: true,
        extractArchive: true,
      },
    ],
    () => ({ root: ctx }),
  );
  assert.equal(existsSync(join('/etc', name)), false, 'the host /etc is untouched');
  assert.equal(await readFile(join(d, 'out/etc', name), 'utf8'), 'payload', 'written below the destination');
});

test('ADD extraction: absolute names land below the destination, names climbing out are refused', async (t) => {
  if (!requireTool(t, 'tar')) return;
  const base = await tempDir(t);
  const content = join(base, 'content');
  const ctx = join(base, 'ctx');
  await mkdir(content);
  await mkdir(ctx);
  await writeFile(join(content, 'f'), 'f');
  const mk = (out: string, prefix: string) => {
    const r = spawnSync('tar', [
      '-c',
      '-P',
      '-f',
      join(ctx, out),
      '-C',
      content,
      '--transform',
      `s,^,${prefix},`,
      'f',
    ]);
    assert.equal(r.status, 0, String(r.stderr));
  };
  mk('abs.tar', '/abs/');
  mk('climb.tar', '../../');
  const d = await root(t);
  const add = (src: string): FileAction => ({
    action: 'copy',
    input: 0,
    src,
    dest: '/out/',
    createDestPath: true,
    extractArchive: true,
  });
  await applyFileActions(d, [add('/abs.tar')], () => ({ root: ctx }));
  assert.equal(await readFile(join(d, 'out/abs/f'), 'utf8'), 'f');
  await assert.rejects(
    applyFileActions(d, [add('/climb.tar')], () => ({ root: ctx })),
    (e: unknown) => isDrayError(e, 'DRAY_UNSAFE_ARCHIVE'),
  );
  assert.equal(existsSync(join(base, 'f')), false);
});
