import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import { describe, test } from 'node:test';
import { type Digest, digestOf } from '../digest/index.ts';
import { isDrayError } from '../errors.ts';
import type { BlobSource, BlobTarget, Descriptor } from '../oci/index.ts';

/** A store under test and how to dispose of it. */
export interface BlobTargetUnderTest {
  target: BlobTarget & BlobSource;
  cleanup(): Promise<void>;
}

const layerType = 'application/vnd.oci.image.layer.v1.tar';

function blob(size: number): { bytes: Buffer; desc: Descriptor } {
  const bytes = randomBytes(size);
  return { bytes, desc: { mediaType: layerType, digest: digestOf(bytes), size } };
}

/** A body delivered in small chunks, as a network stream would be. */
function chunked(bytes: Buffer, chunk = 4096): Readable {
  return Readable.from(
    (function* () {
      for (let i = 0; i < bytes.length; i += chunk) yield bytes.subarray(i, i + chunk);
    })(),
  );
}

function rejectsWith(code: string) {
  return (e: unknown) => {
    assert.ok(isDrayError(e), `expected a DrayError ${code}, got ${String(e)}`);
    assert.equal(e.code, code, e.message);
    return true;
  };
}

/**
 * The conformance suite every `BlobTarget & BlobSource` runs (cf. containerd's
 * `core/content/testsuite` ContentSuite): put/has/open, reads from an offset, "already
 * exists" as success, and that a digest or size mismatch leaves nothing visible. `make`
 * is called once per test for a fresh, empty target.
 */
export function blobTargetSuite(name: string, make: () => Promise<BlobTargetUnderTest>): void {
  describe(`blobTargetSuite: ${name}`, () => {
    const fresh = async (t: { after(fn: () => Promise<void>): void }) => {
      const u = await make();
      t.after(() => u.cleanup());
      return u.target;
    };

    test('put, then has and open return the same bytes', async (t) => {
      const s = await fresh(t);
      const { bytes, desc } = blob(300_000);
      assert.equal(await s.has(desc), false);
      await s.put(desc, chunked(bytes));
      assert.equal(await s.has(desc), true);
      assert.deepEqual(await buffer(await s.open(desc)), bytes);
    });

    test('an empty blob', async (t) => {
      const s = await fresh(t);
      const { bytes, desc } = blob(0);
      await s.put(desc, Readable.from([]));
      assert.equal(await s.has(desc), true);
      assert.equal((await buffer(await s.open(desc))).length, bytes.length);
    });

    test('has is false for an absent blob and for a wrong size', async (t) => {
      const s = await fresh(t);
      const { bytes, desc } = blob(1000);
      assert.equal(await s.has(desc), false);
      await s.put(desc, chunked(bytes));
      assert.equal(await s.has({ ...desc, size: 999 }), false);
    });

    test('open of an absent blob throws DRAY_BLOB_UNKNOWN', async (t) => {
      const s = await fresh(t);
      await assert.rejects(s.open(blob(10).desc), rejectsWith('DRAY_BLOB_UNKNOWN'));
    });

    test('open from an offset returns the tail', async (t) => {
      const s = await fresh(t);
      const { bytes, desc } = blob(100_000);
      await s.put(desc, chunked(bytes));
      assert.deepEqual(await buffer(await s.open(desc, { offset: 12_345 })), bytes.subarray(12_345));
      assert.equal((await buffer(await s.open(desc, { offset: desc.size }))).length, 0);
    });

    test('put of a blob that already exists succeeds and does not fail on the body', async (t) => {
      const s = await fresh(t);
      const { bytes, desc } = blob(50_000);
      await s.put(desc, chunked(bytes));
      const again = chunked(bytes);
      let failed: unknown;
      again.on('error', (e) => {
        failed = e;
      });
      await s.put(desc, again);
      assert.equal(failed, undefined);
      assert.deepEqual(await buffer(await s.open(desc)), bytes);
    });

    test('concurrent puts of the same blob both succeed', async (t) => {
      const s = await fresh(t);
      const { bytes, desc } = blob(2_000_000);
      await Promise.all([s.put(desc, chunked(bytes)), s.put(desc, chunked(bytes))]);
      assert.deepEqual(await buffer(await s.open(desc)), bytes);
    });

    test('a digest mismatch throws DRAY_DIGEST_MISMATCH and leaves nothing', async (t) => {
      const s = await fresh(t);
      const { bytes, desc } = blob(10_000);
      const bad = Buffer.from(bytes);
      bad[5000] = (bad[5000] ?? 0) ^ 0xff;
      await assert.rejects(s.put(desc, chunked(bad)), rejectsWith('DRAY_DIGEST_MISMATCH'));
      assert.equal(await s.has(desc), false);
      await assert.rejects(s.open(desc), rejectsWith('DRAY_BLOB_UNKNOWN'));
      // The failure must not poison a later, correct put.
      await s.put(desc, chunked(bytes));
      assert.equal(await s.has(desc), true);
    });

    test('a body longer than the descriptor throws DRAY_SIZE_MISMATCH and leaves nothing', async (t) => {
      const s = await fresh(t);
      const { bytes, desc } = blob(10_000);
      const longer = Buffer.concat([bytes, Buffer.from('extra')]);
      await assert.rejects(s.put(desc, chunked(longer)), rejectsWith('DRAY_SIZE_MISMATCH'));
      assert.equal(await s.has(desc), false);
      const asLonger: Descriptor = { ...desc, digest: digestOf(longer) as Digest };
      assert.equal(await s.has(asLonger), false);
    });

    test('a short body throws DRAY_SIZE_MISMATCH and leaves nothing', async (t) => {
      const s = await fresh(t);
      const { bytes, desc } = blob(10_000);
      await assert.rejects(s.put(desc, chunked(bytes.subarray(0, 9000))), rejectsWith('DRAY_SIZE_MISMATCH'));
      assert.equal(await s.has(desc), false);
    });

    test('an aborted put throws DRAY_ABORTED and leaves nothing', async (t) => {
      const s = await fresh(t);
      const { bytes, desc } = blob(1_000_000);
      const ac = new AbortController();
      const body = Readable.from(
        (async function* () {
          yield bytes.subarray(0, 4096);
          ac.abort();
          yield bytes.subarray(4096);
        })(),
      );
      await assert.rejects(s.put(desc, body, { signal: ac.signal }), rejectsWith('DRAY_ABORTED'));
      assert.equal(await s.has(desc), false);
    });

    test('an already-aborted signal is honoured up front', async (t) => {
      const s = await fresh(t);
      const { bytes, desc } = blob(100);
      await assert.rejects(
        s.put(desc, chunked(bytes), { signal: AbortSignal.abort() }),
        rejectsWith('DRAY_ABORTED'),
      );
      assert.equal(await s.has(desc), false);
    });
  });
}
