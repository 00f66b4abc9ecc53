import { randomBytes } from 'node:crypto';
import { createWriteStream, type WriteStream } from 'node:fs';
import * as fs from 'node:fs/promises';
import { join } from 'node:path';
import { DrayError } from '../errors.ts';
import { atomicWriteFile, readJsonFile } from './atomic.ts';

/**
 * Build history: every solve is recorded under `<root>/history/<id>/` — `build.json` (the
 * build and each vertex's cache-key inputs, timing, hit or miss) and `logs/<step>.log`, the
 * step's whole output as it was written, never clipped (BuildKit clips at 2 MiB). The next
 * build of the same target reads the previous record to say why a step missed the cache.
 */

/** What went into a vertex's cache key, and what happened to it. */
export interface VertexRecord {
  /** 1-based position in the build (the `#N` of progress). */
  step: number;
  digest: string;
  name?: string;
  /** The cache key, once computed. */
  key?: string;
  /** The op as canonical JSON (what the key hashes, with inputs as keys). */
  op: string;
  /** The inputs' cache keys, in order. */
  inputKeys: string[];
  /** Content checksums of local files the key used, by selection (`input 1: /src`). */
  checksums?: Record<string, string>;
  /** Frontend facts (instruction text, stage, build-arg values used). */
  meta?: Record<string, string>;
  started?: number;
  completed?: number;
  cached?: boolean;
  /** Why it missed the cache, compared with the previous build of the same target. */
  why?: string;
  error?: string;
  /** Bytes of log written. */
  logBytes?: number;
}

export interface BuildRecord {
  id: string;
  started: number;
  completed?: number;
  status: 'running' | 'completed' | 'failed' | 'canceled';
  error?: string;
  /** Frontend facts that identify the build (`dockerfile`, `target`, `context`). */
  meta: Record<string, string>;
  vertices: VertexRecord[];
}

/** Per-file content digests a key used, by selection; kept beside the record for "why it rebuilt". */
export type ChecksumFiles = Record<string, Record<string, string>>;

export interface HistoryPruneOptions {
  /** Remove builds older than this (ms). */
  maxAgeMs?: number;
  /** Then remove the oldest builds until the history takes at most this many bytes. */
  maxBytes?: number;
  /** Never remove the newest N builds (default 1). */
  keepLast?: number;
}

/** The build history of a data root. */
export class HistoryStore {
  readonly dir: string;

  constructor(dataRoot: string) {
    this.dir = join(dataRoot, 'history');
  }

  /** Starts recording a build. Does I/O. */
  async start(meta: Record<string, string>): Promise<BuildRecorder> {
    const id = newBuildId();
    const rec: BuildRecord = { id, started: Date.now(), status: 'running', meta, vertices: [] };
    await fs.mkdir(join(this.dir, id, 'logs'), { recursive: true });
    const r = new BuildRecorder(join(this.dir, id), rec);
    await r.flush();
    return r;
  }

  /** Every build, newest first. Does I/O. */
  async list(): Promise<BuildRecord[]> {
    let ids: string[];
    try {
      ids = await fs.readdir(this.dir);
    } catch {
      return [];
    }
    const out: BuildRecord[] = [];
    for (const id of ids) {
      const r = await readJsonFile<BuildRecord>(join(this.dir, id, 'build.json'));
      if (r) out.push(r);
    }
    return out.sort((a, b) => b.started - a.started);
  }

  /** One build by id or unique id prefix. Throws DRAY_NOT_FOUND. Does I/O. */
  async get(idOrPrefix: string): Promise<BuildRecord> {
    if (!/^[a-z0-9]+$/.test(idOrPrefix))
      throw new DrayError('DRAY_INVALID_ARGUMENT', `invalid build id ${JSON.stringify(idOrPrefix)}`);
    const all = await this.list();
    const hits = all.filter((b) => b.id.startsWith(idOrPrefix));
    if (hits.length === 0)
      throw new DrayError('DRAY_NOT_FOUND', `no build ${idOrPrefix} in the history`, {
        hint: "list builds with 'dray history'",
      });
    if (hits.length > 1 && !hits.some((b) => b.id === idOrPrefix))
      throw new DrayError('DRAY_INVALID_ARGUMENT', `build id prefix ${idOrPrefix} is ambiguous`);
    return hits.find((b) => b.id === idOrPrefix) ?? (hits[0] as BuildRecord);
  }

  /** Path of a step's full log (it may not exist: the step wrote nothing). */
  logPath(id: string, step: number): string {
    return join(this.dir, id, 'logs', `${step}.log`);
  }

  /** The checksum files a build recorded for a step. Does I/O. */
  async checksumFiles(id: string, step: number): Promise<ChecksumFiles | undefined> {
    return readJsonFile<ChecksumFiles>(join(this.dir, id, 'checksums', `${step}.json`));
  }

