import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { Readable, Writable } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import { pipeline } from 'node:stream/promises';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { type Digest, digestOf, verifyBlob } from '../digest/index.ts';
import { DrayError, isDrayError } from '../errors.ts';
import { storeError } from './fs-errors.ts';
import { ContentStore } from './index.ts';
import { generated, generatedDigest } from './testdata/gen.ts';
import { blobTargetSuite } from './testsuite.ts';

const child = fileURLToPath(new URL('./testdata/ingest-child.ts', import.meta.url));

async function tempRoot(t: { after(fn: () => Promise<void>): void }): Promise<string> {
  const root = await fs.mkdtemp(path.join(os.tmpdir(), 'dray-content-'));
  t.after(() => fs.rm(root, { recursive: true, force: true }));
  return root;
}

function code(c: string) {
  return (e: unknown) => {
    assert.ok(isDrayError(e), String(e));
    assert.equal(e.code, c, e.message);
    return true;
  };
}

async function ingestDirs(root: string): Promise<string[]> {
  return fs.readdir(path.join(root, 'content', 'ingest'));
}

function run(args: string[]): { proc: ChildProcess; done: Promise<string>; line: Promise<string> } {
  const proc = spawn(process.execPath, [child, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  let onLine: (s: string) => void = () => {};
  const line = new Promise<string>((r) => {
    onLine = r;
  });
  proc.stdout!.on('data', (c: Buffer) => {
    out += c.toString();
    if (out.includes('\n')) onLine(out.trim());
  });
  proc.stderr!.on('data', (c: Buffer) => {
    err += c.toString();
  });
  const done = new Promise<string>((resolve, reject) => {
    proc.on('exit', (code, signal) => {
      if (code === 0) resolve(out.trim().split('\n').pop() ?? '');
      else reject(new Error(`child exited ${code ?? signal}: ${err}`));
    });
  });
  return { proc, done, line };
}

blobTargetSuite('ContentStore', async () => {
  const root = await fs.mkdtemp(path.join(os.tmpdir(), 'dray-suite-'));
  const target = await ContentStore.open(root);
  return { target, cleanup: () => fs.rm(root, { recursive: true, force: true }) };
});

test('layout: blobs are read-only files named by digest; the ingest dir is emptied', async (t) => {
  const root = await tempRoot(t);
  const s = await ContentStore.open(root);
  const bytes = randomBytes(1000);
  const digest = digestOf(bytes);
  await s.put({ digest, size: 1000 }, Readable.from([bytes]));
  const p = path.join(root, 'content', 'blobs', 'sha256', digest.slice(7));
  assert.equal(s.blobPath(digest), p);
  const st = await fs.stat(p);
  assert.equal(st.mode & 0o222, 0, 'no write bits');
  assert.deepEqual(await ingestDirs(root), []);
  const info = await s.info(digest);
  assert.equal(info?.size, 1000);
  assert.ok(info && Math.abs(info.committedAt.getTime() - Date.now()) < 60_000);
});

test('ingest resumes a ref at its offset (in-process) and re-hashes the existing bytes', async (t) => {
  const root = await tempRoot(t);
  const s = await ContentStore.open(root);
  const bytes = randomBytes(200_000);
  const expected = { digest: digestOf(bytes), size: bytes.length };
  const w1 = await s.ingest({ ref: 'layer-1', expected });
  assert.equal(w1.offset, 0);
  assert.equal(w1.exists, false);
  await new Promise<void>((r, j) => w1.write(bytes.subarray(0, 70_000), (e) => (e ? j(e) : r())));
  w1.destroy(); // what pipeline does on a network error: keeps the bytes
  await new Promise((r) => w1.once('close', r));
  const w2 = await s.ingest({ ref: 'layer-1', expected });
  assert.equal(w2.offset, 70_000);
  await pipeline(Readable.from([bytes.subarray(w2.offset)]), w2);
  await w2.commit();
  assert.deepEqual(await buffer(await s.open(expected)), bytes);
  assert.deepEqual(await ingestDirs(root), []);
});

test('an ingest of a committed blob reports exists with offset = size', async (t) => {
  const root = await tempRoot(t);
  const s = await ContentStore.open(root);
  const bytes = randomBytes(5000);
  const expected = { digest: digestOf(bytes), size: bytes.length };
  await s.put(expected, Readable.from([bytes]));
  const w = await s.ingest({ ref: 'x', expected });
  assert.equal(w.exists, true);
  assert.equal(w.offset, 5000);
  await pipeline(Readable.from([]), w);
  await w.commit();
});

test('ingest without an expected size: commit checks the digest only', async (t) => {
  const root = await tempRoot(t);
  const s = await ContentStore.open(root);
  const bytes = randomBytes(3000);
  const w = await s.ingest({ ref: 'r', expected: { digest: digestOf(bytes) } });
  await pipeline(Readable.from([bytes]), w);
  await w.commit();
  assert.equal(await s.has({ digest: digestOf(bytes), size: 3000 }), true);
});

test('no write after commit, and no second commit', async (t) => {
  const root = await tempRoot(t);
  const s = await ContentStore.open(root);
  const bytes = randomBytes(100);
  const w = await s.ingest({ ref: 'r', expected: { digest: digestOf(bytes), size: 100 } });
  await pipeline(Readable.from([bytes]), w);
  await w.commit();
  await assert.rejects(w.commit(), code('DRAY_INVALID_ARGUMENT'));
  await assert.rejects(
    new Promise<void>((r, j) => w.write(Buffer.from('x'), (e) => (e ? j(e) : r()))),
    (e: Error) => /write after end|write after commit/.test(e.message),
  );
  assert.deepEqual(await buffer(await s.open({ digest: digestOf(bytes) })), bytes);
});

test('a corrupted byte in the ingest file: DRAY_DIGEST_MISMATCH, no blob, ingest discarded', async (t) => {
  const root = await tempRoot(t);
  const s = await ContentStore.open(root);
  const bytes = randomBytes(100_000);
  const expected = { digest: digestOf(bytes), size: bytes.length };
  const w1 = await s.ingest({ ref: 'r', expected });
  await new Promise<void>((r, j) => w1.write(bytes.subarray(0, 50_000), (e) => (e ? j(e) : r())));
  w1.destroy();
  await new Promise((r) => w1.once('close', r));
  // Bit rot on disk between two runs.
  const [dir] = await ingestDirs(root);
  const data = path.join(root, 'content', 'ingest', dir!, 'data');
  const fh = await fs.open(data, 'r+');
  await fh.write(Buffer.from([bytes[1234]! ^ 1]), 0, 1, 1234);
  await fh.close();
  const w2 = await s.ingest({ ref: 'r', expected });
  assert.equal(w2.offset, 50_000);
  await pipeline(Readable.from([bytes.subarray(50_000)]), w2);
  await assert.rejects(w2.commit(), (e: unknown) => {
    assert.ok(e instanceof DrayError);
    assert.equal(e.code, 'DRAY_DIGEST_MISMATCH');
    assert.match(e.message, /^failed precondition: unexpected commit digest sha256:[a-f0-9]{64}, expected /);
    assert.ok(e.hint);
    return true;
  });
  assert.equal(await s.has(expected), false);
  assert.deepEqual(await fs.readdir(path.join(root, 'content', 'blobs', 'sha256')), []);
  assert.deepEqual(await ingestDirs(root), []);
});

test('a short commit keeps the ingest for a resume', async (t) => {
  const root = await tempRoot(t);
  const s = await ContentStore.open(root);
  const bytes = randomBytes(10_000);
  const expected = { digest: digestOf(bytes), size: bytes.length };
  const w = await s.ingest({ ref: 'r', expected });
  await pipeline(Readable.from([bytes.subarray(0, 4000)]), w);
  await assert.rejects(w.commit(), (e: unknown) => {
    assert.ok(isDrayError(e, 'DRAY_SIZE_MISMATCH'));
    assert.match(e.message, /unexpected commit size 4000, expected 10000/);
    return true;
  });
  const w2 = await s.ingest({ ref: 'r', expected });
  assert.equal(w2.offset, 4000);
  await pipeline(Readable.from([bytes.subarray(4000)]), w2);
  await w2.commit();
  assert.equal(await s.has(expected), true);
});

test('abort() discards the ingest; a reused ref for other content restarts', async (t) => {
  const root = await tempRoot(t);
  const s = await ContentStore.open(root);
  const a = randomBytes(1000);
  const b = randomBytes(1000);
  const w = await s.ingest({ ref: 'r', expected: { digest: digestOf(a), size: 1000 } });
  await new Promise<void>((r, j) => w.write(a.subarray(0, 500), (e) => (e ? j(e) : r())));
  await w.abort();
  assert.deepEqual(await ingestDirs(root), []);
  const w2 = await s.ingest({ ref: 'r', expected: { digest: digestOf(a), size: 1000 } });
  await new Promise<void>((r, j) => w2.write(a.subarray(0, 500), (e) => (e ? j(e) : r())));
  w2.destroy();
  await new Promise((r) => w2.once('close', r));
  const w3 = await s.ingest({ ref: 'r', expected: { digest: digestOf(b), size: 1000 } });
  assert.equal(w3.offset, 0);
  await pipeline(Readable.from([b]), w3);
  await w3.commit();
  assert.equal(await s.has({ digest: digestOf(b) }), true);
});

test('the signal stops an ingest and leaves it resumable', async (t) => {
  const root = await tempRoot(t);
  const s = await ContentStore.open(root);
  const bytes = randomBytes(300_000);
  const expected = { digest: digestOf(bytes), size: bytes.length };
  const ac = new AbortController();
  const w = await s.ingest({ ref: 'r', expected, signal: ac.signal });
  const body = Readable.from(
    (async function* () {
      yield bytes.subarray(0, 100_000);
      await new Promise((r) => setTimeout(r, 20));
      ac.abort();
      await new Promise((r) => setTimeout(r, 20));
      yield bytes.subarray(100_000);
    })(),
  );
  await assert.rejects(pipeline(body, w), code('DRAY_ABORTED'));
  const w2 = await s.ingest({ ref: 'r', expected });
  assert.equal(w2.offset, 100_000);
  await pipeline(Readable.from([bytes.subarray(w2.offset)]), w2);
  await w2.commit();
  assert.equal(await s.has(expected), true);
});

test('open refuses symlinks and non-regular files; has and list ignore them', async (t) => {
  const root = await tempRoot(t);
  const s = await ContentStore.open(root);
  const secret = path.join(root, 'secret');
  await fs.writeFile(secret, 'hello');
  const digest = digestOf('hello');
  await fs.symlink(secret, s.blobPath(digest));
  await assert.rejects(s.open({ digest }), (e: unknown) => {
    assert.ok(isDrayError(e, 'DRAY_STORE'));
    assert.match(e.message, /symlink/);
    return true;
  });
  assert.equal(await s.has({ digest }), false);
  const dirDigest = digestOf('dir');
  await fs.mkdir(s.blobPath(dirDigest));
  await assert.rejects(s.open({ digest: dirDigest }), code('DRAY_STORE'));
  const listed = [];
  for await (const b of s.list()) listed.push(b);
  assert.deepEqual(listed, []);
});

test('open with a wrong size or offset', async (t) => {
  const root = await tempRoot(t);
  const s = await ContentStore.open(root);
  const bytes = randomBytes(10);
  const digest = digestOf(bytes);
  await s.put({ digest, size: 10 }, Readable.from([bytes]));
  await assert.rejects(s.open({ digest, size: 11 }), code('DRAY_SIZE_MISMATCH'));
  await assert.rejects(s.open({ digest }, { offset: 11 }), code('DRAY_INVALID_ARGUMENT'));
  await assert.rejects(s.open({ digest: 'sha256:nope' as Digest }), code('DRAY_INVALID_DIGEST'));
});

test('list, info and delete', async (t) => {
  const root = await tempRoot(t);
  const s = await ContentStore.open(root);
  const blobs = [randomBytes(10), randomBytes(20), randomBytes(30)];
  for (const b of blobs) await s.put({ digest: digestOf(b), size: b.length }, Readable.from([b]));
  const listed = [];
  for await (const b of s.list()) listed.push(b);
  assert.deepEqual(listed.map((b) => b.digest).sort(), blobs.map((b) => digestOf(b)).sort());
  assert.deepEqual(
    listed.map((b) => b.size).sort((a, b) => a - b),
    [10, 20, 30],
  );
  assert.equal(await s.delete(digestOf(blobs[0]!)), true);
  assert.equal(await s.delete(digestOf(blobs[0]!)), false);
  assert.equal(await s.info(digestOf(blobs[0]!)), undefined);
});

test('open() repairs crash leftovers without touching committed blobs', async (t) => {
  const root = await tempRoot(t);
  const s = await ContentStore.open(root);
  const kept = randomBytes(100);
  await s.put({ digest: digestOf(kept) }, Readable.from([kept]));
  // Leftovers: a dir without metadata, a put ingest, and a committed ingest's empty dir.
  const ingest = path.join(root, 'content', 'ingest');
  await fs.mkdir(path.join(ingest, 'a'.repeat(64)));
  const w = await s.ingest({ ref: 'resumable', expected: { digest: digestOf(randomBytes(8)), size: 8 } });
  await new Promise<void>((r, j) => w.write(Buffer.alloc(4), (e) => (e ? j(e) : r())));
  w.destroy();
  await new Promise((r) => w.once('close', r));
  const b = path.join(ingest, 'b'.repeat(64));
  await fs.mkdir(b);
  await fs.writeFile(path.join(b, 'expected'), JSON.stringify({ digest: digestOf(kept), size: 100 }));
  await fs.writeFile(path.join(b, 'data'), '');
  assert.equal((await ingestDirs(root)).length, 3);
  const s2 = await ContentStore.open(root);
  assert.equal((await ingestDirs(root)).length, 1, 'only the resumable ingest is left');
  assert.equal(await s2.has({ digest: digestOf(kept), size: 100 }), true);
});

test('ENOSPC maps to DRAY_NO_SPACE with a hint', () => {
  const e = storeError(Object.assign(new Error('no space'), { code: 'ENOSPC' }), 'ingest r', '/data');
  assert.equal(e.code, 'DRAY_NO_SPACE');
  assert.match(e.message, /no space left on device/);
  assert.match(e.hint ?? '', /\/data/);
});

test('two processes put the same 16 MiB blob at once: both succeed, one blob, no leftovers', async (t) => {
  const root = await tempRoot(t);
  const size = 16 * 1024 * 1024;
  const digest = await generatedDigest(7, size);
  await ContentStore.open(root);
  const a = run(['put', root, '7', String(size), digest]);
  const b = run(['put', root, '7', String(size), digest]);
  const s = await ContentStore.open(root, { lockStaleMs: 2000 });
  assert.deepEqual(await Promise.all([a.line, b.line]), ['start', 'start']);
  // ...and this process joins in too.
  const results = await Promise.all([a.done, b.done, s.put({ digest, size }, generated(7, size))]);
  assert.deepEqual(results.slice(0, 2), ['ok', 'ok']);
  assert.equal(await s.has({ digest, size }), true);
  const check = await s.open({ digest });
  await pipeline(check, verifyBlob({ digest, size }), new Writable({ write: (_c, _e, cb) => cb() }));
  assert.deepEqual(await ingestDirs(root), []);
});

test('a process killed mid-ingest: the same ref resumes from its offset and commits', async (t) => {
  const root = await tempRoot(t);
  const size = 4 * 1024 * 1024;
  const partial = 1536 * 1024;
  const digest = await generatedDigest(11, size);
  await ContentStore.open(root);
  const c = run(['partial', root, 'layer-ref', '11', String(size), digest, String(partial)]);
  t.after(() => {
    c.proc.kill('SIGKILL');
  });
  assert.equal(await c.line, 'ready');
  c.proc.kill('SIGKILL');
  await c.done.catch(() => {});
  const s = await ContentStore.open(root, { lockStaleMs: 2000 });
  const started = Date.now();
  // The dead process's lock is reclaimed once it has gone stale (~2 s here).
  const w = await s.ingest({
    ref: 'layer-ref',
    expected: { digest, size },
    signal: AbortSignal.timeout(20_000),
  });
  assert.ok(Date.now() - started < 15_000);
  assert.equal(w.offset, partial);
  await pipeline(generated(11, size, { from: w.offset }), w);
  await w.commit();
  assert.equal(await s.has({ digest, size }), true);
  assert.deepEqual(await ingestDirs(root), []);
});

test('a 64 MiB blob streams through put without being buffered', async (t) => {
  const root = await tempRoot(t);
  const size = 64 * 1024 * 1024;
  const digest = await generatedDigest(3, size);
  const s = await ContentStore.open(root);
  // Bytes the source has handed out, minus bytes on disk in the ingest file: what the store
  // holds in memory. (RSS would also count garbage not yet collected, which says nothing.)
  let produced = 0;
  const source = generated(3, size);
  source.on('data', (c: Buffer) => {
    produced += c.byteLength;
  });
  source.pause();
  let maxAhead = 0;
  const ingestRoot = path.join(root, 'content', 'ingest');
  const timer = setInterval(async () => {
    let onDisk = 0;
    for (const dir of await fs.readdir(ingestRoot).catch(() => [] as string[])) {
      onDisk += (await fs.stat(path.join(ingestRoot, dir, 'data')).catch(() => ({ size: 0 }))).size;
    }
    if (onDisk > 0 && onDisk < size) maxAhead = Math.max(maxAhead, produced - onDisk);
  }, 2);
  t.after(() => clearInterval(timer));
  await s.put({ digest, size }, source);
  clearInterval(timer);
  assert.equal(await s.has({ digest, size }), true);
  t.diagnostic(`source ran at most ${(maxAhead / 2 ** 20).toFixed(1)} MiB ahead of the disk`);
  assert.ok(maxAhead < 16 * 2 ** 20, `the store held ${(maxAhead / 2 ** 20).toFixed(1)} MiB in memory`);
});

test('newBlob: content whose digest is known only at the end is committed under that digest', async (t) => {
  const root = await tempRoot(t);
  const s = await ContentStore.open(root);
  const w = await s.newBlob();
  await pipeline(generated(21, 3 * 1024 * 1024 + 17), w);
  const expected = await generatedDigest(21, 3 * 1024 * 1024 + 17);
  const { digest, size } = await w.commit();
  assert.equal(digest, expected);
  assert.equal(size, 3 * 1024 * 1024 + 17);
  assert.equal(await s.has({ digest, size }), true);
  // The same content again: committed as "already exists", no temp file left behind.
  const again = await s.newBlob();
  await pipeline(generated(21, 3 * 1024 * 1024 + 17), again);
  assert.equal((await again.commit()).digest, expected);
  const leftovers = (await fs.readdir(path.join(root, 'content', 'ingest'))).filter((n) =>
    n.startsWith('new-'),
  );
  assert.deepEqual(leftovers, []);
  // Aborted: nothing visible, nothing left.
  const dropped = await s.newBlob();
  dropped.write(Buffer.from('partial'));
  await dropped.abort();
  assert.deepEqual(
    (await fs.readdir(path.join(root, 'content', 'ingest'))).filter((n) => n.startsWith('new-')),
    [],
  );
  assert.equal(await s.has({ digest: digestOf('partial') }), false);
});
