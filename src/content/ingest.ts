import { addAbortListener } from 'node:events';
import type { FileHandle } from 'node:fs/promises';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { Writable } from 'node:stream';
import { finished } from 'node:stream/promises';
import type { Digest, Digester, ExpectedContent } from '../digest/index.ts';
import { abortError, DrayError } from '../errors.ts';
import { storeError } from './fs-errors.ts';
import type { FileLock } from './lock.ts';
import { tryLock } from './lock.ts';

/**
 * An open ingest: a Writable whose bytes go to the ingest's `data` file, and which makes
 * them a blob only on `commit()` (containerd's Writer). Use it as
 * `const w = await store.ingest({ ref, expected }); await pipeline(source.from(w.offset), w); await w.commit()`.
 *
 * - `offset` is where writing continues: the bytes already in the ingest (a resumed ref),
 *   growing as you write. Feed the source from there.
 * - `exists` is true when the expected blob is already committed; then `offset` equals its
 *   size (nothing left to write), writes are discarded and `commit()` just succeeds.
 * - Writes past `expected.size` fail with DRAY_SIZE_MISMATCH before anything is written.
 * - Always end with `commit()` or `abort()`; `destroy()` (what `pipeline` does on error or
 *   abort) closes the file and releases the ref lock but keeps the bytes for a resume.
 * - Nothing may be written after `commit()`.
 */
export interface IngestWriter extends Writable {
  /** The caller's ingest key; reopening the same ref resumes. */
  readonly ref: string;
  /** What the content must turn out to be. */
  readonly expected: ExpectedContent;
  /** Bytes present so far: the resume point when the writer is returned, then growing. */
  readonly offset: number;
  /** True when the expected blob was already committed (nothing to write). */
  readonly exists: boolean;
  /**
   * Makes the content a blob: waits for pending writes, fsync → size check → digest check
   * → (already exists: drop the ingest, success) → read-only → rename into blobs → fsync dir.
   * Does I/O.
   * @throws DRAY_SIZE_MISMATCH when fewer bytes than `expected.size` were written (the ingest is kept: resume it);
   *   DRAY_DIGEST_MISMATCH when the bytes are not the expected content (the ingest is discarded; nothing is visible);
   *   DRAY_NO_SPACE, DRAY_STORE on I/O failure; DRAY_STORE_LOCKED when the ref lock was lost;
   *   DRAY_INVALID_ARGUMENT when the writer is already committed or closed.
   */
  commit(): Promise<void>;
  /** Discards the ingest (its bytes are deleted) and closes the writer. Does I/O; never throws for an ingest already gone. */
  abort(): Promise<void>;
}

/** What a live writer needs from its store; internal. */
export interface IngestContext {
  root: string;
  ref: string;
  expected: ExpectedContent;
  dir: string;
  lockPath: string;
  blobPath: string;
  staleMs: number;
  lock: FileLock;
  fh: FileHandle;
  digester: Digester;
  offset: number;
  signal: AbortSignal | undefined;
}

type State = 'open' | 'committing' | 'committed' | 'closed';

/** Removes an ingest directory; a missing one is fine. */
export async function removeIngestDir(dir: string): Promise<void> {
  await fs.rm(dir, { recursive: true, force: true });
}

