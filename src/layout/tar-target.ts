import { pipeline as pipe, type Readable, type Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { TarHeader } from '../archive/index.ts';
import { createTarWriter } from '../archive/index.ts';
import { digestAlgorithm, digestHex, verifyBlob } from '../digest/index.ts';
import { abortError, DrayError, throwIfAborted } from '../errors.ts';
import {
  type BlobSource,
  type BlobTarget,
  type Descriptor,
  isDocumentType,
  MediaTypes,
  type Platform,
  parseDocument,
  readDocument,
  selectManifest,
} from '../oci/index.ts';
import type { RunOptions } from '../progress/index.ts';

/** What the archive writers need of the tar codec's writer. */
export interface TarSink {
  add(header: TarHeader, body?: Readable | Buffer): unknown;
}

/** Options every archive writer takes. */
export interface ArchiveWriteOptions extends RunOptions {
  /**
   * Modification time of every entry, epoch seconds. Default 0, so two writes of the same
   * images are byte-identical (and `SOURCE_DATE_EPOCH`, read by the CLI, can set it).
   */
  mtime?: number;
}

/** Layers copyGraph never copies (image-spec layer.md "non-distributable"): the plan must skip them too. */
const foreignLayers = new Set<string>([
  MediaTypes.dockerLayerForeignGzip,
  MediaTypes.ociLayerNondistributable,
  MediaTypes.ociLayerNondistributableGzip,
]);

/** The header of a regular file entry as dray writes them: root-owned, 0644, fixed mtime. */
export function fileHeader(name: string, size: number, mtime: number): TarHeader {
  return { name, type: 'file', mode: 0o644, uid: 0, gid: 0, size, mtime };
}

/** The header of a directory entry: root-owned, 0755, fixed mtime. */
export function dirHeader(name: string, mtime: number): TarHeader {
  return { name, type: 'directory', mode: 0o755, uid: 0, gid: 0, size: 0, mtime };
}

/** `blobs/<alg>/<hex>`: where image-layout.md puts a blob. */
export function blobPath(d: Descriptor): string {
  return `blobs/${digestAlgorithm(d.digest)}/${digestHex(d.digest)}`;
}

/**
 * The blobs `copyGraph(src, …, root, { platform })` will store, each once, in a fixed order:
 * depth first, index children in index order, a manifest's config then layers then the
 * manifest itself, an index after its children. Reads the documents (capped, verified). Does I/O.
 */
export async function planGraph(
  src: BlobSource,
  root: Descriptor,
  o: RunOptions & { platform?: Platform } = {},
): Promise<Descriptor[]> {
  const out: Descriptor[] = [];
  const seen = new Set<string>();
  const add = (d: Descriptor) => {
    if (seen.has(d.digest) || foreignLayers.has(d.mediaType)) return;
    seen.add(d.digest);
    out.push(d);
  };
  const visit = async (d: Descriptor): Promise<void> => {
    if (!isDocumentType(d.mediaType)) return add(d);
    const parsed = parseDocument(await readDocument(src, d, o), d.mediaType);
    if (parsed.kind === 'manifest') {
      add(parsed.manifest.config);
      for (const l of parsed.manifest.layers) add(l);
    } else {
      const children = o.platform ? [selectManifest(parsed.index, o.platform)] : parsed.index.manifests;
      for (const c of children) await visit(c);
    }
    add(d);
  };
  await visit(root);
  return out;
}

/**
 * A BlobTarget that writes each blob as a `blobs/<alg>/<hex>` entry of a tar stream. Blobs
 * reach it in whatever order copyGraph's parallel transfers finish; so that two writes of
 * the same images are byte-identical, each `put` waits for its turn in the order `expect`
 * announced (see `planGraph`), and streams straight into the tar when it comes (nothing is
 * buffered: a waiting body is paused by backpressure). Every body is verified on the way.
 */
export class TarBlobTarget implements BlobTarget {
  readonly #sink: TarSink;
  readonly #mtime: number;
  readonly #written = new Set<string>();
  #order: string[] = [];
  #pos = 0;
  #waiters = new Map<string, () => void>();

  constructor(sink: TarSink, o: { mtime?: number } = {}) {
    this.#sink = sink;
    this.#mtime = o.mtime ?? 0;
  }

  /** Digests of the blobs written so far. */
  get written(): ReadonlySet<string> {
    return this.#written;
  }

  /** Announces the order of the next blobs to be put (already written ones are skipped). */
  expect(order: Descriptor[]): void {
    this.#order = order.map((d) => d.digest).filter((d) => !this.#written.has(d));
    this.#pos = 0;
  }

  async has(d: Descriptor): Promise<boolean> {
    return this.#written.has(d.digest);
  }

  async put(d: Descriptor, body: Readable, o: RunOptions = {}): Promise<void> {
    try {
      throwIfAborted(o.signal, `writing blob ${d.digest}`);
      if (this.#written.has(d.digest)) {
        body.destroy();
        return;
      }
      await this.#turn(d, o.signal);
      const verified = verifyBlob({ digest: d.digest, size: d.size });
      pipe(body, verified, () => {});
      const write = Promise.resolve(this.#sink.add(fileHeader(blobPath(d), d.size, this.#mtime), verified));
      await write;
      this.#written.add(d.digest);
      this.#advance();
    } catch (e) {
      body.destroy();
      throw e;
    }
  }

  /** Waits until `d` is the next blob of the announced order. */
  async #turn(d: Descriptor, signal: AbortSignal | undefined): Promise<void> {
    if (!this.#order.includes(d.digest)) {
      throw new DrayError('DRAY_INTERNAL', `archive writer: blob ${d.digest} was not planned`);
    }
    if (this.#order[this.#pos] === d.digest) return;
    await new Promise<void>((resolve, reject) => {
      const onAbort = () => {
        this.#waiters.delete(d.digest);
        reject(abortError(signal, `writing blob ${d.digest}`));
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.#waiters.set(d.digest, () => {
        signal?.removeEventListener('abort', onAbort);
        resolve();
      });
    });
  }

  #advance(): void {
    this.#pos++;
    while (this.#pos < this.#order.length && this.#written.has(this.#order[this.#pos] ?? '')) this.#pos++;
    const next = this.#order[this.#pos];
    if (next === undefined) return;
    const wake = this.#waiters.get(next);
    if (wake) {
      this.#waiters.delete(next);
      wake();
    }
  }
}

/**
 * Runs `fill` against a fresh tar writer whose output is piped into `out`; ends the archive
 * when `fill` is done. Does I/O. A failure destroys the output stream.
 */
export async function writeTar(
  out: Writable,
  fill: (tar: TarSink) => Promise<void>,
  o: RunOptions = {},
): Promise<void> {
  throwIfAborted(o.signal);
  const tw = createTarWriter();
  const piped = pipeline(tw.readable, out, o.signal ? { signal: o.signal } : {});
  try {
    await fill(tw);
    await tw.finish();
  } catch (e) {
    tw.readable.destroy(e instanceof Error ? e : new Error(String(e)));
    await piped.catch(() => {});
    if (o.signal?.aborted) throw abortError(o.signal, 'writing archive');
    throw e;
  }
  await piped;
}
