import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash, randomFillSync } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import {
  chmod,
  chown,
  link,
  lutimes,
  mkdir,
  readdir,
  readFile,
  rm,
  stat,
  symlink,
  unlink,
  utimes,
  writeFile,
} from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { type TestContext, test } from 'node:test';
import { gunzipSync, zstdDecompressSync } from 'node:zlib';
import { isCI, requireTool, tempDir } from '../../test/harness/tools.ts';
import { isDrayError } from '../errors.ts';
import { MediaTypes } from '../oci/index.ts';
import { decompressStream } from './compression.ts';
import { type DiffSource, diffEntries, type WriteDiffOptions, writeDiff } from './diff.ts';
import { type LayerResult, writeLayerTo } from './layer-writer.ts';
import { readTar } from './tar-reader.ts';
import type { TarHeader } from './types.ts';
import { walkTree } from './walk.ts';

// ---------------------------------------------------------------------------------------
// helpers

function sh(cmd: string, args: string[]): void {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: ${r.stderr || r.error?.message}`);
}

function needAttr(t: TestContext): boolean {
  return requireTool(t, 'getfattr', 'setfattr');
}

/** security.capability v2 for cap_net_raw+ep (VFS_CAP_REVISION_2, effective bit). */
const CAP_NET_RAW = Buffer.from('0100000200200000000000000000000000000000', 'hex');

async function setXattr(path: string, name: string, value: Buffer): Promise<void> {
  sh('setfattr', ['-h', '-n', name, '-v', `0s${value.toString('base64')}`, path]);
}

/** Writes a layer to a file; returns its result and path. */
async function layerFile(
  dir: string,
  source: DiffSource,
  o: WriteDiffOptions = {},
): Promise<{ r: LayerResult; path: string }> {
  const path = join(dir, `layer-${Math.random().toString(36).slice(2)}`);
  const r = await writeLayerTo(writeDiff(source, o), createWriteStream(path));
  return { r, path };
}

async function entries(source: DiffSource, o = {}): Promise<TarHeader[]> {
  const out: TarHeader[] = [];
  for await (const e of diffEntries(source, o)) out.push(e.header);
  return out;
}

/** A deliberately simple applier (the test's own oracle): whiteouts, opaque dirs, owners, modes, xattrs. */
async function applyTo(root: string, layerPath: string): Promise<void> {
  const plain = await decompressStream(createReadStream(layerPath));
  for await (const { header: h, body } of readTar(plain)) {
    const cut = h.name.lastIndexOf('/');
    const parent = cut < 0 ? root : join(root, h.name.slice(0, cut));
    const base = h.name.slice(cut + 1);
    const target = join(root, h.name);
    if (base === '.wh..wh..opq') {
      for (const n of await readdir(parent)) await rm(join(parent, n), { recursive: true, force: true });
      body.resume();
      continue;
    }
    if (base.startsWith('.wh.')) {
      await rm(join(parent, base.slice(4)), { recursive: true, force: true });
      body.resume();
      continue;
    }
    const existing = await stat(target).catch(() => undefined);
    if (!(h.type === 'directory' && existing?.isDirectory()))
      await rm(target, { recursive: true, force: true });
    switch (h.type) {
      case 'directory':
        await mkdir(target, { recursive: true });
        break;
      case 'file':
        await pipeline(body, createWriteStream(target));
        break;
      case 'symlink':
        await symlink(h.linkname ?? '', target);
        break;
      case 'link':
        await link(join(root, h.linkname ?? ''), target);
        break;
      default:
        throw new Error(`test applier: ${h.type} not handled`);
    }
    body.resume();
    if (h.type === 'link') continue;
    sh('chown', ['-h', `${h.uid}:${h.gid}`, target]);
    if (h.type !== 'symlink') await chmod(target, h.mode);
    for (const [k, v] of h.xattrs ?? []) await setXattr(target, k, v);
    await lutimes(target, h.mtime, h.mtime);
  }
}

/** path → type, mode, owner, size, content hash, link target, xattrs, hard-link group. */
async function snapshot(root: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  const inodes = new Map<string, string[]>();
  for await (const e of walkTree(root)) {
    const m = e.meta;
    let content = '';
    if (m.kind === 'file')
      content = createHash('sha256')
        .update(await readFile(m.path))
        .digest('hex')
        .slice(0, 16);
    const x = [...(e.xattrs ?? [])]
      .filter(([k]) => !k.startsWith('trusted.overlay.'))
      .sort(([a], [b]) => (a < b ? -1 : 1))
      .map(([k, v]) => `${k}=${v.toString('base64')}`)
      .join(',');
    out.set(
      e.name,
      `${m.kind} ${m.mode.toString(8)} ${m.uid}:${m.gid} ${m.size} ${content} ${m.linkname ?? ''} [${x}]`,
    );
    if (m.kind === 'file' && m.nlink > 1) {
      const k = `${m.dev}:${m.ino}`;
      inodes.set(k, [...(inodes.get(k) ?? []), e.name]);
    }
  }
  for (const names of inodes.values())
    for (const n of names) out.set(n, `${out.get(n)} links=${names.join('+')}`);
  return out;
}

async function makeLower(dir: string): Promise<void> {
  await mkdir(dir, { recursive: true });
  const w = (p: string, s: string) => writeFile(join(dir, p), s);
  await w('a.txt', 'hello');
  await w('mod.txt', 'old content');
  await w('modeonly.sh', '#!/bin/sh\n');
  await w('owned.txt', 'mine');
  await w('gone.txt', 'bye');
  await mkdir(join(dir, 'gonedir/sub'), { recursive: true });
  await w('gonedir/x.txt', 'x');
  await w('gonedir/sub/deep.txt', 'deep');
  await w('f2d', 'file becomes dir');
  await mkdir(join(dir, 'd2f'));
  await w('d2f/child', 'dir becomes file');
  await symlink('a.txt', join(dir, 'link'));
  await w('xattr.txt', 'x');
  await setXattr(join(dir, 'xattr.txt'), 'user.k', Buffer.from('v1'));
  await w('cap.bin', 'ELF');
  await mkdir(join(dir, 'opq'));
  await w('opq/o1', '1');
  await w('opq/o2', '2');
  await mkdir(join(dir, 'same/deeper'), { recursive: true });
  await w('same/s1', 's1');
  await w('same/deeper/s2', 's2');
  await w('old-hl', 'linked');
  await link(join(dir, 'old-hl'), join(dir, 'old-hl2'));
}

/** Every change kind, made with plain fs calls (so it works on an overlay's merged dir too). */
async function mutate(dir: string): Promise<void> {
  const w = (p: string, s: string) => writeFile(join(dir, p), s);
  await w('new.txt', 'new');
  await mkdir(join(dir, 'newdir'));
  await w('newdir/n.txt', 'n');
  await w('mod.txt', 'new content, longer');
  await chmod(join(dir, 'modeonly.sh'), 0o755);
  await chown(join(dir, 'owned.txt'), 1000, 1001);
  await unlink(join(dir, 'gone.txt'));
  await rm(join(dir, 'gonedir'), { recursive: true });
  await unlink(join(dir, 'f2d'));
  await mkdir(join(dir, 'f2d'));
  await w('f2d/in.txt', 'inside');
  await rm(join(dir, 'd2f'), { recursive: true });
  await w('d2f', 'now a file');
  await unlink(join(dir, 'link'));
  await symlink('mod.txt', join(dir, 'link'));
  await w('hl1', 'hard');
  await link(join(dir, 'hl1'), join(dir, 'hl2'));
  await setXattr(join(dir, 'xattr.txt'), 'user.k', Buffer.from('v2'));
  await setXattr(join(dir, 'cap.bin'), 'security.capability', CAP_NET_RAW);
  await rm(join(dir, 'opq'), { recursive: true });
  await mkdir(join(dir, 'opq'));
  await w('opq/o3', '3');
  await mkdir(join(dir, 'newdir/sock-parent'));
}

// ---------------------------------------------------------------------------------------
// 'trees'

test('trees: every change kind yields the right entries, and applying the layer gives the upper tree', async (t) => {
  if (!needAttr(t)) return;
  const tmp = await tempDir(t);
  const lower = join(tmp, 'lower');
  const upper = join(tmp, 'upper');
  await makeLower(lower);
  sh('cp', ['-a', lower, upper]);
  await mutate(upper);

  const hs = await entries({ kind: 'trees', lower, upper });
  const names = hs.map((h) => `${h.type[0]}:${h.name}`);
  // Unchanged entries are absent; a deleted tree is one whiteout; replaced types are written whole.
  for (const absent of ['a.txt', 'same', 'same/s1', 'same/deeper', 'old-hl', 'gonedir/x.txt', 'opq/o3']) {
    assert.ok(!hs.some((h) => h.name === absent && absent !== 'opq/o3'), `${absent} should not be written`);
  }
  for (const want of [
    'f:new.txt',
    'd:newdir',
    'f:newdir/n.txt',
    'f:mod.txt',
    'f:modeonly.sh',
    'f:owned.txt',
    'f:.wh.gone.txt',
    'f:.wh.gonedir',
    'd:f2d',
    'f:f2d/in.txt',
    'f:d2f',
    's:link',
    'f:hl1',
    'l:hl2',
    'f:xattr.txt',
    'f:cap.bin',
    'd:opq',
    'f:opq/.wh.o1',
    'f:opq/.wh.o2',
    'f:opq/o3',
  ]) {
    assert.ok(names.includes(want), `missing ${want} in ${names.join(' ')}`);
  }
  assert.ok(
    !names.some((n) => n.startsWith('f:gonedir/') || n === 'd:gonedir'),
    'no entries under a deleted dir',
  );
  const byName = new Map(hs.map((h) => [h.name, h]));
  assert.equal(byName.get('modeonly.sh')?.mode, 0o755);
  assert.equal(byName.get('owned.txt')?.uid, 1000);
  assert.equal(byName.get('owned.txt')?.gid, 1001);
  assert.equal(byName.get('link')?.linkname, 'mod.txt');
  assert.equal(byName.get('hl2')?.linkname, 'hl1');
  assert.deepEqual(byName.get('cap.bin')?.xattrs?.get('security.capability'), CAP_NET_RAW);
  assert.deepEqual(byName.get('xattr.txt')?.xattrs?.get('user.k'), Buffer.from('v2'));
  // Order: parents first, siblings by bytes, so sorted within each directory.
  const seen = new Set<string>();
  for (const h of hs) {
    const parent = h.name.includes('/') ? h.name.slice(0, h.name.lastIndexOf('/')) : '';
    assert.ok(parent === '' || seen.has(parent), `${h.name} before its parent`);
    seen.add(h.name);
  }

  const { r, path } = await layerFile(tmp, { kind: 'trees', lower, upper });
  const applied = join(tmp, 'applied');
  sh('cp', ['-a', lower, applied]);
  await applyTo(applied, path);
  assert.deepEqual(await snapshot(applied), await snapshot(upper));
  assert.equal(r.descriptor.mediaType, MediaTypes.ociLayerGzip);
});

test('trees: no lower means everything is added; sockets are skipped', async (t) => {
  if (!needAttr(t)) return;
  const tmp = await tempDir(t);
  const upper = join(tmp, 'upper');
  await makeLower(upper);
  const hs = await entries({ kind: 'trees', upper });
  assert.ok(!hs.some((h) => h.name.includes('.wh.')));
  const { path } = await layerFile(tmp, { kind: 'trees', upper });
  const applied = join(tmp, 'applied');
  await mkdir(applied);
  await applyTo(applied, path);
  assert.deepEqual(await snapshot(applied), await snapshot(upper));
});

test("trees: same size and mtime but new bytes: found with compare 'content'", async (t) => {
  if (!needAttr(t)) return;
  const tmp = await tempDir(t);
  const lower = join(tmp, 'lower');
  await mkdir(lower);
  await writeFile(join(lower, 'f'), 'aaaa');
  await utimes(join(lower, 'f'), 1_700_000_000.5, 1_700_000_000.5);
  const upper = join(tmp, 'upper');
  sh('cp', ['-a', lower, upper]);
  await writeFile(join(upper, 'f'), 'bbbb');
  sh('touch', ['-r', join(lower, 'f'), join(upper, 'f')]);
  assert.deepEqual(await entries({ kind: 'trees', lower, upper }), []);
  const hs = await entries({ kind: 'trees', lower, upper }, { compare: 'content' });
  assert.deepEqual(
    hs.map((h) => h.name),
    ['f'],
  );
  // Whole-second mtimes (maybe truncated by a copy) fall back to a content compare by default.
  await utimes(join(lower, 'f'), 1_700_000_000, 1_700_000_000);
  await utimes(join(upper, 'f'), 1_700_000_000, 1_700_000_000);
  assert.deepEqual(
    (await entries({ kind: 'trees', lower, upper })).map((h) => h.name),
    ['f'],
  );
});

test('trees: a file named .wh.* cannot go into a layer', async (t) => {
  const tmp = await tempDir(t);
  await writeFile(join(tmp, '.wh.x'), '');
  await assert.rejects(entries({ kind: 'trees', upper: tmp }, { xattrs: false }), (e: unknown) => {
    assert.ok(isDrayError(e, 'DRAY_INVALID_ARGUMENT'));
    assert.match(e.message, /\.wh\. cannot go into a layer/);
    return true;
  });
});

// ---------------------------------------------------------------------------------------
// 'overlay-upper' on a real overlay mount

function tryMount(lowers: string[], upper: string, work: string, merged: string): string | undefined {
  const r = spawnSync('mount', [
    '-t',
    'overlay',
    'overlay',
    '-o',
    `lowerdir=${lowers.join(':')},upperdir=${upper},workdir=${work},redirect_dir=off,metacopy=off`,
    merged,
  ]);
  return r.status === 0 ? undefined : String(r.stderr).trim() || `mount exited ${r.status}`;
}

function skipOrFail(t: TestContext, why: string): void {
  if (isCI()) throw new Error(`overlay mount failed under CI=true: ${why}`);
  process.stderr.write(`# SKIP ${t.fullName}: overlay mount failed: ${why}\n`);
  t.skip(`overlay mount failed: ${why}`);
}

