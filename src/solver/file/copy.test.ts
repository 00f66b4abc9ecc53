import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import {
  chmod,
  chown,
  link,
  lstat,
  mkdir,
  readFile,
  readlink,
  stat,
  symlink,
  utimes,
  writeFile,
} from 'node:fs/promises';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { type TestContext, test } from 'node:test';
import { requireTool, tempDir } from '../../../test/harness/tools.ts';
import { isDrayError } from '../../errors.ts';
import type { CopyAction, FileAction } from '../ops.ts';
import { applyFileActions } from './index.ts';
import type { FileTree } from './tree.ts';

/** What the Dockerfile frontend sets on every COPY from the context. */
const dockerfile = {
  followSymlinks: true,
  dirCopyContents: true,
  createDestPath: true,
  allowWildcard: true,
  allowEmptyWildcard: true,
} as const;

function cp(src: string, dest: string, extra: Partial<CopyAction> = {}): CopyAction {
  return { action: 'copy', input: 0, src, dest, ...extra };
}

async function dirs(t: TestContext): Promise<{ src: string; dst: string }> {
  const base = await tempDir(t);
  const src = join(base, 'src');
  const dst = join(base, 'dst');
  await mkdir(src);
  await mkdir(dst);
  return { src, dst };
}

async function apply(dst: string, actions: FileAction[], tree: FileTree): Promise<void> {
  await applyFileActions(dst, actions, () => tree);
}

function touch(path: string, when: string): void {
  const r = spawnSync('touch', ['-h', '-d', when, path]);
  assert.equal(r.status, 0, String(r.stderr));
}

const buildError = (re: RegExp) => (e: unknown) =>
  isDrayError(e, 'DRAY_BUILD') && re.test((e as Error).message);

test('file to file: content, mode, owner and mtime are kept', async (t) => {
  const { src, dst } = await dirs(t);
  await writeFile(join(src, 'a.txt'), 'hello');
  await chown(join(src, 'a.txt'), 1234, 5678);
  await chmod(join(src, 'a.txt'), 0o4751);
  touch(join(src, 'a.txt'), '2001-02-03 04:05:06.123456789Z');
  await apply(dst, [cp('/a.txt', '/b.txt')], { root: src });
  const st = await lstat(join(dst, 'b.txt'), { bigint: true });
  assert.equal(await readFile(join(dst, 'b.txt'), 'utf8'), 'hello');
  assert.equal(Number(st.mode) & 0o7777, 0o4751, 'setuid survives the chown');
  assert.deepEqual([Number(st.uid), Number(st.gid)], [1234, 5678]);
  // Node's utimes takes a double: near today's epoch that is ~240 ns apart.
  const off = st.mtimeNs - 981173106123456789n;
  assert.ok(off < 200n && off > -200n, `mtime off by ${off} ns`);
});

test('file into a directory: a trailing slash makes it, an existing directory takes it', async (t) => {
  const { src, dst } = await dirs(t);
  await writeFile(join(src, 'a.txt'), 'A');
  await mkdir(join(dst, 'exists'));
  await apply(dst, [cp('/a.txt', '/new/sub/', { createDestPath: true }), cp('/a.txt', '/exists')], {
    root: src,
  });
  assert.equal(await readFile(join(dst, 'new/sub/a.txt'), 'utf8'), 'A');
  assert.equal(await readFile(join(dst, 'exists/a.txt'), 'utf8'), 'A');
  const made = await stat(join(dst, 'new'));
  assert.equal(made.mode & 0o7777, 0o755);
  assert.deepEqual([made.uid, made.gid], [0, 0]);
});

