/**
 * Worker side of the unpacker's small-file writer (file-batcher.ts): creates the regular
 * files of one batch — open, write, owner, mode, times, close — while the main thread goes
 * on parsing the layer. The paths arrive resolved inside the root by the main thread, with
 * every parent a real directory; the main thread waits for the batch before it removes or
 * replaces anything, so no path can have been redirected meanwhile. A name that already
 * exists is replaced only when it is a regular file; anything else (a directory, a symlink)
 * is handed back for the main thread to apply with its full rules.
 */
import { closeSync, lstatSync, openSync, unlinkSync } from 'node:fs';
import { type MessagePort, workerData } from 'node:worker_threads';
import { finishFile, O_CREATE_FILE, writeAll } from './file-write.ts';

/** One file of a batch: its bytes are `data[offset, offset + length)`. */
export interface BatchFile {
  /** Absolute path, resolved inside the root. */
  path: string;
  mode: number;
  uid: number;
  gid: number;
  atime: number;
  mtime: number;
  offset: number;
  length: number;
}

export interface Batch {
  files: BatchFile[];
  data: Uint8Array;
}

/** A file the worker did not make: `code` 'EEXIST' means "something other than a file is there". */
export interface BatchFailure {
  index: number;
  code: string;
  message: string;
}

export interface BatchReply {
  failures: BatchFailure[];
  /** The batch's buffer, handed back for reuse. */
  data: Uint8Array;
}

export interface ApplyWorkerData {
  sameOwner: boolean;
  /** [0]: batches finished (the main thread waits on it with Atomics.wait); [1]: 1 once running. */
  done: Int32Array;
  port: MessagePort;
}

/** Makes every file of `b`; returns the ones it could not. */
export function writeBatch(b: Batch, sameOwner: boolean): BatchFailure[] {
  const failures: BatchFailure[] = [];
  const data = Buffer.from(b.data.buffer, b.data.byteOffset, b.data.byteLength);
  for (let i = 0; i < b.files.length; i++) {
    const f = b.files[i] as BatchFile;
    let fd: number;
    try {
      fd = openSync(f.path, O_CREATE_FILE, 0o600);
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      if (e.code !== 'EEXIST' || !lstatSync(f.path, { throwIfNoEntry: false })?.isFile()) {
        failures.push({ index: i, code: e.code ?? 'EIO', message: e.message });
        continue;
      }
      try {
        unlinkSync(f.path);
        fd = openSync(f.path, O_CREATE_FILE, 0o600);
      } catch (err2) {
        const e2 = err2 as NodeJS.ErrnoException;
        failures.push({ index: i, code: e2.code ?? 'EIO', message: e2.message });
        continue;
      }
    }
    try {
      writeAll(fd, data, f.offset, f.offset + f.length);
      finishFile(fd, f, sameOwner);
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      failures.push({ index: i, code: e.code ?? 'EIO', message: e.message });
    } finally {
      closeSync(fd);
    }
  }
  return failures;
}

const wd = workerData as ApplyWorkerData | undefined;
if (wd?.port) {
  Atomics.store(wd.done, 1, 1); // running: the main thread stops waiting early if this never comes
  wd.port.on('message', (b: Batch) => {
    let failures: BatchFailure[];
    try {
      failures = writeBatch(b, wd.sameOwner);
    } catch (err) {
      failures = b.files.map((_, index) => ({ index, code: 'EIO', message: String(err) }));
    }
    // The reply is queued before the count moves: a woken main thread always finds it.
    wd.port.postMessage({ failures, data: b.data } satisfies BatchReply, [b.data.buffer as ArrayBuffer]);
    Atomics.add(wd.done, 0, 1);
    Atomics.notify(wd.done, 0);
  });
}
