import { createWriteStream } from 'node:fs';
import * as fs from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { DrayError, throwIfAborted } from '../errors.ts';
import { copyGraph } from '../graph/index.ts';
import {
  type BlobSource,
  type Descriptor,
  type ImageIndex,
  MediaTypes,
  type Platform,
  parseOciLayoutHeader,
  type RefStore,
} from '../oci/index.ts';
import type { RunOptions } from '../progress/index.ts';
import {
  ociLayoutFileContent,
  parseLayoutIndex,
  resolveInIndex,
  serializeIndex,
  withName,
} from './oci-layout.ts';
import { indexTar, type TarIndex } from './tar-index.ts';
import {
  type ArchiveWriteOptions,
  dirHeader,
  fileHeader,
  planGraph,
  TarBlobTarget,
  writeTar,
} from './tar-target.ts';

/** One image to write into an archive. */
export interface OciArchiveImage {
  /** The name for index.json (see `nameAnnotations`); unnamed images get an entry without a name. */
  name?: string;
  source: BlobSource;
  /** A manifest or an index; an index is written with every platform unless `platform` is given. */
  root: Descriptor;
  /** For an index root: keep only this platform's manifest (the index itself is kept). */
  platform?: Platform;
}

/**
 * Writes an OCI image layout as a tar stream to `out` (an "oci-archive", what
 * `skopeo copy … oci-archive:` and `docker buildx build --output type=oci` produce):
 * `oci-layout`, `index.json` (one entry per image, with its name annotations), then
 * `blobs/<alg>/<hex>`. Blobs stream from each image's source through `copyGraph` into the
 * tar (verified, never buffered). The output is deterministic: fixed entry order, mtime
 * `o.mtime` (default 0), root owner, modes 0644/0755. Does I/O.
 *
 * `oci-layout` comes first and `index.json` last, so readers see what the archive is at once
 * and the index only names blobs written before it.
 * @throws whatever the sources throw (DRAY_BLOB_UNKNOWN, DRAY_DIGEST_MISMATCH…); DRAY_ABORTED.
 */
export async function writeOciArchive(
  out: Writable,
  images: OciArchiveImage[],
  o: ArchiveWriteOptions = {},
): Promise<void> {
  const mtime = o.mtime ?? 0;
  await writeTar(
    out,
    async (tar) => {
      const layout = Buffer.from(ociLayoutFileContent);
      await tar.add(fileHeader('oci-layout', layout.length, mtime), layout);
      await tar.add(dirHeader('blobs', mtime));
      await tar.add(dirHeader('blobs/sha256', mtime));
      const target = new TarBlobTarget(tar, { mtime });
      let manifests: Descriptor[] = [];
      for (const img of images) {
        throwIfAborted(o.signal);
        const plan = await planGraph(img.source, img.root, {
          ...(o.signal ? { signal: o.signal } : {}),
          ...(img.platform ? { platform: img.platform } : {}),
        });
        target.expect(plan);
        await copyGraph(img.source, target, img.root, {
          ...(o.signal ? { signal: o.signal } : {}),
          ...(o.progress ? { progress: o.progress } : {}),
          ...(img.platform ? { platform: img.platform } : {}),
          concurrency: Math.max(1, plan.length),
        });
        if (img.name !== undefined) manifests = withName(manifests, img.name, img.root);
        else manifests.push(rootEntry(img.root));
      }
      const index = serializeIndex({ schemaVersion: 2, mediaType: MediaTypes.ociIndex, manifests });
      await tar.add(fileHeader('index.json', index.length, mtime), index);
    },
    o,
  );
}

function rootEntry(d: Descriptor): Descriptor {
  return {
    mediaType: d.mediaType,
    digest: d.digest,
    size: d.size,
    ...(d.platform ? { platform: d.platform } : {}),
    ...(d.annotations ? { annotations: d.annotations } : {}),
  };
}

/**
 * An OCI archive (a tar of an OCI image layout) opened for reading: a BlobSource and a
 * read-only RefStore over its `index.json`. The tar is indexed once; blobs are then read as
 * byte ranges of the file, never unpacked.
 */