test('overlay-upper: a real overlay mount gives the same filesystem as a tree diff of lower vs merged', async (t) => {
  if (!needAttr(t)) return;
  const tmp = await tempDir(t);
  const lower = join(tmp, 'lower');
  const [upper, work, merged] = ['upper', 'work', 'merged'].map((d) => join(tmp, d)) as [
    string,
    string,
    string,
  ];
  await makeLower(lower);
  for (const d of [upper, work, merged]) await mkdir(d);
  const why = tryMount([lower], upper, work, merged);
  if (why) return skipOrFail(t, why);
  let mounted = true;
  t.after(() => {
    if (mounted) spawnSync('umount', [merged]);
  });
  await mutate(merged);
  const want = await snapshot(merged);
  const fromTrees = await layerFile(tmp, { kind: 'trees', lower, upper: merged });
  sh('umount', [merged]);
  mounted = false;

  const hs = await entries({ kind: 'overlay-upper', upper, lower: [lower] });
  const names = hs.map((h) => h.name);
  assert.ok(names.includes('.wh.gonedir') && names.includes('.wh.gone.txt'), names.join(' '));
  assert.ok(names.includes('opq/.wh..wh..opq'), 'rm -rf + mkdir makes an opaque dir');
  assert.equal(
    names.indexOf('opq/.wh..wh..opq'),
    names.indexOf('opq') + 1,
    'opaque marker right after its dir',
  );
  assert.ok(!names.some((n) => n.startsWith('same')), 'untouched dirs are not written');
  assert.ok(!hs.some((h) => [...(h.xattrs?.keys() ?? [])].some((k) => k.startsWith('trusted.overlay.'))));

  const fromUpper = await layerFile(tmp, { kind: 'overlay-upper', upper, lower: [lower] });
  for (const [name, l] of [
    ['trees', fromTrees],
    ['overlay', fromUpper],
  ] as const) {
    const applied = join(tmp, `applied-${name}`);
    sh('cp', ['-a', lower, applied]);
    await applyTo(applied, l.path);
    assert.deepEqual(await snapshot(applied), want, `${name} layer applied`);
  }
});