test('directories: contents with dirCopyContents, the directory itself without', async (t) => {
  const { src, dst } = await dirs(t);
  await mkdir(join(src, 'd/sub'), { recursive: true });
  await writeFile(join(src, 'd/f'), 'f');
  await writeFile(join(src, 'd/sub/g'), 'g');
  await chmod(join(src, 'd'), 0o700);
  await chown(join(src, 'd'), 1000, 1000);
  touch(join(src, 'd'), '2002-01-01 00:00:00Z');
  await mkdir(join(dst, 'exists'), 0o750);
  await writeFile(join(dst, 'exists/old'), 'old');
  await mkdir(join(dst, 'into'));
  await apply(
    dst,
    [
      cp('/d', '/contents', { dirCopyContents: true, createDestPath: true }),
      cp('/d', '/exists', { dirCopyContents: true }),
      cp('/d', '/into', { dirCopyContents: false }),
      cp('/d', '/itself', { dirCopyContents: false }),
    ],
    { root: src },
  );
  // A missing destination is made like a parent (0755, root), then gets the source's times.
  const c = await lstat(join(dst, 'contents'));
  assert.equal(c.mode & 0o7777, 0o755);
  assert.equal(c.uid, 0);
  assert.equal(c.mtime.toISOString(), '2002-01-01T00:00:00.000Z');
  assert.equal(await readFile(join(dst, 'contents/sub/g'), 'utf8'), 'g');
  // Merging keeps what was there, and the existing directory's mode and owner.
  const e = await lstat(join(dst, 'exists'));
  assert.equal(e.mode & 0o7777, 0o750);
  assert.equal(await readFile(join(dst, 'exists/old'), 'utf8'), 'old');
  assert.equal(await readFile(join(dst, 'exists/f'), 'utf8'), 'f');
  // Without dirCopyContents: into an existing directory as d, or as the new path itself.
  assert.equal(await readFile(join(dst, 'into/d/sub/g'), 'utf8'), 'g');
  const i = await lstat(join(dst, 'itself'));
  assert.equal(i.mode & 0o7777, 0o700);
  assert.equal(i.uid, 1000);
  assert.equal(await readFile(join(dst, 'itself/f'), 'utf8'), 'f');
});

test('wildcards: several matches, nested patterns, empty matches, no matches', async (t) => {
  const { src, dst } = await dirs(t);
  await writeFile(join(src, 'foo.go'), 'foo');
  await writeFile(join(src, 'bar.go'), 'bar');
  await mkdir(join(src, 'sub/dir1/dir2'), { recursive: true });
  await writeFile(join(src, 'sub/dir1/dir2/foo'), 'deep');
  await apply(
    dst,
    [
      cp('/*.go', '/gofiles/', dockerfile),
      cp('/f*.go', '/foo2.go', dockerfile),
      cp('/sub/*', '/subdest/', dockerfile),
      cp('/sub/*/dir2/foo', '/subdest2/', dockerfile),
      cp('/nomatch*', '/x/', dockerfile),
    ],
    { root: src },
  );
  assert.equal(await readFile(join(dst, 'gofiles/foo.go'), 'utf8'), 'foo');
  assert.equal(await readFile(join(dst, 'gofiles/bar.go'), 'utf8'), 'bar');
  assert.equal(await readFile(join(dst, 'foo2.go'), 'utf8'), 'foo');
  assert.equal(await readFile(join(dst, 'subdest/dir2/foo'), 'utf8'), 'deep');
  assert.equal(await readFile(join(dst, 'subdest2/foo'), 'utf8'), 'deep');
  assert.equal(existsSync(join(dst, 'x')), false, 'an empty wildcard copies nothing');
  await assert.rejects(
    apply(dst, [cp('/nomatch*', '/x/', { ...dockerfile, allowEmptyWildcard: false })], { root: src }),
    buildError(/"\/nomatch\*": not found/),
  );
  // Like BuildKit (moby/buildkit#1853), several matches onto one file path: the last one wins.
  await apply(dst, [cp('/*.go', '/one.go', dockerfile)], { root: src });
  assert.equal(await readFile(join(dst, 'one.go'), 'utf8'), 'foo');
});

test('a missing source fails with BuildKit\'s "not found"', async (t) => {
  const { src, dst } = await dirs(t);
  await assert.rejects(
    apply(dst, [cp('/x', '/y', dockerfile)], { root: src }),
    buildError(/^"\/x": not found$/),
  );
  await assert.rejects(
    apply(dst, [cp('/nodir/*.txt', '/y/', dockerfile)], { root: src }),
    buildError(/not found/),
  );
});

