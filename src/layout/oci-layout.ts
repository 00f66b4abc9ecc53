import { randomBytes } from 'node:crypto';
import { createWriteStream, constants as fsc } from 'node:fs';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { acquireLock, openBlobFile } from '../content/index.ts';
import {
  type Digest,
  Digester,
  digestAlgorithm,
  digestHex,
  parseDigest,
  verifyBlob,
} from '../digest/index.ts';
import { abortError, DrayError, isDrayError, throwIfAborted } from '../errors.ts';
import {
  type BlobSource,
  type BlobTarget,
  type Descriptor,
  type ImageIndex,
  MediaTypes,
  parseIndex,
  parseOciLayoutHeader,
  type RefStore,
} from '../oci/index.ts';
import type { RunOptions } from '../progress/index.ts';
import { entryMatches, nameAnnotations, sameName } from './names.ts';

/** The `oci-layout` file every layout dray writes carries (image-layout.md). */
export const ociLayoutFileContent = `${JSON.stringify({ imageLayoutVersion: '1.0.0' })}`;

const maxIndexBytes = 4 * 1024 * 1024;

function errnoCode(e: unknown): string | undefined {
  return typeof e === 'object' && e !== null && 'code' in e && typeof e.code === 'string'
    ? e.code
    : undefined;
}

