import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { describe as suite, test } from 'node:test';
import { gzipSync, zstdCompressSync } from 'node:zlib';
import { isDrayError } from '../errors.ts';
import { type ApplyOptions, applyLayer } from './apply.ts';
import { FileBatcher } from './file-batcher.ts';
import { type EvilEntry, evilCases, evilTar } from './testdata/evil-tar.ts';
import { describe, getXattrs, has, readTree } from './testdata/fs-tree.ts';

const isRoot = process.getuid?.() === 0;
const CI = process.env.CI === 'true';

function tmp(t: { after(fn: () => void): void }, prefix = 'dray-apply-'): string {
  const d = mkdtempSync(join(tmpdir(), prefix));
  t.after(() => {
    spawnSync('umount', ['-l', join(d, 'merged')]);
    rmSync(d, { recursive: true, force: true });
  });
  return d;
}

/** Skips loudly when a tool is missing; fails under CI=true (STYLE.md §5 Tests). */
function need(t: { skip(m: string): void }, cmd: string): boolean {
  if (has(cmd)) return true;
  if (CI) assert.fail(`${cmd} not on PATH (CI=true)`);
  t.skip(`${cmd} not on PATH`);
  return false;
}

async function apply(root: string, entries: EvilEntry[] | Buffer, o: ApplyOptions = {}) {
  const tar = Buffer.isBuffer(entries) ? entries : evilTar(entries);
  return applyLayer(root, Readable.from([tar]), o);
}

function sentinel(dir: string): void {
  mkdirSync(join(dir, 'sub'), { recursive: true });
  writeFileSync(join(dir, 'passwd'), 'root:x:0:0::/root:/bin/sh\n');
  writeFileSync(join(dir, 'sub', 'secret'), 'keep me');
  spawnSync('chmod', ['0750', dir]);
}

/** 200 small files first: the small files after them are written by the worker thread. */
const WORKER_FILLER: EvilEntry[] = [
  { name: 'zz-filler/', type: 'dir' },
  ...Array.from({ length: 200 }, (_, i) => ({ name: `zz-filler/f${i}`, body: `${i}` })),
];

suite('applyLayer: malicious corpus leaves the host untouched', () => {
  test('the corpus has at least 15 cases', () => {
    assert.ok(evilCases.length >= 15, `${evilCases.length} cases`);
  });
  for (const [c, filler] of evilCases.flatMap((c) => [
    [c, false],
    [c, true],
  ]) as Array<[(typeof evilCases)[number], boolean]>) {
    const how = 'refused' in c.outcome ? `refused (${c.outcome.refused})` : 'confined';
    test(`${c.name}: ${how}${filler ? ' (small files on the worker)' : ''}`, async (t) => {
      if (c.entries('').some((e) => e.xattrs) && !need(t, 'setfattr')) return;
      const base = tmp(t, 'dray-evil-');
      const root = join(base, 'root');
      const outside = join(base, 'outside');
      mkdirSync(root);
      sentinel(outside);
      const before = describe(readTree(base, { skip: (p) => p === 'root' }));
      const hostBefore = describe(readTree('/etc', { skip: (p) => p !== 'passwd' }));
      const warnings: string[] = [];
      const entries = filler ? [...WORKER_FILLER, ...c.entries(outside)] : c.entries(outside);
      const run = apply(root, entries, { ...c.options, onWarning: (m) => warnings.push(m) });
      if ('refused' in c.outcome) {
        const code = c.outcome.refused;
        await assert.rejects(run, (err: unknown) => {
          assert.ok(isDrayError(err, code), `expected ${code}, got ${String(err)}`);
          return true;
        });
      } else {
        await run;
        for (const e of c.expectInRoot?.(outside) ?? []) {
          const p = join(root, e.path);
          if (e.type === 'absent') {
            assert.equal(existsSync(p), false, `${e.path} must not exist`);
            continue;
          }
          const st = lstatSync(p);
          const type = st.isSymbolicLink() ? 'symlink' : st.isDirectory() ? 'dir' : 'file';
          assert.equal(type, e.type, e.path);
          if (e.content !== undefined) assert.equal(readFileSync(p, 'utf8'), e.content);
        }
      }
      assert.deepEqual(
        describe(readTree(base, { skip: (p) => p === 'root' })),
        before,
        'outside the root changed',
      );
      assert.deepEqual(describe(readTree('/etc', { skip: (p) => p !== 'passwd' })), hostBefore);
      assert.equal(existsSync(join(base, 'x')), false);
      if (c.options?.privileged === false) assert.equal(warnings.length, 1);
    });
  }
});

