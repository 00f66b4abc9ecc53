import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { join, posix } from 'node:path';
import type { Readable } from 'node:stream';
import { promisify } from 'node:util';
import { writeLayerTo } from '../archive/index.ts';
import { acquireLock, type ContentStore } from '../content/index.ts';
import { type Digest, digestOf } from '../digest/index.ts';
import { DrayError, isDrayError, throwIfAborted } from '../errors.ts';
import { type ExecMount, type Executor, resolveChown } from '../executor/index.ts';
import { type Descriptor, hostPlatform, type Platform } from '../oci/index.ts';
import type { ProgressWriter, RunOptions } from '../progress/index.ts';
import type { ActiveSnapshot, Snapshotter, SnapshotView } from '../snapshot/index.ts';
import { CacheMounts } from './cache-mounts.ts';
import {
  applyFileActions,
  ChecksumCache,
  checksumCopySources,
  checksumTree,
  type FileTree,
} from './file/index.ts';
import {
  type BuildRecord,
  type BuildRecorder,
  type ChecksumFiles,
  HistoryStore,
  type VertexRecord,
} from './history.ts';
import { type DownloadedFile, downloadHttpSource, redactUrl } from './http-source.ts';
import { Limiter } from './limiter.ts';
import { LogTail } from './log-tail.ts';
import type { ExecOp, FileOp, HttpSource, LocalSource } from './ops.ts';
import { type CacheRecord, CacheRecords } from './records.ts';
import type { CacheSource, ImageResolver, LayerRef, Result, Session, SourceImage } from './types.ts';
import { canonicalJson, type Vertex } from './vertex.ts';
import { explainMiss } from './why.ts';

const execFileAsync = promisify(execFile);

/** The solver's collaborators (BuildKit's worker: snapshotter, executor, content, resolver). */
export interface SolverOptions {
  /** The data root: cache records, history, cache mounts live under it. */
  root: string;
  content: ContentStore;
  /** Or a factory, called on first use: a build that is all cache hits never mounts anything, so it need not probe overlayfs. */
  snapshotter: Snapshotter | (() => Promise<Snapshotter>);
  executor: Executor;
  resolver: ImageResolver;
  /** The platform image sources resolve for (default the host's). */
  platform?: Platform;
  /** Steps that run at once (default: the number of CPUs, at least 2). */
  concurrency?: number;
  /** Build history limits, applied after every solve (default: 7 days, 1 GiB, the newest 20 always kept). */
  history?: { maxAgeMs?: number; maxBytes?: number; keepLast?: number };
}

export interface SolveOptions extends RunOptions {
  session?: Session;
  /** Run every step, ignoring cache records (results still replace them). */
  noCache?: boolean;
  /** Facts identifying the build in its history (frontend, target…). */
  meta?: Record<string, string>;
  /** Layer compression of produced layers (default gzip). */
  compression?: 'gzip' | 'zstd' | 'none';
  /** gzip 0–9, zstd 1–22. */
  compressionLevel?: number;
  /** SOURCE_DATE_EPOCH (seconds): clamps mtimes in produced layers. */
  sourceDateEpoch?: number;
  /**
   * The previous build of the same target: every step that misses the cache says what
   * changed since it (`[3/5] RUN make — cache miss: src/app.ts changed`).
   */
  previous?: BuildRecord;
  /**
   * Imported remote caches, asked in order after the data root's own records miss. A hit
   * fetches just that step's layers; a missing or corrupt blob warns and the step runs.
   */
  cacheImports?: readonly CacheSource[];
}

export interface SolveOutcome {
  /** The root vertex's result (no layers for `undefined`, i.e. scratch). */
  result: Result;
  /** The build's id in the history. */
  buildId: string;
  /** Per vertex digest: what happened (for the frontend's reporting). */
  vertices: ReadonlyMap<string, VertexRecord>;
}

interface KeyInfo {
  key: Digest;
  record: VertexRecord;
}

/**
 * Runs op graphs (BuildKit's solver, cut down): a vertex's cache key is the digest of its op
 * and its inputs' keys (local files by content, never mtimes); a key found in the persistent
 * records is a hit and nothing under it runs; missing vertices run as soon as their inputs
 * are done, a bounded number at once; identical vertices of concurrent solves run once. Every
 * solve is recorded in the build history with full logs.
 */
export class Solver {
  readonly records: CacheRecords;
  readonly history: HistoryStore;
  readonly #o: SolverOptions;
  readonly #limiter: Limiter;
  readonly #fetchLimiter = new Limiter(4);
  #snapshotter: Promise<Snapshotter> | undefined;
  readonly #inflight = new Map<string, Promise<Result>>();
  readonly #cacheMounts: CacheMounts;
  readonly #checksums: ChecksumCache;
  #checksumsLoaded: Promise<ChecksumCache> | undefined;
  readonly #platform: Platform;

