import assert from 'node:assert/strict';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { test } from 'node:test';
import { isDrayError } from '../errors.ts';
import { digestOf, parseDigest, shortDigest, verifyBlob } from './index.ts';

const sink = () =>
  new Writable({
    write(_c, _e, cb) {
      cb();
    },
  });
const data = Buffer.from('hello, blob');
const expected = { digest: digestOf(data), size: data.length };
const run = (chunks: Buffer[], o: Parameters<typeof verifyBlob>[1] = {}, exp = expected) =>
  pipeline(Readable.from(chunks), verifyBlob(exp, o), sink());

test('verifyBlob passes matching content through', async () => {
  await run([data.subarray(0, 4), data.subarray(4)]);
});

test('verifyBlob fails on a digest mismatch, a short read, and overflow before EOF', async () => {
  const other = Buffer.from('hello, blub');
  await assert.rejects(
    run([other]),
    (e) => isDrayError(e, 'DRAY_DIGEST_MISMATCH') && /digest mismatch/.test(e.message),
  );
  await assert.rejects(
    run([data.subarray(0, 5)]),
    (e) => isDrayError(e, 'DRAY_SIZE_MISMATCH') && /short read/.test(e.message),
  );
  let pulled = 0;
  // An endless source: the check must stop it as soon as it passes the declared size.
  const endless = new Readable({
    read() {
      pulled++;
      this.push(Buffer.alloc(1024));
    },
  });
  await assert.rejects(pipeline(endless, verifyBlob(expected), sink()), (e) =>
    isDrayError(e, 'DRAY_SIZE_MISMATCH'),
  );
  assert.ok(pulled < 100);
});

test('verifyBlob sizeOnly checks the size but not the digest', async () => {
  await run([Buffer.from('hello, blub')], { sizeOnly: true });
  await assert.rejects(run([data, data], { sizeOnly: true }), (e) => isDrayError(e, 'DRAY_SIZE_MISMATCH'));
});

test('parseDigest accepts sha256/sha512 and rejects the rest with DRAY_INVALID_DIGEST', () => {
  const d = digestOf('x');
  assert.equal(parseDigest(d), d);
  assert.equal(shortDigest(d), d.slice(7, 19));
  for (const bad of [
    'sha256:abc',
    'md5:d41d8cd98f00b204e9800998ecf8427e',
    'sha256',
    `sha256:${'A'.repeat(64)}`,
  ]) {
    assert.throws(
      () => parseDigest(bad),
      (e) => isDrayError(e, 'DRAY_INVALID_DIGEST'),
      bad,
    );
  }
  assert.equal(parseDigest(digestOf('x', 'sha512')).length, 7 + 128);
});
