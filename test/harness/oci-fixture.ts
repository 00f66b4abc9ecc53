/**
 * Tiny deterministic OCI image layouts for integration tests, written in-process:
 * a minimal ustar writer, gzip (node zlib, fixed level, mtime 0), OCI manifest,
 * config and index.json. Feed the result to `skopeo copy oci:<dir>:<tag> docker://…`.
 */
import { createCipheriv, createHash } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';

export type LayerFiles = Record<string, string | Buffer>;

export interface BlobInfo {
  mediaType: string;
  digest: string;
  size: number;
}

export interface OciFixture {
  dir: string;
  tag: string;
  /** The layout reference for skopeo/umoci: `<dir>:<tag>`. */
  ref: string;
  manifest: BlobInfo;
  config: BlobInfo;
  layers: Array<BlobInfo & { diffId: string }>;
}

/** Deterministic incompressible bytes (AES-256-CTR keystream, key from `seed`). */
export function seededBytes(seed: number, n: number): Buffer {
  const key = createHash('sha256').update(`dray-fixture-${seed}`).digest();
  const c = createCipheriv('aes-256-ctr', key, Buffer.alloc(16));
  return Buffer.concat([c.update(Buffer.alloc(n)), c.final()]);
}

function octal(n: number, width: number): string {
  return `${n.toString(8).padStart(width - 1, '0')}\0`;
}

function tarHeader(name: string, size: number, type: '0' | '5', mode: number): Buffer {
  if (Buffer.byteLength(name) > 100) throw new Error(`tar name too long for this writer: ${name}`);
  const h = Buffer.alloc(512);
  h.write(name, 0, 'utf8');
  h.write(octal(mode, 8), 100, 'latin1');
  h.write(octal(0, 8), 108, 'latin1'); // uid
  h.write(octal(0, 8), 116, 'latin1'); // gid
  h.write(octal(size, 12), 124, 'latin1');
  h.write(octal(0, 12), 136, 'latin1'); // mtime: 1970
  h.fill(' ', 148, 156); // checksum placeholder
  h.write(type, 156, 'latin1');
  h.write('ustar\0', 257, 'latin1');
  h.write('00', 263, 'latin1');
  let sum = 0;
  for (const b of h) sum += b;
  h.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'latin1');
  return h;
}

/** A deterministic uncompressed tar of `files` (parent dirs added, 0755/0644, uid 0, mtime 0, sorted). */
export function makeTar(files: LayerFiles): Buffer {
  const entries = new Map<string, Buffer | undefined>();
  for (const [p, content] of Object.entries(files)) {
    const parts = p.split('/').filter(Boolean);
    for (let i = 1; i < parts.length; i++) entries.set(`${parts.slice(0, i).join('/')}/`, undefined);
    entries.set(parts.join('/'), Buffer.from(content));
  }
  const out: Buffer[] = [];
  for (const name of [...entries.keys()].sort()) {
    const data = entries.get(name);
    if (data === undefined) {
      out.push(tarHeader(name, 0, '5', 0o755));
    } else {
      out.push(
        tarHeader(name, data.length, '0', 0o644),
        data,
        Buffer.alloc((512 - (data.length % 512)) % 512),
      );
    }
  }
  out.push(Buffer.alloc(1024));
  return Buffer.concat(out);
}

const sha = (b: Buffer | string) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

/** Writes an OCI layout with one image (linux/amd64) made of `layers` into `dir`. */
export async function writeOciLayout(
  dir: string,
  layers: LayerFiles[],
  o: { tag?: string; config?: Record<string, unknown> } = {},
): Promise<OciFixture> {
  const tag = o.tag ?? 'latest';
  const blobs = join(dir, 'blobs', 'sha256');
  await mkdir(blobs, { recursive: true });
  const put = async (b: Buffer, mediaType: string): Promise<BlobInfo> => {
    const digest = sha(b);
    await writeFile(join(blobs, digest.slice(7)), b);
    return { mediaType, digest, size: b.length };
  };
  const layerInfos: Array<BlobInfo & { diffId: string }> = [];
  for (const files of layers) {
    const tar = makeTar(files);
    const gz = gzipSync(tar, { level: 6 });
    layerInfos.push({ ...(await put(gz, 'application/vnd.oci.image.layer.v1.tar+gzip')), diffId: sha(tar) });
  }
  const config = {
    created: '1970-01-01T00:00:00Z',
    architecture: 'amd64',
    os: 'linux',
    config: o.config ?? { Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'] },
    rootfs: { type: 'layers', diff_ids: layerInfos.map((l) => l.diffId) },
    history: layerInfos.map((_, i) => ({
      created: '1970-01-01T00:00:00Z',
      created_by: `dray-fixture layer ${i}`,
    })),
  };
  const configInfo = await put(
    Buffer.from(JSON.stringify(config)),
    'application/vnd.oci.image.config.v1+json',
  );
  const manifest = {
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: configInfo,
    layers: layerInfos.map(({ mediaType, digest, size }) => ({ mediaType, digest, size })),
  };
  const manifestInfo = await put(Buffer.from(JSON.stringify(manifest)), manifest.mediaType);
  const index = {
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.index.v1+json',
    manifests: [{ ...manifestInfo, annotations: { 'org.opencontainers.image.ref.name': tag } }],
  };
  await writeFile(join(dir, 'index.json'), JSON.stringify(index));
  await writeFile(join(dir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  return { dir, tag, ref: `${dir}:${tag}`, manifest: manifestInfo, config: configInfo, layers: layerInfos };
}
