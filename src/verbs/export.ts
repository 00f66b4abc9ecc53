import type { Writable } from 'node:stream';
import { throwIfAborted } from '../errors.ts';
import { resolveExporter } from '../exporter/index.ts';
import { type Platform, parsePlatform } from '../oci/index.ts';
import type { RunOptions } from '../progress/index.ts';
import { openStores, resolveLocalImage, type StoreOptions } from './context.ts';

export interface ExportImageOptions extends RunOptions, StoreOptions {
  /** A file path (written atomically) or a stream (stdout). */
  output: string | Writable;
  /** For multi-platform images: the platform (default: the host's), or 'all' (one subdirectory per platform). */
  platform?: string | Platform | 'all';
}

function platformsOf(p: ExportImageOptions['platform']): Platform[] | 'all' | undefined {
  if (p === undefined) return undefined;
  if (p === 'all') return 'all';
  return [typeof p === 'string' ? parsePlatform(p) : p];
}

/**
 * Writes an image's root filesystem — its layers merged, whiteouts applied — as one tar
 * (docker export of a container from the image, without a container). Streams from the
 * layers straight into the tar; nothing is unpacked to disk. Throws DRAY_NOT_FOUND,
 * DRAY_INVALID_REFERENCE, DRAY_INVALID_ARCHIVE.
 */
export async function exportImage(image: string, o: ExportImageOptions): Promise<void> {
  throwIfAborted(o.signal);
  const { content, images } = await openStores(o);
  const { root } = await resolveLocalImage(images, image, o);
  const platforms = platformsOf(o.platform);
  const dest =
    typeof o.output === 'string'
      ? { kind: 'file' as const, path: o.output }
      : { kind: 'stream' as const, stream: o.output };
  await resolveExporter({ type: 'tar', dest, ...(platforms ? { platforms } : {}) }).export(
    { source: content, root },
    { ...(o.signal ? { signal: o.signal } : {}), ...(o.progress ? { progress: o.progress } : {}) },
  );
}

export interface UnpackOptions extends RunOptions, StoreOptions {
  platform?: string | Platform | 'all';
}

/**
 * Unpacks an image's root filesystem into `dir` (the local exporter): layers applied in
 * order with whiteouts, owners, modes, times and xattrs, never writing outside `dir`.
 * Throws DRAY_NOT_FOUND, DRAY_UNSAFE_ARCHIVE, DRAY_NO_SPACE.
 */
export async function unpack(image: string, dir: string, o: UnpackOptions): Promise<void> {
  throwIfAborted(o.signal);
  const { content, images } = await openStores(o);
  const { root } = await resolveLocalImage(images, image, o);
  const platforms = platformsOf(o.platform);
  await resolveExporter({ type: 'local', dest: dir, ...(platforms ? { platforms } : {}) }).export(
    { source: content, root },
    { ...(o.signal ? { signal: o.signal } : {}), ...(o.progress ? { progress: o.progress } : {}) },
  );
}
