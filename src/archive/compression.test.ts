import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { Readable } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import { test } from 'node:test';
import { gunzipSync, gzipSync, zstdCompressSync } from 'node:zlib';
import { isDrayError } from '../errors.ts';
import { compressStream, createParallelGzip, decompressStream, detectCompression } from './index.ts';

/** Seeded xorshift bytes: incompressible but reproducible. */
function randomBytes(n: number, seed = 1): Buffer {
  const b = Buffer.allocUnsafe(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    b[i] = x & 0xff;
  }
  return b;
}

/** Compressible text-like data from a seeded word list. */
function textBytes(n: number, seed = 7): Buffer {
  const words = ['layer', 'image', 'manifest', 'digest', 'sha256', 'tar', 'gzip', 'blob', 'index', 'config'];
  const r = randomBytes(Math.ceil(n / 4), seed);
  const parts: string[] = [];
  let len = 0;
  for (let i = 0; len < n; i++) {
    const w = `${words[r[i % r.length]! % words.length]!}${r[(i * 7) % r.length]! % 10 === 0 ? '\n' : ' '}`;
    parts.push(w);
    len += w.length;
  }
  return Buffer.from(parts.join('').slice(0, n));
}

/** Pushes `data` in uneven chunks so block boundaries never line up with writes. */
function source(data: Buffer, seed = 3): Readable {
  const sizes = randomBytes(4096, seed);
  let pos = 0;
  let i = 0;
  return new Readable({
    read() {
      if (pos >= data.length) return void this.push(null);
      const n = 1 + sizes[i++ % sizes.length]! * 300;
      this.push(data.subarray(pos, pos + n));
      pos += n;
    },
  });
}

async function compress(data: Buffer, o: Parameters<typeof compressStream>[0]): Promise<Buffer> {
  return buffer(source(data).pipe(compressStream(o)));
}

function gzipCli(data: Buffer): Buffer {
  const r = spawnSync('gzip', ['-dc'], { input: data, maxBuffer: 1 << 30 });
  assert.equal(r.status, 0, r.stderr?.toString());
  return r.stdout;
}

const hasGzip = spawnSync('gzip', ['--version']).status === 0;

test('detectCompression', () => {
  assert.equal(detectCompression(Buffer.from([0x1f, 0x8b, 8])), 'gzip');
  assert.equal(detectCompression(Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 0])), 'zstd');
  assert.equal(detectCompression(Buffer.from('ustar')), 'none');
  assert.equal(detectCompression(Buffer.from([0x28, 0xb5])), 'none');
  assert.equal(detectCompression(Buffer.alloc(0)), 'none');
});

test('round trips: gzip 0–9, zstd, none, through decompressStream', async () => {
  const data = Buffer.concat([textBytes(700_000), randomBytes(300_000)]);
  for (const o of [
    { compression: 'gzip', level: 0 },
    { compression: 'gzip', level: 1 },
    { compression: 'gzip' },
    { compression: 'gzip', level: 9 },
    { compression: 'zstd' },
    { compression: 'zstd', level: 19 },
    { compression: 'none' },
  ] as const) {
    const z = await compress(data, o);
    assert.equal(detectCompression(z), o.compression, JSON.stringify(o));
    const back = await buffer(await decompressStream(source(z)));
    assert.ok(back.equals(data), JSON.stringify(o));
  }
});

test('decompressStream: multi-member gzip, tiny and empty inputs', async () => {
  const a = Buffer.from('first member ');
  const b = Buffer.from('second member');
  const multi = Buffer.concat([gzipSync(a), gzipSync(b)]);
  assert.equal(
    (await buffer(await decompressStream(Readable.from([multi])))).toString(),
    'first member second member',
  );
  assert.equal((await buffer(await decompressStream(Readable.from([Buffer.from('x')])))).toString(), 'x');
  assert.equal((await buffer(await decompressStream(Readable.from([])))).length, 0);
  // magic split over chunks
  const z = zstdCompressSync(Buffer.from('zstd!'));
  const split = Readable.from([z.subarray(0, 1), z.subarray(1, 3), z.subarray(3)]);
  assert.equal((await buffer(await decompressStream(split))).toString(), 'zstd!');
});