  /** The newest finished build whose meta has these values (for "why it rebuilt"). Does I/O. */
  async previous(match: Record<string, string>, exceptId?: string): Promise<BuildRecord | undefined> {
    for (const b of await this.list()) {
      if (b.id === exceptId || b.status !== 'completed') continue;
      if (Object.entries(match).every(([k, v]) => b.meta[k] === v)) return b;
    }
    return undefined;
  }

  /** Removes old builds by age, then by total size. Returns how many went. Does I/O. */
  async prune(o: HistoryPruneOptions): Promise<{ removed: number; bytes: number }> {
    const all = await this.list();
    const keep = o.keepLast ?? 1;
    if (all.length <= keep) return { removed: 0, bytes: 0 };
    let removed = 0;
    let freed = 0;
    const sizes = new Map<string, number>();
    for (const b of all) sizes.set(b.id, await dirSize(join(this.dir, b.id)));
    const now = Date.now();
    const survivors: BuildRecord[] = [];
    for (const [i, b] of all.entries()) {
      if (i >= keep && o.maxAgeMs !== undefined && now - b.started > o.maxAgeMs && b.status !== 'running') {
        await fs.rm(join(this.dir, b.id), { recursive: true, force: true });
        removed++;
        freed += sizes.get(b.id) ?? 0;
      } else survivors.push(b);
    }
    if (o.maxBytes !== undefined) {
      let total = survivors.reduce((n, b) => n + (sizes.get(b.id) ?? 0), 0);
      for (let i = survivors.length - 1; i >= keep && total > o.maxBytes; i--) {
        const b = survivors[i] as BuildRecord;
        if (b.status === 'running') continue;
        await fs.rm(join(this.dir, b.id), { recursive: true, force: true });
        total -= sizes.get(b.id) ?? 0;
        freed += sizes.get(b.id) ?? 0;
        removed++;
      }
    }
    return { removed, bytes: freed };
  }
}

/** Records one build as it runs. Methods are cheap; `flush()` writes build.json atomically. */
export class BuildRecorder {
  readonly #dir: string;
  readonly record: BuildRecord;
  readonly #logs = new Map<number, WriteStream>();
  #flushing: Promise<void> = Promise.resolve();

  constructor(dir: string, record: BuildRecord) {
    this.#dir = dir;
    this.record = record;
  }

  get id(): string {
    return this.record.id;
  }

  /** Adds a vertex (returns its record, to fill in as it runs). */
  addVertex(v: Omit<VertexRecord, 'step'>): VertexRecord {
    const r: VertexRecord = { step: this.record.vertices.length + 1, ...v };
    this.record.vertices.push(r);
    return r;
  }

  /** Appends output to a step's log file (whole, never clipped). */
  log(step: VertexRecord, data: Buffer | string): void {
    let w = this.#logs.get(step.step);
    if (!w) {
      w = createWriteStream(join(this.#dir, 'logs', `${step.step}.log`), { flags: 'a' });
      w.on('error', () => {}); // a full disk must not fail the build; the record says how much was kept
      this.#logs.set(step.step, w);
    }
    w.write(data);
    step.logBytes = (step.logBytes ?? 0) + (typeof data === 'string' ? Buffer.byteLength(data) : data.length);
  }

  /** Keeps the per-file checksums a step's key used. Does I/O. */
  async saveChecksumFiles(step: VertexRecord, files: ChecksumFiles): Promise<void> {
    await atomicWriteFile(join(this.#dir, 'checksums', `${step.step}.json`), JSON.stringify(files), 0o644, {
      sync: false,
    });
  }

  /** Writes build.json (serialised with other flushes). Does I/O. */
  flush(): Promise<void> {
    const snapshot = JSON.stringify(this.record);
    this.#flushing = this.#flushing.then(() =>
      atomicWriteFile(join(this.#dir, 'build.json'), snapshot, 0o644, { sync: false }),
    );
    return this.#flushing;
  }

  /** Ends the build: closes the logs and writes the final record. Does I/O. */
  async finish(status: BuildRecord['status'], error?: string): Promise<void> {
    this.record.status = status;
    this.record.completed = Date.now();
    if (error !== undefined) this.record.error = error;
    await Promise.all([...this.#logs.values()].map((w) => new Promise<void>((res) => w.end(() => res()))));
    await this.flush();
  }
}

function newBuildId(): string {
  // BuildKit's build refs are 25 lowercase alphanumerics; so are ours.
  const alphabet = 'abcdefghijklmnopqrstuvwxyz0123456789';
  const bytes = randomBytes(25);
  let s = '';
  for (const b of bytes) s += alphabet[b % alphabet.length];
  return s;
}

async function dirSize(dir: string): Promise<number> {
  let total = 0;
  for (const e of await fs.readdir(dir, { withFileTypes: true }).catch(() => [])) {
    const p = join(dir, e.name);
    if (e.isDirectory()) total += await dirSize(p);
    else total += (await fs.lstat(p).catch(() => ({ size: 0 }))).size;
  }
  return total;
}
