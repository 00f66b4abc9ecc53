import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { abortError, DrayError } from '../../errors.ts';
import {
  type ErrInfo,
  type HashResult,
  hashFile,
  type Job,
  type ListResult,
  listDir,
  type Reply,
  type Request,
} from './fs-worker.ts';

/**
 * A few worker threads that make the file engine's per-file system calls (see
 * fs-worker.ts), shared by every copy and checksum in the process. Idle workers do not
 * keep the process alive.
 */

type Pending = { resolve: (r: Reply) => void; reject: (e: unknown) => void; worker: Slot };
type Slot = { w: Worker; inflight: number };

/** Directories per listing request, jobs per batch: large enough that messaging is noise, small enough to stop quickly. */
const DIRS_PER_REQUEST = 64;
const JOBS_PER_BATCH = 256;
/** Up to this much, a checksum reads the files on the calling thread. */
const INLINE_HASH_FILES = 512;
const INLINE_HASH_BYTES = 4 << 20;

class FsPool {
  readonly #size: number;
  #slots: Slot[] = [];
  readonly #pending = new Map<number, Pending>();
  #nextId = 0;
  #busy = 0;
  #idleTimer: NodeJS.Timeout | undefined;

  constructor(size: number) {
    this.#size = size;
  }

  get size(): number {
    return this.#size;
  }

  /** Whether a worker thread is running (listing inline is cheaper than starting one). */
  get started(): boolean {
    return this.#slots.length > 0;
  }

