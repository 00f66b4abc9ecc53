import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { ProgressEvent } from '../types.ts';
import { createRenderer } from './index.ts';
import { sink } from './testing.ts';

const l1 = `sha256:a3ed95caeb02${'1'.repeat(52)}`;
const l2 = `sha256:0b5f2a2b1d3c${'2'.repeat(52)}`;
const l3 = `sha256:ffe0c1d2e3f4${'3'.repeat(52)}`;

/** What copyGraph and pull write for a three-layer pull, one layer already present. */
export const scriptedPull: ProgressEvent[] = [
  { id: 'pull:busybox', kind: 'message', message: 'latest: Pulling from library/busybox' },
  { id: l1, kind: 'blob', status: 'Pulling fs layer' },
  { id: l2, kind: 'blob', status: 'Pulling fs layer' },
  { id: l3, kind: 'blob', status: 'Pulling fs layer' },
  { id: l2, kind: 'blob', status: 'Already exists', completed: 10 },
  { id: l1, kind: 'blob', status: 'Downloading', current: 0, total: 50_000_000, started: 0 },
  { id: l3, kind: 'blob', status: 'Waiting' },
  { id: l1, kind: 'blob', status: 'Downloading', current: 12_345_678, total: 50_000_000 },
  { id: l1, kind: 'blob', status: 'Downloading', current: 49_000_000, total: 50_000_000 },
  { id: l1, kind: 'blob', status: 'Verifying Checksum', current: 50_000_000, total: 50_000_000 },
  { id: l3, kind: 'blob', status: 'Downloading', current: 100, total: 700 },
  { id: l1, kind: 'blob', status: 'Download complete' },
  { id: l1, kind: 'blob', status: 'Pull complete', completed: 20 },
  { id: l3, kind: 'blob', status: 'Downloading', current: 700, total: 700 },
  { id: l3, kind: 'blob', status: 'Pull complete', completed: 30 },
  { id: 'digest:busybox', kind: 'message', message: `Digest: sha256:${'d'.repeat(64)}` },
  { id: 'status:busybox', kind: 'message', message: 'Status: Downloaded newer image for busybox:latest' },
];

test('plain: a scripted pull prints one line per status change, no bars', () => {
  const s = sink();
  const r = createRenderer('plain', s.out, { now: () => 0 });
  for (const e of scriptedPull) r.write(e);
  r.close();
  assert.equal(
    s.text(),
    [
      'latest: Pulling from library/busybox',
      'a3ed95caeb02: Pulling fs layer',
      '0b5f2a2b1d3c: Pulling fs layer',
      'ffe0c1d2e3f4: Pulling fs layer',
      '0b5f2a2b1d3c: Already exists',
      'a3ed95caeb02: Downloading',
      'ffe0c1d2e3f4: Waiting',
      'a3ed95caeb02: Verifying Checksum',
      'ffe0c1d2e3f4: Downloading',
      'a3ed95caeb02: Download complete',
      'a3ed95caeb02: Pull complete',
      'ffe0c1d2e3f4: Pull complete',
      `Digest: sha256:${'d'.repeat(64)}`,
      'Status: Downloaded newer image for busybox:latest',
      '',
    ].join('\n'),
  );
});

test('plain: a failed transfer names the error', () => {
  const s = sink();
  const r = createRenderer('plain', s.out);
  r.write({ id: l1, kind: 'blob', status: 'Downloading', current: 1, total: 2 });
  r.write({ id: l1, error: 'unexpected EOF', completed: 1 });
  r.close();
  assert.equal(s.text(), 'a3ed95caeb02: Downloading\na3ed95caeb02: Downloading: unexpected EOF\n');
});

const t0 = 1_700_000_000_000;

