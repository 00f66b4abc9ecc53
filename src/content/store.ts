import { createHash } from 'node:crypto';
import { constants as fsc } from 'node:fs';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Digest, ExpectedContent } from '../digest/index.ts';
import { Digester, digestAlgorithm, digestHex, isDigest, parseDigest } from '../digest/index.ts';
import { abortError, DrayError, isDrayError, throwIfAborted } from '../errors.ts';
import type { BlobSource, BlobTarget, Descriptor } from '../oci/index.ts';
import type { RunOptions } from '../progress/index.ts';
import { openBlobFile } from './blob-file.ts';
import { errnoCode, storeError } from './fs-errors.ts';
import type { IngestWriter } from './ingest.ts';
import { ExistingBlobWriter, LiveIngestWriter, removeIngestDir } from './ingest.ts';
import { acquireLock, DEFAULT_LOCK_STALE_MS, tryLock } from './lock.ts';
import { NewBlobWriter } from './new-blob.ts';

/** What the store knows about a committed blob. */
export interface BlobInfo {
  digest: Digest;
  size: number;
  /** When the blob was committed (the file's mtime, set at commit). */
  committedAt: Date;
}

/** The name `src/index.ts` exports for {@link BlobInfo}. */
export type ContentInfo = BlobInfo;

export interface ContentStoreOptions {
  /**
   * Milliseconds after which a lock whose holder stopped refreshing it (a killed process)
   * is reclaimed. Default 10 000; minimum 2000.
   */
  lockStaleMs?: number;
}

export interface IngestOptions {
  /** The ingest key. The same ref resumes the same ingest, across processes and restarts. */
  ref: string;
  /** The content the ingest must turn out to be; `size` bounds writes when given. */
  expected: ExpectedContent;
  /** Aborts waiting for the ref, and later writes (the ingest stays resumable). */
  signal?: AbortSignal;
}

/** Contents of an ingest's `expected` file. */
interface IngestMeta {
  digest: Digest;
  size?: number;
  /** Made by `put`, which restarts instead of resuming: nobody will come back for it. */
  transient?: boolean;
}

const READ_CHUNK = 1024 * 1024; // large reads: fewer syscalls and buffers per blob

/**
 * The content-addressable blob store under a data root (containerd's local content store):
 *
 * ```
 * <root>/content/blobs/<alg>/<hex>                 committed blobs, read-only, named by digest
 * <root>/content/ingest/<sha256(ref)>/{data,ref,started,expected}   in-progress ingests
 * <root>/locks/ingest-<sha256(ref)>                one cross-process lock per ref
 * ```
 *
 * Blobs become visible only by an atomic rename of a fully written, fsynced and
 * digest-verified ingest file, so a crash at any point leaves either a resumable ingest or
 * the whole blob, never a partial blob, and never loses a committed one.
 *
 * Concurrency: one writer per ref, across processes, through a lock in `locks/` that a
 * killed holder's successor reclaims after `lockStaleMs`. A second `ingest()` of a locked
 * ref waits; while waiting it watches the blob, and once the holder commits it returns a
 * writer with `exists: true` instead of writing again. Two *different* refs may write the
 * same digest at once: each writes its own file and the second rename replaces the first
 * with identical bytes, which readers never notice (rename is atomic; open files keep their
 * inode). So the lock is for liveness; digest checks and renames give safety.
 */
export class ContentStore implements BlobSource, BlobTarget {
  /** The data root this store lives under. */
  readonly root: string;
  readonly #blobs: string;
  readonly #ingest: string;
  readonly #locks: string;
  readonly #staleMs: number;

  private constructor(root: string, o: ContentStoreOptions) {
    this.root = root;
    this.#blobs = path.join(root, 'content', 'blobs');
    this.#ingest = path.join(root, 'content', 'ingest');
    this.#locks = path.join(root, 'locks');
    this.#staleMs = o.lockStaleMs ?? DEFAULT_LOCK_STALE_MS;
  }

