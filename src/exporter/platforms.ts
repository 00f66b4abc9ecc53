import { DrayError } from '../errors.ts';
import {
  type BlobSource,
  type Descriptor,
  formatPlatform,
  hostPlatform,
  type ImageManifest,
  isAttestationManifest,
  type Platform,
  parseDocument,
  parseImageConfig,
  readDocument,
  selectManifest,
} from '../oci/index.ts';
import type { RunOptions } from '../progress/index.ts';

/** One platform's image inside an export input. */
export interface PlatformImage {
  platform: Platform;
  descriptor: Descriptor;
  manifest: ImageManifest;
}

/**
 * The platform images of `root` an exporter should write: for a manifest, that image (its
 * platform read from the config); for an index, `platforms` ('all' = every platform the
 * source holds; a list = those; default = the host's).
 */
export async function platformImages(
  source: BlobSource,
  root: Descriptor,
  platforms: Platform[] | 'all' | undefined,
  o: RunOptions = {},
): Promise<PlatformImage[]> {
  const doc = parseDocument(await readDocument(source, root, o), root.mediaType);
  if (doc.kind === 'manifest') {
    const config = parseImageConfig(
      await readDocument(source, doc.manifest.config, { ...o, maxBytes: 8 << 20 }),
    );
    return [
      {
        platform: {
          os: config.os,
          architecture: config.architecture,
          ...(config.variant ? { variant: config.variant } : {}),
        },
        descriptor: root,
        manifest: doc.manifest,
      },
    ];
  }
  let chosen: Descriptor[];
  if (platforms === 'all') {
    chosen = doc.index.manifests.filter((m) => m.platform && !isAttestationManifest(m));
  } else {
    chosen = (platforms ?? [hostPlatform()]).map((p) => selectManifest(doc.index, p));
  }
  const out: PlatformImage[] = [];
  for (const d of chosen) {
    let bytes: Buffer;
    try {
      bytes = await readDocument(source, d, o);
    } catch (e) {
      // 'all' means every platform that is here; a single-platform pull holds one of them.
      if (platforms === 'all' && (e as { code?: string }).code === 'DRAY_BLOB_UNKNOWN') continue;
      throw e;
    }
    const inner = parseDocument(bytes, d.mediaType);
    if (inner.kind !== 'manifest')
      throw new DrayError('DRAY_INVALID_MANIFEST', `nested index ${d.digest} is not supported`);
    out.push({ platform: d.platform!, descriptor: d, manifest: inner.manifest });
  }
  if (out.length === 0)
    throw new DrayError('DRAY_NOT_FOUND', `no platform of ${root.digest} is present to export`);
  return out;
}

/** `os_arch[_variant]`: the subdirectory name for one platform of a multi-platform export. */
export function platformDirName(p: Platform): string {
  return formatPlatform(p).replaceAll('/', '_');
}