export class OciArchive implements BlobSource, RefStore {
  readonly file: string;
  readonly #tar: TarIndex;
  readonly #index: ImageIndex;

  private constructor(file: string, tar: TarIndex, index: ImageIndex) {
    this.file = file;
    this.#tar = tar;
    this.#index = index;
  }

  /**
   * Indexes the archive at `file` and reads its `oci-layout` and `index.json`. Does I/O.
   * @throws DRAY_INVALID_ARCHIVE when it is not a tar of an OCI layout; DRAY_NOT_FOUND when
   *   the file is missing; DRAY_INVALID_MANIFEST for a bad index.json.
   */
  static async open(file: string, o: RunOptions = {}): Promise<OciArchive> {
    const tar = await indexTar(file, o);
    const header = tar.lookup('oci-layout');
    if (!header) {
      throw new DrayError('DRAY_INVALID_ARCHIVE', `invalid OCI archive ${file}: no oci-layout file`, {
        hint: 'an OCI archive is a tar of an OCI image layout (oci-layout, index.json, blobs/)',
      });
    }
    parseOciLayoutHeader(await tar.read(header, 4096));
    const indexEntry = tar.lookup('index.json');
    if (!indexEntry) {
      throw new DrayError('DRAY_INVALID_ARCHIVE', `invalid OCI archive ${file}: no index.json`);
    }
    const index = parseLayoutIndex(await tar.read(indexEntry, 4 * 1024 * 1024));
    return new OciArchive(file, tar, index);
  }

  /** The archive's `index.json`. No I/O. */
  index(): ImageIndex {
    return this.#index;
  }

  async open(d: Descriptor, o: RunOptions & { offset?: number } = {}): Promise<Readable> {
    throwIfAborted(o.signal, `reading blob ${d.digest}`);
    return this.#tar.openBlob(this.#tar.lookup(blobPathOf(d)), d, `OCI archive ${this.file}`, o);
  }

  async resolve(name: string, o: RunOptions = {}): Promise<Descriptor> {
    throwIfAborted(o.signal);
    return resolveInIndex(this.#index, name, `OCI archive ${this.file}`);
  }

  /** Archives are read-only. @throws DRAY_INVALID_ARGUMENT always. */
  async tag(name: string, _d: Descriptor, _o?: RunOptions): Promise<void> {
    throw new DrayError('DRAY_INVALID_ARGUMENT', `cannot tag ${name}: OCI archive ${this.file} is read-only`);
  }
}

function blobPathOf(d: Descriptor): string {
  const [alg, hex] = d.digest.split(':');
  return `blobs/${alg}/${hex}`;
}

/**
 * Copies `stream` (stdin) into a temp file so an archive can be indexed and read at random:
 * `dray load` without `-i`. Does I/O. `dispose()` removes the file.
 * @throws DRAY_NO_SPACE / DRAY_STORE when the file cannot be written; DRAY_ABORTED.
 */
export async function spoolToFile(
  stream: Readable,
  o: RunOptions & { dir?: string } = {},
): Promise<{ path: string; dispose(): Promise<void> }> {
  throwIfAborted(o.signal);
  const dir = await fs.mkdtemp(path.join(o.dir ?? tmpdir(), 'dray-spool-'));
  const file = path.join(dir, 'archive.tar');
  const dispose = () => fs.rm(dir, { recursive: true, force: true });
  try {
    await pipeline(stream, createWriteStream(file, { mode: 0o600 }), o.signal ? { signal: o.signal } : {});
  } catch (e) {
    await dispose();
    const code = (e as { code?: string }).code;
    if (code === 'ENOSPC')
      throw new DrayError('DRAY_NO_SPACE', `spooling archive to ${dir}: no space left on device`, {
        cause: e,
      });
    if (e instanceof DrayError) throw e;
    throw new DrayError(
      o.signal?.aborted ? 'DRAY_ABORTED' : 'DRAY_STORE',
      `spooling archive: ${(e as Error).message}`,
      {
        cause: e,
      },
    );
  }
  return { path: file, dispose };
}
