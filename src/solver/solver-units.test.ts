import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { copy, image, local, merge, mkdir, scratch } from './builder.ts';
import { CacheMounts } from './cache-mounts.ts';
import { HistoryStore } from './history.ts';
import { LogTail } from './log-tail.ts';
import { CacheRecords } from './records.ts';
import { canonicalJson, marshalGraph, topoSort, unmarshalGraph, vertex } from './vertex.ts';
import { changedFiles, explainMiss } from './why.ts';

async function tmp(t: { after(fn: () => Promise<void>): void }): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'dray-solver-unit-'));
  t.after(() => rm(d, { recursive: true, force: true }));
  return d;
}

test('vertex digests: same graph, same digest; names and cache flags do not count', () => {
  const a = image('docker.io/library/busybox:latest').run(['sh', '-c', 'make'], {
    env: ['A=1'],
    name: 'one',
  });
  const b = image('docker.io/library/busybox:latest').run(['sh', '-c', 'make'], {
    env: ['A=1'],
    name: 'two',
    noCache: true,
  });
  assert.equal(a.vertex?.digest, b.vertex?.digest);
  const c = image('docker.io/library/busybox:latest').run(['sh', '-c', 'make'], { env: ['A=2'] });
  assert.notEqual(a.vertex?.digest, c.vertex?.digest);
  assert.equal(
    canonicalJson({ b: 1, a: { d: undefined, c: [2, { y: 1, x: 0 }] } }),
    '{"a":{"c":[2,{"x":0,"y":1}]},"b":1}',
  );
});

test('graphs round-trip through JSON with the same digests', () => {
  const ctx = local('context', { exclude: ['*.md'] });
  const base = image('docker.io/library/busybox:latest');
  const app = base.file([copy(ctx, '/src', '/app/', { chmod: '0755' }), mkdir('/data', 0o700)], {
    name: 'COPY',
  });
  const m = merge([app, base.run(['true'])]);
  const v = m.vertex;
  assert.ok(v);
  const back = unmarshalGraph(JSON.parse(JSON.stringify(marshalGraph(v))));
  assert.equal(back.digest, v.digest);
  assert.equal(topoSort([v]).at(-1)?.digest, v.digest);
  assert.equal(merge([scratch]).vertex, undefined, 'merging nothing is scratch');
  assert.throws(() => unmarshalGraph({ vertices: [] }), /no vertices/);
  assert.throws(() => unmarshalGraph({ vertices: [{ op: { kind: 'merge' }, inputs: [3] }] }), /input 3/);
});

test('cache records persist, ignore torn files, and list', async (t) => {
  const root = await tmp(t);
  const records = new CacheRecords(root);
  const key = vertex({ kind: 'merge' }).digest;
  assert.equal(await records.get(key), undefined);
  const blob = { mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: key, size: 3 };
  await records.put({ key, layers: [{ diffId: key, blob, created: 5 }], created: 7 });
  assert.deepEqual((await new CacheRecords(root).get(key))?.layers[0]?.created, 5);
  const listed = [];
  for await (const r of records.list()) listed.push(r.key);
  assert.deepEqual(listed, [key]);
  const hex = key.slice(7);
  await writeFile(join(root, 'cache', 'records', hex.slice(0, 2), `${hex}.json`), '{"key":');
  assert.equal(await records.get(key), undefined, 'a torn record is a miss, not an error');
});

test('build history: records, whole logs, previous build, prune by age and size', async (t) => {
  const root = await tmp(t);
  const store = new HistoryStore(root);
  const b1 = await store.start({ context: '/c', target: '' });
  const v = b1.addVertex({ digest: 'sha256:x', name: '[1/1] RUN x', op: '{}', inputKeys: [] });
  const big = 'y'.repeat(3 << 20);
  b1.log(v, big);
  b1.log(v, '\nend\n');
  await b1.finish('completed');
  const log = await readFile(store.logPath(b1.id, v.step), 'utf8');
  assert.equal(log.length, big.length + 5, 'never clipped');
  assert.equal((await store.get(b1.id.slice(0, 6))).vertices[0]?.logBytes, big.length + 5);
  const b2 = await store.start({ context: '/c', target: '' });
  await b2.finish('failed', 'boom');
  assert.equal(
    (await store.previous({ context: '/c', target: '' }))?.id,
    b1.id,
    'failed builds are not compared against',
  );
  await assert.rejects(store.get('zzzz'), /no build zzzz/);
  // Age: make b1 old; keepLast 1 keeps b2.
  const rec = join(store.dir, b1.id, 'build.json');
  const doc = JSON.parse(await readFile(rec, 'utf8'));
  doc.started = Date.now() - 10 * 86_400_000;
  await writeFile(rec, JSON.stringify(doc));
  await utimes(rec, new Date(), new Date());
  const r = await store.prune({ maxAgeMs: 86_400_000 });
  assert.equal(r.removed, 1);
  assert.ok(r.bytes > 3 << 20);
  assert.deepEqual(
    (await store.list()).map((b) => b.id),
    [b2.id],
  );
  const b3 = await store.start({});
  await b3.finish('completed');
  assert.equal((await store.prune({ maxBytes: 0 })).removed, 1, 'size: the oldest go, the newest stays');
  assert.deepEqual(
    (await store.list()).map((b) => b.id),
    [b3.id],
  );
});