test('overlay-upper: lower dirs that hold whiteouts and opaque dirs (a committed snapshot) are honoured', async (t) => {
  if (!needAttr(t)) return;
  const tmp = await tempDir(t);
  const base = join(tmp, 'base');
  const d = (n: string) => join(tmp, n);
  await makeLower(base);
  for (const n of ['u1', 'w1', 'm1', 'u2', 'w2', 'm2']) await mkdir(d(n));
  const why = tryMount([base], d('u1'), d('w1'), d('m1'));
  if (why) return skipOrFail(t, why);
  // Step 1: delete and make opaque; its upper becomes a lower of step 2.
  await rm(join(d('m1'), 'gonedir'), { recursive: true });
  await rm(join(d('m1'), 'opq'), { recursive: true });
  await mkdir(join(d('m1'), 'opq'));
  await writeFile(join(d('m1'), 'opq/only'), 'only');
  sh('umount', [d('m1')]);
  const lowers = [d('u1'), base];
  const why2 = tryMount(lowers, d('u2'), d('w2'), d('m2'));
  if (why2) return skipOrFail(t, why2);
  let mounted = true;
  t.after(() => {
    if (mounted) spawnSync('umount', [d('m2')]);
  });
  // Step 2: recreate what step 1 deleted, delete what only step 1 made.
  await mkdir(join(d('m2'), 'gonedir'));
  await writeFile(join(d('m2'), 'gonedir/back'), 'back');
  await unlink(join(d('m2'), 'opq/only'));
  await writeFile(join(d('m2'), 'opq/o1'), 'not the hidden one');
  const before = join(tmp, 'before');
  sh('cp', ['-a', base, before]);
  // `before` = the merged view of step 1, made by applying step 1's upper as a layer.
  const step1 = await layerFile(tmp, { kind: 'overlay-upper', upper: d('u1'), lower: [base] });
  await applyTo(before, step1.path);
  const want = await snapshot(d('m2'));
  sh('umount', [d('m2')]);
  mounted = false;

  const hs = await entries({ kind: 'overlay-upper', upper: d('u2'), lower: lowers });
  const names = hs.map((h) => h.name);
  assert.ok(names.includes('opq/.wh.only'), names.join(' '));
  assert.ok(!names.includes('opq/.wh.o1'), 'o1 was hidden by the opaque lower dir');
  const step2 = await layerFile(tmp, { kind: 'overlay-upper', upper: d('u2'), lower: lowers });
  await applyTo(before, step2.path);
  assert.deepEqual(await snapshot(before), want);
});