test('createDestPath: without it a missing parent fails; with it parents are made', async (t) => {
  const { src, dst } = await dirs(t);
  await writeFile(join(src, 'a'), 'a');
  await assert.rejects(
    apply(dst, [cp('/a', '/p/q/a')], { root: src }),
    buildError(/failed to stat \/p\/q\/a/),
  );
  await apply(dst, [cp('/a', '/top')], { root: src });
  assert.equal(await readFile(join(dst, 'top'), 'utf8'), 'a');
  await apply(dst, [cp('/a', '/p/q/a', { createDestPath: true })], { root: src });
  assert.equal(await readFile(join(dst, 'p/q/a'), 'utf8'), 'a');
});

test('a symlinked source: followed (inside the source root) with followSymlinks, copied as a link without', async (t) => {
  const { src, dst } = await dirs(t);
  await writeFile(join(src, 'bar'), 'bar-contents');
  await symlink('bar', join(src, 'foo'));
  await mkdir(join(src, 'sub'));
  await symlink('../bar', join(src, 'sub/l0'));
  await symlink('/bar', join(src, 'sub/abs'));
  await symlink('../../../../../etc/hostname', join(src, 'escape'));
  await apply(
    dst,
    [
      cp('/foo', '/followed', { followSymlinks: true }),
      cp('/foo', '/kept'),
      cp('/sub/*', '/all/', dockerfile),
      cp('/sub', '/dir/', { dirCopyContents: true, createDestPath: true }),
    ],
    { root: src },
  );
  assert.equal((await lstat(join(dst, 'followed'))).isFile(), true);
  assert.equal(await readFile(join(dst, 'followed'), 'utf8'), 'bar-contents');
  assert.equal(await readlink(join(dst, 'kept')), 'bar');
  assert.equal(await readFile(join(dst, 'all/l0'), 'utf8'), 'bar-contents');
  assert.equal(
    await readFile(join(dst, 'all/abs'), 'utf8'),
    'bar-contents',
    'an absolute target means the source root',
  );
  assert.equal(await readlink(join(dst, 'dir/l0')), '../bar', 'links inside a copied directory stay links');
  // A link that climbs out resolves inside the source root (where there is no etc/hostname).
  await assert.rejects(
    apply(dst, [cp('/escape', '/e', { followSymlinks: true })], { root: src }),
    buildError(/not found/),
  );
});

test('destination symlinks resolve inside the destination root: the host /etc is never written', async (t) => {
  const { src, dst } = await dirs(t);
  const name = `dray-test-${randomBytes(6).toString('hex')}`;
  await writeFile(join(src, name), 'x');
  await symlink('/etc', join(dst, 'etclink'));
  await symlink('../../../../../../etc', join(dst, 'climb'));
  await symlink(`/etc/${name}.final`, join(dst, 'final'));
  await apply(
    dst,
    [
      cp(`/${name}`, '/etclink/', { createDestPath: true }),
      cp(`/${name}`, `/climb/${name}.2`, { createDestPath: true }),
      cp(`/${name}`, '/final', { createDestPath: true }),
      cp(`/${name}`, `/../../../../etc/${name}.3`, { createDestPath: true }),
    ],
    { root: src },
  );
  for (const n of [name, `${name}.2`, `${name}.final`, `${name}.3`]) {
    assert.equal(await readFile(join(dst, 'etc', n), 'utf8'), 'x', n);
    assert.equal(existsSync(join('/etc', n)), false, `host /etc/${n}`);
  }
  assert.equal(await readlink(join(dst, 'etclink')), '/etc', 'the link itself is untouched');
});

test('hard links inside a copied tree stay hard links', async (t) => {
  const { src, dst } = await dirs(t);
  await mkdir(join(src, 'd/e'), { recursive: true });
  await writeFile(join(src, 'd/one'), 'same');
  await link(join(src, 'd/one'), join(src, 'd/e/two'));
  await link(join(src, 'd/one'), join(src, 'd/three'));
  await apply(dst, [cp('/d', '/out', dockerfile)], { root: src });
  const a = await lstat(join(dst, 'out/one'));
  const b = await lstat(join(dst, 'out/e/two'));
  const c = await lstat(join(dst, 'out/three'));
  assert.equal(a.ino, b.ino);
  assert.equal(a.ino, c.ino);
  assert.equal(a.nlink, 3);
  assert.notEqual(a.ino, (await lstat(join(src, 'd/one'))).ino);
});

