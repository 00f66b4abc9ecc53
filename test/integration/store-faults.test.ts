// The content store under stress from outside: two dray processes pulling into one data
// root, a pull killed with SIGKILL mid-blob, and a full disk (a 1 MiB tmpfs). After each,
// the store is consistent (every blob hashes to its name, images.json is valid) and the
// next pull completes.
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdir, mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { test } from 'node:test';
import { images, isDrayError, pull } from '../../src/index.ts';
import { startFaultProxy } from '../harness/fault-proxy.ts';
import { seededBytes, writeOciLayout } from '../harness/oci-fixture.ts';
import { startRegistry } from '../harness/registry.ts';
import { isCI, requireTool, runCommand, tempDir, waitFor } from '../harness/tools.ts';
import { assertStoreConsistent, drayBin, nodeBin, runCli, runDrayProcess, skopeoPush } from './helpers.ts';

const MB = 1024 * 1024;

async function ingestEntries(root: string): Promise<string[]> {
  try {
    return await readdir(join(root, 'content', 'ingest'));
  } catch {
    return [];
  }
}

test('two dray processes pulling the same image into one root both succeed', async (t) => {
  if (!requireTool(t, 'docker-registry', 'skopeo')) return;
  const reg = await startRegistry(t);
  const fx = await writeOciLayout(await tempDir(t), [
    { 'a.bin': seededBytes(301, 4 * MB) },
    { 'b.bin': seededBytes(302, 3 * MB) },
    { 'c.bin': seededBytes(303, 2 * MB) },
    { 'd.txt': 'small\n' },
  ]);
  const name = `${reg.host}/race/app:1`;
  await skopeoPush(fx.ref, name);
  const root = await tempDir(t, 'dray-root-');
  const config = await tempDir(t, 'dray-config-');

  for (let round = 0; round < 2; round++) {
    const [a, b] = await Promise.all([
      runDrayProcess(['pull', name], { root, config }),
      runDrayProcess(['pull', name], { root, config }),
    ]);
    assert.equal(a.code, 0, `first: ${a.stderr}`);
    assert.equal(b.code, 0, `second: ${b.stderr}`);
    for (const r of [a, b]) assert.match(r.stdout, new RegExp(`Digest: ${fx.manifest.digest}`));
    const { blobs, images: names } = await assertStoreConsistent(root);
    assert.deepEqual(names, [name]);
    for (const d of [fx.manifest, fx.config, ...fx.layers]) assert.ok(blobs.includes(d.digest), d.digest);
    assert.equal(blobs.length, 2 + fx.layers.length);
    assert.deepEqual(await ingestEntries(root), [], 'no ingest left behind');
    assert.deepEqual(await readdir(join(root, 'leases')).catch(() => []), [], 'leases released');
  }
});

function waitExit(child: ChildProcess): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) {
      resolve({ code: child.exitCode, signal: child.signalCode });
      return;
    }
    child.once('exit', (code, signal) => resolve({ code, signal }));
  });
}

