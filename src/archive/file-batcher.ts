import { MessageChannel, type MessagePort, receiveMessageOnPort, Worker } from 'node:worker_threads';
import { DrayError } from '../errors.ts';
import type { ApplyWorkerData, Batch, BatchFailure, BatchFile, BatchReply } from './apply-worker.ts';

/** Bytes of file data per batch, and files per batch. */
const BATCH_BYTES = 1 << 20;
const BATCH_FILES = 512;
/** Batches in flight before the main thread waits (bounds memory to a few MiB). */
const MAX_IN_FLIGHT = 3;

/** A file the worker handed back (something other than a regular file was at its name). */
export interface ReturnedFile {
  /** The key it was queued under (the unpacker's real relative path). */
  key: string;
  file: BatchFile;
  data: Buffer;
}

/**
 * The main-thread side of the small-file writer: a layer of thousands of small files costs
 * six system calls a file, which a worker thread (apply-worker.ts) makes while the main thread
 * parses on. Files are copied into a batch buffer (so they hold no slice of the
 * decompressor's output) and sent a batch at a time.
 *
 * The caller keeps the unpacker's ordering rules: it calls `sync()` before anything that
 * could see or change a queued path (an `lstat` of it, a removal, a hard link to it, the
 * end of the layer). `sync()` blocks the thread (Atomics.wait) until the worker is idle:
 * the unpacker's file system work is synchronous by design, and a batch takes a few
 * milliseconds.
 */
export class FileBatcher {
  /** Files handed to workers in this process (for tests and statistics). */
  static filesQueued = 0;
  readonly #sameOwner: boolean;
  #worker: Worker | undefined;
  #port: MessagePort | undefined;
  /** [0]: batches the worker finished; [1]: 1 once the worker runs. */
  readonly #done = new Int32Array(new SharedArrayBuffer(8));
  #files: BatchFile[] = [];
  #keys: string[] = [];
  #data: Buffer | undefined;
  #fill = 0;
  readonly #spare: Buffer[] = [];
  /** Keys of the batches in flight, in order, to map failures back. */
  readonly #inFlight: Array<{ keys: string[]; files: BatchFile[] }> = [];
  /** Keys queued or in flight. */
  readonly #pending = new Set<string>();
  #returned: ReturnedFile[] = [];
  #error: DrayError | undefined;

  constructor(o: { sameOwner: boolean }) {
    this.#sameOwner = o.sameOwner;
  }

  /** True when `key` is queued or being written. */
  has(key: string): boolean {
    return this.#pending.has(key);
  }

  get pending(): boolean {
    return this.#pending.size > 0;
  }

