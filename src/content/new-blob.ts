import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { Writable } from 'node:stream';
import { finished } from 'node:stream/promises';
import { type Digest, Digester } from '../digest/index.ts';
import { DrayError } from '../errors.ts';
import { storeError } from './fs-errors.ts';
import { syncDir } from './ingest.ts';

/**
 * A blob whose digest is known only once it has been written (a layer being compressed, a
 * document being generated): bytes go to a private temp file under `content/ingest/` while
 * they are hashed; `commit()` fsyncs, names the blob by the digest it computed, and renames
 * it into place (or drops it when that blob exists). Nothing is visible before commit.
 */
export class NewBlobWriter extends Writable {
  readonly #file: string;
  readonly #blobDir: string;
  readonly #root: string;
  readonly #fh: fs.FileHandle;
  readonly #digester = new Digester('sha256');
  #state: 'open' | 'committed' | 'aborted' = 'open';

  private constructor(fh: fs.FileHandle, file: string, blobDir: string, root: string) {
    super({ highWaterMark: 1 << 20 });
    this.#fh = fh;
    this.#file = file;
    this.#blobDir = blobDir;
    this.#root = root;
  }

  /** @internal Used by ContentStore.newBlob. */
  static async create(ingestDir: string, blobDir: string, root: string): Promise<NewBlobWriter> {
    const file = path.join(ingestDir, `new-${process.pid}-${randomBytes(8).toString('hex')}`);
    try {
      const fh = await fs.open(file, 'wx', 0o600);
      return new NewBlobWriter(fh, file, blobDir, root);
    } catch (e) {
      throw storeError(e, `cannot create ${file}`, root);
    }
  }

  /** Bytes written so far. */
  get size(): number {
    return this.#digester.size;
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (e?: Error | null) => void): void {
    this._writev([{ chunk }], cb);
  }

  override _writev(chunks: Array<{ chunk: Buffer }>, cb: (e?: Error | null) => void): void {
    const bufs = chunks.map((c) => c.chunk);
    this.#fh.writev(bufs).then(
      () => {
        for (const b of bufs) this.#digester.update(b);
        cb();
      },
      (e: unknown) => cb(storeError(e, `writing ${this.#file}`, this.#root)),
    );
  }

  /**
   * Ends the stream if needed, waits for every write, and makes the content a blob.
   * Returns its digest and size. Does I/O. Throws DRAY_NO_SPACE / DRAY_STORE.
   */
  async commit(): Promise<{ digest: Digest; size: number }> {
    if (this.#state !== 'open')
      throw new DrayError('DRAY_INVALID_ARGUMENT', `blob writer already ${this.#state}`);
    if (!this.writableEnded) this.end();
    await finished(this, { readable: false });
    this.#state = 'committed';
    const digest = this.#digester.digest();
    const size = this.#digester.size;
    const target = path.join(this.#blobDir, 'sha256', digest.slice('sha256:'.length));
    try {
      await this.#fh.sync();
      await this.#fh.chmod(0o444);
      await this.#fh.close();
      if (await exists(target)) await fs.rm(this.#file, { force: true });
      else {
        await fs.rename(this.#file, target);
        await syncDir(path.dirname(target));
      }
    } catch (e) {
      await fs.rm(this.#file, { force: true }).catch(() => {});
      throw storeError(e, `committing ${digest}`, this.#root);
    }
    return { digest, size };
  }

  /** Drops everything written. Never throws. */
  async abort(): Promise<void> {
    if (this.#state !== 'open') return;
    this.#state = 'aborted';
    this.destroy();
    await this.#fh.close().catch(() => {});
    await fs.rm(this.#file, { force: true }).catch(() => {});
  }
}

async function exists(p: string): Promise<boolean> {
  return fs.lstat(p).then(
    () => true,
    () => false,
  );
}