test('overlay-upper: an upper that uses redirect_dir or metacopy is refused', async (t) => {
  if (!needAttr(t)) return;
  const tmp = await tempDir(t);
  await mkdir(join(tmp, 'upper/moved'), { recursive: true });
  await mkdir(join(tmp, 'lower'));
  await setXattr(join(tmp, 'upper/moved'), 'trusted.overlay.redirect', Buffer.from('/orig'));
  await assert.rejects(
    entries({ kind: 'overlay-upper', upper: join(tmp, 'upper'), lower: [join(tmp, 'lower')] }),
    (e: unknown) => {
      assert.ok(isDrayError(e, 'DRAY_INVALID_ARGUMENT'));
      assert.match(e.message, /uses redirect_dir/);
      assert.match(e.hint ?? '', /redirect_dir=off/);
      return true;
    },
  );
});

// ---------------------------------------------------------------------------------------
// determinism, compression, memory

test('determinism: same digests twice; with sourceDateEpoch they do not depend on file times', async (t) => {
  if (!needAttr(t)) return;
  const tmp = await tempDir(t);
  const a = join(tmp, 'a');
  const b = join(tmp, 'b');
  await makeLower(a);
  await makeLower(b);
  const now = Date.now() / 1000;
  for await (const e of walkTree(b)) await lutimes(e.meta.path, now + 3600, now + 3600);
  const run = async (dir: string, o: WriteDiffOptions = {}) =>
    (await layerFile(tmp, { kind: 'trees', upper: dir }, o)).r;
  assert.deepEqual(await run(a), await run(a));
  assert.notEqual((await run(a)).diffId, (await run(b)).diffId);
  const epoch = { sourceDateEpoch: 1_000_000 };
  const ra = await run(a, epoch);
  assert.deepEqual(ra, await run(b, epoch));
  const hs = await entries({ kind: 'trees', upper: a }, epoch);
  assert.ok(hs.every((h) => h.mtime === 1_000_000 && h.atime === undefined && h.ctime === undefined));
});

