import { availableParallelism } from 'node:os';
import { Transform, type TransformCallback } from 'node:stream';
import { Worker } from 'node:worker_threads';
import { crc32, deflateRaw } from 'node:zlib';
import { DrayError } from '../errors.ts';
import { deflateBlock } from './gzip-parallel-worker.ts';

/**
 * pigz-style parallel gzip: the input is cut into fixed-size blocks, each raw-deflated on a
 * worker thread with the previous 32 KiB of input as its dictionary and ended with
 * Z_SYNC_FLUSH (the last with Z_FINISH); the main thread computes CRC-32 and ISIZE and writes
 * one gzip member (RFC 1952). Block boundaries depend only on the byte count, and each block's
 * output only on its bytes and dictionary, so the output is the same whatever the scheduling
 * and whatever the worker count.
 */

const DICT = 32 * 1024;
/** Block buffers kept for reuse (at most this many, of any size). */
const MAX_SPARE_BLOCKS = 8;
/** Default block size: large enough to amortise messaging, small enough to keep both cores busy. */
export const DEFAULT_GZIP_BLOCK = 1024 * 1024;

export interface ParallelGzipOptions {
  /** 1–9 (default 6). */
  level?: number;
  /** Bytes per block, 64 KiB–16 MiB (default 1 MiB). Changes the output bytes. */
  blockSize?: number;
  /** Worker threads (default: available cores, at most 4). Does not change the output. */
  workers?: number;
}

interface Pending {
  promise: Promise<Buffer>;
}

/**
 * Creates a parallel gzip Transform (see the module comment). Uses a process-wide worker pool
 * that is started on first use and does not keep the process alive while idle. An input
 * shorter than one block is compressed without touching the pool (same bytes).
 * Throws DRAY_INVALID_ARGUMENT for an out-of-range level or block size; the stream fails with
 * DRAY_INTERNAL if a worker dies.
 */
export function createParallelGzip(o: ParallelGzipOptions = {}): Transform {
  const level = o.level ?? 6;
  const blockSize = o.blockSize ?? DEFAULT_GZIP_BLOCK;
  if (!Number.isInteger(level) || level < 1 || level > 9) {
    throw new DrayError('DRAY_INVALID_ARGUMENT', `parallel gzip: level ${level} is not between 1 and 9`);
  }
  if (!Number.isInteger(blockSize) || blockSize < 64 * 1024 || blockSize > 16 * 1024 * 1024) {
    throw new DrayError('DRAY_INVALID_ARGUMENT', `parallel gzip: block size ${blockSize} out of range`);
  }
  const workers = Math.max(1, o.workers ?? Math.min(availableParallelism(), 4));
  const maxInFlight = workers * 2;

  let block = pool(workers).takeBlock(blockSize);
  let fill = 0;
  let crc = 0;
  let isize = 0;
  let dict: Buffer | undefined;
  let headerSent = false;
  const queue: Pending[] = [];

  const header = (t: Transform) => {
    if (headerSent) return;
    headerSent = true;
    // ID1 ID2 CM=8 FLG=0 MTIME=0 XFL OS=3 (unix, fixed so output is the same on every platform)
    t.push(Buffer.from([0x1f, 0x8b, 8, 0, 0, 0, 0, 0, level === 9 ? 2 : level === 1 ? 4 : 0, 3]));
  };

  const submit = (data: Buffer, last: boolean): void => {
    const d = dict;
    dict = data.length >= DICT ? Buffer.from(data.subarray(data.length - DICT)) : undefined;
    queue.push({ promise: pool(workers).run(data, d, level, last) });
  };

  /** Emits finished blocks in order; waits for the head while too many are in flight. */
  const drain = async (t: Transform, all: boolean): Promise<void> => {
    while (queue.length > 0 && (all || queue.length > maxInFlight)) {
      const out = await queue[0]!.promise;
      queue.shift();
      t.push(out);
    }
  };

  return new Transform({
    transform(chunk: Buffer, _enc, cb: TransformCallback) {
      header(this);
      crc = crc32(chunk, crc);
      isize = (isize + chunk.length) >>> 0;
      let pos = 0;
      let submitted = false;
      while (pos < chunk.length) {
        const n = Math.min(chunk.length - pos, blockSize - fill);
        chunk.copy(block, fill, pos, pos + n);
        fill += n;
        pos += n;
        if (fill === blockSize) {
          submit(block, false);
          submitted = true;
          block = pool(workers).takeBlock(blockSize);
          fill = 0;
        }
      }
      if (!submitted) {
        cb();
        return;
      }
      drain(this, false).then(() => cb(), cb);
    },
    flush(cb: TransformCallback) {
      header(this);
      const trailer = () => {
        const tail = Buffer.alloc(8);
        tail.writeUInt32LE(crc >>> 0, 0);
        tail.writeUInt32LE(isize, 4);
        this.push(tail);
      };
      const rest = block.subarray(0, fill);
      if (queue.length === 0 && dict === undefined) {
        // Everything fits in one block: same bytes as a worker would make, without the pool.
        deflateRaw(rest, { level }, (err, out) => {
          if (err) return cb(err);
          this.push(out);
          trailer();
          cb();
        });
        return;
      }
      submit(Buffer.from(rest), true);
      drain(this, true).then(() => {
        trailer();
        cb();
      }, cb);
    },
  });
}