  constructor(o: SolverOptions) {
    this.#o = o;
    this.records = new CacheRecords(o.root);
    this.history = new HistoryStore(o.root);
    this.#limiter = new Limiter(o.concurrency ?? Math.max(2, availableParallelism()));
    this.#cacheMounts = new CacheMounts(o.root);
    this.#checksums = new ChecksumCache(join(o.root, 'cache', 'checksums.json'));
    this.#platform = o.platform ?? hostPlatform();
  }

  /** Solves the graph under `root` (undefined = scratch). Does I/O. Throws DRAY_EXEC_FAILED, DRAY_BUILD, DRAY_ABORTED… */
  async solve(root: Vertex | undefined, o: SolveOptions = {}): Promise<SolveOutcome> {
    throwIfAborted(o.signal, 'build');
    const recorder = await this.history.start(o.meta ?? {});
    const run = new SolveRun(this, this.#o, recorder, o);
    try {
      const result = root ? await run.result(root) : { layers: [] };
      await recorder.finish('completed');
      return { result, buildId: recorder.id, vertices: run.vertexRecords() };
    } catch (e) {
      await recorder.finish(o.signal?.aborted ? 'canceled' : 'failed', errorText(e));
      throw e;
    } finally {
      await run.dispose();
      await this.#checksums.save().catch(() => {});
      const h = this.#o.history ?? {};
      await this.history
        .prune({
          maxAgeMs: h.maxAgeMs ?? 7 * 86_400_000,
          maxBytes: h.maxBytes ?? 1 << 30,
          keepLast: h.keepLast ?? 20,
        })
        .catch(() => {});
    }
  }

  /** Brings a result layer's blob into the content store when it is still only in a registry. Does I/O. */
  async fetchLayer(l: LayerRef, o: RunOptions = {}): Promise<void> {
    if (l.image && !(await this.#o.content.has(l.blob)))
      await this.#o.resolver.fetchLayer(l.image, l.blob, o);
  }

  /** @internal */
  get limiter(): Limiter {
    return this.#limiter;
  }
  /** @internal The snapshotter, made on first use when given as a factory. */
  snapshotter(): Promise<Snapshotter> {
    const s = this.#o.snapshotter;
    this.#snapshotter ??= typeof s === 'function' ? s() : Promise.resolve(s);
    this.#snapshotter.catch(() => {
      this.#snapshotter = undefined;
    });
    return this.#snapshotter;
  }
  /** @internal Imported cache blobs fetched at once. */
  get fetchLimiter(): Limiter {
    return this.#fetchLimiter;
  }
  /** @internal */
  get inflight(): Map<string, Promise<Result>> {
    return this.#inflight;
  }
  /** @internal */
  get cacheMounts(): CacheMounts {
    return this.#cacheMounts;
  }
  /** @internal */
  checksums(): Promise<ChecksumCache> {
    // Read once per process, and only by builds that checksum local files.
    this.#checksumsLoaded ??= this.#checksums.load().then(
      () => this.#checksums,
      () => this.#checksums,
    );
    return this.#checksumsLoaded;
  }
  /** @internal */
  get platform(): Platform {
    return this.#platform;
  }
}

/** One solve: memoised keys and results per vertex, progress and history. */
class SolveRun {
  readonly #s: Solver;
  readonly #o: SolverOptions;
  readonly #rec: BuildRecorder;
  readonly #opts: SolveOptions;
  readonly #progress: ProgressWriter | undefined;
  readonly #keys = new Map<string, Promise<KeyInfo>>();
  readonly #results = new Map<string, Promise<Result>>();
  readonly #images = new Map<string, Promise<SourceImage>>();
  readonly #downloads = new Map<string, Promise<DownloadedFile>>();
  readonly #records = new Map<string, VertexRecord>();
  /** Layers of every image resolved in this solve, by diffID: cache hits may point at them before they are fetched. */
  readonly #baseLayers = new Map<string, LayerRef>();
  readonly #cleanup: Array<() => Promise<void>> = [];
  /** Per-file checksums each vertex's key used, for explaining misses. */
  readonly #files = new Map<string, ChecksumFiles>();
  #tmp: string | undefined;

  constructor(s: Solver, o: SolverOptions, rec: BuildRecorder, opts: SolveOptions) {
    this.#s = s;
    this.#o = o;
    this.#rec = rec;
    this.#opts = opts;
    this.#progress = opts.progress;
  }

  vertexRecords(): Map<string, VertexRecord> {
    return this.#records;
  }