suite('applyLayer: entry types and metadata', () => {
  test('files, dirs, symlinks, hard links, fifos, devices, owners, modes, mtimes, xattrs', async (t) => {
    if (!need(t, 'setfattr')) return;
    if (!isRoot) return t.skip('needs root for owners and devices');
    const root = tmp(t);
    const cap = Buffer.from('0100000200200000000000000000000000000000', 'hex');
    const tar = evilTar([
      { name: './', type: 'dir', mode: 0o700 },
      { name: 'ro/', type: 'dir', mode: 0o555, uid: 7, gid: 8, mtime: 1000 },
      { name: 'ro/setuid', body: 'x', mode: 0o4755, uid: 1000, gid: 1000, mtime: 2000 },
      { name: 'ro/sticky/', type: 'dir', mode: 0o1777, mtime: 3000 },
      { name: 'ro/setgid-dir/', type: 'dir', mode: 0o2775, uid: 5, gid: 5, mtime: 3000 },
      {
        name: 'cap',
        body: 'ping',
        mode: 0o755,
        uid: 1,
        gid: 1,
        xattrs: { 'security.capability': cap, 'user.k': 'v' },
      },
      { name: 'ln', type: 'symlink', linkname: 'ro/setuid', uid: 3, gid: 4, mtime: 4000 },
      { name: 'hard', type: 'link', linkname: 'ro/setuid' },
      { name: 'fifo', type: 'fifo', mode: 0o640, uid: 9, gid: 9, mtime: 5000 },
      { name: 'null', type: 'char', devmajor: 1, devminor: 3, mode: 0o666 },
      { name: 'loop', type: 'block', devmajor: 7, devminor: 0, mode: 0o660 },
      { name: 'implicit/parent/file', body: 'deep' },
    ]);
    const r = await apply(root, tar);
    assert.equal(r.size, tar.length);
    assert.equal(r.diffId, `sha256:${createHash('sha256').update(tar).digest('hex')}`);
    assert.equal(r.entries, 12);
    const tree = new Map(readTree(root).map((e) => [e.path, e]));
    const get = (p: string) => {
      const e = tree.get(p);
      assert.ok(e, `${p} missing`);
      return e;
    };
    assert.deepEqual(
      [get('ro').mode, get('ro').uid, get('ro').gid, get('ro').mtime, get('ro').type],
      [0o555, 7, 8, 1000, 'dir'],
    );
    assert.deepEqual(
      [get('ro/setuid').mode, get('ro/setuid').uid, get('ro/setuid').mtime],
      [0o4755, 1000, 2000],
    );
    assert.equal(get('ro/sticky').mode, 0o1777);
    assert.equal(get('ro/setgid-dir').mode, 0o2775);
    assert.deepEqual(
      [get('ln').type, get('ln').link, get('ln').uid, get('ln').gid, get('ln').mtime],
      ['symlink', 'ro/setuid', 3, 4, 4000],
    );
    assert.equal(get('hard').ino, get('ro/setuid').ino);
    assert.deepEqual(
      [get('fifo').type, get('fifo').mode, get('fifo').uid, get('fifo').mtime],
      ['fifo', 0o640, 9, 5000],
    );
    assert.deepEqual([get('null').type, get('null').rdev], ['char', 259]);
    assert.deepEqual([get('loop').type, get('loop').rdev], ['block', 7 << 8]);
    assert.deepEqual([get('implicit').type, get('implicit').mode], ['dir', 0o755]);
    assert.equal(readFileSync(join(root, 'implicit/parent/file'), 'utf8'), 'deep');
    assert.equal(get('cap').uid, 1);
    const x = getXattrs(join(root, 'cap'));
    assert.deepEqual(x?.get('security.capability'), cap, 'capability survives chown');
    assert.deepEqual(x?.get('user.k'), Buffer.from('v'));
  });

  test('gzip and zstd layers are detected; diffID is of the uncompressed tar', async (t) => {
    const tar = evilTar([{ name: 'a', body: 'hello' }]);
    const want = `sha256:${createHash('sha256').update(tar).digest('hex')}`;
    for (const blob of [gzipSync(tar), zstdCompressSync(tar), tar]) {
      const root = tmp(t);
      const r = await apply(root, blob);
      assert.equal(r.diffId, want);
      assert.equal(r.size, tar.length);
      assert.equal(readFileSync(join(root, 'a'), 'utf8'), 'hello');
    }
  });

  test('replacement rules: file <-> dir <-> symlink, hard link replaces a file, re-applied dir keeps children', async (t) => {
    const root = tmp(t);
    await apply(root, [
      { name: 'f', body: 'file' },
      { name: 'd/', type: 'dir' },
      { name: 'd/child', body: 'c' },
      { name: 's', type: 'symlink', linkname: 'd' },
      { name: 'keep/', type: 'dir', mode: 0o700 },
      { name: 'keep/x', body: 'x' },
    ]);
    await apply(root, [
      { name: 'f/', type: 'dir' },
      { name: 'f/in', body: 'now a dir' },
      { name: 'd', body: 'now a file' },
      { name: 's/', type: 'dir' },
      { name: 'keep/', type: 'dir', mode: 0o751 },
      { name: 'h', type: 'link', linkname: 'keep/x' },
    ]);
    const t2 = new Map(readTree(root).map((e) => [e.path, e]));
    assert.equal(t2.get('f')?.type, 'dir');
    assert.equal(readFileSync(join(root, 'f/in'), 'utf8'), 'now a dir');
    assert.equal(t2.get('d')?.type, 'file');
    assert.equal(t2.has('d/child'), false);
    assert.equal(t2.get('s')?.type, 'dir');
    assert.equal(t2.get('keep')?.mode, 0o751);
    assert.equal(t2.get('keep/x')?.ino, t2.get('h')?.ino);
    await apply(root, [{ name: 'f', body: 'file again' }]);
    assert.equal(readFileSync(join(root, 'f'), 'utf8'), 'file again');
  });

  test('hard link to a missing target or a directory is invalid', async (t) => {
    const root = tmp(t);
    for (const entries of [
      [{ name: 'h', type: 'link', linkname: 'nope' }],
      [
        { name: 'd/', type: 'dir' },
        { name: 'h', type: 'link', linkname: 'd' },
      ],
    ] as EvilEntry[][]) {
      await assert.rejects(apply(root, entries), (e: unknown) => isDrayError(e, 'DRAY_INVALID_ARCHIVE'));
    }
  });

  test('aborted before start', async (t) => {
    const root = tmp(t);
    await assert.rejects(
      apply(root, [{ name: 'a', body: 'x' }], { signal: AbortSignal.abort() }),
      (e: unknown) => isDrayError(e, 'DRAY_ABORTED'),
    );
  });
});