test('chown: numeric ids, a user alone, names from the destination, created parents too', async (t) => {
  const { src, dst } = await dirs(t);
  await mkdir(join(src, 'd'));
  await writeFile(join(src, 'd/f'), 'f');
  await symlink('f', join(src, 'd/l'));
  await mkdir(join(dst, 'etc'));
  await writeFile(join(dst, 'etc/passwd'), 'root:x:0:0::/root:/bin/sh\napp:x:1500:1600::/home/app:/bin/sh\n');
  await writeFile(join(dst, 'etc/group'), 'root:x:0:\nstaff:x:50:\n');
  await apply(
    dst,
    [
      cp('/d', '/num/sub/', { ...dockerfile, chown: { user: '1234', group: '5678' } }),
      cp('/d', '/user/', { ...dockerfile, chown: { user: '1234' } }),
      cp('/d', '/named/', { ...dockerfile, chown: { user: 'app', group: 'staff' } }),
      cp('/d', '/named2/', { ...dockerfile, chown: { user: 'app' } }),
    ],
    { root: src },
  );
  const ids = async (p: string) => {
    const s = await lstat(join(dst, p));
    return [s.uid, s.gid];
  };
  for (const p of ['num', 'num/sub', 'num/sub/f', 'num/sub/l'])
    assert.deepEqual(await ids(p), [1234, 5678], p);
  assert.deepEqual(await ids('user/f'), [1234, 1234]);
  assert.deepEqual(await ids('named/f'), [1500, 50]);
  assert.deepEqual(await ids('named2/l'), [1500, 1600]);
});

test('chmod: octal on files, directories and created parents; symbolic per file', async (t) => {
  const { src, dst } = await dirs(t);
  await mkdir(join(src, 'd/sub'), { recursive: true });
  await writeFile(join(src, 'd/plain'), '');
  await writeFile(join(src, 'd/exec'), '');
  await chmod(join(src, 'd/plain'), 0o640);
  await chmod(join(src, 'd/exec'), 0o700);
  await chmod(join(src, 'd/sub'), 0o700);
  await apply(
    dst,
    [
      cp('/d/plain', '/parent/sub/plain', { ...dockerfile, chmod: '770' }),
      cp('/d', '/oct/', { ...dockerfile, chmod: '0751' }),
      cp('/d', '/sym/', { ...dockerfile, chmod: 'u+x,g-w,o=r' }),
      cp('/d', '/symx/', { ...dockerfile, chmod: 'a+rX' }),
    ],
    { root: src },
  );
  const mode = async (p: string) => (await lstat(join(dst, p))).mode & 0o7777;
  assert.equal(await mode('parent'), 0o770, 'BuildKit makes parents with the octal mode');
  assert.equal(await mode('parent/sub'), 0o770);
  assert.equal(await mode('parent/sub/plain'), 0o770);
  for (const p of ['oct/plain', 'oct/exec', 'oct/sub']) assert.equal(await mode(p), 0o751, p);
  assert.equal(await mode('sym'), 0o755, 'a symbolic mode does not touch created parents');
  assert.equal(await mode('sym/plain'), 0o744);
  assert.equal(await mode('sym/exec'), 0o704);
  assert.equal(await mode('sym/sub'), 0o704);
  assert.equal(await mode('symx/plain'), 0o644);
  assert.equal(await mode('symx/exec'), 0o755);
  assert.equal(await mode('symx/sub'), 0o755);
  await assert.rejects(
    apply(dst, [cp('/d', '/bad/', { ...dockerfile, chmod: '64a' })], { root: src }),
    (e: unknown) => isDrayError(e, 'DRAY_INVALID_ARGUMENT'),
  );
});