test('why it rebuilt: files, env, instruction, inputs', async (t) => {
  const root = await tmp(t);
  const store = new HistoryStore(root);
  const prev = await store.start({});
  const p = prev.addVertex({
    digest: 'd1',
    name: '[2/3] COPY . /app',
    op: '{"kind":"file"}',
    inputKeys: ['k0'],
    key: 'kA',
    checksums: { 'copy 0: /': 'c1' },
    meta: { stage: '0', instruction: 'COPY . /app' },
  });
  await prev.saveChecksumFiles(p, { 'copy 0: /': { '/a.txt': 'h1', '/b.txt': 'h2', '/gone.txt': 'h3' } });
  prev.addVertex({
    digest: 'd2',
    name: '[3/3] RUN make',
    op: '{"kind":"exec","env":["A=1","B=2"]}',
    inputKeys: ['kA'],
    key: 'kB',
    meta: { stage: '0', instruction: 'RUN make' },
  });
  await prev.finish('completed');
  const previous = await store.get(prev.id);
  const copyNow = {
    step: 1,
    digest: 'd1',
    name: '[2/3] COPY . /app',
    op: '{"kind":"file"}',
    inputKeys: ['k0'],
    key: 'kA2',
    checksums: { 'copy 0: /': 'c2' },
    meta: { stage: '0', instruction: 'COPY . /app' },
  };
  const files = { 'copy 0: /': { '/a.txt': 'h1', '/b.txt': 'CHANGED', '/new.txt': 'h4' } };
  assert.equal(
    await explainMiss(copyNow, new Map(), previous, store, files),
    'b.txt, gone.txt, new.txt changed',
  );
  const runNow = {
    ...copyNow,
    checksums: undefined,
    op: '{"kind":"exec","env":["A=1","B=3"]}',
    inputKeys: ['kA'],
    meta: { stage: '0', instruction: 'RUN make' },
    key: 'kB2',
  };
  assert.equal(await explainMiss(runNow, new Map(), previous, store), 'B changed');
  const runInput = { ...runNow, op: '{"kind":"exec","env":["A=1","B=2"]}', inputKeys: ['kA2'] };
  assert.equal(
    await explainMiss(runInput, new Map([['kA2', copyNow]]), previous, store),
    '[2/3] COPY . /app changed',
  );
  const edited = {
    ...runNow,
    name: '[3/3] RUN make all',
    op: '{"kind":"exec","args":["make","all"]}',
    meta: { stage: '0', instruction: 'RUN make all' },
  };
  assert.equal(await explainMiss(edited, new Map(), previous, store), 'the instruction changed');
  const added = { ...edited, name: '[4/4] RUN more', meta: { stage: '0', instruction: 'RUN more' } };
  assert.equal(await explainMiss(added, new Map(), previous, store), 'new instruction');
  assert.equal(await explainMiss(runNow, new Map(), undefined, store), undefined);
  assert.deepEqual(changedFiles({ '/a': '1', '/b': '2' }, { '/a': '1', '/b': '3', '/c': '4' }), ['/b', '/c']);
});

test('log tail keeps the last lines', () => {
  const t = new LogTail(2);
  t.push('a\nb\nc');
  t.push('d\ne\n');
  assert.deepEqual(t.lines(), ['cd', 'e']);
  t.push('partial');
  assert.deepEqual(t.lines(), ['e', 'partial']);
});

test('cache mounts: shared at once, private gets another instance, locked waits', async (t) => {
  const root = await tmp(t);
  const mounts = new CacheMounts(root);
  const a = await mounts.acquire({ id: 'npm', sharing: 'shared', mode: 0o700, uid: 5, gid: 6 });
  const b = await mounts.acquire({ id: 'npm', sharing: 'shared' });
  assert.equal(a.path, b.path);
  assert.equal(a.created, true);
  assert.equal(b.created, false);
  const st = await stat(a.path);
  assert.equal(st.mode & 0o777, 0o700);
  assert.equal(st.uid, 5);
  await a.release();
  await b.release();
  const p1 = await mounts.acquire({ id: 'apt', sharing: 'private' });
  const p2 = await mounts.acquire({ id: 'apt', sharing: 'private' });
  assert.notEqual(p1.path, p2.path, 'a busy private cache gets a second instance');
  await p1.release();
  const p3 = await mounts.acquire({ id: 'apt', sharing: 'private' });
  assert.equal(p3.path, p1.path, 'a free instance is reused');
  await p2.release();
  await p3.release();
  const l1 = await mounts.acquire({ id: 'go', sharing: 'locked' });
  let second = false;
  const l2p = mounts.acquire({ id: 'go', sharing: 'locked' }).then((h) => {
    second = true;
    return h;
  });
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(second, false, 'a locked cache waits for its holder');
  await l1.release();
  const l2 = await l2p;
  assert.equal(l2.path, l1.path);
  await l2.release();
});