/** Three layers exercising whiteouts; shared with the overlay test. */
const whiteoutLayers: EvilEntry[][] = [
  [
    { name: 'etc/', type: 'dir' },
    { name: 'etc/gone', body: 'deleted later' },
    { name: 'etc/kept', body: 'kept' },
    { name: 'opq/', type: 'dir', mode: 0o750 },
    { name: 'opq/lower1', body: 'hidden by opaque' },
    { name: 'opq/sub/', type: 'dir' },
    { name: 'opq/sub/lower2', body: 'hidden by opaque' },
    { name: 'opq2/', type: 'dir' },
    { name: 'opq2/lower', body: 'hidden by opaque' },
    { name: 'flip', body: 'file first' },
    { name: 'tree/', type: 'dir' },
    { name: 'tree/a/', type: 'dir' },
    { name: 'tree/a/b', body: 'b' },
  ],
  [
    { name: 'etc/', type: 'dir' },
    { name: 'etc/.wh.gone' },
    // opaque marker before this layer's entries
    { name: 'opq/', type: 'dir', mode: 0o750 },
    { name: 'opq/.wh..wh..opq' },
    { name: 'opq/upper', body: 'upper' },
    // opaque marker after this layer's entries
    { name: 'opq2/', type: 'dir' },
    { name: 'opq2/upper/', type: 'dir' },
    { name: 'opq2/upper/x', body: 'x' },
    { name: 'opq2/.wh..wh..opq' },
    { name: 'flip/', type: 'dir' },
    { name: 'flip/inside', body: 'now a dir' },
    { name: '.wh.tree' },
  ],
  [
    { name: '.wh.flip' },
    { name: 'flip', body: 'file again' },
    { name: 'tree/', type: 'dir' },
    { name: 'tree/new', body: 'new' },
  ],
];