/** A build as the solver would report it, with explicit timestamps. */
const scriptedBuild: ProgressEvent[] = [
  { id: 'v1', kind: 'vertex', name: '[internal] load build definition from Dockerfile', started: t0 },
  { id: 'v2', kind: 'vertex', name: '[1/3] FROM docker.io/library/alpine:3.20' },
  { id: 'v3', kind: 'vertex', name: '[2/3] RUN echo hi && sleep 1' },
  { id: 'v4', kind: 'vertex', name: '[3/3] RUN false' },
  { id: 'v1', status: 'transferring dockerfile', current: 37, timestamp: t0 + 10 },
  { id: 'v1', completed: t0 + 20 },
  { id: 'v2', started: t0 + 20, completed: t0 + 20, cached: true },
  { id: 'v3', started: t0 + 100 },
  { id: 'v3', log: { stream: 1, data: 'hi\nthe' }, timestamp: t0 + 412 },
  { id: 'v3', log: { stream: 1, data: 're\n' }, timestamp: t0 + 900 },
  { id: 'v4', started: t0 + 1000 },
  { id: 'v4', log: { stream: 2, data: 'boom\n' }, timestamp: t0 + 1100 },
  { id: 'v3', log: { stream: 1, data: 'last' }, timestamp: t0 + 1500 },
  { id: 'v3', completed: t0 + 1600 },
  {
    id: 'v4',
    completed: t0 + 1200,
    error: 'process "/bin/sh -c false" did not complete successfully: exit code: 1',
  },
];

test('plain: build steps as BuildKit prints them', () => {
  const s = sink();
  const r = createRenderer('plain', s.out, { now: () => t0 + 5000 });
  for (const e of scriptedBuild) r.write(e);
  r.close();
  assert.equal(
    s.text(),
    [
      '#1 [internal] load build definition from Dockerfile',
      '#1 transferring dockerfile 37B',
      '#1 DONE 0.0s',
      '',
      '#2 [1/3] FROM docker.io/library/alpine:3.20',
      '#2 CACHED',
      '',
      '#3 [2/3] RUN echo hi && sleep 1',
      '#3 0.312 hi',
      '#3 0.312 there',
      '#3 ...',
      '',
      '#4 [3/3] RUN false',
      '#4 0.100 boom',
      '#4 ...',
      '',
      '#3 [2/3] RUN echo hi && sleep 1',
      '#3 1.400 last',
      '#3 DONE 1.5s',
      '',
      '#4 [3/3] RUN false',
      '#4 ERROR: process "/bin/sh -c false" did not complete successfully: exit code: 1',
      '',
    ].join('\n'),
  );
});

test('plain: one-off steps from oneOff, and write after close is ignored', () => {
  const s = sink();
  const r = createRenderer('plain', s.out);
  r.write({ id: 'resolve', kind: 'step', name: 'resolve docker.io/library/busybox:latest', started: 0 });
  r.write({ id: 'resolve', kind: 'step', completed: 250 });
  r.close();
  r.write({ id: 'late', kind: 'step', name: 'late', started: 1 });
  assert.equal(s.text(), '#1 resolve docker.io/library/busybox:latest\n#1 DONE 0.3s\n');
});

test('plain: an unfinished log line is printed at close', () => {
  const s = sink();
  const r = createRenderer('plain', s.out);
  r.write({ id: 'x', kind: 'step', name: 'x', started: 0 });
  r.write({ id: 'x', log: { stream: 1, data: 'no newline' }, timestamp: 50 });
  r.close();
  assert.equal(s.text(), '#1 x\n#1 0.050 no newline\n');
});

test('rawjson: one JSON event per line, every update kept, timestamps added', () => {
  const s = sink();
  const r = createRenderer('rawjson', s.out, { now: () => 42 });
  for (const e of scriptedPull) r.write(e);
  r.close();
  r.write({ id: 'late' });
  const lines = s.text().trimEnd().split('\n');
  assert.equal(lines.length, scriptedPull.length);
  const parsed = lines.map((l) => JSON.parse(l) as ProgressEvent);
  assert.deepEqual(parsed[0], { ...scriptedPull[0], timestamp: 42 });
  assert.deepEqual(parsed.at(-3), { ...scriptedPull.at(-3), timestamp: 42 });
  assert.ok(s.text().endsWith('\n'));
});

test('quiet: nothing', () => {
  const s = sink();
  const r = createRenderer('quiet', s.out);
  for (const e of scriptedPull) r.write(e);
  r.close();
  assert.equal(s.text(), '');
});