function layoutError(e: unknown, what: string): DrayError {
  if (e instanceof DrayError) return e;
  const code = errnoCode(e);
  if (code === 'ENOSPC' || code === 'EDQUOT') {
    return new DrayError('DRAY_NO_SPACE', `${what}: no space left on device`, { cause: e });
  }
  return new DrayError('DRAY_STORE', `${what}: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
}

/**
 * Parses an `index.json`, accepting `"manifests": null` (docker 25 `save` writes it for
 * untagged images) as an empty list. No I/O.
 * @throws DRAY_INVALID_MANIFEST for anything that is not an image index.
 */
export function parseLayoutIndex(bytes: Uint8Array): ImageIndex {
  let doc: unknown;
  try {
    doc = JSON.parse(Buffer.from(bytes).toString('utf8'));
  } catch (e) {
    throw new DrayError('DRAY_INVALID_MANIFEST', `index.json: malformed JSON: ${(e as Error).message}`, {
      cause: e,
    });
  }
  if (typeof doc === 'object' && doc !== null && (doc as { manifests?: unknown }).manifests === null) {
    return parseIndex(Buffer.from(JSON.stringify({ ...doc, manifests: [] })), MediaTypes.ociIndex);
  }
  return parseIndex(bytes, MediaTypes.ociIndex);
}

/** Serialises an index.json the way dray writes every JSON file: compact, stable key order given. */
export function serializeIndex(index: ImageIndex): Buffer {
  return Buffer.from(JSON.stringify(index));
}

/**
 * An OCI image layout directory (image-spec image-layout.md): `oci-layout`, `index.json` and
 * `blobs/<alg>/<hex>`. It is a BlobSource, a BlobTarget and a RefStore over `index.json`, so
 * `copyGraph` moves images in and out of it like any registry or store.
 *
 * - `put` verifies size and digest while writing a temp file in the blob's directory, fsyncs it
 *   and renames it into place; an existing blob is re-hashed (not trusted for its size, unlike
 *   ggcr's `layout.WriteBlob`) and replaced when wrong.
 * - `open`/`has` refuse blob files that are symlinks or not regular files (ggcr `layout/blob.go`).
 * - `index.json` is rewritten by temp file + rename under a lock beside it.
 */
export class OciLayout implements BlobSource, BlobTarget, RefStore {
  /** The layout's directory. */
  readonly dir: string;

  private constructor(dir: string) {
    this.dir = dir;
  }

  /**
   * Opens an existing layout. Does I/O (reads `oci-layout`).
   * @throws DRAY_NOT_FOUND when `dir` has no `oci-layout` file; DRAY_INVALID_MANIFEST for an
   *   unknown layout version.
   */
  static async open(dir: string, o: RunOptions = {}): Promise<OciLayout> {
    throwIfAborted(o.signal);
    const abs = path.resolve(dir);
    let bytes: Buffer;
    try {
      bytes = await fs.readFile(path.join(abs, 'oci-layout'), { signal: o.signal });
    } catch (e) {
      if (errnoCode(e) === 'ENOENT' || errnoCode(e) === 'ENOTDIR') {
        throw new DrayError(
          'DRAY_NOT_FOUND',
          `not an OCI image layout: ${path.join(dir, 'oci-layout')} does not exist`,
          {
            cause: e,
          },
        );
      }
      throw layoutError(e, `cannot read OCI layout ${dir}`);
    }
    parseOciLayoutHeader(bytes);
    return new OciLayout(abs);
  }

  /**
   * Opens the layout at `dir`, creating the directory, `oci-layout`, an empty `index.json` and
   * `blobs/sha256/` when they are missing. Does I/O.
   * @throws DRAY_STORE / DRAY_NO_SPACE when they cannot be created; DRAY_INVALID_MANIFEST when an
   *   existing `oci-layout` has an unknown version.
   */
  static async create(dir: string, o: RunOptions = {}): Promise<OciLayout> {
    throwIfAborted(o.signal);
    const abs = path.resolve(dir);
    try {
      await fs.mkdir(path.join(abs, 'blobs', 'sha256'), { recursive: true });
      await writeIfMissing(path.join(abs, 'oci-layout'), Buffer.from(ociLayoutFileContent));
      await writeIfMissing(
        path.join(abs, 'index.json'),
        serializeIndex({ schemaVersion: 2, mediaType: MediaTypes.ociIndex, manifests: [] }),
      );
    } catch (e) {
      throw layoutError(e, `cannot create OCI layout ${dir}`);
    }
    return OciLayout.open(abs, o);
  }

  #blobPath(digest: Digest): string {
    const d = parseDigest(digest);
    return path.join(this.dir, 'blobs', digestAlgorithm(d), digestHex(d));
  }

  /** Whether a regular file of `d.size` bytes is stored for `d`. Does I/O (lstat). */
  async has(d: Descriptor, o: RunOptions = {}): Promise<boolean> {
    throwIfAborted(o.signal);
    try {
      const st = await fs.lstat(this.#blobPath(d.digest));
      return st.isFile() && st.size === d.size;
    } catch (e) {
      if (errnoCode(e) === 'ENOENT') return false;
      throw layoutError(e, `cannot stat blob ${d.digest}`);
    }
  }

  /**
   * A stream of blob `d` from `offset`. Does I/O. Not verified (callers pipe through verifyBlob).
   * @throws DRAY_BLOB_UNKNOWN when absent; DRAY_STORE for a symlink or non-regular file;
   *   DRAY_SIZE_MISMATCH when the file is not `d.size` bytes; DRAY_INVALID_ARGUMENT for a bad offset.
   */
  async open(d: Descriptor, o: RunOptions & { offset?: number } = {}): Promise<Readable> {
    return openBlobFile(this.#blobPath(d.digest), d, {
      ...o,
      where: `OCI layout ${this.dir}`,
      wrap: layoutError,
    });
  }

  /**
   * Stores `body` as blob `d`: verified (size before EOF, digest at the end) into a temp file
   * beside the final name, fsynced, renamed. A blob already present and correct is done (the
   * body is discarded). Does I/O.
   * @throws DRAY_DIGEST_MISMATCH, DRAY_SIZE_MISMATCH, DRAY_ABORTED, DRAY_STORE, DRAY_NO_SPACE.
   */
  async put(d: Descriptor, body: Readable, o: RunOptions = {}): Promise<void> {
    const { signal } = o;
    const what = `writing blob ${d.digest}`;
    try {
      throwIfAborted(signal, what);
    } catch (e) {
      body.destroy();
      throw e;
    }
    const final = this.#blobPath(d.digest);
    if (await this.#intact(final, d)) {
      body.destroy();
      return;
    }
    const tmp = path.join(
      path.dirname(final),
      `.tmp-${digestHex(d.digest).slice(0, 12)}-${randomBytes(6).toString('hex')}`,
    );
    try {
      await fs.mkdir(path.dirname(final), { recursive: true });
      // flush: fsync before close, so the rename never publishes a file whose data is not on disk.
      await pipeline(
        body,
        verifyBlob({ digest: d.digest, size: d.size }),
        createWriteStream(tmp, { flags: 'wx', mode: 0o644, flush: true }),
        signal ? { signal } : {},
      );
      await fs.rename(tmp, final);
    } catch (e) {
      body.destroy();
      await fs.rm(tmp, { force: true }).catch(() => {});
      if (signal?.aborted) throw abortError(signal, what);
      if (isDrayError(e)) throw e;
      throw layoutError(e, what);
    }
  }

  /** Whether the file at `p` is a regular file with exactly the content of `d` (re-hashed). */
  async #intact(p: string, d: Descriptor): Promise<boolean> {
    let fh: fs.FileHandle;
    try {
      fh = await fs.open(p, fsc.O_RDONLY | fsc.O_NOFOLLOW);
    } catch {
      return false;
    }
    try {
      const st = await fh.stat();
      if (!st.isFile() || st.size !== d.size) return false;
      const h = new Digester(digestAlgorithm(d.digest));
      for await (const chunk of fh.createReadStream({ autoClose: false, highWaterMark: 1024 * 1024 })) {
        h.update(chunk as Buffer);
      }
      return h.digest() === d.digest;
    } catch {
      return false;
    } finally {
      await fh.close();
    }
  }

  /**
   * The layout's `index.json`. Does I/O.
   * @throws DRAY_INVALID_MANIFEST when it is not an image index; DRAY_STORE when unreadable.
   */
  async index(o: RunOptions = {}): Promise<ImageIndex> {
    throwIfAborted(o.signal);
    let bytes: Buffer;
    try {
      const fh = await fs.open(path.join(this.dir, 'index.json'), fsc.O_RDONLY | fsc.O_NOFOLLOW);
      try {
        const st = await fh.stat();
        if (st.size > maxIndexBytes) {
          throw new DrayError(
            'DRAY_DOCUMENT_TOO_LARGE',
            `${this.dir}/index.json: ${st.size} bytes exceeds ${maxIndexBytes}`,
          );
        }
        bytes = await fh.readFile();
      } finally {
        await fh.close();
      }
    } catch (e) {
      if (errnoCode(e) === 'ENOENT')
        return { schemaVersion: 2, mediaType: MediaTypes.ociIndex, manifests: [] };
      throw layoutError(e, `cannot read ${this.dir}/index.json`);
    }
    return parseLayoutIndex(bytes);
  }

  /**
   * The index entry named `name` (`org.opencontainers.image.ref.name` or
   * `io.containerd.image.name`, compared as normalised references where they are ones), or the
   * entry whose digest is `name`. Does I/O.
   * @throws DRAY_NOT_FOUND when no entry matches; DRAY_INVALID_ARGUMENT when several different ones do.
   */
  async resolve(name: string, o: RunOptions = {}): Promise<Descriptor> {
    const index = await this.index(o);
    return resolveInIndex(index, name, `OCI layout ${this.dir}`);
  }

  /**
   * Points `name` at `d` in `index.json`: entries of the same name are replaced, and the new
   * entry carries the name annotations (see `nameAnnotations`). `d` must be stored. Does I/O
   * (temp file + rename, under a lock beside the index).
   * @throws DRAY_BLOB_UNKNOWN when `d` is not in the layout; DRAY_STORE; DRAY_ABORTED.
   */
  async tag(name: string, d: Descriptor, o: RunOptions = {}): Promise<void> {
    if (!(await this.has(d, o))) {
      throw new DrayError(
        'DRAY_BLOB_UNKNOWN',
        `cannot tag ${name}: ${d.digest} is not in OCI layout ${this.dir}`,
      );
    }
    await this.updateIndex((index) => ({ ...index, manifests: withName(index.manifests, name, d) }), o);
  }

  /**
   * Applies `edit` to `index.json` atomically under the layout's lock. Does I/O.
   * @throws DRAY_STORE, DRAY_NO_SPACE, DRAY_ABORTED.
   */
  async updateIndex(edit: (index: ImageIndex) => ImageIndex, o: RunOptions = {}): Promise<void> {
    const lock = await acquireLock(path.join(this.dir, '.dray-index.lock'), {
      ...(o.signal ? { signal: o.signal } : {}),
      what: `${this.dir}/index.json`,
    });
    try {
      const next = edit(await this.index(o));
      await atomicWrite(path.join(this.dir, 'index.json'), serializeIndex(next));
    } catch (e) {
      throw layoutError(e, `cannot update ${this.dir}/index.json`);
    } finally {
      await lock?.release();
    }
  }
}

/** `manifests` with every entry named `name` removed and `d` added with the name annotations. No I/O. */
export function withName(manifests: Descriptor[], name: string, d: Descriptor): Descriptor[] {
  const annotations = nameAnnotations(name);
  const kept = manifests.filter((m) => !sameEntryName(m, annotations));
  const entry: Descriptor = {
    mediaType: d.mediaType,
    digest: d.digest,
    size: d.size,
    ...(d.platform ? { platform: d.platform } : {}),
    ...(d.artifactType ? { artifactType: d.artifactType } : {}),
    annotations: { ...(d.annotations ?? {}), ...annotations },
  };
  return [...kept, entry];
}

function sameEntryName(m: Descriptor, a: Record<string, string>): boolean {
  const img = a['io.containerd.image.name'];
  const ref = a['org.opencontainers.image.ref.name'];
  const mImg = m.annotations?.['io.containerd.image.name'];
  const mRef = m.annotations?.['org.opencontainers.image.ref.name'];
  if (img !== undefined) return mImg !== undefined && sameName(mImg, img);
  return mImg === undefined && mRef === ref;
}

/**
 * Resolves `name` among an index's entries (see `OciLayout.resolve`). No I/O.
 * @throws DRAY_NOT_FOUND, DRAY_INVALID_ARGUMENT (ambiguous).
 */
export function resolveInIndex(index: ImageIndex, name: string, where: string): Descriptor {
  const bare = name.startsWith('@') ? name.slice(1) : name;
  const byDigest = index.manifests.filter((m) => m.digest === bare);
  const matches = byDigest.length > 0 ? byDigest : index.manifests.filter((m) => entryMatches(m, name));
  const digests = new Set(matches.map((m) => m.digest));
  if (digests.size > 1) {
    throw new DrayError(
      'DRAY_INVALID_ARGUMENT',
      `${name} is ambiguous in ${where}: it names ${digests.size} images`,
      {
        hint: 'use the full image name (registry/repository:tag) or a digest',
      },
    );
  }
  const found = matches[0];
  if (!found) {
    const names = index.manifests
      .map(
        (m) =>
          m.annotations?.['io.containerd.image.name'] ?? m.annotations?.['org.opencontainers.image.ref.name'],
      )
      .filter((n): n is string => n !== undefined);
    throw new DrayError('DRAY_NOT_FOUND', `image ${name} not found in ${where}`, {
      hint: names.length > 0 ? `it holds: ${names.join(', ')}` : 'it holds no named images',
    });
  }
  return found;
}

async function writeIfMissing(p: string, bytes: Buffer): Promise<void> {
  try {
    await fs.writeFile(p, bytes, { flag: 'wx', mode: 0o644 });
  } catch (e) {
    if (errnoCode(e) !== 'EEXIST') throw e;
  }
}

async function atomicWrite(p: string, bytes: Buffer): Promise<void> {
  const tmp = `${p}.tmp-${randomBytes(6).toString('hex')}`;
  try {
    const fh = await fs.open(tmp, 'wx', 0o644);
    try {
      await fh.writeFile(bytes);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await fs.rename(tmp, p);
  } catch (e) {
    await fs.rm(tmp, { force: true }).catch(() => {});
    throw e;
  }
}
