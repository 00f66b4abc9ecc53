// Interop with a real Docker engine (dockerd 20.10 from Debian's docker.io, private data
// root and socket, one engine for the whole file): `docker load` takes what `dray save`
// writes and runs it (zstd layers included, as plain tars); `dray load` takes what `docker save` writes and keeps every digest;
// `dray export` equals `docker export` of a container from the same image.
import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { inspect } from '../../src/index.ts';
import { busyboxImageDir, type DockerEngine, importRootfs } from '../harness/docker-engine.ts';
import { startRegistry } from '../harness/registry.ts';
import { requireTool, runChecked, tempDir } from '../harness/tools.ts';
import {
  busyboxLayerTar,
  cliOk,
  type DrayDirs,
  describeEntry,
  dockerBuild,
  dockerDiffIds,
  dockerImageId,
  dockerOk,
  drayDirs,
  type FsEntry,
  listTar,
  rootfsOf,
  sharedDockerd,
} from './interop-helpers.ts';

const engineFor = sharedDockerd();

/** `dray append scratch <busybox rootfs tar>` + `dray mutate --cmd …`: an image made by dray only. */
async function makeHelloImage(t: test.TestContext, d: DrayDirs, name: string): Promise<void> {
  const layer = await busyboxLayerTar(t, join(d.work, 'busybox.tar'));
  await cliOk(['append', 'scratch', layer, '-t', name], d);
  await cliOk(['mutate', name, '--cmd', '["/bin/busybox","echo","hello from dray"]'], d);
}

/** docker load of `file`; returns the engine's output lines. */
async function dockerLoad(engine: DockerEngine, file: string): Promise<string> {
  return dockerOk(engine, ['load', '-i', file]);
}

async function dockerRun(engine: DockerEngine, ref: string): Promise<string> {
  return dockerOk(engine, ['run', '--rm', '--network', 'none', ref]);
}

test('docker load + docker run of an image built by dray append + mutate and saved by dray', async (t) => {
  const engine = await engineFor(t);
  if (!engine) return;
  const d = await drayDirs(t);
  await makeHelloImage(t, d, 'local/hello:1');
  const out = join(d.work, 'hello.tar');
  await cliOk(['save', '-o', out, 'local/hello:1'], d);

  const loaded = await dockerLoad(engine, out);
  assert.match(loaded, /Loaded image: local\/hello:1/);
  // The image ID docker computes is the config digest dray wrote.
  const info = await inspect('local/hello:1', { root: d.root });
  assert.equal(await dockerImageId(engine, 'local/hello:1'), info.Manifest.config.digest);
  assert.deepEqual(await dockerDiffIds(engine, 'local/hello:1'), info.Config.rootfs.diff_ids);
  assert.equal(await dockerRun(engine, 'local/hello:1'), 'hello from dray\n');
});

test('docker load + docker run of an image with zstd layers saved by dray (written as plain tars)', async (t) => {
  const engine = await engineFor(t);
  if (!engine) return;
  const d = await drayDirs(t);
  const layer = await busyboxLayerTar(t, join(d.work, 'busybox.tar'));
  await cliOk(['append', 'scratch', layer, '-t', 'local/zhello:1', '--compression', 'zstd'], d);
  await cliOk(['mutate', 'local/zhello:1', '--cmd', '["/bin/busybox","echo","hello from zstd"]'], d);
  const info = await inspect('local/zhello:1', { root: d.root });
  assert.ok(info.Manifest.layers.every((l) => l.mediaType.endsWith('+zstd')));
  const out = join(d.work, 'zhello.tar');
  await cliOk(['save', '-o', out, 'local/zhello:1'], d);
  assert.match(await dockerLoad(engine, out), /Loaded image: local\/zhello:1/);
  assert.equal(await dockerImageId(engine, 'local/zhello:1'), info.Manifest.config.digest);
  assert.equal((await dockerRun(engine, 'local/zhello:1')).trim(), 'hello from zstd');
});

test('docker load + docker run of an image dray pulled from a registry', async (t) => {
  const engine = await engineFor(t);
  if (!engine) return;
  if (!requireTool(t, 'docker-registry')) return;
  const reg = await startRegistry(t);
  const builder = await drayDirs(t);
  await makeHelloImage(t, builder, 'local/hello:1');
  const remote = `${reg.host}/interop/hello:pulled`;
  await cliOk(['tag', 'local/hello:1', remote], builder);
  await cliOk(['push', remote], builder);

  // A fresh data root: everything comes from the registry (gzip layers, as pushed).
  const d = await drayDirs(t);
  await cliOk(['pull', remote], d);
  const out = join(d.work, 'pulled.tar');
  await cliOk(['save', '-o', out, remote], d);
  const loaded = await dockerLoad(engine, out);
  assert.match(loaded, new RegExp(`Loaded image: ${remote.replace(/[.]/g, '\\.')}`));
  const info = await inspect(remote, { root: d.root });
  assert.equal(await dockerImageId(engine, remote), info.Manifest.config.digest);
  assert.equal(await dockerRun(engine, remote), 'hello from dray\n');
});

