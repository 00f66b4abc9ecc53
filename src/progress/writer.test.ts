import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { ProgressEvent } from './types.ts';
import {
  collectProgress,
  mergeEvent,
  mergeProgress,
  noProgress,
  oneOff,
  prefixed,
  step,
  tee,
} from './writer.ts';

const clock = (...times: number[]) => {
  let i = 0;
  return () => times[Math.min(i++, times.length - 1)] ?? 0;
};

test('noProgress accepts and drops everything', () => {
  noProgress.write({ id: 'x' });
  noProgress.close();
  noProgress.write({ id: 'x' });
});

test('oneOff: success marks the step completed and returns the value', () => {
  const c = collectProgress();
  const done = oneOff(c, 'send tarball', { now: clock(1000, 1300) });
  assert.deepEqual(c.events, [
    { id: 'send tarball', kind: 'step', name: 'send tarball', started: 1000, timestamp: 1000 },
  ]);
  assert.equal(done(42), 42);
  assert.deepEqual(c.events[1], {
    id: 'send tarball',
    kind: 'step',
    name: 'send tarball',
    started: 1000,
    completed: 1300,
    timestamp: 1300,
  });
});

test('oneOff: an Error marks the step failed and is rethrown; only the first call reports', () => {
  const c = collectProgress();
  const done = oneOff(c, 'resolve', { id: 'r1', group: 'g', now: clock(5, 9) });
  const err = new Error('manifest unknown');
  assert.throws(
    () => done(err),
    (e) => e === err,
  );
  assert.equal(c.events.length, 2);
  assert.equal(c.events[1]?.error, 'manifest unknown');
  assert.equal(c.events[1]?.completed, 9);
  assert.equal(c.events[1]?.group, 'g');
  assert.equal(c.events[1]?.id, 'r1');
  assert.equal(done('again'), 'again');
  assert.equal(c.events.length, 2);
});

test('oneOff tolerates an undefined writer', () => {
  const done = oneOff(undefined, 'x');
  assert.equal(done('v'), 'v');
  assert.throws(() => done(new Error('e')), /e/);
});

test('step: async success', async () => {
  const c = collectProgress();
  const v = await step(c, 'export', async () => 'ok', { now: clock(1, 2) });
  assert.equal(v, 'ok');
  assert.deepEqual(c.state('export'), {
    id: 'export',
    kind: 'step',
    name: 'export',
    started: 1,
    completed: 2,
    timestamp: 2,
  });
});

test('step: async rejection is reported and rethrown unchanged', async () => {
  const c = collectProgress();
  const err = new TypeError('boom');
  await assert.rejects(
    step(c, 'export', async () => {
      throw err;
    }),
    (e) => e === err,
  );
  assert.equal(c.state('export')?.error, 'boom');
  assert.ok(c.state('export')?.completed !== undefined);
  // A thrown non-Error is rethrown as is.
  await assert.rejects(
    step(c, 'odd', () => {
      throw 'str';
    }),
    (e) => e === 'str',
  );
  assert.equal(c.state('odd')?.error, 'str');
});

test('prefixed sets group and does not close its parent', () => {
  const c = collectProgress();
  const p = prefixed(c, 'docker.io/library/busybox:latest');
  p.write({ id: 'a', group: 'other' });
  p.close();
  p.write({ id: 'b' });
  assert.deepEqual(c.events, [{ id: 'a', group: 'docker.io/library/busybox:latest' }]);
  assert.equal(c.closed, false);
});

test('tee writes to every writer and closes them all', () => {
  const a = collectProgress();
  const b = collectProgress();
  const t = tee(a, undefined, b);
  t.write({ id: 'x', status: 'Waiting' });
  t.close();
  t.write({ id: 'y' });
  assert.deepEqual(a.events, [{ id: 'x', status: 'Waiting' }]);
  assert.deepEqual(b.events, a.events);
  assert.ok(a.closed && b.closed);
  assert.equal(a.writesAfterClose, 0);
});

test('collectProgress ignores and counts writes after close, and merges state per id', () => {
  const c = collectProgress();
  c.write({ id: 'l', status: 'Downloading', current: 1, total: 10 });
  c.write({ id: 'm', kind: 'message', message: 'hi' });
  c.write({ id: 'l', current: 5 });
  c.close();
  c.write({ id: 'l', current: 9 });
  assert.equal(c.events.length, 3);
  assert.equal(c.writesAfterClose, 1);
  assert.deepEqual(c.state('l'), { id: 'l', status: 'Downloading', current: 5, total: 10 });
  assert.deepEqual(c.ids(), ['l', 'm']);
});

test('mergeEvent keeps fields the update leaves out, drops log and message', () => {
  const a: ProgressEvent = { id: 'x', status: 'A', total: 3, log: { stream: 1, data: 'x' }, message: 'm' };
  assert.deepEqual(mergeEvent(a, { id: 'x', current: 2, status: undefined }), {
    id: 'x',
    status: 'A',
    total: 3,
    current: 2,
  });
});

test('mergeProgress keeps only the newest state per id until flushed', () => {
  const c = collectProgress();
  const m = mergeProgress(c, { intervalMs: 60_000 });
  m.write({ id: 'a', kind: 'blob', status: 'Downloading', total: 100, current: 0 });
  m.write({ id: 'b', kind: 'blob', status: 'Waiting' });
  for (let i = 1; i <= 1000; i++) m.write({ id: 'a', current: i / 10 });
  assert.equal(c.events.length, 0);
  m.flush();
  assert.deepEqual(c.events, [
    { id: 'a', kind: 'blob', status: 'Downloading', total: 100, current: 100 },
    { id: 'b', kind: 'blob', status: 'Waiting' },
  ]);
  m.flush();
  assert.equal(c.events.length, 2);
});

test('mergeProgress joins log chunks, keeps messages in order, flushes on close', () => {
  const c = collectProgress();
  const m = mergeProgress(c, { intervalMs: 60_000 });
  m.write({ id: 's', kind: 'step', started: 1, log: { stream: 1, data: 'a\n' } });
  m.write({ id: 's', log: { stream: 1, data: 'b\n' } });
  m.write({ id: 's', log: { stream: 2, data: 'err\n' } });
  m.write({ id: 'msg', kind: 'message', message: 'Digest: sha256:x' });
  m.write({ id: 's', completed: 5 });
  m.close();
  assert.deepEqual(c.events, [
    { id: 's', kind: 'step', started: 1, log: { stream: 1, data: 'a\nb\n' } },
    { id: 's', log: { stream: 2, data: 'err\n' } },
    { id: 'msg', kind: 'message', message: 'Digest: sha256:x' },
    { id: 's', completed: 5 },
  ]);
  assert.ok(c.closed);
  m.write({ id: 's', current: 1 });
  m.flush();
  assert.equal(c.events.length, 4);
  assert.equal(c.writesAfterClose, 0);
});

test('mergeProgress flushes on its timer', async () => {
  const c = collectProgress();
  const m = mergeProgress(c, { intervalMs: 5 });
  m.write({ id: 'a', current: 1 });
  m.write({ id: 'a', current: 2 });
  await new Promise((r) => setTimeout(r, 30));
  assert.deepEqual(c.events, [{ id: 'a', current: 2 }]);
  m.close();
});