  request(
    req: { kind: 'list'; dirs: string[] } | { kind: 'jobs'; jobs: Job[] } | { kind: 'hash'; files: string[] },
  ): Promise<Reply> {
    clearTimeout(this.#idleTimer);
    const slot = this.#pick();
    const id = this.#nextId++;
    if (this.#busy++ === 0) for (const s of this.#slots) s.w.ref();
    slot.inflight++;
    return new Promise<Reply>((resolve, reject) => {
      this.#pending.set(id, { resolve, reject, worker: slot });
      slot.w.postMessage({ ...req, id } as Request);
    });
  }

  #pick(): Slot {
    if (this.#slots.length < this.#size) {
      const idle = this.#slots.find((s) => s.inflight === 0);
      if (idle) return idle;
      return this.#spawn();
    }
    let best = this.#slots[0] as Slot;
    for (const s of this.#slots) if (s.inflight < best.inflight) best = s;
    return best;
  }

  #done(id: number): Pending | undefined {
    const p = this.#pending.get(id);
    if (!p) return undefined;
    this.#pending.delete(id);
    p.worker.inflight--;
    if (--this.#busy === 0) {
      for (const s of this.#slots) s.w.unref();
      // Idle workers hold tens of MB each; a build's next phase (diff, compression) should
      // not carry them. Restarting costs ~100 ms, so wait a moment for more work first.
      this.#idleTimer = setTimeout(() => this.#stop(), 300);
      this.#idleTimer.unref();
    }
    return p;
  }

  #stop(): void {
    if (this.#busy > 0) return;
    const slots = this.#slots;
    this.#slots = [];
    for (const s of slots) {
      s.w.removeAllListeners('exit');
      s.w.removeAllListeners('error');
      s.w.on('error', () => {});
      void s.w.terminate();
    }
  }

  #spawn(): Slot {
    const w = new Worker(workerUrl('fs-worker'), {
      resourceLimits: { maxYoungGenerationSizeMb: 8, maxOldGenerationSizeMb: 1024 },
      // None of the host's flags: a `node --input-type=module -e` program's would make the
      // worker's module fail to load. The workers need none.
      execArgv: [],
    });
    const slot: Slot = { w, inflight: 0 };
    w.on('message', (r: Reply) => this.#done(r.id)?.resolve(r));
    const fail = (err: unknown) => {
      // A dead worker fails what it was given; the next request spawns a fresh one.
      this.#slots = this.#slots.filter((s) => s !== slot);
      for (const [id, p] of this.#pending) {
        if (p.worker !== slot) continue;
        this.#done(id)?.reject(new DrayError('DRAY_INTERNAL', 'file worker exited', { cause: err }));
      }
    };
    w.on('error', fail);
    w.on('exit', (code) => fail(new Error(`exit code ${code}`)));
    this.#slots.push(slot);
    return slot;
  }
}

let shared: FsPool | undefined;
function pool(): FsPool {
  shared ??= new FsPool(Math.max(1, Math.min(4, availableParallelism())));
  return shared;
}

function crashed(r: Reply): never {
  throw new DrayError('DRAY_INTERNAL', `file worker failed: ${'crash' in r ? r.crash : 'bad reply'}`);
}

/** Lists directories (sorted, with lstat data) on the worker threads. Does I/O. */
export async function listDirs(dirs: readonly string[], signal?: AbortSignal): Promise<ListResult[]> {
  if (signal?.aborted) throw abortError(signal, 'reading directories');
  const p = pool();
  // Starting the workers costs ~100 ms; listing a 10,000-file context inline costs ~40 ms.
  // So a walk that needs no file contents (a warm build's checksum, all cache hits) never
  // starts them; the first hash or copy does.
  if (!p.started) return dirs.map((d) => listDir(d));
  const chunks: string[][] = [];
  const per = Math.max(1, Math.min(DIRS_PER_REQUEST, Math.ceil(dirs.length / p.size)));
  for (let i = 0; i < dirs.length; i += per) chunks.push(dirs.slice(i, i + per));
  const replies = await Promise.all(chunks.map((c) => p.request({ kind: 'list', dirs: c })));
  const out: ListResult[] = [];
  for (const r of replies) {
    if (!('lists' in r)) crashed(r);
    out.push(...r.lists);
  }
  return out;
}

/**
 * Runs jobs on the worker threads, in batches (jobs must not depend on each other). Stops
 * handing out batches after the first failure or an abort. Returns the first failure.
 * Does I/O. @throws DRAY_ABORTED.
 */
export async function runJobs(
  jobs: readonly Job[],
  signal?: AbortSignal,
): Promise<{ job: Job; err: ErrInfo } | undefined> {
  const p = pool();
  let next = 0;
  let failure: { job: Job; err: ErrInfo } | undefined;
  const lane = async (): Promise<void> => {
    while (next < jobs.length && !failure && !signal?.aborted) {
      const start = next;
      const batch = jobs.slice(start, start + JOBS_PER_BATCH);
      next += batch.length;
      const r = await p.request({ kind: 'jobs', jobs: batch });
      if ('crash' in r) crashed(r);
      if ('failed' in r && r.failed && !failure)
        failure = { job: batch[r.failed.index] as Job, err: r.failed.err };
    }
  };
  const lanes = Math.min(p.size * 2, Math.ceil(jobs.length / JOBS_PER_BATCH));
  await Promise.all(Array.from({ length: lanes }, lane));
  if (!failure && signal?.aborted) throw abortError(signal, 'copy');
  return failure;
}

/**
 * sha256 of files' contents, read and hashed on the worker threads (a read per file through
 * the libuv pool costs several round trips each; sha256sum-like speed needs them gone).
 * `size` is the content length (for a batch budget). Does I/O. @throws DRAY_ABORTED.
 */
export async function hashFiles(
  files: readonly { path: string; size: number }[],
  signal?: AbortSignal,
): Promise<HashResult[]> {
  if (signal?.aborted) throw abortError(signal, 'checksum');
  const p = pool();
  // A few small files: hashing them here takes less than starting a worker (~0.2 s to load
  // and type-strip its modules), which a small build context would otherwise wait for.
  if (
    !p.started &&
    files.length <= INLINE_HASH_FILES &&
    files.reduce((n, f) => n + f.size, 0) <= INLINE_HASH_BYTES
  )
    return files.map((f) => hashFile(f.path));
  // Batches of at most 256 files or 64 MiB, so large files spread over the workers.
  const batches: { start: number; files: string[] }[] = [];
  let cur: string[] = [];
  let bytes = 0;
  let start = 0;
  files.forEach((f, i) => {
    if (cur.length > 0 && (cur.length >= JOBS_PER_BATCH || bytes + f.size > 64 << 20)) {
      batches.push({ start, files: cur });
      cur = [];
      bytes = 0;
      start = i;
    }
    cur.push(f.path);
    bytes += f.size;
  });
  if (cur.length > 0) batches.push({ start, files: cur });
  const out: HashResult[] = new Array(files.length);
  let next = 0;
  const lane = async (): Promise<void> => {
    while (next < batches.length) {
      if (signal?.aborted) throw abortError(signal, 'checksum');
      const b = batches[next++] as { start: number; files: string[] };
      const r = await p.request({ kind: 'hash', files: b.files });
      if (!('hashes' in r)) crashed(r);
      r.hashes.forEach((h, i) => {
        out[b.start + i] = h;
      });
    }
  };
  await Promise.all(Array.from({ length: Math.min(p.size * 2, batches.length) }, lane));
  return out;
}

/** The worker's module: the .ts beside this file, or in the CLI bundle (dist/, see scripts/bundle.ts) its own .mjs. */
function workerUrl(name: string): URL {
  return new URL(import.meta.url.endsWith('.ts') ? `./${name}.ts` : `./${name}.mjs`, import.meta.url);
}