test('decompressStream: corrupt or truncated data → DRAY_INVALID_ARCHIVE', async () => {
  const z = gzipSync(randomBytes(100_000));
  for (const bad of [
    z.subarray(0, z.length - 100),
    Buffer.concat([z.subarray(0, 20), Buffer.alloc(100, 0xff)]),
  ]) {
    await assert.rejects(
      async () => buffer(await decompressStream(Readable.from([bad]))),
      (e: unknown) =>
        isDrayError(e, 'DRAY_INVALID_ARCHIVE') && /gzip stream is corrupt/.test((e as Error).message),
    );
  }
  const zs = zstdCompressSync(randomBytes(100_000));
  await assert.rejects(
    async () => buffer(await decompressStream(Readable.from([zs.subarray(0, 5000)]))),
    (e: unknown) => isDrayError(e, 'DRAY_INVALID_ARCHIVE'),
  );
});

test('compressStream: invalid levels → DRAY_INVALID_ARGUMENT', () => {
  for (const o of [
    { compression: 'gzip', level: 10 },
    { compression: 'gzip', level: -1 },
    { compression: 'zstd', level: 0 },
    { compression: 'zstd', level: 23 },
  ] as const) {
    assert.throws(
      () => compressStream(o),
      (e: unknown) => isDrayError(e, 'DRAY_INVALID_ARGUMENT'),
    );
  }
});

test('parallel gzip: one member that gzip -d and gunzip decode, deterministic across runs and worker counts', async (t) => {
  const data = Buffer.concat([textBytes(3_000_000), randomBytes(1_000_000), textBytes(1 << 20)]);
  const runs: Buffer[] = [];
  for (const workers of [1, 2, 4]) {
    runs.push(await buffer(source(data, workers).pipe(createParallelGzip({ level: 6, workers }))));
  }
  // block size is the only knob that changes bytes
  runs.push(await buffer(source(data, 9).pipe(createParallelGzip({ level: 6 }))));
  for (const r of runs) assert.ok(r.equals(runs[0]!));
  const z = runs[0]!;
  assert.deepEqual([...z.subarray(0, 4)], [0x1f, 0x8b, 8, 0]);
  assert.ok(gunzipSync(z).equals(data));
  // a single member: ISIZE at the end is the whole length
  assert.equal(z.readUInt32LE(z.length - 4), data.length);
  if (hasGzip) assert.ok(gzipCli(z).equals(data));
  else if (process.env.CI === 'true') assert.fail('gzip is required under CI');
  else t.diagnostic('gzip not on PATH: gzip -d check skipped');
  // ratio close to serial zlib
  const serial = gzipSync(data, { level: 6 });
  assert.ok(z.length < serial.length * 1.02, `parallel ${z.length} vs serial ${serial.length}`);
});

test('parallel gzip: edge sizes (empty, one block, exact multiples)', async () => {
  for (const n of [0, 1, 65_536, 1024 * 1024, 1024 * 1024 + 1, 2 * 1024 * 1024]) {
    const data = textBytes(n, n + 1);
    const z = await buffer(source(data).pipe(createParallelGzip({ level: 6 })));
    assert.ok(gunzipSync(z).equals(data), `size ${n}`);
    if (hasGzip) assert.ok(gzipCli(z).equals(data), `size ${n} (gzip -d)`);
    const again = await buffer(Readable.from([data]).pipe(createParallelGzip({ level: 6 })));
    assert.ok(again.equals(z), `size ${n} deterministic`);
  }
  assert.throws(
    () => createParallelGzip({ level: 0 }),
    (e: unknown) => isDrayError(e, 'DRAY_INVALID_ARGUMENT'),
  );
  assert.throws(
    () => createParallelGzip({ blockSize: 1000 }),
    (e: unknown) => isDrayError(e, 'DRAY_INVALID_ARGUMENT'),
  );
});

test('serial zlib gzip stays available for level 0 (stored)', async () => {
  const data = randomBytes(100_000);
  const z = await compress(data, { compression: 'gzip', level: 0 });
  assert.ok(z.length > data.length);
  assert.ok(gunzipSync(z).equals(data));
});