test('compression: gzip, zstd and none; media types; digests check out after decompressing', async (t) => {
  if (!needAttr(t)) return;
  const tmp = await tempDir(t);
  const upper = join(tmp, 'upper');
  await makeLower(upper);
  const plain = await layerFile(tmp, { kind: 'trees', upper }, { compression: 'none' });
  const tarBytes = await readFile(plain.path);
  const sha = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;
  assert.equal(plain.r.diffId, sha(tarBytes));
  assert.equal(plain.r.uncompressedSize, tarBytes.length);
  assert.deepEqual(plain.r.descriptor, {
    mediaType: MediaTypes.ociLayer,
    digest: plain.r.diffId,
    size: tarBytes.length,
  });
  const cases = [
    {
      compression: 'gzip',
      level: 0,
      oci: MediaTypes.ociLayerGzip,
      docker: MediaTypes.dockerLayerGzip,
      un: gunzipSync,
    },
    {
      compression: 'gzip',
      level: 9,
      oci: MediaTypes.ociLayerGzip,
      docker: MediaTypes.dockerLayerGzip,
      un: gunzipSync,
    },
    {
      compression: 'zstd',
      level: 3,
      oci: MediaTypes.ociLayerZstd,
      docker: MediaTypes.dockerLayerZstd,
      un: zstdDecompressSync,
    },
  ] as const;
  for (const c of cases) {
    for (const family of ['oci', 'docker'] as const) {
      const { r, path } = await layerFile(
        tmp,
        { kind: 'trees', upper },
        { compression: c.compression, level: c.level, mediaTypes: family },
      );
      const blob = await readFile(path);
      assert.equal(r.descriptor.mediaType, c[family]);
      assert.equal(r.descriptor.digest, sha(blob));
      assert.equal(r.descriptor.size, blob.length);
      assert.equal(r.diffId, plain.r.diffId, `${c.compression} ${c.level}: same tar`);
      assert.ok(c.un(blob).equals(tarBytes));
    }
  }
  const docker = await layerFile(
    tmp,
    { kind: 'trees', upper },
    { compression: 'none', mediaTypes: 'docker' },
  );
  assert.equal(docker.r.descriptor.mediaType, 'application/vnd.docker.image.rootfs.diff.tar');
});

