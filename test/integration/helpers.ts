/**
 * Shared pieces of the pull/push/CLI/store integration tests: building small images
 * (single- and multi-platform OCI layouts) and pushing them with skopeo, running the CLI
 * in-process or as a process, and checking that a data root is consistent.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { main } from '../../src/cli/main.ts';
import { makeTar, seededBytes, writeOciLayout } from '../harness/oci-fixture.ts';
import { type RunResult, runChecked, runCommand } from '../harness/tools.ts';

export const repoRoot = fileURLToPath(new URL('../../', import.meta.url));
export const drayBin = join(repoRoot, 'bin', 'dray.js');
/** The pinned Node 24 that runs .ts sources (the CLI's shebang `node` may be older). */
export const nodeBin = process.execPath;

const sha = (b: Buffer | string) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

export interface Blob {
  mediaType: string;
  digest: string;
  size: number;
}

/** A small single-platform image of `layerCount` seeded layers, written as an OCI layout in `dir`. */
export async function writeSmallImage(
  dir: string,
  seed: number,
  o: { layerCount?: number; tag?: string } = {},
) {
  const layers = [];
  for (let i = 0; i < (o.layerCount ?? 3); i++) {
    layers.push({ [`data/layer-${seed}-${i}.bin`]: seededBytes(seed * 100 + i, 2048 + i * 1000) });
  }
  return writeOciLayout(dir, layers, { tag: o.tag ?? 'latest' });
}

/** `skopeo copy oci:<layoutRef> docker://<dest>` over plain HTTP; `all` copies every manifest of an index. */
export async function skopeoPush(layoutRef: string, dest: string, o: { all?: boolean } = {}): Promise<void> {
  const args = ['copy', '-q', '--dest-tls-verify=false'];
  if (o.all) args.push('--all');
  args.push(`oci:${layoutRef}`, `docker://${dest}`);
  await runChecked('skopeo', args, { timeoutMs: 120_000 });
}