const expectedAfterWhiteouts = [
  '.',
  'etc',
  'etc/kept',
  'flip',
  'opq',
  'opq/upper',
  'opq2',
  'opq2/upper',
  'opq2/upper/x',
  'tree',
  'tree/new',
];

suite('applyLayer: whiteouts', () => {
  test('deletion, opaque before and after, file -> dir -> file, dir deleted and re-created', async (t) => {
    const root = tmp(t);
    for (const l of whiteoutLayers) await apply(root, l);
    const tree = readTree(root);
    assert.deepEqual(
      tree.map((e) => e.path),
      expectedAfterWhiteouts,
    );
    assert.equal(readFileSync(join(root, 'flip'), 'utf8'), 'file again');
    assert.equal(tree.find((e) => e.path === 'opq')?.mode, 0o750);
  });

  test('a whiteout never removes an entry of its own layer', async (t) => {
    const root = tmp(t);
    await apply(root, [
      { name: 'd/', type: 'dir' },
      { name: 'd/lower', body: 'l' },
    ]);
    await apply(root, [
      { name: 'f', body: 'same layer' },
      { name: '.wh.f' },
      { name: 'd/', type: 'dir' },
      { name: 'd/mine', body: 'm' },
      { name: '.wh.d' },
    ]);
    assert.deepEqual(
      readTree(root).map((e) => e.path),
      ['.', 'd', 'd/mine', 'f'],
    );
  });

  test("overlayfs mode writes overlay's whiteouts; a mounted overlay shows what 'apply' gives", async (t) => {
    if (!isRoot) return t.skip('needs root');
    if (!need(t, 'setfattr')) return;
    const base = tmp(t);
    const dirs = ['applied', 'lower', 'upper1', 'upper2', 'merged'].map((d) => join(base, d));
    for (const d of dirs) mkdirSync(d);
    const [applied, lower, upper1, upper2, merged] = dirs as [string, string, string, string, string];
    for (const l of whiteoutLayers) await apply(applied, l);
    await apply(lower, whiteoutLayers[0] as EvilEntry[]);
    await apply(upper1, whiteoutLayers[1] as EvilEntry[], { whiteouts: 'overlayfs' });
    await apply(upper2, whiteoutLayers[2] as EvilEntry[], { whiteouts: 'overlayfs' });
    const gone = lstatSync(join(upper1, 'etc/gone'));
    assert.ok(gone.isCharacterDevice());
    assert.equal(gone.rdev, 0);
    assert.deepEqual(getXattrs(join(upper1, 'opq'))?.get('trusted.overlay.opaque'), Buffer.from('y'));
    assert.deepEqual(getXattrs(join(upper1, 'opq2'))?.get('trusted.overlay.opaque'), Buffer.from('y'));
    assert.equal(existsSync(join(upper1, 'opq/lower1')), false);
    // read-only overlay of the three layers, upper first (what the snapshotter mounts)
    const m = spawnSync('mount', [
      '-t',
      'overlay',
      'overlay',
      '-o',
      `lowerdir=${upper2}:${upper1}:${lower}`,
      merged,
    ]);
    if (m.status !== 0) {
      if (CI) assert.fail(`mount -t overlay failed: ${m.stderr}`);
      return t.skip(`mount -t overlay failed: ${m.stderr}`);
    }
    assert.deepEqual(
      describe(readTree(merged), { mtime: false }),
      describe(readTree(applied), { mtime: false }),
    );
  });
});