  async dispose(): Promise<void> {
    for (const f of this.#cleanup.reverse()) await f().catch(() => {});
    if (this.#tmp) await fs.rm(this.#tmp, { recursive: true, force: true }).catch(() => {});
  }

  async #tempDir(): Promise<string> {
    if (!this.#tmp) {
      const base = join(this.#o.root, 'tmp');
      await fs.mkdir(base, { recursive: true });
      this.#tmp = await fs.mkdtemp(join(base, `solve-${process.pid}-`));
    }
    return this.#tmp;
  }

  // ---- keys ---------------------------------------------------------------------------

  #recordOf(v: Vertex): VertexRecord {
    let r = this.#records.get(v.digest);
    if (!r) {
      r = this.#rec.addVertex({
        digest: v.digest,
        ...(v.name !== undefined ? { name: v.name } : {}),
        op: canonicalJson(v.op),
        inputKeys: [],
        ...(v.meta ? { meta: { ...v.meta } } : {}),
      });
      this.#records.set(v.digest, r);
    }
    return r;
  }

  /**
   * Ties an error to the step it happened in (BuildKit names the failing vertex): the error
   * gets `step` and the step's name as a prefix, and progress marks the step failed. Errors
   * of inputs pass through unchanged (they already name their own step).
   */
  #stepError(v: Vertex, e: unknown): unknown {
    if (v.name === undefined || !isDrayError(e) || e.code === 'DRAY_ABORTED') return e;
    if ((e as { step?: string }).step !== undefined) return e;
    if (e.code !== 'DRAY_EXEC_FAILED') e.message = `${v.name}: ${e.message}`;
    Object.assign(e, { step: v.name });
    const record = this.#records.get(v.digest);
    const now = Date.now();
    if (record && record.completed === undefined) {
      record.completed = now;
      record.error = e.message;
      this.#progress?.write({
        id: v.digest,
        kind: 'vertex',
        name: v.name,
        ...(record.started === undefined ? { started: now } : {}),
        completed: now,
        error: e.message.split('\n')[0] ?? '',
      });
    }
    return e;
  }

  key(v: Vertex): Promise<KeyInfo> {
    let p = this.#keys.get(v.digest);
    if (!p) {
      p = this.#computeKey(v).catch((e: unknown) => {
        throw this.#stepError(v, e);
      });
      this.#keys.set(v.digest, p);
    }
    return p;
  }

  async #computeKey(v: Vertex): Promise<KeyInfo> {
    const record = this.#recordOf(v);
    const op = v.op;
    let material: unknown;
    const checksums: Record<string, string> = {};
    const files: ChecksumFiles = {};
    switch (op.kind) {
      case 'source': {
        const src = op.source;
        if (src.type === 'image') {
          const img = await this.#image(v);
          material = { source: 'image', digest: img.digest };
        } else if (src.type === 'local') {
          const c = await checksumTree(this.#localTree(src), {
            cache: await this.#s.checksums(),
            manifest: true,
          });
          checksums['/'] = c.digest;
          files['/'] = c.files;
          material = { source: 'local', content: c.digest };
        } else {
          const file = src.checksum ? undefined : await this.#download(v, src);
          material = {
            source: 'http',
            content: src.checksum ?? file?.digest,
            filename: src.filename ?? file?.filename,
            mode: src.mode,
            uid: src.uid,
            gid: src.gid,
          };
        }
        break;
      }
      case 'exec': {
        const inputs = await Promise.all(
          v.inputs.map(async (input, i) => {
            const local = localSourceOf(input);
            if (!local) return (await this.key(input)).key;
            // A local directory mounted into a step counts by the content of what is mounted.
            const selectors = op.mounts.flatMap((m) =>
              'input' in m && m.input === i ? [('selector' in m ? m.selector : undefined) ?? '/'] : [],
            );
            const parts: string[] = [];
            for (const sel of selectors) {
              const c = await checksumTree(
                { ...this.#localTree(local), root: confinedJoin(this.#localTree(local).root, sel) },
                { cache: await this.#s.checksums(), manifest: true },
              );
              checksums[`input ${i}: ${sel}`] = c.digest;
              files[`input ${i}: ${sel}`] = c.files;
              parts.push(c.digest);
            }
            return digestOf(Buffer.from(parts.join(',')));
          }),
        );
        record.inputKeys = inputs;
        material = { op, inputs };
        break;
      }
      case 'file': {
        const inputs = await Promise.all(
          v.inputs.map(async (input) => (localSourceOf(input) ? 'local' : (await this.key(input)).key)),
        );
        // Copies from a local directory count by the content of the files they select.
        const selections = await Promise.all(
          op.actions.map(async (a, ai) => {
            if (a.action !== 'copy') return null;
            const input = v.inputs[a.input];
            const local = input ? localSourceOf(input) : undefined;
            if (!local) return null;
            const c = await checksumCopySources(this.#localTree(local), a, {
              cache: await this.#s.checksums(),
              manifest: true,
            });
            checksums[`copy ${ai}: ${a.src}`] = c.digest;
            files[`copy ${ai}: ${a.src}`] = c.files;
            return c.digest;
          }),
        );
        record.inputKeys = inputs;
        material = { op, inputs, selections };
        break;
      }
      case 'merge': {
        const inputs = await Promise.all(v.inputs.map(async (i) => (await this.key(i)).key));
        record.inputKeys = inputs;
        material = { op, inputs };
        break;
      }
    }
    const key = digestOf(Buffer.from(canonicalJson(material)));
    record.key = key;
    if (Object.keys(checksums).length > 0) {
      record.checksums = checksums;
      this.#files.set(v.digest, files);
      await this.#rec.saveChecksumFiles(record, files);
    }
    return { key, record };
  }

  #localTree(src: LocalSource): FileTree {
    const dir = this.#opts.session?.dirs?.[src.name];
    if (!dir)
      throw new DrayError('DRAY_BUILD', `the session shares no directory named ${JSON.stringify(src.name)}`, {
        hint: `pass session.dirs.${src.name}`,
      });
    return {
      root: dir,
      ...(src.include ? { include: src.include } : {}),
      ...(src.exclude ? { exclude: src.exclude } : {}),
    };
  }

  #image(v: Vertex): Promise<SourceImage> {
    let p = this.#images.get(v.digest);
    if (!p) {
      const src = (v.op as { source: import('./ops.ts').ImageSource }).source;
      p = this.#o.resolver
        .resolve(src, {
          platform: src.platform ?? this.#s.platform,
          ...(this.#opts.signal ? { signal: this.#opts.signal } : {}),
          ...(this.#progress ? { progress: this.#progress } : {}),
        })
        .then((img) => {
          const diffIds = img.config.rootfs?.diff_ids ?? [];
          img.layers.forEach((blob, i) => {
            const diffId = diffIds[i] as Digest | undefined;
            if (diffId && !this.#baseLayers.has(diffId))
              this.#baseLayers.set(diffId, { diffId, blob, image: img });
          });
          return img;
        });
      this.#images.set(v.digest, p);
    }
    return p;
  }

  #download(v: Vertex, src: HttpSource): Promise<DownloadedFile> {
    let p = this.#downloads.get(v.digest);
    if (!p) {
      p = this.#tempDir().then((dir) =>
        downloadHttpSource(src, join(dir, `http-${randomBytes(6).toString('hex')}`), {
          ...(this.#opts.signal ? { signal: this.#opts.signal } : {}),
        }),
      );
      this.#downloads.set(v.digest, p);
    }
    return p;
  }

  // ---- results ------------------------------------------------------------------------

  result(v: Vertex): Promise<Result> {
    let p = this.#results.get(v.digest);
    if (!p) {
      p = this.#computeResult(v);
      this.#results.set(v.digest, p);
    }
    return p;
  }

  async #computeResult(v: Vertex): Promise<Result> {
    const { key, record } = await this.key(v);
    const op = v.op;
    if (op.kind === 'source' && op.source.type === 'image') {
      const img = await this.#image(v);
      const diffIds = img.config.rootfs?.diff_ids ?? [];
      if (diffIds.length !== img.layers.length)
        throw new DrayError(
          'DRAY_INVALID_MANIFEST',
          `image ${img.ref}: ${img.layers.length} layers but ${diffIds.length} diff_ids`,
        );
      this.#announceCached(v, record);
      return {
        layers: img.layers.map((blob, i) => ({ diffId: diffIds[i] as Digest, blob, image: img })),
        image: img,
      };
    }
    if (op.kind === 'source' && op.source.type === 'local') {
      return { layers: [] };
    }
    if (op.kind === 'merge') {
      const parts = await Promise.all(v.inputs.map((i) => this.result(i)));
      return { layers: parts.flatMap((p) => p.layers) };
    }
    const noCache = this.#opts.noCache || v.noCache;
    if (!noCache) {
      const hit = await this.#fromRecord(key);
      if (hit) {
        this.#announceCached(v, record);
        return hit;
      }
    }
    if (!noCache) {
      const imported = await this.#fromImports(v, key);
      if (imported) {
        this.#announceCached(v, record);
        return imported;
      }
    }
    const shared = this.#s.inflight.get(key);
    if (shared) {
      const r = await shared;
      this.#announceCached(v, record);
      return r;
    }
    const p = this.#runOnce(v, key, record, Boolean(noCache));
    this.#s.inflight.set(key, p);
    try {
      return await p;
    } finally {
      this.#s.inflight.delete(key);
    }
  }

  /**
   * Runs a vertex once across processes too: a lock per cache key, and a second look at the
   * records once it is held, so a process that waited for another one's identical step
   * takes its result instead of running it again.
   */
  async #runOnce(v: Vertex, key: Digest, record: VertexRecord, noCache: boolean): Promise<Result> {
    // Inputs first (they take their own locks), so the lock below is held only while this step runs.
    await Promise.all(v.inputs.map((i) => this.result(i)));
    const hex = key.slice(key.indexOf(':') + 1);
    const dir = join(this.#o.root, 'locks');
    await fs.mkdir(dir, { recursive: true });
    const lock = await acquireLock(join(dir, `solve-${hex}`), {
      what: `step ${v.name ?? v.digest}`,
      timeoutMs: 24 * 3600_000,
      ...(this.#opts.signal ? { signal: this.#opts.signal } : {}),
    });
    try {
      if (!noCache) {
        const hit = await this.#fromRecord(key);
        if (hit) {
          this.#announceCached(v, record);
          return hit;
        }
      }
      return await this.#run(v, key, record);
    } finally {
      await lock?.release();
    }
  }

  /** A record's result when every blob it names is available (here, or from a base image of this solve). */
  async #fromRecord(key: Digest): Promise<Result | undefined> {
    const r = await this.#s.records.get(key);
    if (!r) return undefined;
    const layers: LayerRef[] = [];
    for (const l of r.layers) {
      if (await this.#o.content.has(l.blob))
        layers.push({
          diffId: l.diffId,
          blob: l.blob,
          ...(l.created !== undefined ? { created: l.created } : {}),
        });
      else {
        const base = this.#baseLayers.get(l.diffId);
        if (!base || base.blob.digest !== l.blob.digest) return undefined;
        layers.push(base);
      }
    }
    return { layers };
  }

  /**
   * A result from an imported cache: its layers are fetched (verified) now, since the step's
   * dependents or the export need them, and kept as a local record so the next build needs
   * no import. A layer that cannot be fetched makes the hit unusable: warn, try the next
   * cache, and in the end run the step.
   */
  async #fromImports(v: Vertex, key: Digest): Promise<Result | undefined> {
    const ro: RunOptions = {
      ...(this.#opts.signal ? { signal: this.#opts.signal } : {}),
      ...(this.#progress ? { progress: this.#progress } : {}),
    };
    for (const source of this.#opts.cacheImports ?? []) {
      const found = source.lookup(key);
      if (!found) continue;
      try {
        const layers = await Promise.all(
          found.layers.map(async (l): Promise<LayerRef> => {
            const base = this.#baseLayers.get(l.diffId);
            if (base && base.blob.digest === l.blob.digest) return base;
            if (!(await this.#o.content.has(l.blob)))
              await this.#s.fetchLimiter.run(() => source.fetch(l, ro));
            return recordLayer(l);
          }),
        );
        await this.#s.records.put({
          key,
          layers: layers.map(recordLayer),
          created: found.created ?? Date.now(),
          ...(v.name !== undefined ? { name: v.name } : {}),
        });
        return { layers };
      } catch (e) {
        if (this.#opts.signal?.aborted) throw e;
        this.#progress?.write({
          id: `cache-warning:${key}:${source.name}`,
          kind: 'message',
          message: `WARNING: ${source.name}: the cached result of ${v.name ?? key} is unusable (${errorText(e)}); running the step`,
        });
      }
    }
    return undefined;
  }

  #announceCached(v: Vertex, record: VertexRecord, withInputs = true): void {
    // As BuildKit shows it: the steps under a hit are CACHED too (they did not run), inputs first.
    if (withInputs)
      for (const i of v.inputs) {
        const r = this.#records.get(i.digest);
        if (r && r.cached === undefined && !this.#results.has(i.digest)) this.#announceCached(i, r);
      }
    if (record.cached !== undefined && record.completed !== undefined) return;
    const now = Date.now();
    record.cached = true;
    record.started ??= now;
    record.completed = now;
    if (v.name !== undefined)
      this.#progress?.write({
        id: v.digest,
        kind: 'vertex',
        name: v.name,
        started: now,
        completed: now,
        cached: true,
      });
  }

  async #run(v: Vertex, key: Digest, record: VertexRecord): Promise<Result> {
    const inputs = await Promise.all(v.inputs.map((i) => this.result(i)));
    return this.#s.limiter.run(async () => {
      throwIfAborted(this.#opts.signal, 'build');
      const started = Date.now();
      record.started = started;
      record.cached = false;
      const why = await this.#why(v, record);
      if (why) record.why = why;
      const name = v.name !== undefined && why ? `${v.name} — cache miss: ${why}` : v.name;
      if (name !== undefined) this.#progress?.write({ id: v.digest, kind: 'vertex', name, started });
      void this.#rec.flush().catch(() => {});
      try {
        const op = v.op;
        let layers: LayerRef[];
        if (op.kind === 'exec') layers = await this.#exec(v, op, inputs, record);
        else if (op.kind === 'file') layers = await this.#file(v, op, inputs);
        else if (op.kind === 'source' && op.source.type === 'http') layers = await this.#http(v, op.source);
        else throw new DrayError('DRAY_INTERNAL', `op ${op.kind} does not run`);
        await this.#s.records.put({
          key,
          layers: layers.map(recordLayer),
          created: Date.now(),
          ...(v.name !== undefined ? { name: v.name } : {}),
        });
        record.completed = Date.now();
        if (v.name !== undefined)
          this.#progress?.write({ id: v.digest, kind: 'vertex', started, completed: record.completed });
        return { layers };
      } catch (e0) {
        const e = this.#stepError(v, e0);
        if (record.completed !== undefined && record.error !== undefined) throw e;
        record.completed = Date.now();
        record.error = errorText(e);
        if (v.name !== undefined)
          this.#progress?.write({
            id: v.digest,
            kind: 'vertex',
            started,
            completed: record.completed,
            error: this.#opts.signal?.aborted
              ? 'canceled'
              : ((isDrayError(e) ? e.message.split('\n')[0] : String(e)) ?? ''),
          });
        throw e;
      }
    });
  }

  async #why(v: Vertex, record: VertexRecord): Promise<string | undefined> {
    const previous = this.#opts.previous;
    if (!previous) return undefined;
    if (this.#opts.noCache || v.noCache) return 'caching disabled (--no-cache)';
    const byKey = new Map<string, VertexRecord>();
    for (const r of this.#records.values()) if (r.key) byKey.set(r.key, r);
    return explainMiss(record, byKey, previous, this.#s.history, this.#files.get(v.digest)).catch(
      () => undefined,
    );
  }

  #opener(layers: readonly LayerRef[]) {
    return async (diffId: Digest, o: RunOptions): Promise<Readable> => {
      const l = layers.find((x) => x.diffId === diffId);
      if (!l) throw new DrayError('DRAY_INTERNAL', `layer ${diffId} is not part of the chain`);
      if (l.image && !(await this.#o.content.has(l.blob)))
        await this.#o.resolver.fetchLayer(l.image, l.blob, o);
      return this.#o.content.open(l.blob, o);
    };
  }

  async #materialise(layers: readonly LayerRef[]): Promise<readonly Digest[]> {
    const chain = layers.map((l) => l.diffId);
    const ro: RunOptions = this.#opts.signal ? { signal: this.#opts.signal } : {};
    await (await this.#s.snapshotter()).ensure(chain, this.#opener(layers), ro);
    return chain;
  }

  async #view(layers: readonly LayerRef[]): Promise<SnapshotView> {
    const chain = await this.#materialise(layers);
    return (await this.#s.snapshotter()).view(chain, this.#opts.signal ? { signal: this.#opts.signal } : {});
  }

  /** Turns an active snapshot's changes into a stored layer and commits it. */
  async #commit(active: ActiveSnapshot, parent: readonly LayerRef[]): Promise<LayerRef[]> {
    const writer = active.diff({
      compression: this.#opts.compression ?? 'gzip',
      ...(this.#opts.compressionLevel !== undefined ? { level: this.#opts.compressionLevel } : {}),
      ...(this.#opts.sourceDateEpoch !== undefined ? { sourceDateEpoch: this.#opts.sourceDateEpoch } : {}),
      ...(this.#opts.signal ? { signal: this.#opts.signal } : {}),
    });
    const blob = await this.#o.content.newBlob();
    let layer: LayerRef;
    try {
      const r = await writeLayerTo(writer, blob, this.#opts.signal ? { signal: this.#opts.signal } : {});
      const stored = await blob.commit();
      if (stored.digest !== r.descriptor.digest)
        throw new DrayError(
          'DRAY_INTERNAL',
          `layer stored as ${stored.digest} but written as ${r.descriptor.digest}`,
        );
      layer = { diffId: r.diffId, blob: r.descriptor, created: Date.now() };
    } catch (e) {
      await blob.abort();
      throw e;
    }
    await active.commit(layer.diffId);
    return [...parent, layer];
  }

  async #exec(v: Vertex, op: ExecOp, inputs: readonly Result[], record: VertexRecord): Promise<LayerRef[]> {
    const rootMount = op.mounts.find((m) => m.dest === '/' && m.type === 'input');
    const rootLayers =
      rootMount && rootMount.type === 'input' && rootMount.input !== undefined
        ? (inputs[rootMount.input]?.layers ?? [])
        : [];
    const chain = await this.#materialise(rootLayers);
    const ro: RunOptions = this.#opts.signal ? { signal: this.#opts.signal } : {};
    const active = await (await this.#s.snapshotter()).prepare(chain, ro);
    const releases: Array<() => Promise<void>> = [];
    let committed = false;
    try {
      const mounts: ExecMount[] = [];
      for (const m of op.mounts) {
        if (m === rootMount) continue;
        if (m.type === 'input') {
          const input = m.input !== undefined ? v.inputs[m.input] : undefined;
          const local = input ? localSourceOf(input) : undefined;
          let base: string;
          if (local && m.readonly === false) {
            // A read-write bind of the context: the step may write, the writes are thrown away.
            const scratchDir = await fs.mkdtemp(join(await this.#tempDir(), 'bind-rw-'));
            await execFileAsync('cp', [
              '-a',
              '--reflink=auto',
              `${confinedJoin(this.#localTree(local).root, m.selector ?? '/')}/.`,
              scratchDir,
            ]);
            releases.push(() => fs.rm(scratchDir, { recursive: true, force: true }));
            mounts.push({ type: 'bind', destination: m.dest, source: scratchDir, readonly: false });
            continue;
          }
          if (local) base = this.#localTree(local).root;
          else {
            const layers = m.input !== undefined ? (inputs[m.input]?.layers ?? []) : [];
            const snap = m.readonly
              ? await this.#view(layers)
              : await (await this.#s.snapshotter()).prepare(await this.#materialise(layers), ro);
            releases.push(() => snap.release());
            base = snap.path;
          }
          mounts.push({
            type: 'bind',
            destination: m.dest,
            source: confinedJoin(base, m.selector ?? '/'),
            readonly: local ? true : (m.readonly ?? false),
          });
        } else if (m.type === 'cache') {
          const held = await this.#s.cacheMounts.acquire({
            id: m.id,
            sharing: m.sharing,
            ...(m.mode !== undefined ? { mode: m.mode } : {}),
            ...(m.uid !== undefined ? { uid: m.uid } : {}),
            ...(m.gid !== undefined ? { gid: m.gid } : {}),
            ...(this.#opts.signal ? { signal: this.#opts.signal } : {}),
          });
          releases.push(() => held.release());
          let restored = false;
          if (held.created)
            for (const source of this.#opts.cacheImports ?? []) {
              if (!source.restoreMount) continue;
              restored = await source.restoreMount(m.id, held.path, ro).catch((e: unknown) => {
                if (this.#opts.signal?.aborted) throw e;
                this.#progress?.write({
                  id: `cache-warning:mount:${m.id}:${source.name}`,
                  kind: 'message',
                  message: `WARNING: ${source.name}: cannot restore cache mount ${m.id} (${errorText(e)})`,
                });
                return false;
              });
              if (restored) break;
            }
          if (held.created && !restored && m.input !== undefined) {
            const input = v.inputs[m.input];
            const local = input ? localSourceOf(input) : undefined;
            let from: string;
            if (local) from = this.#localTree(local).root;
            else {
              const view = await this.#view(inputs[m.input]?.layers ?? []);
              releases.push(() => view.release());
              from = view.path;
            }
            await fs.cp(confinedJoin(from, m.selector ?? '/'), held.path, {
              recursive: true,
              preserveTimestamps: true,
              verbatimSymlinks: true,
            });
          }
          mounts.push({
            type: 'bind',
            destination: m.dest,
            source: held.path,
            readonly: m.readonly ?? false,
          });
        } else if (m.type === 'tmpfs') {
          mounts.push({
            type: 'tmpfs',
            destination: m.dest,
            ...(m.size !== undefined ? { size: m.size } : {}),
          });
        } else {
          const file = await this.#secretFile(m);
          if (file) mounts.push({ type: 'bind', destination: m.dest, source: file, readonly: true });
        }
      }
      const tail = new LogTail(12);
      const res = await this.#o.executor.run({
        rootfs: active.path,
        args: op.args,
        env: [...op.env, ...(await this.#secretEnv(op))],
        ...(op.cwd !== undefined ? { cwd: op.cwd } : {}),
        ...(op.user !== undefined ? { user: op.user } : {}),
        ...(op.hostname !== undefined ? { hostname: op.hostname } : {}),
        network: op.network ?? 'none',
        mounts,
        output: (stream, chunk) => {
          tail.push(chunk);
          this.#rec.log(record, chunk);
          if (v.name !== undefined)
            this.#progress?.write({
              id: v.digest,
              kind: 'vertex',
              log: { stream, data: chunk.toString('utf8') },
            });
        },
        ...(this.#opts.signal ? { signal: this.#opts.signal } : {}),
      });
      if (res.exitCode !== 0) throw execFailed(v, op, res.exitCode, tail.lines());
      for (const r of releases.splice(0).reverse()) await r();
      const layers = await this.#commit(active, rootLayers);
      committed = true;
      return layers;
    } finally {
      for (const r of releases.reverse()) await r().catch(() => {});
      if (!committed) await active.release().catch(() => {});
    }
  }

  /** A secret's bytes from the session; undefined when absent and optional. */
  async #secretData(id: string, optional: boolean | undefined): Promise<Buffer | undefined> {
    const s = this.#opts.session?.secrets?.[id];
    if (!s) {
      if (optional) return undefined;
      throw new DrayError('DRAY_BUILD', `secret ${id} not found`, {
        hint: `pass it with --secret id=${id},src=FILE (or env=VAR)`,
      });
    }
    if ('data' in s) return s.data;
    if ('file' in s) return fs.readFile(s.file);
    const value = process.env[s.env];
    if (value === undefined) {
      if (optional) return undefined;
      throw new DrayError('DRAY_BUILD', `secret ${id}: environment variable ${s.env} is not set`);
    }
    return Buffer.from(value);
  }

  async #secretFile(m: Extract<ExecOp['mounts'][number], { type: 'secret' }>): Promise<string | undefined> {
    const data = await this.#secretData(m.id, m.optional);
    if (data === undefined) return undefined;
    const dir = await fs.mkdtemp(join(await this.#tempDir(), 'secret-'));
    const file = join(dir, 'secret');
    await fs.writeFile(file, data, { mode: m.mode ?? 0o400 });
    await fs.chmod(file, m.mode ?? 0o400);
    await fs.chown(file, m.uid ?? 0, m.gid ?? 0);
    this.#cleanup.push(() => fs.rm(dir, { recursive: true, force: true }));
    return file;
  }

  /** `RUN --mount=type=secret,env=NAME`: secrets as environment variables (never in the cache key or the image). */
  async #secretEnv(op: ExecOp): Promise<string[]> {
    const out: string[] = [];
    for (const s of op.secretEnv ?? []) {
      const data = await this.#secretData(s.id, s.optional);
      if (data !== undefined) out.push(`${s.name}=${data.toString('utf8')}`);
    }
    return out;
  }

  async #file(v: Vertex, op: FileOp, inputs: readonly Result[]): Promise<LayerRef[]> {
    const baseLayers = op.base !== undefined ? (inputs[op.base]?.layers ?? []) : [];
    const chain = await this.#materialise(baseLayers);
    const ro: RunOptions = this.#opts.signal ? { signal: this.#opts.signal } : {};
    const trees = new Map<number, FileTree>();
    const releases: Array<() => Promise<void>> = [];
    let active: ActiveSnapshot | undefined;
    let committed = false;
    try {
      const used = new Set(op.actions.flatMap((a) => (a.action === 'copy' ? [a.input] : [])));
      for (const i of used) {
        const input = v.inputs[i];
        if (!input) {
          const empty = await fs.mkdtemp(join(await this.#tempDir(), 'empty-'));
          trees.set(i, { root: empty });
          continue;
        }
        const local = localSourceOf(input);
        if (local) trees.set(i, this.#localTree(local));
        else {
          const view = await this.#view(inputs[i]?.layers ?? []);
          releases.push(() => view.release());
          trees.set(i, { root: view.path });
        }
      }
      active = await (await this.#s.snapshotter()).prepare(chain, ro);
      const dest = active.path;
      await applyFileActions(
        dest,
        op.actions,
        (i) => {
          const t = trees.get(i);
          if (!t) throw new DrayError('DRAY_INTERNAL', `file op input ${i} was not prepared`);
          return t;
        },
        {
          ...(this.#opts.signal ? { signal: this.#opts.signal } : {}),
          resolveChown: (c) => resolveChown(dest, c.user, c.group),
        },
      );
      for (const r of releases.splice(0).reverse()) await r();
      const layers = await this.#commit(active, baseLayers);
      committed = true;
      return layers;
    } finally {
      for (const r of releases.reverse()) await r().catch(() => {});
      if (active && !committed) await active.release().catch(() => {});
    }
  }

  async #http(v: Vertex, src: HttpSource): Promise<LayerRef[]> {
    const file = await this.#download(v, src);
    if (src.checksum && file.digest !== src.checksum)
      throw new DrayError(
        'DRAY_BUILD',
        `digest mismatch for ${redactUrl(src.url)}: ${file.digest} != ${src.checksum}`,
      );
    const active = await (await this.#s.snapshotter()).prepare(
      [],
      this.#opts.signal ? { signal: this.#opts.signal } : {},
    );
    let committed = false;
    try {
      const target = join(active.path, posix.basename(`/${src.filename ?? file.filename}`));
      await fs.copyFile(file.path, target);
      await fs.chmod(target, src.mode ?? 0o600);
      await fs.chown(target, src.uid ?? 0, src.gid ?? 0);
      if (file.lastModified !== undefined)
        await fs.utimes(target, file.lastModified / 1000, file.lastModified / 1000);
      const layers = await this.#commit(active, []);
      committed = true;
      return layers;
    } finally {
      if (!committed) await active.release().catch(() => {});
    }
  }
}

/** A layer as a cache record keeps it (no link to the image it may have come from). */
function recordLayer(l: {
  diffId: Digest;
  blob: Descriptor;
  created?: number;
}): CacheRecord['layers'][number] {
  return { diffId: l.diffId, blob: l.blob, ...(l.created !== undefined ? { created: l.created } : {}) };
}

function localSourceOf(v: Vertex): LocalSource | undefined {
  return v.op.kind === 'source' && v.op.source.type === 'local' ? v.op.source : undefined;
}

/** `base` + `sub`, never leaving `base` (`..` are cleaned away as if `base` were `/`). */
function confinedJoin(base: string, sub: string): string {
  const clean = posix.normalize(`/${sub}`);
  return clean === '/' ? base : join(base, clean);
}

function errorText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** BuildKit's wording, plus the step and the last lines of its output (BuildKit prints them beside the error). */
function execFailed(v: Vertex, op: ExecOp, exitCode: number, tail: string[]): DrayError {
  const cmd = op.args.join(' ');
  const lines = [`process "${cmd}" did not complete successfully: exit code: ${exitCode}`];
  if (v.name !== undefined || tail.length > 0) {
    lines.push('------');
    lines.push(` > ${v.name ?? cmd}:`);
    for (const l of tail) lines.push(l);
    lines.push('------');
  }
  const e = new DrayError('DRAY_EXEC_FAILED', lines.join('\n'));
  Object.assign(e, { exitCode, step: v.name ?? cmd, logTail: tail });
  return e;
}