/** `skopeo inspect --raw` digest of a manifest: sha256 of the raw bytes as the registry serves them. */
export async function skopeoManifestDigest(ref: string): Promise<string> {
  const r = await runChecked('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${ref}`]);
  return sha(Buffer.from(r.stdout, 'utf8'));
}

export interface PlatformSpec {
  os: string;
  architecture: string;
  variant?: string;
}

export interface MultiPlatformImage {
  dir: string;
  tag: string;
  ref: string;
  index: Blob;
  /** Per platform ("linux/arm64/v8"): its manifest, config and layers. */
  platforms: Map<string, { manifest: Blob; config: Blob; layers: Blob[] }>;
}

export const platformKey = (p: PlatformSpec) =>
  [p.os, p.architecture, ...(p.variant ? [p.variant] : [])].join('/');

/**
 * An OCI layout whose index.json names an image index (tag `tag`) of one distinct small
 * manifest per platform (two layers each: a shared-nothing seeded layer and a text layer).
 */
export async function writeMultiPlatformLayout(
  dir: string,
  platforms: PlatformSpec[],
  o: { tag?: string; seed?: number } = {},
): Promise<MultiPlatformImage> {
  const tag = o.tag ?? 'latest';
  const blobs = join(dir, 'blobs', 'sha256');
  await mkdir(blobs, { recursive: true });
  const put = async (b: Buffer, mediaType: string): Promise<Blob> => {
    const digest = sha(b);
    await writeFile(join(blobs, digest.slice(7)), b);
    return { mediaType, digest, size: b.length };
  };
  const out = new Map<string, { manifest: Blob; config: Blob; layers: Blob[] }>();
  const descriptors = [];
  let n = o.seed ?? 7000;
  for (const p of platforms) {
    const key = platformKey(p);
    const layers: Blob[] = [];
    const diffIds: string[] = [];
    for (const files of [
      { [`bin/${p.architecture}.bin`]: seededBytes(n++, 3000) },
      { 'etc/platform': `${key}\n` },
    ]) {
      const tar = makeTar(files);
      diffIds.push(sha(tar));
      layers.push(await put(gzipSync(tar, { level: 6 }), 'application/vnd.oci.image.layer.v1.tar+gzip'));
    }
    const config = await put(
      Buffer.from(
        JSON.stringify({
          created: '1970-01-01T00:00:00Z',
          ...p,
          config: { Env: ['PATH=/usr/bin:/bin'], Cmd: ['/bin/sh'] },
          rootfs: { type: 'layers', diff_ids: diffIds },
        }),
      ),
      'application/vnd.oci.image.config.v1+json',
    );
    const manifest = await put(
      Buffer.from(
        JSON.stringify({
          schemaVersion: 2,
          mediaType: 'application/vnd.oci.image.manifest.v1+json',
          config,
          layers,
        }),
      ),
      'application/vnd.oci.image.manifest.v1+json',
    );
    out.set(key, { manifest, config, layers });
    descriptors.push({ ...manifest, platform: p });
  }
  const index = await put(
    Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: 'application/vnd.oci.image.index.v1+json',
        manifests: descriptors,
      }),
    ),
    'application/vnd.oci.image.index.v1+json',
  );
  await writeFile(
    join(dir, 'index.json'),
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.index.v1+json',
      manifests: [{ ...index, annotations: { 'org.opencontainers.image.ref.name': tag } }],
    }),
  );
  await writeFile(join(dir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  return { dir, tag, ref: `${dir}:${tag}`, index, platforms: out };
}

export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * Runs the CLI in-process (`main(argv, io)`) with its own data root and config dir, never
 * the user's. stdout is not a TTY, so progress is plain.
 */
export async function runCli(
  args: string[],
  o: { root: string; config: string; stdin?: string; env?: NodeJS.ProcessEnv },
): Promise<CliRun> {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  stdout.on('data', (b: Buffer) => out.push(b));
  stderr.on('data', (b: Buffer) => err.push(b));
  const code = await main(['--root', o.root, '--config', o.config, ...args], {
    stdout,
    stderr,
    stdin: Readable.from(o.stdin === undefined ? [] : [o.stdin]),
    env: { DRAY_ROOT: o.root, DOCKER_CONFIG: o.config, ...o.env },
    isTTY: false,
    stdinIsTTY: false,
  });
  return {
    code,
    stdout: Buffer.concat(out).toString('utf8'),
    stderr: Buffer.concat(err).toString('utf8'),
  };
}

/** Runs `node bin/dray.js args` as a process with DRAY_ROOT and DOCKER_CONFIG set. */
export function runDrayProcess(
  args: string[],
  o: { root: string; config: string; timeoutMs?: number },
): Promise<RunResult> {
  return runCommand(nodeBin, [drayBin, ...args], {
    env: { DRAY_ROOT: o.root, DOCKER_CONFIG: o.config, CI: process.env.CI },
    timeoutMs: o.timeoutMs ?? 120_000,
  });
}

async function sha256File(path: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(path)) h.update(chunk as Buffer);
  return `sha256:${h.digest('hex')}`;
}

/** Digests of every committed blob under `<root>/content/blobs/sha256`. */
export async function listBlobs(root: string): Promise<string[]> {
  const dir = join(root, 'content', 'blobs', 'sha256');
  let names: string[] = [];
  try {
    names = await readdir(dir);
  } catch {
    return [];
  }
  return names.map((n) => `sha256:${n}`).sort();
}

/**
 * Asserts the data root is consistent: every entry under blobs/sha256 is a 64-hex name whose
 * content hashes to it, and images.json (when present) parses with version 1 and records
 * whose targets are committed blobs. Returns the blob digests and image names.
 */
export async function assertStoreConsistent(root: string): Promise<{ blobs: string[]; images: string[] }> {
  const dir = join(root, 'content', 'blobs', 'sha256');
  const blobs = await listBlobs(root);
  for (const digest of blobs) {
    assert.match(digest, /^sha256:[0-9a-f]{64}$/, `unexpected entry in blobs/sha256: ${digest}`);
    assert.equal(
      await sha256File(join(dir, digest.slice(7))),
      digest,
      `blob ${digest} content does not match its name`,
    );
  }
  let images: string[] = [];
  let raw: string | undefined;
  try {
    raw = await readFile(join(root, 'images.json'), 'utf8');
  } catch {}
  if (raw !== undefined) {
    const doc = JSON.parse(raw) as { version: number; images: Array<{ name: string; target: Blob }> };
    assert.equal(doc.version, 1);
    assert.ok(Array.isArray(doc.images));
    images = doc.images.map((r) => r.name);
    for (const r of doc.images) {
      assert.ok(
        blobs.includes(r.target.digest),
        `image ${r.name} points at a missing blob ${r.target.digest}`,
      );
    }
  }
  return { blobs, images };
}
