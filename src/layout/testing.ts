import { spawn } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { Readable } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import type { TestContext } from 'node:test';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import type { TarHeader } from '../archive/index.ts';
import { createTarWriter } from '../archive/index.ts';
import { ContentStore } from '../content/index.ts';
import { type Digest, digestOf } from '../digest/index.ts';
import { type Descriptor, type ImageConfig, type ImageManifest, MediaTypes } from '../oci/index.ts';

/**
 * Test helpers for the layout folder: tiny images in a fresh content store, tars built in
 * memory, and the external-tool guard (missing binary: loud skip, or failure under CI=true).
 * Tests only.
 */

export const conformanceDir = fileURLToPath(
  new URL('../../../shared/conformance/docker-archive/', import.meta.url),
);

export async function tempDir(t: Pick<TestContext, 'after'>): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'dray-layout-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/** A tar held in memory, from headers and optional bodies, via dray's own tar writer. */
export async function tarBytes(entries: Array<[TarHeader, (Buffer | string)?]>): Promise<Buffer> {
  const tw = createTarWriter();
  const out = buffer(tw.readable);
  for (const [h, body] of entries) {
    const b = body === undefined ? undefined : Buffer.from(body);
    await tw.add({ ...h, size: b?.length ?? 0 }, b);
  }
  await tw.finish();
  return out;
}

export function file(name: string): TarHeader {
  return { name, type: 'file', mode: 0o644, uid: 0, gid: 0, size: 0, mtime: 0 };
}

export function symlink(name: string, linkname: string): TarHeader {
  return { name, type: 'symlink', mode: 0o777, uid: 0, gid: 0, size: 0, mtime: 0, linkname };
}

export interface TestImage {
  store: ContentStore;
  manifest: Descriptor;
  config: Descriptor;
  layers: Descriptor[];
  diffIds: Digest[];
}

async function putBytes(store: ContentStore, mediaType: string, bytes: Buffer): Promise<Descriptor> {
  const d: Descriptor = { mediaType, digest: digestOf(bytes), size: bytes.length };
  await store.put(d, Readable.from([bytes]));
  return d;
}

/**
 * A small image (one gzip layer with a shell-free `hello` file, one uncompressed layer) in a
 * fresh content store under `dir`. `seed` varies its content. Docker media types when `docker`.
 */
export async function makeImage(
  dir: string,
  o: { seed?: string; docker?: boolean } = {},
): Promise<TestImage> {
  const store = await ContentStore.open(dir);
  const seed = o.seed ?? 'one';
  const tar1 = await tarBytes([[{ ...file('hello'), mode: 0o755 }, `hello ${seed}\n`]]);
  const tar2 = await tarBytes([
    [{ ...file('etc'), type: 'directory', mode: 0o755 }],
    [file('etc/motd'), `motd ${seed}\n`],
  ]);
  const gz = gzipSync(tar1, { level: 6 });
  const diffIds = [digestOf(tar1), digestOf(tar2)];
  const layers = [
    await putBytes(store, o.docker ? MediaTypes.dockerLayerGzip : MediaTypes.ociLayerGzip, gz),
    await putBytes(store, MediaTypes.ociLayer, tar2),
  ];
  const config: ImageConfig = {
    created: '2024-01-01T00:00:00Z',
    architecture: 'amd64',
    os: 'linux',
    config: { Cmd: ['/hello'], Env: ['PATH=/usr/bin:/bin'] },
    rootfs: { type: 'layers', diff_ids: diffIds },
    history: [{ created: '2024-01-01T00:00:00Z', created_by: 'test' }, { created_by: 'test 2' }],
  };
  const configDesc = await putBytes(
    store,
    o.docker ? MediaTypes.dockerConfig : MediaTypes.ociConfig,
    Buffer.from(JSON.stringify(config)),
  );
  const m: ImageManifest = {
    schemaVersion: 2,
    mediaType: o.docker ? MediaTypes.dockerManifest : MediaTypes.ociManifest,
    config: configDesc,
    layers,
  };
  const manifest = await putBytes(
    store,
    o.docker ? MediaTypes.dockerManifest : MediaTypes.ociManifest,
    Buffer.from(JSON.stringify(m)),
  );
  return { store, manifest, config: configDesc, layers, diffIds };
}

function whichTool(name: string): string | undefined {
  for (const d of (process.env.PATH ?? '').split(delimiter)) {
    try {
      accessSync(join(d || '.', name), constants.X_OK);
      return join(d || '.', name);
    } catch {}
  }
  return undefined;
}

/** True when every tool is on PATH; else a loud skip, or a failure under CI=true. */
export function requireTool(t: TestContext, ...names: string[]): boolean {
  const missing = names.filter((n) => whichTool(n) === undefined);
  if (missing.length === 0) return true;
  const msg = `${missing.join(', ')} not on PATH`;
  const ci = process.env.CI?.toLowerCase();
  if (ci === 'true' || ci === '1') throw new Error(`${msg} (CI=true: a missing binary fails the run)`);
  process.stderr.write(`# SKIP ${t.fullName}: ${msg}\n`);
  t.skip(msg);
  return false;
}

/** Runs a command to completion. */
export function run(
  cmd: string,
  args: string[],
  cwd?: string,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, args, { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (c: Buffer) => {
      stdout += c.toString();
    });
    p.stderr.on('data', (c: Buffer) => {
      stderr += c.toString();
    });
    p.on('error', reject);
    p.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}
