import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { describe, test } from 'node:test';
import { digestOf } from '../digest/index.ts';
import { DrayError } from '../errors.ts';
import type { BlobSource } from './blob.ts';
import { maxConfigBytes, maxManifestBytes, readDocument, readLimited } from './document.ts';
import { MediaTypes } from './media-types.ts';
import type { Descriptor } from './types.ts';

const body = Buffer.from(JSON.stringify({ schemaVersion: 2, manifests: [] }));
const good: Descriptor = { mediaType: MediaTypes.ociIndex, digest: digestOf(body), size: body.length };

function sourceOf(make: () => Readable): BlobSource & { opened: number } {
  const s = {
    opened: 0,
    async open() {
      s.opened++;
      return make();
    },
  };
  return s;
}

/** A source that never stops: counts the chunks it was asked for, and whether it was destroyed. */
function endless(chunkSize: number) {
  const state = { produced: 0, destroyed: false };
  const make = () =>
    new Readable({
      read() {
        state.produced++;
        this.push(Buffer.alloc(chunkSize, 0x61));
      },
      destroy(err, cb) {
        state.destroyed = true;
        cb(err);
      },
    });
  return { state, make };
}

async function rejectsCode(p: Promise<unknown>, code: string, message?: RegExp): Promise<void> {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(e instanceof DrayError, String(e));
    assert.equal(e.code, code, e.message);
    if (message) assert.match(e.message, message);
    return true;
  });
}

describe('readDocument', () => {
  test('returns the verified bytes', async () => {
    const src = sourceOf(() => Readable.from([body.subarray(0, 5), body.subarray(5)]));
    assert.deepEqual(await readDocument(src, good), body);
  });

  test('refuses a descriptor over the limit before reading anything', async () => {
    const src = sourceOf(() => Readable.from([body]));
    await rejectsCode(
      readDocument(src, { ...good, size: maxManifestBytes + 1 }),
      'DRAY_DOCUMENT_TOO_LARGE',
      /^index sha256:[0-9a-f]{64}: size 4194305 exceeds the 4194304-byte limit$/,
    );
    await rejectsCode(readDocument(src, good, { maxBytes: body.length - 1 }), 'DRAY_DOCUMENT_TOO_LARGE');
    assert.equal(src.opened, 0);
  });

  test('a source that sends more than declared is cut off at the declared size', async () => {
    const { state, make } = endless(64 * 1024);
    const d: Descriptor = { ...good, size: 100 * 1024 };
    await rejectsCode(
      readDocument(sourceOf(make), d),
      'DRAY_SIZE_MISMATCH',
      /size exceeds the expected 102400 bytes/,
    );
    // Two chunks fit, the third overflows: the stream is destroyed instead of read to the end,
    // and the few chunks read stay far below the 4 MiB cap (stream buffering may pull a few).
    assert.ok(state.destroyed, 'source stream destroyed');
    assert.ok(state.produced * 64 * 1024 < maxManifestBytes, `read ${state.produced} chunks`);
  });

  test('a short read is a size mismatch', async () => {
    const src = sourceOf(() => Readable.from([body.subarray(0, 10)]));
    await rejectsCode(readDocument(src, good), 'DRAY_SIZE_MISMATCH', /short read/);
  });

  test('different content is a digest mismatch', async () => {
    const other = Buffer.from(body);
    other[0] = 0x20;
    const src = sourceOf(() => Readable.from([other]));
    await rejectsCode(readDocument(src, good), 'DRAY_DIGEST_MISMATCH', /digest mismatch/);
  });

  test('honours the abort signal', async () => {
    const ac = new AbortController();
    ac.abort(new Error('stop'));
    await rejectsCode(
      readDocument(
        sourceOf(() => Readable.from([body])),
        good,
        { signal: ac.signal },
      ),
      'DRAY_ABORTED',
    );
    // A source that stalls: only the signal can end the read.
    const ac2 = new AbortController();
    const stalled = sourceOf(() => new Readable({ read() {} }));
    setTimeout(() => ac2.abort(), 10);
    await rejectsCode(readDocument(stalled, good, { signal: ac2.signal }), 'DRAY_ABORTED');
  });
});

describe('readLimited', () => {
  test('reads up to and including the limit', async () => {
    assert.deepEqual(await readLimited(Readable.from([body]), body.length, 'manifest x'), body);
  });

  test('stops as soon as the limit is passed', async () => {
    const { state, make } = endless(64 * 1024);
    await rejectsCode(
      readLimited(make(), 256 * 1024, 'manifest registry.example.com/app:1.2'),
      'DRAY_DOCUMENT_TOO_LARGE',
      /^manifest registry\.example\.com\/app:1\.2: document exceeds the 262144-byte limit$/,
    );
    assert.ok(state.destroyed);
    assert.ok(state.produced < 16, `read ${state.produced} chunks`);
  });
});

test('limits', () => {
  assert.equal(maxManifestBytes, 4 * 1024 * 1024);
  assert.equal(maxConfigBytes, 8 * 1024 * 1024);
});
