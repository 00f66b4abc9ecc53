import { throwIfAborted } from '../errors.ts';
import type { Descriptor } from '../oci/index.ts';
import type { RunOptions } from '../progress/index.ts';
import { familiarMatcher, familiarName, normalizeReference } from '../reference/index.ts';
import { openStores, type StoreOptions } from './context.ts';
import { resolveImage } from './resolve.ts';

export interface ImageSummary {
  /** Full stored name (docker.io/library/busybox:latest or name@sha256:…). */
  name: string;
  /** Familiar repository (busybox) and tag ('<none>' for digest-only names). */
  repository: string;
  tag: string;
  /** Root digest (the index for multi-platform images). */
  digest: string;
  descriptor: Descriptor;
  /** Bytes of the platform manifest's config and layers, as stored (compressed). */
  size: number;
  /** Image config `created`, when set. */
  created?: string;
}

export interface ImagesOptions extends RunOptions, StoreOptions {
  /**
   * Only images whose name matches this pattern: `docker images REPOSITORY[:TAG]`, which
   * matches as distribution's FamiliarMatch does (`busybox`, `busybox:1.36`, `team/*`,
   * `*:v?`; `*` and `?` never cross a `/`). Unnamed images never match.
   */
  reference?: string;
}

/**
 * Lists the images in the image store (docker images). Reads each image's manifest and config.
 * Throws DRAY_INVALID_ARGUMENT for a malformed `reference` pattern.
 */
export async function images(o: ImagesOptions): Promise<ImageSummary[]> {
  throwIfAborted(o.signal);
  // A malformed pattern fails before anything is read, even with an empty store.
  const matches = o.reference === undefined ? undefined : familiarMatcher(o.reference);
  const { content, images: store } = await openStores(o);
  const out: ImageSummary[] = [];
  for (const record of await store.list()) {
    // Images loaded without a name are stored under their digest: docker's <none>:<none>.
    const ref = record.name.startsWith('sha256:') ? undefined : normalizeReference(record.name);
    if (matches && (ref === undefined || !matches(ref))) continue;
    let size = 0;
    let created: string | undefined;
    try {
      const img = await resolveImage(content, record.target, { ...o, has: (d) => content.has(d) });
      size = img.manifest.config.size + img.manifest.layers.reduce((n, l) => n + l.size, 0);
      created = img.config.created;
    } catch {
      // An image whose content is damaged is still listed, with what the record knows.
    }
    out.push({
      name: record.name,
      repository: ref ? familiarName(ref) : '<none>',
      tag: ref?.tag ?? '<none>',
      digest: record.target.digest,
      descriptor: record.target,
      size,
      ...(created ? { created } : {}),
    });
  }
  return out;
}
