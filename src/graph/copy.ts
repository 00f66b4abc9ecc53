import { pipeline as pipe, Readable, type Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { shortDigest } from '../digest/index.ts';
import { isDrayError, throwIfAborted } from '../errors.ts';
import {
  type BlobSource,
  type BlobTarget,
  type Descriptor,
  type ImageIndex,
  isDocumentType,
  MediaTypes,
  type Platform,
  parseDocument,
  readDocument,
  selectManifest,
} from '../oci/index.ts';
import type { ProgressWriter, RunOptions } from '../progress/index.ts';
import { Limiter } from './dispatch.ts';
import { meter } from './meter.ts';
import { openResumable } from './resumable.ts';

/** Which words the per-layer progress lines use, as `docker pull` / `docker push` print them. */
export type TransferWords = 'pull' | 'push' | 'copy';

export interface CopyGraphOptions extends RunOptions {
  /** For an index: copy only the manifest for this platform (the index itself is kept). Default: every platform. */
  platform?: Platform;
  /** Parallel blob transfers. Default 4. */
  concurrency?: number;
  /** Source repository name for cross-repository mounts, when `dst.mount` exists. */
  mountFrom?: string;
  /** Progress wording. Default 'copy'. */
  words?: TransferWords;
  /**
   * What to do with an index child the source lacks (a single-platform pull being pushed
   * on): 'fail' (default) or 'skip' (reported through `skipped`).
   */
  missingChildren?: 'fail' | 'skip';
}

export interface CopyGraphResult {
  /** Blobs (layers and configs) copied, found already present, or mounted. */
  copied: Descriptor[];
  existing: Descriptor[];
  mounted: Descriptor[];
  /** Bytes of blob content transferred. */
  bytes: number;
  /** The manifest chosen from an index by `platform`, if any. */
  selected?: Descriptor;
}

const words = {
  pull: {
    start: 'Pulling fs layer',
    active: 'Downloading',
    verify: 'Verifying Checksum',
    done: 'Pull complete',
    exists: 'Already exists',
  },
  push: {
    start: 'Preparing',
    active: 'Pushing',
    verify: 'Pushing',
    done: 'Pushed',
    exists: 'Layer already exists',
  },
  copy: {
    start: 'Waiting',
    active: 'Copying',
    verify: 'Verifying Checksum',
    done: 'Copied',
    exists: 'Already exists',
  },
} as const;

const foreignLayers = new Set<string>([
  MediaTypes.dockerLayerForeignGzip,
  MediaTypes.ociLayerNondistributable,
  MediaTypes.ociLayerNondistributableGzip,
]);

/**
 * Copies the image graph under `root` (index → manifests → config + layers) from `src` to
 * `dst`. This is the only copy in dray: pull, push, save and load are this routine between
 * different targets. Children are stored before their parent, so a target that has a
 * manifest has everything under it; blobs already present are skipped; blobs move as
 * streams through `dst.put`, which verifies them. Documents are read whole but capped.
 * Throws whatever the source or target throws (typed DrayErrors).
 */
export async function copyGraph(
  src: BlobSource,
  dst: BlobTarget,
  root: Descriptor,
  o: CopyGraphOptions = {},
): Promise<CopyGraphResult> {
  throwIfAborted(o.signal);
  const limiter = new Limiter(o.concurrency ?? 4);
  const result: CopyGraphResult = { copied: [], existing: [], mounted: [], bytes: 0 };
  const w = words[o.words ?? 'copy'];
  const progress: ProgressWriter | undefined = o.progress;
  const inner = new AbortController();
  const signal = o.signal ? AbortSignal.any([o.signal, inner.signal]) : inner.signal;
  // One transfer per digest even when several manifests of an index share layers.
  const inflight = new Map<string, Promise<void>>();

  const copyBlob = (d: Descriptor, isLayer: boolean): Promise<void> => {
    let p = inflight.get(d.digest);
    if (!p) {
      p = transferBlob(d, isLayer);
      inflight.set(d.digest, p);
    }
    return p;
  };

  /**
   * Copies `d` through the target's resumable writer: a transfer that an earlier process left
   * half done (killed, crashed, disk full) continues from the bytes already held, and a
   * dropped connection keeps what arrived for the next attempt. Returns false when the
   * resumed bytes turn out wrong (the target discarded them): the caller starts over.
   */
  const resumeInto = async (
    resume: NonNullable<BlobTarget['resume']>,
    d: Descriptor,
    counter: (offset?: number) => Transform,
    onResume: (offset: number) => void,
  ): Promise<boolean> => {
    const writer = await resume(d, `copy-${d.digest}`, { signal });
    if (writer.exists) {
      writer.destroy();
      return true;
    }
    const offset = writer.offset;
    if (offset > 0) onResume(offset);
    try {
      await pipeline(await openResumable(src, d, { signal, offset, onResume }), counter(offset), writer, {
        signal,
      });
      await writer.commit();
      return true;
    } catch (e) {
      writer.destroy();
      if (offset > 0 && isDrayError(e, 'DRAY_DIGEST_MISMATCH')) return false;
      throw e;
    }
  };

  const transferBlob = async (d: Descriptor, isLayer: boolean): Promise<void> => {
    const id = d.digest;
    const report = (e: { status: string; current?: number; total?: number; completed?: number }) => {
      if (isLayer) progress?.write({ id, kind: 'blob', name: shortDigest(d.digest), ...e });
    };
    report({ status: w.start });
    await limiter.run(async () => {
      signal.throwIfAborted();
      if (await dst.has(d, { signal })) {
        result.existing.push(d);
        report({ status: w.exists, completed: Date.now() });
        return;
      }
      if (foreignLayers.has(d.mediaType)) {
        // Non-distributable layers are fetched by the runtime from their URLs, never copied
        // between registries (image-spec layer.md "Non-distributable layers").
        report({ status: 'Skipped foreign layer', completed: Date.now() });
        return;
      }
      if (dst.mount && o.mountFrom && (await dst.mount(d, o.mountFrom, { signal }))) {
        result.mounted.push(d);
        report({ status: `Mounted from ${o.mountFrom}`, completed: Date.now() });
        return;
      }
      const counter = (offset = 0) => {
        const m = meter(
          progress && isLayer ? progress : undefined,
          { id, kind: 'blob', name: shortDigest(d.digest), status: w.active, total: d.size },
          { offset },
        );
        m.once('end', () => report({ status: w.verify, current: d.size, total: d.size }));
        return m;
      };
      const onResume = (offset: number) =>
        report({ status: `${w.active} (resuming at ${offset})`, current: offset, total: d.size });
      if (dst.resume && (await resumeInto(dst.resume.bind(dst), d, counter, onResume))) {
        // stored through a resumable writer
      } else {
        await dst.put(d, chain(await openResumable(src, d, { signal, onResume }), counter()), {
          signal,
          absent: true,
          reopen: async () => {
            report({ status: `${w.active} (retrying)`, current: 0, total: d.size });
            return chain(await openResumable(src, d, { signal }), counter());
          },
        });
      }
      result.copied.push(d);
      result.bytes += d.size;
      report({ status: w.done, completed: Date.now() });
    });
  };

  const copyNode = async (d: Descriptor, isLayer: boolean): Promise<void> => {
    signal.throwIfAborted();
    if (!isDocumentType(d.mediaType)) return copyBlob(d, isLayer);
    // Always walk into documents, even ones the target has: an index may be stored with
    // only some of its manifests, and a prune interrupted by a crash may have left a
    // manifest whose layers are gone. The per-blob `has` checks make the walk cheap.
    const bytes = await readDocument(src, d, { signal });
    const parsed = parseDocument(bytes, d.mediaType);
    if (parsed.kind === 'manifest') {
      const m = parsed.manifest;
      await Promise.all([copyBlob(m.config, false), ...m.layers.map((l) => copyBlob(l, true))]);
    } else {
      const children = pickChildren(parsed.index, o.platform);
      if (o.platform && children[0]) result.selected = children[0];
      await Promise.all(children.map((c) => copyChild(c)));
    }
    await putDocument(d, bytes);
  };

  const copyChild = async (c: Descriptor): Promise<void> => {
    try {
      // A blob straight under an index (a BuildKit cache's layers) gets per-layer progress.
      await copyNode(c, !isDocumentType(c.mediaType));
    } catch (e) {
      if (o.missingChildren === 'skip' && isMissing(e)) return;
      throw e;
    }
  };

  const putDocument = async (d: Descriptor, bytes: Buffer): Promise<void> => {
    if (await dst.has(d, { signal })) return;
    await dst.put(d, Readable.from([bytes]), { signal });
  };

  try {
    // A lone blob (a layer fetched on its own) reports progress like a layer of an image.
    await copyNode(root, !isDocumentType(root.mediaType));
  } catch (e) {
    inner.abort(e);
    throw e;
  }
  return result;
}

/**
 * `src` into `dst`, returning `dst`. Not `src.pipe(dst)`: pipe forwards no errors, so a source
 * that fails (an abort mid-download, a dropped connection) would emit 'error' with no
 * listener — an uncaught exception — while the consumer of `dst` waited forever. `pipeline`
 * destroys both with the error, and the consumer of `dst` sees it.
 */
function chain(src: Readable, dst: Transform): Transform {
  pipe(src, dst, () => {});
  return dst;
}

function pickChildren(index: ImageIndex, platform: Platform | undefined): Descriptor[] {
  if (!platform) return index.manifests;
  return [selectManifest(index, platform)];
}

function isMissing(e: unknown): boolean {
  const code = (e as { code?: string }).code;
  return code === 'DRAY_BLOB_UNKNOWN' || code === 'DRAY_MANIFEST_UNKNOWN' || code === 'DRAY_NOT_FOUND';
}
