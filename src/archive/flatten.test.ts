import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import { test } from 'node:test';
import { gzipSync } from 'node:zlib';
import { isDrayError } from '../errors.ts';
import { applyLayer } from './apply.ts';
import { flattenLayers } from './flatten.ts';
import { readTar } from './tar-reader.ts';
import { type EvilEntry, evilTar } from './testdata/evil-tar.ts';
import { describe, readTree, type TreeEntry } from './testdata/fs-tree.ts';

const isRoot = process.getuid?.() === 0;

function tmp(t: { after(fn: () => void): void }): string {
  const d = mkdtempSync(join(tmpdir(), 'dray-flatten-'));
  t.after(() => rmSync(d, { recursive: true, force: true }));
  return d;
}

/** An image of 3 layers with deletions, an opaque dir, type changes and hard links across layers. */
const layers: EvilEntry[][] = [
  [
    { name: 'a/', type: 'dir', mode: 0o755, uid: 1, gid: 2 },
    { name: 'a/f1', body: 'f1 content', mode: 0o640, uid: 3, gid: 4, mtime: 100 },
    { name: 'a/f1link', type: 'link', linkname: 'a/f1' },
    { name: 'over', body: 'old over', mode: 0o600 },
    { name: 'overlink', type: 'link', linkname: 'over' },
    { name: 'overlink2', type: 'link', linkname: 'over' },
    { name: 'gone', body: 'to be deleted' },
    { name: 'gonelink', type: 'link', linkname: 'gone' },
    { name: 'opq/', type: 'dir', mode: 0o700 },
    { name: 'opq/lower', body: 'hidden' },
    { name: 'opq/sub/', type: 'dir' },
    { name: 'opq/sub/deep', body: 'hidden' },
    { name: 'fd', body: 'file then dir' },
    { name: 'dirgone/', type: 'dir' },
    { name: 'dirgone/x', body: 'x' },
    { name: 'base/', type: 'dir' },
    { name: 'base/x', body: 'base x, kept by x2link' },
    { name: 'sym', type: 'symlink', linkname: 'a/f1', uid: 5, gid: 5 },
    { name: 'fifo', type: 'fifo', mode: 0o644 },
    { name: 'setuid', body: '#!/bin/sh\n', mode: 0o4755, uid: 0, gid: 0 },
  ],
  [
    { name: '.wh.gone' },
    { name: 'over', body: 'new over', mode: 0o644 },
    { name: 'opq/', type: 'dir', mode: 0o750 },
    { name: 'opq/.wh..wh..opq' },
    { name: 'opq/new', body: 'new in opaque' },
    { name: 'fd/', type: 'dir', mode: 0o711 },
    { name: 'fd/in', body: 'inside' },
    { name: '.wh.dirgone' },
    { name: 'l1/', type: 'dir' },
    { name: 'l1/tof1', type: 'link', linkname: 'a/f1' },
  ],
  [
    { name: 'up/', type: 'dir', mode: 0o755 },
    { name: 'up/toover', type: 'link', linkname: 'over' },
    { name: 'x2link', type: 'link', linkname: 'base/x' },
    { name: 'base/', type: 'dir', mode: 0o777 },
    { name: 'base/x', body: 'replaced in layer 3', mode: 0o644 },
    { name: 'fd', body: 'dir then file again' },
    { name: 'dirgone/', type: 'dir', mode: 0o701 },
  ],
];

/** Groups of paths that share an inode, to compare hard-link structure. */
function linkGroups(tree: readonly TreeEntry[]): string[][] {
  const by = new Map<number, string[]>();
  for (const e of tree) if (e.type === 'file') by.set(e.ino, [...(by.get(e.ino) ?? []), e.path]);
  return [...by.values()]
    .filter((g) => g.length > 1)
    .map((g) => g.sort())
    .sort();
}

test('flattenLayers extracted with GNU tar equals applyLayer of every layer', async (t) => {
  if (!isRoot) return t.skip('needs root for owners');
  const base = tmp(t);
  const applied = join(base, 'applied');
  const extracted = join(base, 'extracted');
  mkdirSync(applied);
  mkdirSync(extracted);
  const blobs = layers.map((l, i) => (i === 1 ? gzipSync(evilTar(l)) : evilTar(l)));
  for (const b of blobs) await applyLayer(applied, Readable.from([b]));
  const warnings: string[] = [];
  const out = await buffer(
    flattenLayers(
      blobs.map((b) => async () => Readable.from([b])),
      { onWarning: (m) => warnings.push(m) },
    ),
  );
  writeFileSync(join(base, 'export.tar'), out);
  const r = spawnSync('tar', [
    '-x',
    '-f',
    join(base, 'export.tar'),
    '-C',
    extracted,
    '--numeric-owner',
    '-p',
    '--same-owner',
  ]);
  assert.equal(r.status, 0, r.stderr.toString());
  const a = readTree(applied);
  const b = readTree(extracted);
  assert.deepEqual(describe(b, { mtime: false }), describe(a, { mtime: false }));
  assert.deepEqual(linkGroups(b), linkGroups(a));
  assert.deepEqual(linkGroups(a), [
    ['a/f1', 'a/f1link', 'l1/tof1'],
    ['over', 'up/toover'],
    ['overlink', 'overlink2'],
  ]);
  assert.deepEqual(warnings, []);
  // no whiteouts, no duplicates, links after their targets
  const names: string[] = [];
  for await (const e of readTar(Readable.from([out]))) {
    assert.ok(!e.header.name.split('/').some((c) => c.startsWith('.wh.')), e.header.name);
    if (e.header.type === 'link')
      assert.ok(names.includes(e.header.linkname ?? ''), `${e.header.name} before its target`);
    names.push(e.header.name);
  }
  assert.equal(new Set(names).size, names.length);
  // deterministic
  const again = await buffer(flattenLayers(blobs.map((b) => async () => Readable.from([b]))));
  assert.ok(again.equals(out));
});

test('flattenLayers maps uids and gids, and rejects unmapped ids', async () => {
  const blob = evilTar([{ name: 'f', body: 'x', uid: 10, gid: 20 }]);
  const out = await buffer(
    flattenLayers([async () => Readable.from([blob])], {
      uidMap: [{ containerID: 0, hostID: 100000, size: 65536 }],
      gidMap: [{ containerID: 0, hostID: 200000, size: 65536 }],
    }),
  );
  const hs = [];
  for await (const e of readTar(Readable.from([out]))) hs.push(e.header);
  assert.deepEqual(
    hs.map((h) => [h.name, h.uid, h.gid]),
    [['f', 100010, 200020]],
  );
  await assert.rejects(
    buffer(
      flattenLayers([async () => Readable.from([blob])], {
        uidMap: [{ containerID: 0, hostID: 1, size: 5 }],
      }),
    ),
    (e: unknown) => isDrayError(e, 'DRAY_INVALID_ARGUMENT'),
  );
});

test('flattenLayers refuses a name that climbs out of the root', async () => {
  const blob = evilTar([{ name: '../x', body: 'x' }]);
  await assert.rejects(buffer(flattenLayers([async () => Readable.from([blob])])), (e: unknown) =>
    isDrayError(e, 'DRAY_UNSAFE_ARCHIVE'),
  );
});
