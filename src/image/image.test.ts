import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { type Digest, digestOf } from '../digest/index.ts';
import { isDrayError } from '../errors.ts';
import type { Descriptor } from '../oci/index.ts';
import { ImageStore } from './index.ts';

const child = fileURLToPath(new URL('./testdata/tag-child.ts', import.meta.url));

async function tempRoot(t: { after(fn: () => Promise<void>): void }): Promise<string> {
  const root = await fs.mkdtemp(path.join(os.tmpdir(), 'dray-images-'));
  t.after(() => fs.rm(root, { recursive: true, force: true }));
  return root;
}

function manifest(s: string): Descriptor {
  return { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: digestOf(s), size: s.length };
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
    if (out.includes('\n')) onLine(out.slice(0, out.indexOf('\n')));
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

test('tag, resolve, get, list (sorted), remove; records persist', async (t) => {
  const root = await tempRoot(t);
  const s = await ImageStore.open(root);
  const a = manifest('a');
  const b = manifest('b');
  await s.tag('docker.io/library/busybox:latest', a);
  await s.tag('docker.io/library/alpine:3.20', b);
  await s.tag(`docker.io/library/alpine@sha256:${'cd'.repeat(32)}`, b);
  assert.deepEqual(await s.resolve('docker.io/library/busybox:latest'), a);
  const s2 = await ImageStore.open(root);
  assert.deepEqual(
    (await s2.list()).map((r) => r.name),
    [
      'docker.io/library/alpine:3.20',
      `docker.io/library/alpine@sha256:${'cd'.repeat(32)}`,
      'docker.io/library/busybox:latest',
    ],
  );
  const rec = await s2.get('docker.io/library/alpine:3.20');
  assert.ok(rec);
  assert.equal(rec.created, rec.updated);
  assert.ok(!Number.isNaN(Date.parse(rec.created)));
  const removed = await s2.remove('docker.io/library/alpine:3.20');
  assert.deepEqual(removed.target, b);
  assert.equal(await s.get('docker.io/library/alpine:3.20'), undefined);
});

test('retagging keeps created and moves updated; the same target writes nothing', async (t) => {
  const root = await tempRoot(t);
  const s = await ImageStore.open(root);
  await s.tag('x:1', manifest('a'));
  const first = await s.get('x:1');
  const mtime = (await fs.stat(path.join(root, 'images.json'))).mtimeMs;
  await new Promise((r) => setTimeout(r, 15));
  await s.tag('x:1', manifest('a'));
  assert.equal((await fs.stat(path.join(root, 'images.json'))).mtimeMs, mtime);
  await s.tag('x:1', manifest('b'));
  const second = await s.get('x:1');
  assert.equal(second?.created, first?.created);
  assert.notEqual(second?.updated, first?.updated);
  assert.deepEqual(second?.target, manifest('b'));
});

test('resolve and remove of an unknown name: DRAY_NOT_FOUND with a pull hint', async (t) => {
  const root = await tempRoot(t);
  const s = await ImageStore.open(root);
  await assert.rejects(s.resolve('docker.io/library/nope:latest'), (e: unknown) => {
    assert.ok(isDrayError(e, 'DRAY_NOT_FOUND'));
    assert.equal(e.message, 'no such image: docker.io/library/nope:latest');
    assert.equal(e.hint, "run 'dray pull docker.io/library/nope:latest'");
    return true;
  });
  await assert.rejects(s.remove('nope'), (e: unknown) => isDrayError(e, 'DRAY_NOT_FOUND'));
});

test('invalid names and descriptors are refused', async (t) => {
  const root = await tempRoot(t);
  const s = await ImageStore.open(root);
  await assert.rejects(s.tag('', manifest('a')), (e: unknown) => isDrayError(e, 'DRAY_INVALID_ARGUMENT'));
  await assert.rejects(s.tag('a b', manifest('a')), (e: unknown) => isDrayError(e, 'DRAY_INVALID_ARGUMENT'));
  await assert.rejects(s.tag('x', { ...manifest('a'), digest: 'sha256:zz' as Digest }), (e: unknown) =>
    isDrayError(e, 'DRAY_INVALID_DIGEST'),
  );
  await assert.rejects(
    s.update((m) => {
      m.set('key', { name: 'other', target: manifest('a'), created: 'x', updated: 'y' });
    }),
    (e: unknown) => isDrayError(e, 'DRAY_INVALID_ARGUMENT'),
  );
  assert.deepEqual(await s.list(), []);
});

test('update: a throwing fn writes nothing; an async fn is awaited', async (t) => {
  const root = await tempRoot(t);
  const s = await ImageStore.open(root);
  await s.tag('keep', manifest('a'));
  const before = await fs.readFile(path.join(root, 'images.json'), 'utf8');
  await assert.rejects(
    s.update((m) => {
      m.delete('keep');
      throw new Error('changed my mind');
    }),
    /changed my mind/,
  );
  assert.equal(await fs.readFile(path.join(root, 'images.json'), 'utf8'), before);
  await s.update(async (m) => {
    await new Promise((r) => setTimeout(r, 5));
    const now = new Date().toISOString();
    m.set('new', { name: 'new', target: manifest('n'), created: now, updated: now });
  });
  assert.deepEqual(
    (await s.list()).map((r) => r.name),
    ['keep', 'new'],
  );
});

test('a corrupt images.json: open works, reads and writes throw DRAY_STORE with a hint, the file is untouched', async (t) => {
  const root = await tempRoot(t);
  const file = path.join(root, 'images.json');
  await fs.writeFile(file, '{"version":1,"images":[{"name":');
  const s = await ImageStore.open(root);
  for (const op of [() => s.list(), () => s.resolve('x'), () => s.tag('x', manifest('a'))]) {
    await assert.rejects(op(), (e: unknown) => {
      assert.ok(isDrayError(e, 'DRAY_STORE'));
      assert.match(e.message, /images\.json is corrupt/);
      assert.match(e.hint ?? '', /move it aside/);
      return true;
    });
  }
  assert.equal(await fs.readFile(file, 'utf8'), '{"version":1,"images":[{"name":');
  // Schema violations count as corruption too.
  await fs.writeFile(
    file,
    JSON.stringify({ version: 1, images: [{ name: 'x', target: { digest: 'nope' } }] }),
  );
  await assert.rejects(s.get('x'), (e: unknown) => isDrayError(e, 'DRAY_STORE'));
});

test('crash leftovers: temp files are never read as the store and open() removes them', async (t) => {
  const root = await tempRoot(t);
  const s = await ImageStore.open(root);
  await s.tag('real', manifest('a'));
  // A writer that died between writing its temp file and the rename (one partial, one complete).
  await fs.writeFile(path.join(root, 'images.json.999.aaaa.tmp'), '{"version":1,"imag');
  await fs.writeFile(path.join(root, 'images.json.999.bbbb.tmp'), JSON.stringify({ version: 1, images: [] }));
  assert.deepEqual(
    (await s.list()).map((r) => r.name),
    ['real'],
  );
  await ImageStore.open(root);
  assert.deepEqual((await fs.readdir(root)).sort(), ['images.json', 'locks']);
  assert.deepEqual(
    (await s.list()).map((r) => r.name),
    ['real'],
  );
});

test('concurrent taggers in two processes (and this one) lose no update', async (t) => {
  const root = await tempRoot(t);
  const n = 30;
  await ImageStore.open(root);
  const a = run(['tag', root, 'a', String(n)]);
  const b = run(['tag', root, 'b', String(n)]);
  const s = await ImageStore.open(root, { lockStaleMs: 2000 });
  await Promise.all([a.line, b.line]);
  const mine = (async () => {
    for (let i = 0; i < n; i++) await s.tag(`example.com/c:${i}`, manifest(String(i)));
  })();
  assert.deepEqual(await Promise.all([a.done, b.done]), ['ok', 'ok']);
  await mine;
  const names = (await s.list()).map((r) => r.name);
  assert.equal(names.length, 3 * n);
  assert.equal(new Set(names).size, 3 * n);
  assert.deepEqual(
    (await fs.readdir(root)).filter((f) => f.endsWith('.tmp')),
    [],
  );
});

test('a writer killed while holding the lock: its lock is reclaimed and the next tag succeeds', async (t) => {
  const root = await tempRoot(t);
  const s = await ImageStore.open(root, { lockStaleMs: 2000, lockTimeoutMs: 20_000 });
  await s.tag('before', manifest('a'));
  const c = run(['hold', root]);
  t.after(() => {
    c.proc.kill('SIGKILL');
  });
  assert.equal(await c.line, 'ready');
  c.proc.kill('SIGKILL');
  await c.done.catch(() => {});
  await s.tag('after', manifest('b'));
  assert.deepEqual(
    (await s.list()).map((r) => r.name),
    ['after', 'before'],
  );
});

test('a held lock times out with DRAY_STORE_LOCKED', async (t) => {
  const root = await tempRoot(t);
  const s = await ImageStore.open(root, { lockTimeoutMs: 300 });
  let release: () => void = () => {};
  const held = s.update(() => new Promise<void>((r) => (release = r)));
  await new Promise((r) => setTimeout(r, 50));
  await assert.rejects(s.tag('x', manifest('a')), (e: unknown) => {
    assert.ok(isDrayError(e, 'DRAY_STORE_LOCKED'));
    assert.match(e.message, /is locked by another process/);
    return true;
  });
  release();
  await held;
  await s.tag('x', manifest('a'));
});

test('an aborted signal is honoured before taking the lock', async (t) => {
  const root = await tempRoot(t);
  const s = await ImageStore.open(root);
  await assert.rejects(s.tag('x', manifest('a'), { signal: AbortSignal.abort() }), (e: unknown) =>
    isDrayError(e, 'DRAY_ABORTED'),
  );
  await assert.rejects(s.resolve('x', { signal: AbortSignal.abort() }), (e: unknown) =>
    isDrayError(e, 'DRAY_ABORTED'),
  );
});