suite('applyLayer: small files written on the worker', () => {
  // The same layers applied with and without 300 small files in front (which sends the
  // later small files through the worker): the trees must come out the same.
  const filler = (n: number): EvilEntry[] => [
    { name: 'fill/', type: 'dir' },
    ...Array.from({ length: n }, (_, i) => ({ name: `fill/f${i}`, body: `filler ${i}\n`, mtime: 1000 + i })),
  ];
  const lower: EvilEntry[] = [
    { name: 'ow', body: 'lower' },
    { name: 'dirfile/', type: 'dir' },
    { name: 'dirfile/child', body: 'c' },
    { name: 'lnk', type: 'symlink', linkname: 'ow' },
    { name: 'target/', type: 'dir' },
    { name: 'viadir', type: 'symlink', linkname: 'target' },
    { name: 'gone', body: 'deleted by a whiteout' },
  ];
  const upper = (xattrs: boolean): EvilEntry[] => [
    { name: 'ow', body: 'upper', mode: 0o600, mtime: 7 },
    { name: 'dirfile', body: 'a file now' },
    { name: 'lnk', body: 'a file, not a link' },
    { name: 'dup', body: 'first' },
    { name: 'dup', body: 'second wins', mode: 0o640 },
    { name: 'mine', body: 'made by this layer' },
    { name: '.wh.mine' },
    { name: '.wh.gone' },
    { name: 'hl-src', body: 'linked' },
    { name: 'hl', type: 'link', linkname: 'hl-src' },
    { name: 'viadir/inside', body: 'through a symlinked parent' },
    { name: 'special', body: 'x', mode: 0o4755, uid: isRoot ? 1000 : 0, gid: isRoot ? 1000 : 0, mtime: 99 },
    ...(xattrs ? [{ name: 'withx', body: 'x', xattrs: { 'user.k': 'v' } }] : []),
    { name: 'big', body: Buffer.alloc(200 * 1024, 7) },
  ];

  test('same tree as the direct path: overwrites, replaced dirs and links, duplicates, whiteouts, hard links', async (t) => {
    const xattrs = has('setfattr');
    const trees: string[][] = [];
    for (const n of [0, 300]) {
      const root = tmp(t);
      await apply(root, [...filler(n), ...lower]);
      const before = FileBatcher.filesQueued;
      await apply(root, [...filler(n), ...upper(xattrs)]);
      const queued = FileBatcher.filesQueued - before;
      if (n === 0) assert.equal(queued, 0);
      else assert.ok(queued > 150, `${queued} files went through the worker`);
      if (xattrs) assert.deepEqual(getXattrs(join(root, 'withx'))?.get('user.k'), Buffer.from('v'));
      assert.equal(readFileSync(join(root, 'dup'), 'utf8'), 'second wins');
      assert.equal(readFileSync(join(root, 'ow'), 'utf8'), 'upper');
      assert.equal(readFileSync(join(root, 'lnk'), 'utf8'), 'a file, not a link');
      assert.equal(readFileSync(join(root, 'target/inside'), 'utf8'), 'through a symlinked parent');
      assert.equal(existsSync(join(root, 'mine')), true);
      assert.equal(existsSync(join(root, 'gone')), false);
      assert.equal(lstatSync(join(root, 'hl')).ino, lstatSync(join(root, 'hl-src')).ino);
      // Directories this layer only wrote into carry the time of the run: compared without
      // mtimes, and files' mtimes checked on their own.
      const tree = readTree(root, { skip: (p) => p.startsWith('fill') });
      trees.push(describe(tree, { mtime: false }));
      const mtimes = new Map(tree.filter((e) => e.type !== 'dir').map((e) => [e.path, e.mtime]));
      assert.deepEqual([mtimes.get('ow'), mtimes.get('special'), mtimes.get('dup')], [7, 99, 1_700_000_000]);
    }
    assert.deepEqual(trees[1], trees[0]);
    assert.ok(trees[0]?.some((l) => /^dirfile file /.test(l)) ?? false, trees[0]?.join('\n'));
  });

  test('a layer that fails midway leaves nothing being written once applyLayer has returned', async (t) => {
    const root = tmp(t);
    const tar = evilTar([...filler(2000)], { end: false });
    // cut inside the data of the last files: the reader fails after ~1,900 queued files
    await assert.rejects(apply(root, tar.subarray(0, tar.length - 40 * 512 - 100)), (e) =>
      isDrayError(e, 'DRAY_INVALID_ARCHIVE'),
    );
    const count = () => readTree(root).length;
    const now = count();
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(count(), now);
    assert.ok(now > 1000, `${now} entries written`);
  });

  test('a queued file used as a parent directory is refused as on the direct path', async (t) => {
    for (const n of [0, 300]) {
      const root = tmp(t);
      await assert.rejects(
        apply(root, [...filler(n), { name: 'p', body: 'a file' }, { name: 'p/x', body: 'under a file' }]),
        (e) => isDrayError(e, 'DRAY_INVALID_ARCHIVE'),
      );
    }
  });
});
