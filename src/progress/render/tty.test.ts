import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { ProgressEvent } from '../types.ts';
import { ansi, createRenderer } from './index.ts';
import { screen, sink } from './testing.ts';

const l1 = `sha256:a3ed95caeb02${'1'.repeat(52)}`;
const l2 = `sha256:0b5f2a2b1d3c${'2'.repeat(52)}`;
const bar = (steps: number) => `[${'='.repeat(steps)}>${' '.repeat(50 - steps)}]`;

const timeouts = () => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;

test('tty: layer lines are redrawn in place and the final state is drawn at close', async () => {
  const s = sink();
  const before = timeouts();
  const r = createRenderer('tty', s.out, { columns: 120, rows: 40, now: () => 0 });
  r.write({ id: 'm', kind: 'message', message: 'latest: Pulling from library/busybox' });
  r.write({ id: l1, kind: 'blob', status: 'Pulling fs layer' });
  r.write({ id: l2, kind: 'blob', status: 'Pulling fs layer' });
  r.write({ id: l1, kind: 'blob', status: 'Downloading', current: 12_345_678, total: 50_000_000 });
  await sleep(150);
  assert.deepEqual(screen(s.text()), [
    'latest: Pulling from library/busybox',
    `a3ed95caeb02: Downloading ${bar(12)}  12.35MB/50MB`,
    '0b5f2a2b1d3c: Pulling fs layer',
  ]);
  r.write({ id: l1, kind: 'blob', status: 'Downloading', current: 25_000_000 });
  r.write({ id: l2, kind: 'blob', status: 'Already exists', completed: 1 });
  await sleep(150);
  assert.ok(s.text().includes(ansi.up(2)), 'redraws with cursor-up');
  assert.deepEqual(screen(s.text()).slice(1), [
    `a3ed95caeb02: Downloading ${bar(25)}     25MB/50MB`,
    '0b5f2a2b1d3c: Already exists',
  ]);
  r.write({ id: l1, kind: 'blob', status: 'Pull complete', completed: 2 });
  r.write({ id: 'd', kind: 'message', message: 'Digest: sha256:abc' });
  r.close();
  assert.deepEqual(screen(s.text()), [
    'latest: Pulling from library/busybox',
    'a3ed95caeb02: Pull complete',
    '0b5f2a2b1d3c: Already exists',
    'Digest: sha256:abc',
  ]);
  const n = s.chunks.length;
  r.write({ id: l1, status: 'late' });
  r.close();
  await sleep(150);
  assert.equal(s.chunks.length, n, 'nothing drawn after close');
  assert.equal(timeouts(), before, 'no timer left behind');
});

test('tty: redraws at most ~10 times a second', async () => {
  const s = sink();
  const r = createRenderer('tty', s.out, { columns: 120, rows: 40 });
  const start = Date.now();
  for (let i = 0; i <= 100; i++) {
    r.write({ id: l1, kind: 'blob', status: 'Downloading', current: i * 1000, total: 100_000 });
    await sleep(5);
  }
  const elapsed = Date.now() - start;
  r.close();
  assert.ok(s.chunks.length <= Math.ceil(elapsed / 100) + 2, `${s.chunks.length} frames in ${elapsed} ms`);
  assert.deepEqual(screen(s.text()), [`a3ed95caeb02: Downloading ${bar(50)}    100kB/100kB`]);
});

test('tty: finished lines scroll away; a frame taller than the screen shows its tail', async () => {
  const s = sink();
  const r = createRenderer('tty', s.out, { columns: 120, rows: 4, now: () => 0 });
  const ids = Array.from({ length: 6 }, (_, i) => `sha256:${String(i).repeat(64)}`);
  for (const id of ids) r.write({ id, kind: 'blob', status: 'Waiting' });
  r.write({ id: ids[0] ?? '', status: 'Pull complete', completed: 1 });
  await sleep(150);
  const frame = s.text();
  // The finished first line was printed for good; only 3 (rows - 1) live lines were drawn.
  assert.deepEqual(screen(frame), [
    '000000000000: Pull complete',
    ...ids.slice(3).map((id) => `${id.slice(7, 19)}: Waiting`),
  ]);
  r.close();
  assert.equal(screen(s.text()).length, 6);
});

test('tty: build steps in a BuildKit-like list, collapsing when done', async () => {
  const s = sink();
  let now = 10_000;
  const r = createRenderer('tty', s.out, { columns: 60, rows: 40, now: () => now });
  const ev: ProgressEvent[] = [
    { id: 'v1', kind: 'vertex', name: '[1/2] FROM alpine', started: 10_000, completed: 10_000, cached: true },
    { id: 'v2', kind: 'vertex', name: '[2/2] RUN make', started: 10_000 },
    { id: 'v2', log: { stream: 1, data: 'cc -o app app.c\n' }, timestamp: 10_500 },
    { id: 'v3', kind: 'vertex', name: 'exporting to image' },
  ];
  for (const e of ev) r.write(e);
  now = 11_200;
  await sleep(150);
  const live = screen(s.text());
  assert.equal(live[0], '[+] Building 1.2s (1/3)');
  assert.match(live[1] ?? '', /^ => CACHED \[1\/2\] FROM alpine +0\.0s$/);
  assert.match(live[2] ?? '', /^ => \[2\/2\] RUN make +1\.2s$/);
  assert.equal(live[3], ' => => # cc -o app app.c');
  assert.equal(live.length, 4);
  assert.equal((live[1] ?? '').length, 59);
  r.write({ id: 'v2', completed: 12_000 });
  r.write({ id: 'v3', started: 12_000, completed: 12_300 });
  now = 13_000;
  r.close();
  const final = screen(s.text());
  assert.equal(final[0], '[+] Building 2.3s (3/3) FINISHED');
  assert.match(final[2] ?? '', /^ => \[2\/2\] RUN make +2\.0s$/);
  assert.match(final[3] ?? '', /^ => exporting to image +0\.3s$/);
  assert.equal(final.length, 4);
});
