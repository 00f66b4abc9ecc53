import { createReadStream } from 'node:fs';
import { open } from 'node:fs/promises';
import { PassThrough } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { compressStream, decompressStream, detectCompression } from '../archive/index.ts';
import type { ContentStore } from '../content/index.ts';
import { type Digest, Digester } from '../digest/index.ts';
import { DrayError, throwIfAborted } from '../errors.ts';
import { emptyImageConfig, normalizeLayersAndHistory, patchImageConfig, writeImage } from '../image/index.ts';
import { type Descriptor, hostPlatform, MediaTypes } from '../oci/index.ts';
import type { RunOptions } from '../progress/index.ts';
import { normalizeReference, referenceString } from '../reference/index.ts';
import { openStores, resolveLocalImage, type StoreOptions } from './context.ts';
import { resolveImage } from './resolve.ts';

export interface AppendOptions extends RunOptions, StoreOptions {
  /** Name of the new image (required). */
  tag: string;
  /** Compression for uncompressed layer files (default gzip); compressed files are stored as they are. */
  compression?: 'gzip' | 'zstd';
  /** `created_by` of the new history entries (default `dray append`). */
  createdBy?: string;
}

/**
 * A new image made of `base` plus each tarball in `layers` as a new top layer (crane append).
 * `base` may be `scratch`. Each tarball may be plain, gzip or zstd: compressed ones are
 * stored as they are, plain ones are compressed; the diff ID is computed from the
 * uncompressed bytes. History gets one entry per layer. Everything streams into the
 * content store. Throws DRAY_NOT_FOUND, DRAY_INVALID_ARCHIVE, DRAY_INVALID_ARGUMENT.
 */
export async function append(
  base: string,
  layers: readonly string[],
  o: AppendOptions,
): Promise<{ name: string; descriptor: Descriptor }> {
  throwIfAborted(o.signal);
  if (layers.length === 0) throw new DrayError('DRAY_INVALID_ARGUMENT', 'append: no layer tarballs given');
  const name = referenceString(normalizeReference(o.tag));
  const { content, images } = await openStores(o);
  let config = emptyImageConfig(hostPlatform());
  let baseLayers: Descriptor[] = [];
  let docker = false;
  if (base !== 'scratch') {
    const img = await resolveImage(content, (await resolveLocalImage(images, base, o)).root, {
      ...o,
      has: (d) => content.has(d),
    });
    config = img.config;
    baseLayers = img.manifest.layers;
    docker = img.manifestDescriptor.mediaType === MediaTypes.dockerManifest;
  }
  const created = new Date().toISOString();
  const added: Array<{ descriptor: Descriptor; diffId: Digest }> = [];
  for (const file of layers)
    added.push(await storeLayerFile(content, file, { docker, compression: o.compression ?? 'gzip', ...o }));
  const allLayers = [...baseLayers, ...added.map((a) => a.descriptor)];
  const history = normalizeLayersAndHistory(
    [
      ...(config.history ?? []),
      ...added.map(() => ({ created, created_by: o.createdBy ?? 'dray append', comment: 'dray.append.v0' })),
    ],
    allLayers.map(() => ({ created })),
  );
  const patched = patchImageConfig(
    { ...config, created },
    { diffIds: [...config.rootfs.diff_ids, ...added.map((a) => a.diffId)], history },
  );
  const descriptor = await writeImage(
    content,
    { config: patched, layers: allLayers, mediaTypes: docker ? 'docker' : 'oci' },
    o,
  );
  await images.tag(name, descriptor);
  return { name, descriptor };
}

/** Hashes a stream into a Digester; resolves at its end. */
async function hashOf(stream: NodeJS.ReadableStream): Promise<Digest> {
  const d = new Digester('sha256');
  for await (const chunk of stream) d.update(chunk as Buffer);
  return d.digest();
}

/**
 * Stores one layer tarball in the content store and returns its descriptor and diff ID, in
 * one pass over the file for plain tarballs (hash + compress) and two for compressed ones
 * (stored as is; decompressed once for the diff ID).
 */
async function storeLayerFile(
  content: ContentStore,
  file: string,
  o: RunOptions & { docker: boolean; compression: 'gzip' | 'zstd' },
): Promise<{ descriptor: Descriptor; diffId: Digest }> {
  const head = await readHead(file);
  const found = detectCompression(head);
  const writer = await content.newBlob();
  let diffId: Digest;
  let compression: 'gzip' | 'zstd';
  try {
    if (found === 'none') {
      compression = o.compression;
      const tee = new PassThrough({ highWaterMark: 1 << 20 });
      const diff = hashOf(tee);
      await pipeline(
        createReadStream(file, { highWaterMark: 1 << 20 }),
        tee,
        compressStream({ compression }),
        writer,
        {
          ...(o.signal ? { signal: o.signal } : {}),
        },
      );
      diffId = await diff;
    } else {
      compression = found;
      await pipeline(createReadStream(file, { highWaterMark: 1 << 20 }), writer, {
        ...(o.signal ? { signal: o.signal } : {}),
      });
      diffId = await hashOf(await decompressStream(createReadStream(file, { highWaterMark: 1 << 20 }), o));
    }
  } catch (e) {
    await writer.abort();
    throw e;
  }
  const { digest, size } = await writer.commit();
  const mediaType = o.docker
    ? compression === 'gzip'
      ? MediaTypes.dockerLayerGzip
      : MediaTypes.dockerLayerZstd
    : compression === 'gzip'
      ? MediaTypes.ociLayerGzip
      : MediaTypes.ociLayerZstd;
  return { descriptor: { mediaType, digest, size }, diffId };
}

async function readHead(file: string): Promise<Buffer> {
  const fh = await open(file, 'r').catch((e: unknown) => {
    throw new DrayError(
      'DRAY_INVALID_ARGUMENT',
      `cannot read layer tarball ${file}: ${(e as Error).message}`,
      { cause: e },
    );
  });
  try {
    const buf = Buffer.alloc(8);
    const { bytesRead } = await fh.read(buf, 0, 8, 0);
    return buf.subarray(0, bytesRead);
  } finally {
    await fh.close();
  }
}