/** A small pool of deflate workers shared by every stream in the process. */
class DeflatePool {
  #workers: Worker[] = [];
  #idle: Worker[] = [];
  #waiting: Array<() => void> = [];
  #jobs = new Map<number, { resolve: (b: Buffer) => void; reject: (e: Error) => void }>();
  #nextId = 0;
  #size: number;
  #busy = 0;
  #spare: Buffer[] = [];

  constructor(size: number) {
    this.#size = size;
  }

  async run(data: Buffer, dict: Buffer | undefined, level: number, last: boolean): Promise<Buffer> {
    const w = await this.#acquire();
    const id = this.#nextId++;
    return new Promise<Buffer>((resolve, reject) => {
      this.#jobs.set(id, {
        resolve: (b) => {
          this.#release(w);
          resolve(b);
        },
        reject: (e) => {
          this.#release(w);
          reject(e);
        },
      });
      // Transfer the block's own memory; copy only when it is a view of a larger buffer.
      const ab = (
        data.byteOffset === 0 && data.byteLength === data.buffer.byteLength
          ? data.buffer
          : data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength)
      ) as ArrayBuffer;
      w.postMessage(
        { id, data: new Uint8Array(ab), dict: dict ? new Uint8Array(dict) : undefined, level, last },
        [ab],
      );
    });
  }

  /**
   * A block buffer of `size` bytes: one a worker handed back, else a new one. Reuse keeps
   * a layer's worth of 1 MiB blocks from piling up as garbage between collections.
   */
  takeBlock(size: number): Buffer {
    const i = this.#spare.findIndex((b) => b.byteLength === size);
    if (i >= 0) return this.#spare.splice(i, 1)[0] as Buffer;
    return Buffer.allocUnsafeSlow(size);
  }

  #recycle(input: Uint8Array): void {
    if (input.byteOffset !== 0 || input.byteLength !== input.buffer.byteLength) return;
    if (this.#spare.length >= MAX_SPARE_BLOCKS) return;
    this.#spare.push(Buffer.from(input.buffer, 0, input.byteLength));
  }

  async #acquire(): Promise<Worker> {
    for (;;) {
      const w = this.#idle.pop();
      if (w) {
        if (this.#busy++ === 0) for (const x of this.#workers) x.ref();
        return w;
      }
      if (this.#workers.length < this.#size) {
        this.#idle.push(this.#spawn());
        continue;
      }
      await new Promise<void>((r) => this.#waiting.push(r));
    }
  }

  #release(w: Worker): void {
    if (this.#workers.includes(w)) this.#idle.push(w);
    if (--this.#busy === 0) for (const x of this.#workers) x.unref();
    this.#waiting.shift()?.();
  }

  #spawn(): Worker {
    // Small worker heaps: blocks go through as transferred buffers, and a big young generation
    // only lets garbage pile up (a 200 MB layer peaked near 300 MB RSS without this).
    const w = new Worker(workerUrl('gzip-parallel-worker'), {
      resourceLimits: { maxYoungGenerationSizeMb: 1, maxOldGenerationSizeMb: 32 },
      // None of the host's flags: a `node --input-type=module -e` program's would make the
      // worker's module fail to load. The workers need none.
      execArgv: [],
    });
    w.unref();
    w.on('message', (m: { id: number; data?: Uint8Array; input?: Uint8Array; error?: string }) => {
      if (m.input) this.#recycle(m.input);
      const job = this.#jobs.get(m.id);
      if (!job) return;
      this.#jobs.delete(m.id);
      if (m.data) job.resolve(Buffer.from(m.data.buffer, m.data.byteOffset, m.data.byteLength));
      else job.reject(new DrayError('DRAY_INTERNAL', `parallel gzip: ${m.error ?? 'worker failed'}`));
    });
    const fail = (err: unknown) => {
      // A dead worker fails every job in flight; the next run spawns a fresh one.
      this.#workers = this.#workers.filter((x) => x !== w);
      this.#idle = this.#idle.filter((x) => x !== w);
      for (const [id, job] of this.#jobs) {
        this.#jobs.delete(id);
        job.reject(new DrayError('DRAY_INTERNAL', 'parallel gzip: worker exited', { cause: err }));
      }
    };
    w.on('error', fail);
    w.on('exit', (code) => fail(new Error(`exit code ${code}`)));
    this.#workers.push(w);
    return w;
  }
}

let shared: DeflatePool | undefined;
function pool(size: number): DeflatePool {
  shared ??= new DeflatePool(size);
  return shared;
}

/** Exposed for tests: the raw deflate of one block exactly as the workers do it. */
export { deflateBlock };

/** The worker's module: the .ts beside this file, or in the CLI bundle (dist/, see scripts/bundle.ts) its own .mjs. */
function workerUrl(name: string): URL {
  return new URL(import.meta.url.endsWith('.ts') ? `./${name}.ts` : `./${name}.mjs`, import.meta.url);
}