  /** Queues a file at `path` (absolute, resolved) of `length` bytes; returns where to copy its data. */
  add(
    key: string,
    path: string,
    meta: { mode: number; uid: number; gid: number; atime: number; mtime: number },
    length: number,
  ): Buffer {
    if (this.#files.length >= BATCH_FILES || this.#fill + length > BATCH_BYTES) this.#post();
    this.#data ??= this.#spare.pop() ?? Buffer.allocUnsafeSlow(BATCH_BYTES);
    const offset = this.#fill;
    this.#fill += length;
    this.#files.push({ path, ...meta, offset, length });
    this.#keys.push(key);
    this.#pending.add(key);
    FileBatcher.filesQueued++;
    return this.#data.subarray(offset, offset + length);
  }

  /**
   * Waits until every queued file is on disk. Returns the files the worker handed back, in
   * queue order, for the caller to apply itself. Throws the first real failure (a full disk…)
   * as a DrayError naming the file's path.
   */
  sync(): ReturnedFile[] {
    this.#post();
    while (this.#inFlight.length > 0) this.#receive(true);
    this.#pending.clear();
    const out = this.#returned;
    this.#returned = [];
    if (this.#error) {
      const e = this.#error;
      this.#error = undefined;
      throw e;
    }
    return out;
  }

  /** Stops the worker (the batcher may be used again: a new one starts on demand). */
  close(): void {
    // Nothing more is written: what was not sent is dropped, and what the worker holds is let
    // finish, so no file appears in the root after the unpack has returned (a caller may be
    // about to delete a half-applied root).
    this.#files = [];
    this.#keys = [];
    this.#fill = 0;
    try {
      while (this.#inFlight.length > 0 && this.#worker) this.#receive(true, 10_000);
    } catch {}
    this.#inFlight.length = 0;
    this.#pending.clear();
    this.#returned = [];
    this.#error = undefined;
    this.#stop();
  }

  #stop(): void {
    const w = this.#worker;
    this.#worker = undefined;
    this.#port?.close();
    this.#port = undefined;
    if (w) {
      w.on('error', () => {});
      void w.terminate();
    }
  }

  #post(): void {
    if (this.#files.length === 0) return;
    const data = this.#data as Buffer;
    const batch: Batch = { files: this.#files, data: new Uint8Array(data.buffer, 0, this.#fill) };
    this.#inFlight.push({ keys: this.#keys, files: this.#files });
    this.#files = [];
    this.#keys = [];
    this.#data = undefined;
    this.#fill = 0;
    this.#start().postMessage(batch, [data.buffer as ArrayBuffer]);
    while (this.#inFlight.length > MAX_IN_FLIGHT) this.#receive(true);
    // collect finished batches without waiting: their buffers come back for reuse
    while (this.#inFlight.length > 0 && this.#receive(false)) {}
  }

  /** Handles the next reply; with `wait`, blocks until there is one. False when none was ready. */
  #receive(wait: boolean, timeoutMs = 60_000): boolean {
    const port = this.#port as MessagePort;
    let msg = receiveMessageOnPort(port);
    const since = Date.now();
    while (msg === undefined && wait) {
      const seen = Atomics.load(this.#done, 0);
      msg = receiveMessageOnPort(port);
      if (msg !== undefined) break;
      // A dead worker's 'exit' event cannot arrive while this thread waits: a worker that has
      // not started after 10 s, or a batch of at most 1 MiB that takes a minute, means it is gone.
      const waited = Date.now() - since;
      if (!this.#worker || waited > timeoutMs || (waited > 10_000 && Atomics.load(this.#done, 1) === 0)) {
        this.#stop();
        throw new DrayError('DRAY_INTERNAL', 'unpack file worker stopped answering');
      }
      // Replies are posted before the count moves, so a count past `seen` means one is queued.
      Atomics.wait(this.#done, 0, seen, 1000);
    }
    if (msg === undefined) return false;
    const reply = msg.message as BatchReply;
    const batch = this.#inFlight.shift() as { keys: string[]; files: BatchFile[] };
    const data = Buffer.from(reply.data.buffer, 0, reply.data.buffer.byteLength);
    for (const f of reply.failures) this.#failed(f, batch, data);
    if (data.byteLength === BATCH_BYTES && this.#spare.length < MAX_IN_FLIGHT + 1) this.#spare.push(data);
    return true;
  }

  #failed(f: BatchFailure, batch: { keys: string[]; files: BatchFile[] }, data: Buffer): void {
    const file = batch.files[f.index] as BatchFile;
    if (f.code === 'EEXIST') {
      // copied out: the batch buffer goes back into use
      const copy = Buffer.from(data.subarray(file.offset, file.offset + file.length));
      this.#returned.push({ key: batch.keys[f.index] as string, file, data: copy });
      return;
    }
    const what = `applying layer entry ${JSON.stringify(file.path)}`;
    this.#error ??=
      f.code === 'ENOSPC' || f.code === 'EDQUOT'
        ? new DrayError('DRAY_NO_SPACE', `${what}: no space left on device`)
        : new DrayError('DRAY_INTERNAL', `${what}: ${f.message}`);
  }

  #start(): MessagePort {
    if (this.#worker && this.#port) return this.#port;
    const { port1, port2 } = new MessageChannel();
    const data: ApplyWorkerData = { sameOwner: this.#sameOwner, done: this.#done, port: port2 };
    const w = new Worker(workerUrl('apply-worker'), {
      workerData: data,
      transferList: [port2],
      resourceLimits: { maxYoungGenerationSizeMb: 2, maxOldGenerationSizeMb: 64 },
      // None of the host's flags: a `node --input-type=module -e` program's would make the
      // worker's module fail to load. The workers need none.
      execArgv: [],
    });
    w.unref();
    w.on('error', (err) => {
      this.#error ??= new DrayError('DRAY_INTERNAL', `unpack file worker failed: ${err.message}`, {
        cause: err,
      });
      this.#worker = undefined;
    });
    w.on('exit', () => {
      this.#worker = undefined;
    });
    this.#worker = w;
    this.#port = port1;
    return port1;
  }
}

/** The worker's module: the .ts beside this file, or in the CLI bundle (dist/) its own .mjs. */
function workerUrl(name: string): URL {
  return new URL(import.meta.url.endsWith('.ts') ? `./${name}.ts` : `./${name}.mjs`, import.meta.url);
}
