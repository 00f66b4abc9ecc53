import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  chown,
  lstat,
  mkdir,
  mkdtemp,
  open,
  readdir,
  readFile,
  readlink,
  rm,
  writeFile,
} from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import { describe, type TestContext, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { gzipSync } from 'node:zlib';
import { type LayerFiles, makeTar } from '../../test/harness/oci-fixture.ts';
import { isCI } from '../../test/harness/tools.ts';
import { applyLayer, readTar, type WriteDiffOptions } from '../archive/index.ts';
import type { Digest } from '../digest/index.ts';
import { isDrayError } from '../errors.ts';
import { mountsUnder } from './host.ts';
import { createSnapshotter } from './index.ts';
import type { ActiveSnapshot, OpenLayer, Snapshotter, SnapshotterKind } from './types.ts';

/**
 * The conformance suite every snapshotter kind runs (cf. containerd's snapshots/testsuite):
 * real layers (tars made in code), real mounts for overlay, real files. Each test gets a fresh
 * root in $TMPDIR and unmounts and removes it afterwards.
 */

interface Layer {
  diffId: Digest;
  tar: Buffer;
}

function sha256(b: Buffer): Digest {
  return `sha256:${createHash('sha256').update(b).digest('hex')}` as Digest;
}

function layer(files: LayerFiles): Layer {
  const tar = makeTar(files);
  return { diffId: sha256(tar), tar };
}

/** Serves layers from memory, counting opens per diffID; `gzip` layers are served compressed. */
function server(layers: Layer[], o: { gzip?: boolean; chunkDelayMs?: number } = {}) {
  const byId = new Map(layers.map((l) => [l.diffId as string, l]));
  const opened = new Map<string, number>();
  const open: OpenLayer = async (diffId) => {
    const l = byId.get(diffId);
    if (!l) throw new Error(`test server: no layer ${diffId}`);
    opened.set(diffId, (opened.get(diffId) ?? 0) + 1);
    const body = o.gzip ? gzipSync(l.tar) : l.tar;
    const delay = o.chunkDelayMs ?? 0;
    return Readable.from(
      (async function* () {
        for (let i = 0; i < body.length; i += 2048) {
          if (delay) await sleep(delay);
          yield body.subarray(i, i + 2048);
        }
      })(),
    );
  };
  return { open, opened, add: (l: Layer) => byId.set(l.diffId, l) };
}

/** path → 'd 755' | 'f 644 <content>' | 'l <target>' | 'c <rdev>', for every entry under `dir`. */
async function readTree(dir: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  const names = (await readdir(dir, { recursive: true })).sort();
  for (const name of names) {
    const p = join(dir, name);
    const st = await lstat(p);
    const mode = (st.mode & 0o7777).toString(8);
    if (st.isDirectory()) out[name] = `d ${mode}`;
    else if (st.isFile()) out[name] = `f ${mode} ${await readFile(p, 'utf8')}`;
    else if (st.isSymbolicLink()) out[name] = `l ${await readlink(p)}`;
    else out[name] = `? ${st.mode.toString(8)} ${st.rdev}`;
  }
  return out;
}

/** A fresh root whose mounts are undone and files removed after the test. */
async function freshRoot(t: TestContext): Promise<string> {
  const root = await mkdtemp(join(tmpdir(), 'dray-snap-'));
  t.after(async () => {
    for (const m of await mountsUnder(root)) {
      await new Promise((r) => spawn('umount', ['-l', m], { stdio: 'ignore' }).on('close', r));
    }
    await rm(root, { recursive: true, force: true, maxRetries: 3 });
  });
  return root;
}

/**
 * Opens a snapshotter of `kind` in a fresh root, or skips the test when this machine cannot
 * run that kind (never under CI=true: there it fails).
 */
async function openSnapshotter(
  t: TestContext,
  kind: SnapshotterKind,
  root?: string,
): Promise<{ s: Snapshotter; root: string } | undefined> {
  const r = root ?? (await freshRoot(t));
  try {
    return { s: await createSnapshotter(r, { kind }), root: r };
  } catch (e) {
    if (isDrayError(e, 'DRAY_SNAPSHOT') && !isCI()) {
      process.stderr.write(`# SKIP ${t.fullName}: ${e.message}\n`);
      t.skip(e.message);
      return undefined;
    }
    throw e;
  }
}

function rejectsWith(code: string) {
  return (e: unknown) => {
    assert.ok(isDrayError(e), `expected a DrayError ${code}, got ${String(e)}`);
    assert.equal(e.code, code, e.message);
    return true;
  };
}

async function tarEntries(tar: Buffer): Promise<string[]> {
  const names: string[] = [];
  for await (const e of readTar(Readable.from([tar]))) {
    names.push(e.header.name);
    e.body.resume();
  }
  return names;
}

/** Runs `a.diff()` to the end (uncompressed, so the test can read it back). */
async function diffOf(a: ActiveSnapshot, o: WriteDiffOptions = {}): Promise<{ tar: Buffer; diffId: Digest }> {
  const w = a.diff({ compression: 'none', ...o });
  const [tar, r] = await Promise.all([buffer(w.readable), w.close()]);
  return { tar, diffId: r.diffId };
}

/** The base layer most tests stand on: files, nested dirs, a file to delete and a dir to delete. */
const base = layer({
  'etc/keep': 'keep',
  'etc/change': 'old',
  'etc/gone': 'gone',
  'dir/a': 'a',
  'dir/sub/b': 'b',
  'dir2/x': 'x',
});

/** The kinds' tree under their root, for "nothing was left behind" checks. */
function storeDir(root: string, kind: SnapshotterKind, sub: string): string {
  return join(root, kind, sub);
}

/**
 * Registers the snapshotter conformance tests for `kind`. Call from a `*.test.ts` file.
 */
export function snapshotterSuite(kind: SnapshotterKind): void {
  describe(`${kind} snapshotter`, () => {
    test('ensure materialises a chain with whiteouts and opaque dirs; view shows the merged tree', async (t) => {
      const u = await openSnapshotter(t, kind);
      if (!u) return;
      const { s } = u;
      assert.equal(s.kind, kind);
      const top = layer({
        'etc/.wh.gone': '',
        'dir/.wh..wh..opq': '',
        'dir/c': 'c',
        '.wh.dir2': '',
        new: 'n',
      });
      const chain = [base.diffId, top.diffId];
      const srv = server([base, top], { gzip: true });
      assert.equal(await s.has(chain), false);
      await s.ensure(chain, srv.open);
      assert.equal(await s.has(chain), true);
      assert.equal(await s.has([base.diffId]), kind === 'overlay', 'copy keeps only the chain asked for');
      const v = await s.view(chain);
      assert.deepEqual(v.chain, chain);
      assert.deepEqual(await readTree(v.path), {
        dir: 'd 755',
        'dir/c': 'f 644 c',
        etc: 'd 755',
        'etc/change': 'f 644 old',
        'etc/keep': 'f 644 keep',
        new: 'f 644 n',
      });
      // overlay views are read-only mounts; copy views are the committed tree, read-only by convention
      if (kind === 'overlay')
        await assert.rejects(writeFile(join(v.path, 'etc', 'x'), 'x'), { code: 'EROFS' });
      await v.release();
      await v.release(); // idempotent
      assert.deepEqual(await mountsUnder(u.root), []);
      await s.ensure(chain, srv.open);
      assert.deepEqual([...srv.opened.values()], [1, 1], 'a materialised chain is not unpacked again');
    });

    test('the empty chain and single layers can be viewed and prepared', async (t) => {
      const u = await openSnapshotter(t, kind);
      if (!u) return;
      const { s } = u;
      assert.equal(await s.has([]), true);
      const v0 = await s.view([]);
      assert.deepEqual(await readTree(v0.path), {});
      await v0.release();
      const l = layer({ 'a/f': 'f' });
      await s.ensure([l.diffId], server([l]).open);
      const v1 = await s.view([l.diffId]);
      assert.deepEqual(await readTree(v1.path), { a: 'd 755', 'a/f': 'f 644 f' });
      await v1.release();
      const a = await s.prepare([]);
      await writeFile(join(a.path, 'hello'), 'world');
      const { tar, diffId } = await diffOf(a);
      assert.deepEqual(await tarEntries(tar), ['hello']);
      await a.commit(diffId);
      const v2 = await s.view([diffId]);
      assert.deepEqual(await readTree(v2.path), { hello: 'f 644 world' });
      await v2.release();
      assert.deepEqual(await mountsUnder(u.root), []);
    });

    test('prepare, change files, diff, commit: the new chain holds exactly what was written', async (t) => {
      const u = await openSnapshotter(t, kind);
      if (!u) return;
      const { s } = u;
      const srv = server([base]);
      await s.ensure([base.diffId], srv.open);
      const a = await s.prepare([base.diffId]);
      assert.deepEqual(a.chain, [base.diffId]);
      const p = (x: string) => join(a.path, x);
      await writeFile(p('etc/change'), 'new');
      await rm(p('etc/gone'));
      await writeFile(p('etc/new'), 'added');
      await rm(p('dir'), { recursive: true });
      await mkdir(p('dir'));
      await writeFile(p('dir/fresh'), 'fresh');
      await rm(p('dir2'), { recursive: true });
      // touched, not changed: an overlay copies it up; the layer must not carry it
      await (await open(p('etc/keep'), 'r+')).close();
      await chown(p('etc/keep'), 0, 0);
      const before = await readTree(a.path);

      const { tar, diffId } = await diffOf(a);
      const names = await tarEntries(tar);
      const common = ['.wh.dir2', 'dir', 'dir/fresh', 'etc', 'etc/.wh.gone', 'etc/change', 'etc/new'];
      const expected =
        kind === 'overlay'
          ? [...common, 'dir/.wh..wh..opq'] // rm -rf + mkdir: overlayfs makes the directory opaque
          : [...common, 'dir/.wh.a', 'dir/.wh.sub']; // a tree diff sees each child deleted
      assert.deepEqual([...names].sort(), expected.sort());
      assert.ok(!names.includes('etc/keep'));

      await assert.rejects(a.commit(base.diffId), rejectsWith('DRAY_INVALID_ARGUMENT'));
      await a.commit(diffId);
      await assert.rejects(a.commit(diffId), rejectsWith('DRAY_INVALID_ARGUMENT'));
      assert.throws(() => a.diff(), rejectsWith('DRAY_INVALID_ARGUMENT'));
      await a.release(); // after commit: a no-op
      const chain = [base.diffId, diffId];
      assert.equal(await s.has(chain), true);
      const v = await s.view(chain);
      assert.deepEqual(await readTree(v.path), before);
      await v.release();

      // The layer tar applied by an ordinary unpacker gives the same tree.
      const applied = await mkdtemp(join(tmpdir(), 'dray-snap-apply-'));
      t.after(() => rm(applied, { recursive: true, force: true }));
      await applyLayer(applied, Readable.from([base.tar]));
      await applyLayer(applied, Readable.from([tar]));
      assert.deepEqual(await readTree(applied), before);

      // The same layer on another parent holds only what the diff said (overlay shares the
      // committed layer instead of unpacking it again).
      const other = layer({
        'etc/keep': 'other keep',
        'etc/change': 'old',
        'etc/gone': 'gone',
        'dir/a': 'a',
        'dir2/x': 'x',
      });
      const srv2 = server([other, { diffId, tar }]);
      await s.ensure([other.diffId, diffId], srv2.open);
      assert.equal(srv2.opened.get(diffId) ?? 0, kind === 'overlay' ? 0 : 1);
      const v2 = await s.view([other.diffId, diffId]);
      assert.deepEqual(await readTree(v2.path), { ...before, 'etc/keep': 'f 644 other keep' });
      await v2.release();
      assert.deepEqual(await mountsUnder(u.root), []);
    });

    test('a committed layer can be prepared on again; committing an existing chain drops the copy', async (t) => {
      const u = await openSnapshotter(t, kind);
      if (!u) return;
      const { s } = u;
      await s.ensure([base.diffId], server([base]).open);
      const commitOne = async (content: string) => {
        const a = await s.prepare([base.diffId]);
        await writeFile(join(a.path, 'etc', 'step'), content);
        // clamped times: the same change gives the same layer
        const { diffId } = await diffOf(a, { sourceDateEpoch: 0 });
        await a.commit(diffId);
        return diffId;
      };
      const d1 = await commitOne('one');
      const d2 = await commitOne('one');
      assert.equal(d1, d2, 'same change, same layer');
      // release while a commit runs waits for it
      const c = await s.prepare([base.diffId, d1]);
      await writeFile(join(c.path, 'etc', 'third'), '3');
      const third = await diffOf(c);
      await Promise.all([c.commit(third.diffId), c.release()]);
      const v3 = await s.view([base.diffId, d1, third.diffId]);
      assert.equal(await readFile(join(v3.path, 'etc', 'third'), 'utf8'), '3');
      await v3.release();
      const b = await s.prepare([base.diffId, d1]);
      assert.equal(await readFile(join(b.path, 'etc', 'step'), 'utf8'), 'one');
      await rm(join(b.path, 'etc', 'step'));
      const { tar, diffId } = await diffOf(b);
      assert.deepEqual(await tarEntries(tar), ['etc', 'etc/.wh.step']);
      await b.commit(diffId);
      const v = await s.view([base.diffId, d1, diffId]);
      assert.equal((await readdir(join(v.path, 'etc'))).includes('step'), false);
      await v.release();
      await b.release();
      assert.deepEqual(await readdir(storeDir(u.root, kind, 'active')), []);
    });

    test('release without commit drops the changes and is idempotent', async (t) => {
      const u = await openSnapshotter(t, kind);
      if (!u) return;
      const { s } = u;
      await s.ensure([base.diffId], server([base]).open);
      const a = await s.prepare([base.diffId]);
      await writeFile(join(a.path, 'scratch'), 'x');
      await Promise.all([a.release(), a.release()]);
      await a.release();
      await assert.rejects(a.commit(base.diffId), rejectsWith('DRAY_INVALID_ARGUMENT'));
      assert.deepEqual(await readdir(storeDir(u.root, kind, 'active')), []);
      assert.deepEqual(await mountsUnder(u.root), []);
      const v = await s.view([base.diffId]);
      assert.equal((await readdir(v.path)).includes('scratch'), false);
      await v.release();
    });

    test('view and prepare of a chain that is not materialised fail with DRAY_NOT_FOUND', async (t) => {
      const u = await openSnapshotter(t, kind);
      if (!u) return;
      const { s } = u;
      await assert.rejects(s.view([base.diffId]), rejectsWith('DRAY_NOT_FOUND'));
      await assert.rejects(s.prepare([base.diffId]), rejectsWith('DRAY_NOT_FOUND'));
      await assert.rejects(s.view(['sha256:../../etc' as Digest]), rejectsWith('DRAY_INVALID_DIGEST'));
    });

    test('concurrent ensures of the same layers unpack each once, within and across snapshotters', async (t) => {
      const u = await openSnapshotter(t, kind);
      if (!u) return;
      // a second snapshotter on the same root has its own memory: only the file lock is shared,
      // as between two processes
      const u2 = await openSnapshotter(t, kind, u.root);
      if (!u2) return;
      const top = layer({ 'etc/top': 'top' });
      const chain = [base.diffId, top.diffId];
      const srv = server([base, top], { chunkDelayMs: 15 });
      await Promise.all([
        u.s.ensure(chain, srv.open),
        u.s.ensure(chain, srv.open),
        u2.s.ensure(chain, srv.open),
        u2.s.ensure(chain, srv.open),
      ]);
      assert.deepEqual([...srv.opened.values()], [1, 1]);
      const v = await u2.s.view(chain);
      assert.equal(await readFile(join(v.path, 'etc', 'top'), 'utf8'), 'top');
      await v.release();
    });

    test('an aborted or failed ensure leaves nothing committed and can be retried', async (t) => {
      const u = await openSnapshotter(t, kind);
      if (!u) return;
      const { s } = u;
      const chain = [base.diffId];
      // already aborted
      await assert.rejects(
        s.ensure(chain, server([base]).open, { signal: AbortSignal.abort() }),
        rejectsWith('DRAY_ABORTED'),
      );
      // aborted mid-stream: the layer's first bytes arrive, then the body stalls
      const ac = new AbortController();
      let sent = false;
      const stalling: OpenLayer = async () =>
        new Readable({
          read() {
            if (sent) return; // never more, never the end
            sent = true;
            this.push(base.tar.subarray(0, 1536));
            setTimeout(() => ac.abort(new Error('user pressed ctrl-c')), 50);
          },
        });
      await assert.rejects(s.ensure(chain, stalling, { signal: ac.signal }), rejectsWith('DRAY_ABORTED'));
      assert.equal(sent, true);
      assert.equal(await s.has(chain), false);
      assert.deepEqual(await readdir(storeDir(u.root, kind, 'tmp')), []);
      // the wrong content for a diffID
      const liar: OpenLayer = async () => Readable.from([layer({ evil: 'x' }).tar]);
      await assert.rejects(s.ensure(chain, liar), rejectsWith('DRAY_DIGEST_MISMATCH'));
      assert.equal(await s.has(chain), false);
      assert.deepEqual(await readdir(storeDir(u.root, kind, 'tmp')), []);
      // a truncated layer
      const short: OpenLayer = async () => Readable.from([base.tar.subarray(0, 1000)]);
      await assert.rejects(s.ensure(chain, short), rejectsWith('DRAY_INVALID_ARCHIVE'));
      assert.equal(await s.has(chain), false);
      // and the lock was released every time
      await s.ensure(chain, server([base]).open);
      assert.equal(await s.has(chain), true);
    });

    test("recover() removes a dead process's snapshots (mounts included) and keeps live ones", async (t) => {
      const u = await openSnapshotter(t, kind);
      if (!u) return;
      const { s, root } = u;
      await s.ensure([base.diffId], server([base]).open);
      const mine = await s.prepare([base.diffId]);
      const half = layer({ 'half/file': 'x'.repeat(5000) });
      const index = new URL('./index.ts', import.meta.url).href;
      const script = `
        import { writeFileSync } from 'node:fs';
        import { Readable } from 'node:stream';
        import { createSnapshotter } from ${JSON.stringify(index)};
        const s = await createSnapshotter(${JSON.stringify(root)}, { kind: ${JSON.stringify(kind)} });
        const a = await s.prepare([${JSON.stringify(base.diffId)}]);
        writeFileSync(a.path + '/etc/dirty', 'x');
        const v = await s.view([${JSON.stringify(base.diffId)}]);
        // an unpack that is half way when the process dies: its first bytes, then nothing
        const part = Buffer.from(${JSON.stringify(half.tar.subarray(0, 1536).toString('base64'))}, 'base64');
        let sent = false;
        const stalled = new Readable({ read() { if (!sent) { sent = true; this.push(part); } } });
        s.ensure([${JSON.stringify(half.diffId)}], async () => stalled).catch(() => {});
        while (!sent) await new Promise((r) => setTimeout(r, 10));
        await new Promise((r) => setTimeout(r, 100));
        process.stdout.write(JSON.stringify({ active: a.path, view: v.path }) + '\\n');
        setInterval(() => {}, 1 << 30);
      `;
      const child = spawn(process.execPath, ['--input-type=module', '-e', script], {
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      const exited = new Promise((r) => child.on('exit', r));
      t.after(() => child.kill('SIGKILL'));
      let out = '';
      let err = '';
      child.stderr.on('data', (b: Buffer) => (err += b));
      const line = await new Promise<string>((resolve, reject) => {
        child.stdout.on('data', (b: Buffer) => {
          out += b;
          if (out.includes('\n')) resolve(out.trim());
        });
        child.on('exit', (code) => reject(new Error(`child exited ${code}: ${err}`)));
      });
      const paths = JSON.parse(line) as { active: string; view: string };
      assert.equal(await readFile(join(paths.active, 'etc', 'dirty'), 'utf8'), 'x');
      if (kind === 'overlay') assert.equal((await mountsUnder(root)).length, 3);
      assert.equal((await readdir(storeDir(root, kind, 'tmp'))).length, 1, 'the unpack in progress');
      child.kill('SIGKILL');
      await exited;

      const again = await createSnapshotter(root, { kind }); // runs recover()
      assert.equal(await again.has([base.diffId]), true);
      const left = await readdir(storeDir(root, kind, 'active'));
      assert.equal(left.length, 1, `only this process's snapshot is left: ${left}`);
      assert.deepEqual(await mountsUnder(root), kind === 'overlay' ? [mine.path] : []);
      await assert.rejects(lstat(paths.active), { code: 'ENOENT' });
      if (kind === 'overlay') await assert.rejects(lstat(paths.view), { code: 'ENOENT' });
      assert.deepEqual(await readdir(storeDir(root, kind, 'tmp')), []);
      assert.equal(await again.has([half.diffId]), false, 'the half-unpacked layer is not committed');
      // the dead process's lock on that layer is taken over at once, not after the stale timeout
      const started = Date.now();
      await again.ensure([half.diffId], server([half]).open);
      assert.ok(Date.now() - started < 5000, `ensure waited ${Date.now() - started} ms`);
      assert.equal(await again.has([half.diffId]), true);
      await again.recover(); // again: nothing to do, the live one stays
      assert.equal(await readFile(join(mine.path, 'etc', 'keep'), 'utf8'), 'keep');
      await mine.release();
      assert.deepEqual(await mountsUnder(root), []);
    });

    test('a 60-layer chain is materialised, mounted, prepared and committed on', async (t) => {
      const u = await openSnapshotter(t, kind);
      if (!u) return;
      const { s } = u;
      const layers = Array.from({ length: 60 }, (_, i) =>
        layer({
          [`layer-${i}/file`]: `${i}`,
          common: `${i}`,
          ...(i > 0 ? { [`layer-${i - 1}/.wh.file`]: '' } : {}),
        }),
      );
      const chain = layers.map((l) => l.diffId);
      await s.ensure(chain, server(layers).open);
      const v = await s.view(chain);
      assert.equal(await readFile(join(v.path, 'common'), 'utf8'), '59');
      const tree = await readTree(v.path);
      assert.equal(Object.keys(tree).length, 1 + 60 + 1);
      assert.equal(tree['layer-59/file'], 'f 644 59');
      assert.equal(tree['layer-58/file'], undefined, 'whited out by the layer above');
      await v.release();
      const a = await s.prepare(chain);
      await writeFile(join(a.path, 'common'), 'top');
      const { diffId } = await diffOf(a);
      await a.commit(diffId);
      const v2 = await s.view([...chain, diffId]);
      assert.equal(await readFile(join(v2.path, 'common'), 'utf8'), 'top');
      await v2.release();
    });

    test('a layer repeated in a chain (old images repeat the empty layer) is mounted once', async (t) => {
      const u = await openSnapshotter(t, kind);
      if (!u) return;
      const { s } = u;
      const a = layer({ f: 'a' });
      const b = layer({ f: 'b', g: 'b' });
      const chain = [a.diffId, b.diffId, a.diffId];
      await s.ensure(chain, server([a, b]).open);
      const v = await s.view(chain);
      assert.deepEqual(await readTree(v.path), { f: 'f 644 a', g: 'f 644 b' });
      await v.release();
    });

    test('prune removes what no kept chain (nor any open snapshot) uses', async (t) => {
      const u = await openSnapshotter(t, kind);
      if (!u) return;
      const { s } = u;
      const b = layer({ b: 'b' });
      const c = layer({ c: 'c' });
      const srv = server([base, b, c]);
      const ab = [base.diffId, b.diffId];
      const ac = [base.diffId, c.diffId];
      await s.ensure(ab, srv.open);
      await s.ensure(ac, srv.open);
      const open = await s.view(ac);
      assert.deepEqual(await s.prune([ab]), { removed: 0 });
      assert.equal(await s.has(ac), true, 'an open view keeps its chain');
      await open.release();
      const r = await s.prune([ab]);
      assert.equal(r.removed, 1);
      assert.equal(await s.has(ab), true);
      assert.equal(await s.has(ac), false);
      const v = await s.view(ab);
      assert.equal(await readFile(join(v.path, 'b'), 'utf8'), 'b');
      await v.release();
      assert.ok((await s.prune([])).removed >= 1);
      assert.equal(await s.has(ab), false);
      assert.equal(await s.has([base.diffId]), false);
      // a pruned chain can be ensured again
      await s.ensure(ab, srv.open);
      assert.equal(await s.has(ab), true);
    });
  });
}