test('a pull killed with SIGKILL mid-blob leaves a consistent store; the next pull completes', async (t) => {
  if (!requireTool(t, 'docker-registry', 'skopeo')) return;
  const reg = await startRegistry(t);
  const big = seededBytes(401, 30 * MB);
  const fx = await writeOciLayout(await tempDir(t), [{ 'big.bin': big }, { 'small.txt': 'hi\n' }]);
  await skopeoPush(fx.ref, `${reg.host}/kill/app:1`);
  const bigLayer = fx.layers[0];
  assert.ok(bigLayer && bigLayer.size > 29 * MB);
  // Hold the big blob's response after its first 4 MiB, long enough to kill the puller.
  const proxy = await startFaultProxy(t, {
    target: reg.host,
    faults: [
      {
        method: 'GET',
        path: new RegExp(`/blobs/${bigLayer.digest}$`),
        fault: { kind: 'delay', ms: 8000, afterBytes: 4 * MB },
      },
    ],
  });
  const name = `${proxy.host}/kill/app:1`;
  const root = await tempDir(t, 'dray-root-');
  const config = await tempDir(t, 'dray-config-');

  const child = spawn(nodeBin, [drayBin, 'pull', '--progress', 'plain', name], {
    env: { ...process.env, DRAY_ROOT: root, DOCKER_CONFIG: config },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr?.on('data', (b: Buffer) => {
    stderr += b.toString();
  });
  child.stdout?.resume();
  t.after(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  await waitFor(
    'the big blob GET to be in flight',
    async () => {
      if (child.exitCode !== null) throw new Error(`dray exited early: ${stderr}`);
      return proxy.log.some(
        (e) => e.method === 'GET' && e.path.endsWith(bigLayer.digest) && e.bodyBytes >= 4 * MB,
      );
    },
    { timeoutMs: 30_000 },
  );
  // Let the bytes already forwarded land in the ingest file.
  // (the big layer's own ingest, with some data in it: the resume below must have bytes to
  // resume from, or the test would only show a restart)
  await waitFor(
    'a partial ingest of the big layer on disk',
    async () => {
      for (const e of await ingestEntries(root)) {
        const ref = await readFile(join(root, 'content', 'ingest', e, 'ref'), 'utf8').catch(() => '');
        if (!ref.endsWith(bigLayer.digest)) continue;
        const st = await stat(join(root, 'content', 'ingest', e, 'data')).catch(() => undefined);
        if (st && st.size >= MB) return true;
      }
      return false;
    },
    { timeoutMs: 10_000 },
  );
  child.kill('SIGKILL');
  assert.equal((await waitExit(child)).signal, 'SIGKILL');

  // Nothing partial is visible as a blob, and no image is named.
  const mid = await assertStoreConsistent(root);
  assert.ok(!mid.blobs.includes(bigLayer.digest), 'the partial layer is not a committed blob');
  assert.deepEqual(mid.images, []);

  proxy.setFaults([]);
  const started = Date.now();
  const r = await runDrayProcess(['pull', name], { root, config });
  assert.equal(r.code, 0, r.stderr);
  const took = Date.now() - started;
  const { blobs, images: names } = await assertStoreConsistent(root);
  assert.deepEqual(names, [name]);
  for (const d of [fx.manifest, fx.config, ...fx.layers]) assert.ok(blobs.includes(d.digest), d.digest);
  // An ingest the killed process left for a blob it had committed just before the kill may
  // remain until its lock goes stale and a later open() sweeps it: harmless. Anything else
  // (the big layer's partial ingest) must be gone.
  for (const e of await ingestEntries(root)) {
    const ref = await readFile(join(root, 'content', 'ingest', e, 'ref'), 'utf8').catch(() => '');
    const digest = ref.replace(/^(put:|copy-)/, '');
    assert.ok(blobs.includes(digest) && digest !== bigLayer.digest, `ingest ${e} (${ref}) left behind`);
  }
  // The next pull resumed the killed one's partial ingest with a Range request: it fetched
  // only what was missing, not the whole layer again.
  const again = proxy.log.filter((e) => e.method === 'GET' && e.path.endsWith(bigLayer.digest)).slice(1);
  const refetched = again.reduce((n, e) => n + e.bodyBytes, 0);
  assert.ok(refetched > 0 && refetched < bigLayer.size, `refetched ${refetched} of ${bigLayer.size} bytes`);
  t.diagnostic(`after SIGKILL: next pull took ${took} ms, refetched ${refetched} of ${bigLayer.size} bytes`);
});

/** Mounts a tmpfs of `size` on a new dir; unmounted and removed at the end. Undefined (test skipped) when mount is not allowed outside CI. */
async function tmpfs(t: TestContext, size: string): Promise<string | undefined> {
  const dir = await mkdtemp(join(tmpdir(), 'dray-tmpfs-'));
  const r = await runCommand('mount', ['-t', 'tmpfs', '-o', `size=${size}`, 'tmpfs', dir]).catch(
    (e: unknown) => ({ code: -1, stderr: String(e) }),
  );
  if (r.code !== 0) {
    await rm(dir, { recursive: true, force: true });
    const msg = `cannot mount a tmpfs (needs root): ${r.stderr.trim()}`;
    if (isCI()) throw new Error(msg);
    process.stderr.write(`# SKIP ${t.fullName}: ${msg}\n`);
    t.skip(msg);
    return undefined;
  }
  t.after(async () => {
    await runCommand('umount', ['-l', dir]);
    await rm(dir, { recursive: true, force: true });
  });
  return dir;
}

test('a full disk fails the pull with DRAY_NO_SPACE; after growing it, the pull completes', async (t) => {
  if (!requireTool(t, 'docker-registry', 'skopeo', 'mount', 'umount')) return;
  const reg = await startRegistry(t);
  const fx = await writeOciLayout(await tempDir(t), [
    { 'small.txt': 'small\n' },
    { 'big.bin': seededBytes(501, 3 * MB) },
  ]);
  const name = `${reg.host}/full/app:1`;
  await skopeoPush(fx.ref, name);
  const mnt = await tmpfs(t, '1m');
  if (mnt === undefined) return;
  const root = join(mnt, 'dray');
  await mkdir(root);
  const config = await tempDir(t, 'dray-config-');
  const bigLayer = fx.layers[1];
  assert.ok(bigLayer);

  await assert.rejects(pull(name, { root }), (e: unknown) => {
    assert.ok(isDrayError(e, 'DRAY_NO_SPACE'), `expected DRAY_NO_SPACE, got ${String(e)}`);
    assert.match(e.message, /no space left on device/);
    assert.match(e.hint ?? '', /free space/);
    return true;
  });
  const mid = await assertStoreConsistent(root);
  assert.ok(!mid.blobs.includes(bigLayer.digest), 'no partial blob is visible');
  assert.deepEqual(mid.images, []);

  // The CLI says it the same way, with exit code 1.
  const cli = await runCli(['pull', name], { root, config });
  assert.equal(cli.code, 1);
  assert.match(cli.stderr, /^error: .*no space left on device/m);
  assert.match(cli.stderr, /^hint: free space on the filesystem holding /m);
  assert.doesNotMatch(cli.stdout, /Status: Downloaded/);

  // Grow the filesystem in place (the partial ingest stays) and pull again.
  const grow = await runCommand('mount', ['-o', 'remount,size=64m', mnt]);
  assert.equal(grow.code, 0, grow.stderr);
  const [r] = await pull(name, { root });
  assert.equal(r?.status, 'downloaded');
  const { blobs, images: names } = await assertStoreConsistent(root);
  assert.deepEqual(names, [name]);
  for (const d of [fx.manifest, fx.config, ...fx.layers]) assert.ok(blobs.includes(d.digest), d.digest);
  assert.equal((await images({ root })).length, 1);
  assert.deepEqual(await ingestEntries(root), []);
});
