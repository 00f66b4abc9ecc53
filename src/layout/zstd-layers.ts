import { createHash } from 'node:crypto';
import { pipeline as pipe, Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { decompressStream } from '../archive/index.ts';
import { type Digest, digestOf, verifyBlob } from '../digest/index.ts';
import { DrayError } from '../errors.ts';
import {
  type BlobSource,
  type Descriptor,
  type ImageConfig,
  type ImageManifest,
  MediaTypes,
} from '../oci/index.ts';
import type { RunOptions } from '../progress/index.ts';

/** Uncompressed docker layers (containerd's `MediaTypeDockerSchema2Layer`). */
const DOCKER_LAYER_TAR = 'application/vnd.docker.image.rootfs.diff.tar';

const isZstd = (d: Descriptor) =>
  d.mediaType === MediaTypes.ociLayerZstd || d.mediaType === MediaTypes.dockerLayerZstd;

/** An image as the archive writer should store it: the source to read blobs from and its manifest. */
export interface ArchiveImage {
  source: BlobSource;
  manifestDescriptor: Descriptor;
  manifest: ImageManifest;
}

/**
 * The image with its zstd layers as plain tars, for `docker load` of any version (docker before
 * 23.0 cannot decompress zstd; plain tars are what `docker save` itself writes). A zstd layer
 * becomes the uncompressed tar whose digest is its diffID, in a new manifest; the config, and
 * so the image ID docker computes, stays as it is. Each zstd layer is decompressed once here to
 * learn its size and check its diffID, and again when the archive is written. An image without
 * zstd layers comes back unchanged. Does I/O.
 * @throws DRAY_DIGEST_MISMATCH when a layer does not decompress to its diffID, or is not the
 *   blob its descriptor names; DRAY_INVALID_ARCHIVE for a corrupt layer; DRAY_ABORTED.
 */
export async function withPlainTarLayers(
  image: ArchiveImage,
  config: ImageConfig,
  o: RunOptions = {},
): Promise<ArchiveImage> {
  const { source, manifest, manifestDescriptor } = image;
  if (!manifest.layers.some(isZstd)) return image;
  const docker = manifestDescriptor.mediaType === MediaTypes.dockerManifest;
  const plain = new Map<string, Descriptor>(); // diffID → the zstd layer it comes from
  const layers: Descriptor[] = [];
  for (const [i, l] of manifest.layers.entries()) {
    if (!isZstd(l)) {
      layers.push(l);
      continue;
    }
    const diffId = config.rootfs.diff_ids[i] as Digest;
    const size = await plainSize(source, l, diffId, o);
    layers.push({ mediaType: docker ? DOCKER_LAYER_TAR : MediaTypes.ociLayer, digest: diffId, size });
    plain.set(diffId, l);
  }
  const converted: ImageManifest = { ...manifest, layers };
  const bytes = Buffer.from(JSON.stringify(converted));
  const descriptor: Descriptor = {
    mediaType: manifestDescriptor.mediaType,
    digest: digestOf(bytes),
    size: bytes.length,
  };
  const convertedSource: BlobSource = {
    async open(d, ro = {}) {
      if (d.digest === descriptor.digest) return Readable.from([bytes]);
      const zstd = plain.get(d.digest);
      if (zstd === undefined) return source.open(d, ro);
      if (ro.offset) {
        throw new DrayError('DRAY_INTERNAL', `layer ${d.digest} is made on the fly: it cannot resume`);
      }
      return decompressStream(verified(await source.open(zstd, ro), zstd), ro);
    },
  };
  return { source: convertedSource, manifestDescriptor: descriptor, manifest: converted };
}

/** Bytes of the uncompressed layer, checked against its diffID (and the blob against its digest). */
async function plainSize(src: BlobSource, layer: Descriptor, diffId: Digest, o: RunOptions): Promise<number> {
  const plain = await decompressStream(verified(await src.open(layer, o), layer), o);
  const hash = createHash('sha256');
  let size = 0;
  await pipeline(plain, async (chunks: AsyncIterable<Buffer>) => {
    for await (const c of chunks) {
      hash.update(c);
      size += c.length;
    }
  });
  const got = `sha256:${hash.digest('hex')}`;
  if (got !== diffId) {
    throw new DrayError(
      'DRAY_DIGEST_MISMATCH',
      `layer ${layer.digest} decompresses to ${got}, not to its diffID ${diffId}`,
      { hint: 'the image is damaged; pull or build it again' },
    );
  }
  return size;
}

/** `raw` checked against `d` as it streams (errors of either side end the result). */
function verified(raw: Readable, d: Descriptor): Readable {
  const v = verifyBlob(d);
  pipe(raw, v, () => {});
  return v;
}