test('errors reach close() and the readable: a missing upper', async (t) => {
  const tmp = await tempDir(t);
  const w = writeDiff({ kind: 'trees', upper: join(tmp, 'nope') }, { xattrs: false });
  const sink = pipeline(w.readable, createWriteStream(join(tmp, 'out')));
  await assert.rejects(w.close(), /ENOENT/);
  await assert.rejects(sink);
});

test('abort: a fired signal stops the diff with DRAY_ABORTED', async (t) => {
  const tmp = await tempDir(t);
  await writeFile(join(tmp, 'f'), 'x');
  const ac = new AbortController();
  ac.abort();
  const w = writeDiff({ kind: 'trees', upper: tmp }, { xattrs: false, signal: ac.signal });
  w.readable.resume();
  await assert.rejects(w.close(), (e: unknown) => isDrayError(e, 'DRAY_ABORTED'));
});

test('a 200 MB tree diffs with flat memory', { timeout: 120_000 }, async (t) => {
  if (!needAttr(t)) return;
  const tmp = await tempDir(t);
  const upper = join(tmp, 'big');
  await mkdir(join(upper, 'small'), { recursive: true });
  const chunk = Buffer.alloc(10 * 1024 * 1024);
  for (let i = 0; i < 20; i++) {
    randomFillSync(chunk, 0, i % 2 === 0 ? chunk.length : 1024 * 1024); // half random, half mostly zero
    await writeFile(join(upper, `f${String(i).padStart(2, '0')}.bin`), chunk);
  }
  for (let i = 0; i < 2000; i++) await writeFile(join(upper, 'small', `s${i}`), chunk.subarray(i, i + 3000));
  globalThis.gc?.();
  const base = process.memoryUsage().rss;
  let peak = base;
  const timer = setInterval(() => {
    peak = Math.max(peak, process.memoryUsage().rss);
  }, 20);
  let bytes = 0;
  // 'none': this measures the walk, the reads and the tar (the compressors are tested on their own).
  const w = writeDiff({ kind: 'trees', upper }, { compression: 'none' });
  const counted = Readable.from(w.readable);
  for await (const c of counted) bytes += (c as Buffer).length;
  const r = await w.close();
  clearInterval(timer);
  assert.equal(r.descriptor.size, bytes);
  assert.ok(r.uncompressedSize > 200 * 1024 * 1024);
  const grew = (peak - base) / 1024 / 1024;
  t.diagnostic(
    `rss grew ${grew.toFixed(0)} MiB for a ${(r.uncompressedSize / 1048576).toFixed(0)} MiB layer`,
  );
  assert.ok(grew < 100, `rss grew ${grew.toFixed(0)} MiB`);
});

test('zstd: a layer larger than one zstd job (> 8 MiB) comes out whole', async (t) => {
  const tmp = await tempDir(t);
  const chunk = Buffer.alloc(10 * 1024 * 1024);
  randomFillSync(chunk);
  await mkdir(join(tmp, 'up'));
  await writeFile(join(tmp, 'up', 'f'), chunk);
  const { r, path } = await layerFile(
    tmp,
    { kind: 'trees', upper: join(tmp, 'up') },
    { compression: 'zstd', xattrs: false },
  );
  assert.ok(r.uncompressedSize > chunk.length);
  assert.equal(zstdDecompressSync(await readFile(path)).length, r.uncompressedSize);
});