test('dray load of docker save keeps every digest; docker load of dray save gives the same image IDs', async (t) => {
  const engine = await engineFor(t);
  if (!engine) return;
  const d = await drayDirs(t);
  await importRootfs(engine, await busyboxImageDir(t), 'local/imported:1');
  await dockerBuild(t, engine, 'local/copied:1', {
    Dockerfile:
      'FROM local/imported:1\nCOPY a.txt /a.txt\nCOPY sub/ /opt/sub/\nENV GREETING=hi\nCMD ["cat", "/a.txt"]\n',
    'a.txt': 'copied by docker build\n',
    'sub/one': '1\n',
    'sub/deep/two': '22\n',
  });
  const refs = ['local/imported:1', 'local/copied:1'];
  const want = new Map<string, { id: string; diffIds: string[] }>();
  for (const r of refs)
    want.set(r, { id: await dockerImageId(engine, r), diffIds: await dockerDiffIds(engine, r) });
  assert.ok(
    (want.get('local/copied:1')?.diffIds.length ?? 0) >= 3,
    'docker build made 2+ layers on the base',
  );

  const saved = join(d.work, 'docker-saved.tar');
  await dockerOk(engine, ['save', '-o', saved, ...refs]);
  const loadOut = await cliOk(['load', '-i', saved], d);
  for (const r of refs) {
    assert.match(loadOut, new RegExp(`Loaded image: ${r}`));
    const info = await inspect(r, { root: d.root });
    const w = want.get(r);
    assert.ok(w);
    assert.equal(info.Manifest.config.digest, w.id, `${r}: config digest = docker image ID`);
    assert.deepEqual(info.Config.rootfs.diff_ids, w.diffIds, `${r}: diff_ids kept`);
    assert.equal(info.Manifest.layers.length, w.diffIds.length);
  }

  // Back: dray save of both, removed from the engine, loaded again → the same IDs.
  const back = join(d.work, 'dray-saved.tar');
  await cliOk(['save', '-o', back, ...refs], d);
  await dockerOk(engine, ['rmi', ...refs]);
  const again = await dockerLoad(engine, back);
  for (const r of refs) {
    assert.match(again, new RegExp(`Loaded image: ${r}`));
    assert.equal(await dockerImageId(engine, r), want.get(r)?.id, `${r}: same image ID after the round trip`);
    assert.deepEqual(await dockerDiffIds(engine, r), want.get(r)?.diffIds);
  }
  assert.equal(
    await dockerOk(engine, ['run', '--rm', '--network', 'none', 'local/copied:1']),
    'copied by docker build\n',
  );
});

/**
 * What `docker export` of a container has that the image does not — none of it comes from
 * the image, all of it from the engine's init layer (moby daemon/initlayer/setup_unix.go)
 * and the container's mounts:
 * - `.dockerenv`, `etc/hostname`, `etc/hosts`, `etc/resolv.conf`: files the engine bind-
 *   mounts or creates for every container;
 * - `etc/mtab` (a symlink to /proc/mounts the init layer adds);
 * - `proc`, `sys`, `dev` and everything below `dev` (`dev/console`, `dev/pts`, `dev/shm`):
 *   mount points the init layer creates;
 * and, for entries the image has too, directory mtimes: the engine touches directories
 * when it creates the init layer and when the storage driver copies a directory up.
 * Directories that exist only because the init layer made them a parent (`etc` when the
 * image lacks it) are dropped by the same list.
 */
function isEngineAdded(path: string): boolean {
  return (
    ['.dockerenv', 'etc/hostname', 'etc/hosts', 'etc/resolv.conf', 'etc/mtab', 'proc', 'sys', 'dev'].includes(
      path,
    ) || path.startsWith('dev/')
  );
}

function comparable(entries: FsEntry[], o: { dropEngineAdded: boolean }): string[] {
  const out: string[] = [];
  for (const e of [...rootfsOf(entries).values()].sort((a, b) => (a.path < b.path ? -1 : 1))) {
    if (o.dropEngineAdded && isEngineAdded(e.path)) continue;
    // Regular file and symlink mtimes must match too (whole seconds: docker export writes
    // them truncated); directory mtimes do not (see above).
    out.push(describeEntry(e, { mtime: e.type !== 'dir' }));
  }
  return out;
}