test('mtime: a fixed timestamp on everything copied, created parents included', async (t) => {
  const { src, dst } = await dirs(t);
  await mkdir(join(src, 'd/sub'), { recursive: true });
  await writeFile(join(src, 'd/sub/f'), 'f');
  await symlink('f', join(src, 'd/sub/l'));
  await apply(dst, [cp('/d', '/a/b/', { ...dockerfile, mtime: 1_000_000_000 })], { root: src });
  for (const p of ['a', 'a/b', 'a/b/sub', 'a/b/sub/f', 'a/b/sub/l']) {
    assert.equal((await lstat(join(dst, p))).mtimeMs, 1_000_000_000_000, p);
  }
});

test("include/exclude: the action's patterns and the context's .dockerignore with re-includes", async (t) => {
  const { src, dst } = await dirs(t);
  for (const p of ['app/src', 'app/node_modules/x', 'app/build/keep', 'app/build/drop']) {
    await mkdir(join(src, p), { recursive: true });
  }
  await writeFile(join(src, 'app/src/a.ts'), 'a');
  await writeFile(join(src, 'app/src/a.test.ts'), 't');
  await writeFile(join(src, 'app/node_modules/x/i.js'), 'i');
  await writeFile(join(src, 'app/build/keep/k'), 'k');
  await writeFile(join(src, 'app/build/drop/d'), 'd');
  await writeFile(join(src, 'app/README.md'), 'r');
  const tree: FileTree = { root: src, exclude: ['**/node_modules', 'app/build', '!app/build/keep', '*.md'] };
  await apply(dst, [cp('/app', '/out/', { ...dockerfile, exclude: ['**/*.test.ts'] })], tree);
  const files = spawnSync('find', ['.', '-mindepth', '1'], { cwd: join(dst, 'out') })
    .stdout.toString()
    .trim()
    .split('\n')
    .sort();
  assert.deepEqual(files, [
    './README.md',
    './build',
    './build/keep',
    './build/keep/k',
    './src',
    './src/a.ts',
  ]);
  // An excluded source is not there at all.
  await assert.rejects(
    apply(dst, [cp('/app/node_modules', '/nm/', dockerfile)], tree),
    buildError(/not found/),
  );
  // Include patterns of the action (COPY --parents style).
  await apply(
    dst,
    [cp('/', '/inc/', { ...dockerfile, include: ['app/src/*.ts'], exclude: ['**/*.test.ts'] })],
    {
      root: src,
    },
  );
  assert.equal(await readFile(join(dst, 'inc/app/src/a.ts'), 'utf8'), 'a');
  assert.equal(existsSync(join(dst, 'inc/app/src/a.test.ts')), false);
  assert.equal(existsSync(join(dst, 'inc/app/build')), false);
});

test('type conflicts fail as in BuildKit', async (t) => {
  const { src, dst } = await dirs(t);
  await mkdir(join(src, 'd'));
  await writeFile(join(src, 'd/x'), 'x');
  await writeFile(join(src, 'f'), 'f');
  await writeFile(join(dst, 'file'), '');
  await mkdir(join(dst, 'dd/x'), { recursive: true });
  await assert.rejects(
    apply(dst, [cp('/d', '/file', { dirCopyContents: true })], { root: src }),
    buildError(/cannot copy to non-directory: \/file/),
  );
  await assert.rejects(
    apply(dst, [cp('/d', '/dd', { dirCopyContents: true })], { root: src }),
    buildError(/cannot replace to directory \/dd\/x with file/),
  );
  // The destination path itself is resolved (inside the root) through a symlink…
  await symlink('/etc/passwd', join(dst, 'lnk'));
  await mkdir(join(dst, 'etc'));
  await apply(dst, [cp('/f', '/lnk')], { root: src });
  assert.equal(await readFile(join(dst, 'etc/passwd'), 'utf8'), 'f');
  assert.equal(await readlink(join(dst, 'lnk')), '/etc/passwd');
  // …while a symlink met inside a copied directory is replaced, never written through.
  await mkdir(join(dst, 'm'));
  await symlink('/etc/passwd', join(dst, 'm/x'));
  await apply(dst, [cp('/d', '/m', { dirCopyContents: true })], { root: src });
  assert.equal((await lstat(join(dst, 'm/x'))).isFile(), true);
  assert.equal(await readFile(join(dst, 'etc/passwd'), 'utf8'), 'f');
});