/** fsync a directory so a rename into it survives a power loss. */
export async function syncDir(dir: string): Promise<void> {
  const fh = await fs.open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** The writer over a live ingest; holds the ref lock and the data file open until commit/abort/destroy. */
/** Start a background fdatasync after this many bytes (see LiveIngestWriter#unsynced). */
const syncEveryBytes = 16 * 1024 * 1024;

export class LiveIngestWriter extends Writable implements IngestWriter {
  // Background writeback: the data is flushed to disk while more arrives, so the fsync at
  // commit finds little left (a 200 MB layer's single fsync took ~0.3 s here, a fifth of a pull).
  #unsynced = 0;
  #syncing: Promise<void> | undefined;
  readonly ref: string;
  readonly expected: ExpectedContent;
  readonly exists = false;
  #c: IngestContext;
  #state: State = 'open';
  #unlisten: Disposable | undefined;

  constructor(c: IngestContext) {
    // autoDestroy off: after `end()` the file and lock must stay open for `commit()`.
    super({ autoDestroy: false, highWaterMark: 1 << 20 });
    this.#c = c;
    this.ref = c.ref;
    this.expected = c.expected;
    if (c.signal) {
      // Abort stops writing and leaves the ingest resumable (destroy keeps the bytes). The
      // caller learns of the abort from its own signal; the 'error' this emits must not crash
      // the process when no pipeline listens yet or any more (aborted between ingest() and
      // pipeline(), as when a sibling blob of a pull fails).
      this.#unlisten = addAbortListener(c.signal, () => {
        this.on('error', () => {});
        this.destroy(abortError(c.signal, `ingest ${c.ref}`));
      });
    }
  }

  get offset(): number {
    return this.#c.offset;
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (e?: Error | null) => void): void {
    this.#writeChunks([chunk]).then(() => cb(), cb);
  }

  // Chunks that queue up while a write is in flight go to disk in one writev: one thread-pool
  // round trip per batch instead of per 64 KiB chunk (the round trips, not the disk, were
  // what a pull waited on).
  override _writev(chunks: Array<{ chunk: Buffer }>, cb: (e?: Error | null) => void): void {
    this.#writeChunks(chunks.map((c) => c.chunk)).then(() => cb(), cb);
  }

  async #writeChunks(chunks: Buffer[]): Promise<void> {
    const c = this.#c;
    if (this.#state !== 'open')
      throw new DrayError('DRAY_INVALID_ARGUMENT', `ingest ${c.ref}: write after commit`);
    if (c.lock.compromised) throw this.#lockLost();
    const total = chunks.reduce((n, b) => n + b.byteLength, 0);
    const size = c.expected.size;
    if (size !== undefined && c.offset + total > size) {
      throw new DrayError(
        'DRAY_SIZE_MISMATCH',
        `blob ${c.expected.digest}: size exceeds the expected ${size} bytes`,
        { hint: 'the source sent more data than its descriptor declares; the content was not committed' },
      );
    }
    try {
      // Positional writes: the offset is ours, whatever the file position says.
      const { bytesWritten } = await c.fh.writev(chunks, c.offset);
      let done = bytesWritten;
      // A short writev (rare: signals, quotas) is finished chunk by chunk from where it stopped.
      if (done < total) {
        const rest = Buffer.concat(chunks).subarray(done);
        let off = 0;
        while (off < rest.byteLength) {
          const r = await c.fh.write(rest, off, rest.byteLength - off, c.offset + done + off);
          off += r.bytesWritten;
        }
        done = total;
      }
    } catch (e) {
      throw storeError(e, `ingest ${c.ref}: writing ${path.join(c.dir, 'data')}`, c.root);
    }
    for (const chunk of chunks) c.digester.update(chunk);
    c.offset += total;
    this.#unsynced += total;
    if (this.#unsynced >= syncEveryBytes && !this.#syncing) {
      this.#unsynced = 0;
      this.#syncing = c.fh.datasync().then(
        () => {
          this.#syncing = undefined;
        },
        () => {
          // Errors surface at commit's own fsync, which is the one that counts.
          this.#syncing = undefined;
        },
      );
    }
  }

  override _final(cb: (e?: Error | null) => void): void {
    cb();
  }

  override _destroy(err: Error | null, cb: (e?: Error | null) => void): void {
    this.#close(true).then(
      () => cb(err),
      (e: unknown) => cb(err ?? (e as Error)),
    );
  }

  #lockLost(): DrayError {
    return new DrayError('DRAY_STORE_LOCKED', `ingest ${this.#c.ref}: lost the ingest lock while writing`, {
      cause: this.#c.lock.compromised,
      hint: 'another process reclaimed the lock (was this process stalled?); retry the transfer',
    });
  }

  /** Closes the data file (synced, so a resume after a crash sees the bytes) and releases the lock. */
  async #close(sync: boolean): Promise<void> {
    if (this.#state === 'closed' || this.#state === 'committed') return;
    this.#state = 'closed';
    this.#unlisten?.[Symbol.dispose]();
    try {
      if (sync) await this.#c.fh.sync().catch(() => {});
      await this.#c.fh.close().catch(() => {});
    } finally {
      await this.#c.lock.release();
    }
  }

  async commit(): Promise<void> {
    const c = this.#c;
    if (this.#state !== 'open') {
      throw new DrayError(
        'DRAY_INVALID_ARGUMENT',
        `ingest ${c.ref}: cannot commit on a ${this.#state} writer`,
        {
          hint: 'open the ingest again with the same ref to resume it',
        },
      );
    }
    if (this.destroyed) {
      throw new DrayError('DRAY_INVALID_ARGUMENT', `ingest ${c.ref}: cannot commit on a closed writer`, {
        hint: 'open the ingest again with the same ref to resume it',
      });
    }
    // Let queued writes land first, so the size and digest cover every byte given to us.
    if (!this.writableEnded) this.end();
    await finished(this, { readable: false });
    this.#state = 'committing';
    this.#unlisten?.[Symbol.dispose]();
    try {
      await this.#commit();
    } catch (e) {
      this.#state = 'open';
      await this.#close(false);
      this.destroy();
      throw e;
    }
  }

  async #commit(): Promise<void> {
    const c = this.#c;
    const data = path.join(c.dir, 'data');
    if (c.lock.compromised) throw this.#lockLost();
    let size: number;
    try {
      await this.#syncing;
      await c.fh.sync();
      size = (await c.fh.stat()).size;
      await c.fh.close();
    } catch (e) {
      throw storeError(e, `ingest ${c.ref}: syncing ${data}`, c.root);
    }
    // The file is closed now; #close must not touch the handle again.
    c.fh = { sync: async () => {}, close: async () => {} } as unknown as FileHandle;
    if (size !== c.offset) {
      throw new DrayError(
        'DRAY_STORE',
        `ingest ${c.ref}: ${data} is ${size} bytes but ${c.offset} were written`,
        {
          hint: 'another process wrote to this ingest; retry the transfer',
        },
      );
    }
    if (c.expected.size !== undefined && size !== c.expected.size) {
      throw new DrayError(
        'DRAY_SIZE_MISMATCH',
        `failed precondition: unexpected commit size ${size}, expected ${c.expected.size} for blob ${c.expected.digest}`,
        { hint: `short read: the ingest '${c.ref}' is kept; resume it from offset ${size}` },
      );
    }
    const actual: Digest = c.digester.digest();
    if (actual !== c.expected.digest) {
      // These bytes can never become the expected blob: drop them so a retry starts clean.
      await removeIngestDir(c.dir).catch(() => {});
      throw new DrayError(
        'DRAY_DIGEST_MISMATCH',
        `failed precondition: unexpected commit digest ${actual}, expected ${c.expected.digest}`,
        {
          hint: 'the content was corrupted in transit or at its source; nothing was committed and the ingest was discarded, so retry the transfer',
        },
      );
    }
    try {
      await fs.mkdir(path.dirname(c.blobPath), { recursive: true });
      const existing = await fs.lstat(c.blobPath).catch(() => undefined);
      if (existing?.isFile()) {
        // "Already exists" is success (containerd: ErrAlreadyExists, which WriteBlob ignores).
        await removeIngestDir(c.dir);
      } else {
        // Read-only and stamped *before* the rename, so the blob is never visible writable
        // and its mtime is its commit time.
        const now = new Date();
        await fs.chmod(data, 0o444);
        await fs.utimes(data, now, now);
        // Atomic: a crash leaves either the ingest (resumable) or the blob, never a partial blob.
        await fs.rename(data, c.blobPath);
        // After the rename the blob is committed and cannot be rolled back: later failures
        // (fsync of the directory, ingest cleanup) must not fail the commit. A leftover ingest
        // dir is removed by the next ContentStore.open().
        await syncDir(path.dirname(c.blobPath)).catch(() => {});
        await removeIngestDir(c.dir).catch(() => {});
      }
    } catch (e) {
      throw storeError(e, `ingest ${c.ref}: committing blob ${c.expected.digest}`, c.root);
    }
    this.#state = 'committed';
    await c.lock.release();
  }

  async abort(): Promise<void> {
    const c = this.#c;
    if (this.#state === 'committed') return;
    if (this.#state === 'open' || this.#state === 'committing') {
      this.#unlisten?.[Symbol.dispose]();
      this.#state = 'closed';
      await c.fh.close().catch(() => {});
      await removeIngestDir(c.dir).catch(() => {});
      await c.lock.release();
      if (!this.destroyed) this.destroy();
      return;
    }
    // Closed by destroy(): the lock is gone, so take it again (without waiting) before
    // deleting; if someone else resumed the ref meanwhile, the ingest is theirs.
    const lock = await tryLock(c.lockPath, { staleMs: c.staleMs });
    if (!lock) return;
    try {
      await removeIngestDir(c.dir).catch(() => {});
    } finally {
      await lock.release();
    }
  }
}

/** The writer returned when the expected blob is already committed: discards writes, commit succeeds. */
export class ExistingBlobWriter extends Writable implements IngestWriter {
  readonly ref: string;
  readonly expected: ExpectedContent;
  readonly offset: number;
  readonly exists = true;
  constructor(ref: string, expected: ExpectedContent, size: number) {
    super({
      write(_chunk, _enc, cb) {
        cb();
      },
    });
    this.ref = ref;
    this.expected = expected;
    this.offset = size;
  }
  async commit(): Promise<void> {
    if (!this.writableEnded) this.end();
  }
  async abort(): Promise<void> {
    if (!this.destroyed) this.destroy();
  }
}
