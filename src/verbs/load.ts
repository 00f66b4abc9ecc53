import type { Readable } from 'node:stream';
import { DrayError, throwIfAborted } from '../errors.ts';
import { copyGraph } from '../graph/index.ts';
import { indexTar, OciArchive, readDockerArchive, spoolToFile } from '../layout/index.ts';
import type { Descriptor } from '../oci/index.ts';
import type { RunOptions } from '../progress/index.ts';
import { openStores, type StoreOptions } from './context.ts';

export interface LoadOptions extends RunOptions, StoreOptions {
  /** Load only the image with this tag from a multi-image archive. */
  tag?: string;
}

export interface LoadResult {
  /** Names given to the loaded images (empty for untagged ones). */
  names: string[];
  /** Root descriptors loaded (one per image). */
  images: Descriptor[];
}

/**
 * Loads images from a docker archive (`docker save`, any generation, incl. Docker 25's
 * combined layout) or an OCI archive into the stores (docker load). `input` is a file or a
 * stream (spooled to a temp file first: archives are read by offset). Digests are kept:
 * configs and layers are stored byte for byte, so image IDs do not change.
 * Throws DRAY_INVALID_ARCHIVE (not an image archive, no manifest.json, null manifest, link
 * cycles), DRAY_NOT_FOUND (no image with `tag`), DRAY_DIGEST_MISMATCH.
 */
export async function load(input: string | Readable, o: LoadOptions): Promise<LoadResult> {
  throwIfAborted(o.signal);
  const run: RunOptions = {
    ...(o.signal ? { signal: o.signal } : {}),
    ...(o.progress ? { progress: o.progress } : {}),
  };
  let file: string;
  let cleanup = async () => {};
  if (typeof input === 'string') file = input;
  else {
    const spooled = await spoolToFile(input, run);
    file = spooled.path;
    cleanup = spooled.dispose;
  }
  try {
    const { content, images } = await openStores(o);
    const index = await indexTar(file, run);
    const result: LoadResult = { names: [], images: [] };
    if (index.lookup('manifest.json')) {
      const archive = await readDockerArchive(file, { ...run, ...(o.tag ? { tag: o.tag } : {}) });
      const chosen = o.tag ? [archive.image(o.tag)] : archive.images;
      for (const img of chosen) {
        await copyGraph(archive, content, img.manifest, run);
        for (const name of img.names) await images.tag(name, img.manifest);
        // An untagged image is kept under its digest, so `dray images` lists it and
        // `dray tag <digest> name` can name it (docker keeps it as <none>:<none>).
        if (img.names.length === 0) await images.tag(img.manifest.digest, img.manifest);
        result.names.push(...img.names);
        result.images.push(img.manifest);
      }
      return result;
    }
    if (index.lookup('oci-layout')) {
      const archive = await OciArchive.open(file, run);
      for (const m of archive.index().manifests) {
        await copyGraph(archive, content, m, run);
        const name =
          m.annotations?.['io.containerd.image.name'] ?? m.annotations?.['org.opencontainers.image.ref.name'];
        result.images.push(m);
        if (name?.includes('/')) {
          await images.tag(name, m);
          result.names.push(name);
        } else {
          await images.tag(m.digest, m);
        }
      }
      return result;
    }
    throw new DrayError(
      'DRAY_INVALID_ARCHIVE',
      `${typeof input === 'string' ? input : 'input'} is not an image archive: no manifest.json or oci-layout`,
      {
        hint: "load takes what 'docker save' or 'dray save' writes",
      },
    );
  } finally {
    await cleanup();
  }
}