test('extended attributes are copied', async (t) => {
  if (!requireTool(t, 'setfattr', 'getfattr')) return;
  const { src, dst } = await dirs(t);
  await mkdir(join(src, 'd'));
  await writeFile(join(src, 'd/f'), 'f');
  const r = spawnSync('setfattr', ['-n', 'user.dray', '-v', '0x00ff10', join(src, 'd/f')]);
  if (r.status !== 0) return t.skip(`user xattrs unsupported here: ${r.stderr}`);
  await apply(dst, [cp('/d', '/o/', dockerfile)], { root: src });
  const g = spawnSync('getfattr', ['-n', 'user.dray', '-e', 'hex', '--only-values', join(dst, 'o/f')]);
  assert.equal(g.status, 0, String(g.stderr));
  assert.equal(g.stdout.toString('hex'), '00ff10');
});

test('special files: a fifo is copied as a fifo, a socket as an empty file', async (t) => {
  if (!requireTool(t, 'mkfifo')) return;
  const { src, dst } = await dirs(t);
  await mkdir(join(src, 'd'));
  assert.equal(spawnSync('mkfifo', [join(src, 'd/fifo')]).status, 0);
  const server = createServer();
  await new Promise<void>((r) => server.listen(join(src, 'd/sock'), r));
  t.after(() => new Promise<void>((r) => server.close(() => r())));
  await chmod(join(src, 'd/fifo'), 0o640);
  await apply(dst, [cp('/d', '/o/', dockerfile)], { root: src });
  const f = await lstat(join(dst, 'o/fifo'));
  assert.equal(f.isFIFO(), true);
  assert.equal(f.mode & 0o7777, 0o640);
  const s = await lstat(join(dst, 'o/sock'));
  assert.equal(s.isFile(), true);
  assert.equal(s.size, 0);
});

test('copying the same tree twice gives the same result (existing entries are replaced in place)', async (t) => {
  const { src, dst } = await dirs(t);
  await mkdir(join(src, 'd/s'), { recursive: true });
  await writeFile(join(src, 'd/s/f'), 'v1');
  await symlink('f', join(src, 'd/s/l'));
  await apply(dst, [cp('/d', '/o/', dockerfile)], { root: src });
  await writeFile(join(src, 'd/s/f'), 'v2');
  await utimes(join(src, 'd/s/f'), 1000, 1000);
  await apply(dst, [cp('/d', '/o/', dockerfile)], { root: src });
  assert.equal(await readFile(join(dst, 'o/s/f'), 'utf8'), 'v2');
  assert.equal((await lstat(join(dst, 'o/s/f'))).mtimeMs, 1_000_000);
  assert.equal(await readlink(join(dst, 'o/s/l')), 'f');
});

test('owners come from the source even below a setgid directory of the destination', async (t) => {
  const { src, dst } = await dirs(t);
  await mkdir(join(src, 'd/sub'), { recursive: true });
  await writeFile(join(src, 'd/sub/f'), 'f');
  await mkdir(join(dst, 'srv'));
  await chown(join(dst, 'srv'), 0, 50);
  await chmod(join(dst, 'srv'), 0o2775);
  await apply(dst, [cp('/d', '/srv/app/', dockerfile), cp('/d', '/srv', { dirCopyContents: false })], {
    root: src,
  });
  for (const p of ['srv/app/sub', 'srv/app/sub/f', 'srv/d', 'srv/d/sub', 'srv/d/sub/f']) {
    const s = await lstat(join(dst, p));
    assert.equal(s.gid, 0, p);
  }
  // A created destination directory is not chowned without --chown (BuildKit's MkdirAll): the kernel's group stays.
  assert.equal((await lstat(join(dst, 'srv/app'))).gid, 50);
  assert.equal((await lstat(join(dst, 'srv/d/sub'))).mode & 0o7777, 0o755, 'no inherited setgid');
});