  /**
   * Opens (creating if needed) the content store under the data root `root`, then repairs
   * what a crash may have left: ingest directories that nobody holds and that cannot be
   * resumed (no data, unreadable metadata, made by `put`, or whose blob is already committed)
   * are removed. Committed blobs are never deleted. Does I/O.
   * @throws DRAY_STORE (or DRAY_NO_SPACE) when the directories cannot be created.
   */
  static async open(root: string, o: ContentStoreOptions = {}): Promise<ContentStore> {
    const store = new ContentStore(path.resolve(root), o);
    try {
      await fs.mkdir(path.join(store.#blobs, 'sha256'), { recursive: true });
      await fs.mkdir(store.#ingest, { recursive: true });
      await fs.mkdir(store.#locks, { recursive: true });
    } catch (e) {
      throw storeError(e, `cannot create content store under ${root}`, root);
    }
    await store.#repair();
    return store;
  }

  async #repair(): Promise<void> {
    let names: string[];
    try {
      names = await fs.readdir(this.#ingest);
    } catch (e) {
      throw storeError(e, `cannot read ${this.#ingest}`, this.root);
    }
    for (const name of names) {
      if (name.startsWith('new-')) {
        // A NewBlobWriter's temp file: its writer is gone if the file has not grown for a
        // day (writers never pause that long); live ones are left alone.
        const st = await fs.lstat(path.join(this.#ingest, name)).catch(() => undefined);
        if (st && Date.now() - st.mtimeMs > 24 * 3600 * 1000)
          await fs.rm(path.join(this.#ingest, name), { force: true });
        continue;
      }
      if (!/^[a-f0-9]{64}$/.test(name)) continue;
      const lock = await tryLock(this.#lockPath(name), { staleMs: this.#staleMs });
      if (!lock) continue; // in use by a live writer
      try {
        const dir = path.join(this.#ingest, name);
        const meta = await readMeta(dir);
        const data = await fs.lstat(path.join(dir, 'data')).catch(() => undefined);
        if (!meta || !data?.isFile() || meta.transient || (await this.has({ digest: meta.digest }))) {
          await removeIngestDir(dir);
        }
      } catch {
        // Repair is best effort: a store that cannot be tidied still works.
      } finally {
        await lock.release();
      }
    }
  }

  /**
   * The path of the committed blob file for `digest` (which may not exist). For read-only
   * fast paths such as export hard links or `sendfile`: never write, chmod or rename it.
   * No I/O. @throws DRAY_INVALID_DIGEST for a malformed digest.
   */
  /**
   * A writer for content whose digest is not known yet (see NewBlobWriter): write, then
   * `commit()` returns the digest it was stored under. Does I/O.
   */
  newBlob(): Promise<NewBlobWriter> {
    return NewBlobWriter.create(this.#ingest, this.#blobs, this.root);
  }

  blobPath(digest: Digest | string): string {
    const d = parseDigest(digest);
    return path.join(this.#blobs, digestAlgorithm(d), digestHex(d));
  }

  #refKey(ref: string): string {
    return createHash('sha256').update(ref).digest('hex');
  }

  #lockPath(key: string): string {
    return path.join(this.#locks, `ingest-${key}`);
  }

  /**
   * Whether the blob is committed, and has `d.size` bytes when a size is given. Does I/O.
   * @throws DRAY_INVALID_DIGEST, DRAY_STORE.
   */
  async has(d: Descriptor | { digest: Digest; size?: number }, o: RunOptions = {}): Promise<boolean> {
    throwIfAborted(o.signal);
    const info = await this.info(d.digest);
    return info !== undefined && (d.size === undefined || d.size === info.size);
  }

  /**
   * The committed blob's size and commit time, or undefined when absent. Symlinks and
   * non-regular files under blobs/ count as absent. Does I/O.
   * @throws DRAY_INVALID_DIGEST, DRAY_STORE.
   */
  async info(digest: Digest): Promise<BlobInfo | undefined> {
    const p = this.blobPath(digest);
    try {
      const st = await fs.lstat(p);
      if (!st.isFile()) return undefined;
      return { digest, size: st.size, committedAt: st.mtime };
    } catch (e) {
      if (errnoCode(e) === 'ENOENT') return undefined;
      throw storeError(e, `cannot stat blob ${digest}`, this.root);
    }
  }

  /**
   * A fresh stream of a committed blob's bytes from `offset` (default 0). The stream is not
   * verified here (the digest was checked at commit; pipe through `verifyBlob` to re-check).
   * Does I/O.
   * @throws DRAY_BLOB_UNKNOWN when absent; DRAY_SIZE_MISMATCH when `d.size` is not the stored size;
   *   DRAY_STORE when the path is a symlink or not a regular file; DRAY_INVALID_ARGUMENT for a bad offset;
   *   DRAY_ABORTED.
   */
  async open(
    d: Descriptor | { digest: Digest; size?: number },
    o: RunOptions & { offset?: number } = {},
  ): Promise<Readable> {
    return openBlobFile(this.blobPath(d.digest), d, {
      ...o,
      tamperedHint: 'the content store was modified outside dray; delete the entry and pull again',
      wrap: (e, what) => storeError(e, what, this.root),
    });
  }

  /**
   * Opens the ingest `o.ref` for writing `o.expected`, resuming it when it exists: the
   * bytes already there are re-hashed (streamed, not buffered) and `offset` says where to
   * continue. An ingest for a different expected digest, or longer than the expected size,
   * is restarted from zero. When the blob is already committed, or gets committed by the
   * process holding the ref while we wait, the writer has `exists: true`.
   * Waits while another process (or writer) holds the ref. Does I/O.
   * @throws DRAY_INVALID_ARGUMENT, DRAY_INVALID_DIGEST for bad options; DRAY_ABORTED;
   *   DRAY_STORE, DRAY_NO_SPACE.
   */
  async ingest(o: IngestOptions): Promise<IngestWriter> {
    return this.#openIngest(o, false);
  }

  /**
   * BlobTarget.resume: the ingest `ref` for `d` (see `ingest`), so a copy interrupted by a
   * crash or a kill continues from the bytes already on disk.
   */
  resume(d: Descriptor, ref: string, o: RunOptions = {}): Promise<IngestWriter> {
    return this.ingest({
      ref,
      expected: { digest: d.digest, size: d.size },
      ...(o.signal ? { signal: o.signal } : {}),
    });
  }

  async #openIngest(o: IngestOptions, transient: boolean): Promise<IngestWriter> {
    const { ref, signal } = o;
    if (typeof ref !== 'string' || ref.length === 0) {
      throw new DrayError('DRAY_INVALID_ARGUMENT', 'ingest: ref must be a non-empty string');
    }
    const expected: ExpectedContent = { digest: parseDigest(o.expected.digest) };
    if (o.expected.size !== undefined) {
      if (!Number.isSafeInteger(o.expected.size) || o.expected.size < 0) {
        throw new DrayError(
          'DRAY_INVALID_ARGUMENT',
          `ingest ${ref}: invalid expected size ${o.expected.size}`,
        );
      }
      expected.size = o.expected.size;
    }
    throwIfAborted(signal, `ingest ${ref}`);
    const committed = async (): Promise<IngestWriter | undefined> => {
      const info = await this.info(expected.digest);
      if (!info || (expected.size !== undefined && info.size !== expected.size)) return undefined;
      return new ExistingBlobWriter(ref, expected, info.size);
    };
    const early = await committed();
    if (early) return early;

    const key = this.#refKey(ref);
    const lockPath = this.#lockPath(key);
    const lock = await acquireLock(lockPath, {
      staleMs: this.#staleMs,
      what: `ingest ${ref}`,
      ...(signal ? { signal } : {}),
      until: async () => (await committed()) !== undefined,
    });
    if (!lock) return (await committed()) ?? this.#openIngest(o, transient);
    try {
      // The holder we waited for may have committed just before releasing.
      const late = await committed();
      if (late) {
        await lock.release();
        return late;
      }
      const dir = path.join(this.#ingest, key);
      const { fh, size } = await this.#prepare(
        dir,
        ref,
        { ...expected, ...(transient ? { transient } : {}) },
        transient,
      );
      const digester = new Digester(digestAlgorithm(expected.digest));
      try {
        await rehash(fh, size, digester, signal);
      } catch (e) {
        await fh.close();
        throw e;
      }
      return new LiveIngestWriter({
        root: this.root,
        ref,
        expected,
        dir,
        lockPath,
        blobPath: this.blobPath(expected.digest),
        staleMs: this.#staleMs,
        lock,
        fh,
        digester,
        offset: size,
        signal,
      });
    } catch (e) {
      await lock.release();
      if (signal?.aborted) throw abortError(signal, `ingest ${ref}`);
      throw storeError(e, `ingest ${ref}: cannot open`, this.root);
    }
  }

  /** Creates or reopens the ingest dir (caller holds the ref lock); returns the data file and its size. */
  async #prepare(
    dir: string,
    ref: string,
    meta: IngestMeta,
    restart: boolean,
  ): Promise<{ fh: fs.FileHandle; size: number }> {
    const dataPath = path.join(dir, 'data');
    const old = await readMeta(dir);
    const same = old !== undefined && old.digest === meta.digest && old.size === meta.size;
    if (!same) {
      // New ingest, or the ref was reused for other content: start over. Metadata first,
      // data last, so an ingest with a data file always has readable metadata.
      await removeIngestDir(dir);
      await fs.mkdir(dir, { recursive: true });
      await fs.writeFile(path.join(dir, 'ref'), ref);
      await fs.writeFile(path.join(dir, 'started'), new Date().toISOString());
      await fs.writeFile(path.join(dir, 'expected'), JSON.stringify(meta));
    }
    const fh = await fs.open(dataPath, fsc.O_RDWR | fsc.O_CREAT | fsc.O_NOFOLLOW, 0o644);
    try {
      let size = (await fh.stat()).size;
      if (restart || (meta.size !== undefined && size > meta.size)) {
        await fh.truncate(0);
        size = 0;
      }
      return { fh, size };
    } catch (e) {
      await fh.close();
      throw e;
    }
  }

  /**
   * Stores `body` as the blob `d`: ingest + verify + commit. A blob that is already
   * committed (before, or by a concurrent writer while we wait) counts as success: `body` is
   * destroyed unread, without error. A failed put leaves nothing visible and removes its
   * ingest (put cannot resume: the body always starts at byte 0; use `ingest` to resume).
   * Does I/O; streams, never buffers.
   * @throws DRAY_DIGEST_MISMATCH, DRAY_SIZE_MISMATCH, DRAY_ABORTED, DRAY_NO_SPACE, DRAY_STORE,
   *   DRAY_INVALID_DIGEST / DRAY_INVALID_ARGUMENT for a bad descriptor.
   */
  async put(
    d: Descriptor | { digest: Digest; size?: number },
    body: Readable,
    o: RunOptions = {},
  ): Promise<void> {
    const { signal } = o;
    let w: IngestWriter;
    try {
      throwIfAborted(signal, `writing blob ${d.digest}`);
      w = await this.#openIngest(
        {
          ref: `put:${d.digest}`,
          expected: { digest: d.digest, ...(d.size !== undefined ? { size: d.size } : {}) },
          ...(signal ? { signal } : {}),
        },
        true,
      );
    } catch (e) {
      body.destroy();
      throw e;
    }
    if (w.exists) {
      body.destroy();
      await w.commit();
      return;
    }
    try {
      await pipeline(body, w, signal ? { signal } : {});
      await w.commit();
    } catch (e) {
      await w.abort().catch(() => {});
      if (signal?.aborted) throw abortError(signal, `writing blob ${d.digest}`);
      if (isDrayError(e)) throw e;
      throw storeError(e, `writing blob ${d.digest}`, this.root);
    }
  }

  /**
   * Deletes a committed blob. Does I/O. Callers own reachability (the image store's
   * garbage collection); a concurrent `put` of the same digest may have just returned
   * "already exists".
   * @returns false when the blob was absent.
   * @throws DRAY_INVALID_DIGEST, DRAY_STORE.
   */
  async delete(digest: Digest): Promise<boolean> {
    const p = this.blobPath(digest);
    try {
      await fs.unlink(p);
      return true;
    } catch (e) {
      if (errnoCode(e) === 'ENOENT') return false;
      throw storeError(e, `cannot delete blob ${digest}`, this.root);
    }
  }

  /**
   * Every committed blob, in no particular order, read directory by directory (never the
   * whole listing at once). Entries that are not regular files with a valid digest name are
   * skipped. Does I/O. @throws DRAY_ABORTED, DRAY_STORE.
   */
  async *list(o: RunOptions = {}): AsyncIterable<BlobInfo> {
    let algs: string[];
    try {
      algs = await fs.readdir(this.#blobs);
    } catch (e) {
      throw storeError(e, `cannot list ${this.#blobs}`, this.root);
    }
    for (const alg of algs) {
      let dir: import('node:fs').Dir;
      try {
        dir = await fs.opendir(path.join(this.#blobs, alg));
      } catch (e) {
        if (errnoCode(e) === 'ENOTDIR') continue;
        throw storeError(e, `cannot list ${this.#blobs}`, this.root);
      }
      for await (const ent of dir) {
        throwIfAborted(o.signal, 'listing blobs');
        const digest = `${alg}:${ent.name}`;
        if (!ent.isFile() || !isDigest(digest)) continue;
        const info = await this.info(digest);
        if (info) yield info;
      }
    }
  }
}

async function readMeta(dir: string): Promise<IngestMeta | undefined> {
  try {
    const raw: unknown = JSON.parse(await fs.readFile(path.join(dir, 'expected'), 'utf8'));
    if (typeof raw !== 'object' || raw === null) return undefined;
    const m = raw as Record<string, unknown>;
    if (typeof m.digest !== 'string' || !isDigest(m.digest)) return undefined;
    if (m.size !== undefined && (typeof m.size !== 'number' || !Number.isSafeInteger(m.size)))
      return undefined;
    return {
      digest: m.digest,
      ...(typeof m.size === 'number' ? { size: m.size } : {}),
      ...(m.transient === true ? { transient: true } : {}),
    };
  } catch {
    return undefined;
  }
}

/** Feeds the first `size` bytes of the file to `digester`, one chunk at a time (never the whole file). */
async function rehash(
  fh: fs.FileHandle,
  size: number,
  digester: Digester,
  signal?: AbortSignal,
): Promise<void> {
  if (size === 0) return;
  const buf = Buffer.allocUnsafe(Math.min(READ_CHUNK, size));
  let pos = 0;
  while (pos < size) {
    throwIfAborted(signal, 'resuming ingest');
    const { bytesRead } = await fh.read(buf, 0, Math.min(buf.length, size - pos), pos);
    if (bytesRead === 0)
      throw new DrayError('DRAY_STORE', `ingest data shrank while resuming at ${pos} of ${size}`);
    digester.update(buf.subarray(0, bytesRead));
    pos += bytesRead;
  }
}
