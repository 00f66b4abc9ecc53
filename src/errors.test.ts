import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { test } from 'node:test';
import { abortError, DrayError, ErrorCodes, isDrayError, throwIfAborted } from './errors.ts';

test('every error code is documented in docs/errors.md', async () => {
  const doc = await readFile(new URL('../docs/errors.md', import.meta.url), 'utf8');
  const missing = ErrorCodes.filter((c) => !doc.includes(`\`${c}\``));
  assert.deepEqual(missing, []);
});

test('DrayError keeps code, hint and cause, and serialises without the cause', () => {
  const cause = new Error('socket hang up');
  const e = new DrayError('DRAY_REGISTRY_UNREACHABLE', 'cannot reach registry r:5000', {
    cause,
    hint: 'is it running?',
  });
  assert.equal(e.code, 'DRAY_REGISTRY_UNREACHABLE');
  assert.equal(e.hint, 'is it running?');
  assert.equal(e.cause, cause);
  assert.deepEqual(JSON.parse(JSON.stringify(e)), {
    name: 'DrayError',
    code: 'DRAY_REGISTRY_UNREACHABLE',
    message: 'cannot reach registry r:5000',
    hint: 'is it running?',
  });
  assert.ok(isDrayError(e, 'DRAY_REGISTRY_UNREACHABLE'));
  assert.ok(!isDrayError(e, 'DRAY_ABORTED'));
  assert.ok(!isDrayError(new Error('x')));
});

test('instanceof works for a look-alike from another copy of the module', () => {
  const foreign = Object.assign(new Error('x'), { [Symbol.for('dray.error')]: true });
  assert.ok(foreign instanceof DrayError);
});

test('aborts become DRAY_ABORTED with the reason as cause', () => {
  const c = new AbortController();
  throwIfAborted(c.signal);
  c.abort(new Error('user pressed Ctrl-C'));
  assert.throws(
    () => throwIfAborted(c.signal, 'pull'),
    (e: unknown) => {
      assert.ok(isDrayError(e, 'DRAY_ABORTED'));
      assert.equal(e.message, 'pull aborted');
      assert.equal((e.cause as Error).message, 'user pressed Ctrl-C');
      return true;
    },
  );
  const inner = new DrayError('DRAY_NO_SPACE', 'disk full');
  const c2 = new AbortController();
  c2.abort(inner);
  assert.equal(abortError(c2.signal), inner);
});