test('dray export equals docker export of a container from the same image (with whiteouts and an opaque dir)', async (t) => {
  const engine = await engineFor(t);
  if (!engine) return;
  const d = await drayDirs(t);
  await importRootfs(engine, await busyboxImageDir(t), 'local/base-export:1');
  // Layers: COPY of a tree (files, modes), then a RUN that deletes a file (whiteout),
  // deletes and recreates a directory (opaque dir with overlay2; per-file whiteouts with
  // vfs), replaces a file by a directory, adds a setuid file, a symlink, a chowned file,
  // a hardlink and a fifo.
  await dockerBuild(t, engine, 'local/whiteouts:1', {
    Dockerfile: [
      'FROM local/base-export:1',
      'COPY tree/ /opt/',
      'RUN rm /etc/group && rm -rf /opt/sub && mkdir -p /opt/sub && echo new > /opt/sub/n' +
        ' && chmod 4755 /opt/sub/n && ln -s ../a /opt/sub/link && rm /opt/b && mkdir /opt/b' +
        ' && echo in-b > /opt/b/inner && mkdir -p /d && echo x > /d/x && chown 12:34 /d/x' +
        ' && chmod 0640 /d/x && chmod 1777 /d && ln /opt/sub/n /opt/sub/hard && mkfifo -m 0600 /opt/fifo',
      'COPY tree/a /opt/sub/a-again',
      '',
    ].join('\n'),
    'tree/a': 'aaa\n',
    'tree/b': 'b is a file for now\n',
    'tree/sub/old1': 'old 1\n',
    'tree/sub/deeper/old2': 'old 2\n',
  });

  const saved = join(d.work, 'whiteouts-docker.tar');
  await dockerOk(engine, ['save', '-o', saved, 'local/whiteouts:1']);
  // The image really has whiteouts: look into the layers docker wrote.
  const unpacked = await tempDir(t, 'dray-docker-save-');
  await runChecked('tar', ['-C', unpacked, '-xf', saved]);
  const layerNames: string[] = [];
  for (const dir of await readdir(unpacked, { withFileTypes: true })) {
    if (!dir.isDirectory()) continue;
    const files: string[] = await readdir(join(unpacked, dir.name)).catch(() => []);
    if (!files.includes('layer.tar')) continue;
    for (const e of listTar(await readFile(join(unpacked, dir.name, 'layer.tar')))) layerNames.push(e.path);
  }
  assert.ok(layerNames.includes('etc/.wh.group'), 'a layer deletes /etc/group with a whiteout');
  assert.ok(
    layerNames.includes('opt/sub/.wh..wh..opq') || layerNames.includes('opt/sub/.wh.old1'),
    'a layer makes /opt/sub opaque (overlay2) or whites out its files (vfs)',
  );

  await cliOk(['load', '-i', saved], d);
  const drayTar = join(d.work, 'dray-export.tar');
  await cliOk(['export', 'local/whiteouts:1', '-o', drayTar], d);

  const cid = (await dockerOk(engine, ['create', '--network', 'none', 'local/whiteouts:1'])).trim();
  const dockerTar = join(d.work, 'docker-export.tar');
  await dockerOk(engine, ['export', '-o', dockerTar, cid]);
  await dockerOk(engine, ['rm', cid]);

  const mine = listTar(await readFile(drayTar));
  const theirs = listTar(await readFile(dockerTar));
  // dray writes each path once: no duplicates, no whiteout entries.
  assert.equal(new Set(mine.map((e) => e.path)).size, mine.length, 'no duplicate paths in dray export');
  assert.ok(
    !mine.some((e) => e.path.split('/').pop()?.startsWith('.wh.')),
    'no whiteout entries in dray export',
  );
  // Nothing dray writes is one of the engine-added paths (so dropping them from docker's side hides nothing).
  assert.deepEqual(
    mine.filter((e) => isEngineAdded(e.path)).map((e) => e.path),
    [],
  );
  assert.deepEqual(
    comparable(mine, { dropEngineAdded: false }),
    comparable(theirs, { dropEngineAdded: true }),
  );

  // Spot checks of the merged result.
  const m = rootfsOf(mine);
  assert.equal(m.get('etc/group'), undefined);
  assert.equal(m.get('opt/sub/old1'), undefined);
  assert.equal(m.get('opt/sub/deeper'), undefined);
  assert.equal(m.get('opt/sub/n')?.mode, 0o4755);
  assert.equal(m.get('opt/b')?.type, 'dir');
  assert.deepEqual([m.get('d/x')?.uid, m.get('d/x')?.gid, m.get('d/x')?.mode], [12, 34, 0o640]);
  assert.equal(m.get('d')?.mode, 0o1777);
  assert.equal(m.get('opt/sub/hard')?.hash, m.get('opt/sub/n')?.hash);
  assert.deepEqual([m.get('opt/fifo')?.type, m.get('opt/fifo')?.mode], ['fifo', 0o600]);
});
