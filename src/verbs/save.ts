import type { Writable } from 'node:stream';
import { DrayError, throwIfAborted } from '../errors.ts';
import { writeToDestination } from '../exporter/index.ts';
import { writeDockerArchive, writeOciArchive } from '../layout/index.ts';
import { type Descriptor, type Platform, parsePlatform } from '../oci/index.ts';
import { oneOff, type RunOptions } from '../progress/index.ts';
import { openStores, resolveLocalImage, type StoreOptions } from './context.ts';

export interface SaveOptions extends RunOptions, StoreOptions {
  /** 'docker' (default; Docker 25's combined layout, so OCI tools read it too) or 'oci'. */
  format?: 'docker' | 'oci';
  /** A file path (written atomically) or a stream (stdout). */
  output: string | Writable;
  /** For multi-platform images: the platform to write (docker default: the host's; oci default: every platform present). */
  platform?: string | Platform;
}

/**
 * Writes images from the image store into one archive (docker save): the `docker` format
 * for `docker load`, `oci` for OCI tools. Blobs stream from the content store into the tar;
 * a file is written atomically. Names of the same image share one entry, as docker save does.
 * Throws DRAY_INVALID_ARGUMENT, DRAY_INVALID_REFERENCE, DRAY_NOT_FOUND,
 * DRAY_UNSUPPORTED_MEDIA_TYPE (non-distributable layers cannot go into a docker archive).
 */
export async function save(names: readonly string[], o: SaveOptions): Promise<void> {
  throwIfAborted(o.signal);
  if (names.length === 0) throw new DrayError('DRAY_INVALID_ARGUMENT', 'save: no image names given');
  const { content, images } = await openStores(o);
  const platform = typeof o.platform === 'string' ? parsePlatform(o.platform) : o.platform;
  const byDigest = new Map<string, { names: string[]; root: Descriptor }>();
  for (const n of names) {
    const { name, root } = await resolveLocalImage(images, n, o);
    const entry = byDigest.get(root.digest) ?? { names: [], root };
    entry.names.push(name);
    byDigest.set(root.digest, entry);
  }
  const dest =
    typeof o.output === 'string'
      ? { kind: 'file' as const, path: o.output }
      : { kind: 'stream' as const, stream: o.output };
  const run: RunOptions = {
    ...(o.signal ? { signal: o.signal } : {}),
    ...(o.progress ? { progress: o.progress } : {}),
  };
  const entries = [...byDigest.values()];
  const done = oneOff(o.progress, `saving ${names.join(', ')}`);
  try {
    await writeToDestination(dest, (out) =>
      o.format === 'oci'
        ? writeOciArchive(
            out,
            entries.flatMap((e) =>
              e.names.map((name) => ({
                name,
                source: content,
                root: e.root,
                ...(platform ? { platform } : {}),
              })),
            ),
            run,
          )
        : writeDockerArchive(
            out,
            entries.map((e) => ({
              tags: e.names,
              source: content,
              root: e.root,
              ...(platform ? { platform } : {}),
            })),
            run,
          ),
    );
  } catch (e) {
    done(e as Error);
  }
  done(undefined);
}
