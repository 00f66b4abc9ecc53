import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import * as z from 'zod/mini';
import en from 'zod/v4/locales/en.js';
import { acquireLock, DEFAULT_LOCK_STALE_MS, tryLock } from '../content/index.ts';
import { isDigest, parseDigest } from '../digest/index.ts';
import { DrayError, throwIfAborted } from '../errors.ts';
import type { Descriptor, RefStore } from '../oci/index.ts';
import type { RunOptions } from '../progress/index.ts';

/** One named image: a name and the root descriptor (manifest or index) it points at. */
export interface ImageRecord {
  /** The full normalised reference (`docker.io/library/busybox:latest`, or `name@sha256:…`); opaque here. */
  name: string;
  /** The root descriptor: an image manifest or index, stored in the content store. */
  target: Descriptor;
  /** ISO 8601 time the name was first recorded. */
  created: string;
  /** ISO 8601 time the record last changed. */
  updated: string;
}

export interface ImageStoreOptions {
  /** Milliseconds after which a lock whose holder stopped refreshing it is reclaimed. Default 10 000; minimum 2000. */
  lockStaleMs?: number;
  /** How long a write waits for another process's lock before DRAY_STORE_LOCKED. Default 60 000. */
  lockTimeoutMs?: number;
}

const FILE = 'images.json';
const FORMAT_VERSION = 1;
/** images.json is read whole; refuse absurd sizes before allocating (tens of KB is typical). */
const MAX_FILE_BYTES = 64 * 1024 * 1024;
const TEMP = /^images\.json\..+\.tmp$/;

/** zod/mini has no messages of its own: English ones, per parse (no global zod config). */
const english = { error: en().localeError };

const descriptorSchema = z.looseObject({
  mediaType: z.string().check(z.minLength(1)),
  digest: z.string().check(z.refine(isDigest, 'invalid digest')),
  size: z.int().check(z.nonnegative()),
  urls: z.optional(z.array(z.string())),
  annotations: z.optional(z.record(z.string(), z.string())),
  data: z.optional(z.string()),
  artifactType: z.optional(z.string()),
  platform: z.optional(
    z.looseObject({
      architecture: z.string(),
      os: z.string(),
      'os.version': z.optional(z.string()),
      'os.features': z.optional(z.array(z.string())),
      variant: z.optional(z.string()),
      features: z.optional(z.array(z.string())),
    }),
  ),
});

const recordSchema = z.object({
  name: z.string().check(z.minLength(1)),
  target: descriptorSchema,
  created: z.iso.datetime(),
  updated: z.iso.datetime(),
});

const fileSchema = z.object({
  version: z.literal(FORMAT_VERSION),
  images: z.array(recordSchema),
});

/**
 * The image store: names → root descriptors, in `<root>/images.json`.
 *
 * Every read loads the file afresh (it is small), so other processes' writes are seen at
 * once; readers take no lock, because the file is only ever replaced by an atomic rename.
 * Every write (`tag`, `remove`, `update`) is read-modify-write under the cross-process lock
 * `<root>/locks/images`: read the current file, apply the change, write
 * `images.json.<pid>.<random>.tmp`, fsync it, rename it over images.json, fsync the
 * directory. A crash leaves either the old or the new file; temp files are never read and
 * are removed by the next `open()`.
 *
 * A corrupt images.json is never overwritten: `open()` still succeeds (so commands that do
 * not need names keep working), and every read or write of records throws DRAY_STORE with a
 * hint until the file is fixed or moved aside.
 *
 * Names are opaque: the caller normalises references (`reference/`). The store does not
 * check that targets exist in the content store; `tag` callers store the content first.
 */
export class ImageStore implements RefStore {
  /** The data root this store lives under. */
  readonly root: string;
  readonly #file: string;
  readonly #lockPath: string;
  readonly #staleMs: number;
  readonly #timeoutMs: number;

  private constructor(root: string, o: ImageStoreOptions) {
    this.root = root;
    this.#file = path.join(root, FILE);
    this.#lockPath = path.join(root, 'locks', 'images');
    this.#staleMs = o.lockStaleMs ?? DEFAULT_LOCK_STALE_MS;
    this.#timeoutMs = o.lockTimeoutMs ?? 60_000;
  }

  /**
   * Opens (creating the directories if needed) the image store under the data root `root`,
   * and removes temp files a crashed writer left (only when no writer holds the lock). Does I/O.
   * @throws DRAY_STORE when the directories cannot be created.
   */
  static async open(root: string, o: ImageStoreOptions = {}): Promise<ImageStore> {
    const store = new ImageStore(path.resolve(root), o);
    try {
      await fs.mkdir(path.join(store.root, 'locks'), { recursive: true });
    } catch (e) {
      throw new DrayError('DRAY_STORE', `cannot create image store under ${root}: ${(e as Error).message}`, {
        cause: e,
      });
    }
    // Temp files exist only while their writer holds the lock, so with the lock in hand any
    // temp file is a dead writer's. If someone holds it now, leave the tidying to later.
    const lock = await tryLock(store.#lockPath, { staleMs: store.#staleMs });
    if (lock) {
      try {
        for (const name of await fs.readdir(store.root)) {
          if (TEMP.test(name)) await fs.rm(path.join(store.root, name), { force: true });
        }
      } catch {
        // Best effort: stray temp files are harmless, they are never read.
      } finally {
        await lock.release();
      }
    }
    return store;
  }

  /**
   * The descriptor `name` points at. Does I/O.
   * @throws DRAY_NOT_FOUND `no such image: <name>`; DRAY_STORE for a corrupt store; DRAY_ABORTED.
   */
  async resolve(name: string, o: RunOptions = {}): Promise<Descriptor> {
    throwIfAborted(o.signal);
    const r = await this.get(name);
    if (!r) {
      throw new DrayError('DRAY_NOT_FOUND', `no such image: ${name}`, { hint: `run 'dray pull ${name}'` });
    }
    return r.target;
  }

  /** The record for `name`, or undefined. Does I/O. @throws DRAY_STORE for a corrupt store. */
  async get(name: string): Promise<ImageRecord | undefined> {
    return (await this.#read()).get(name);
  }

  /**
   * Points `name` at `d` (creating or updating the record; `created` is kept on update).
   * Tagging a name with the descriptor it already has changes nothing. Does I/O.
   * @throws DRAY_INVALID_ARGUMENT / DRAY_INVALID_DIGEST for a bad name or descriptor;
   *   DRAY_STORE, DRAY_STORE_LOCKED, DRAY_NO_SPACE, DRAY_ABORTED.
   */
  async tag(name: string, d: Descriptor, o: RunOptions = {}): Promise<void> {
    checkName(name);
    parseDigest(d.digest);
    await this.update((records) => {
      const old = records.get(name);
      if (old && JSON.stringify(old.target) === JSON.stringify(d)) return;
      const now = new Date().toISOString();
      records.set(name, { name, target: structuredClone(d), created: old?.created ?? now, updated: now });
    }, o);
  }

  /**
   * Removes `name` and returns its record. Does I/O.
   * @throws DRAY_NOT_FOUND when absent; DRAY_STORE, DRAY_STORE_LOCKED, DRAY_ABORTED.
   */
  async remove(name: string, o: RunOptions = {}): Promise<ImageRecord> {
    let removed: ImageRecord | undefined;
    await this.update((records) => {
      removed = records.get(name);
      if (!removed) throw new DrayError('DRAY_NOT_FOUND', `no such image: ${name}`);
      records.delete(name);
    }, o);
    return removed!;
  }

  /** Every record, sorted by name. Does I/O. @throws DRAY_STORE for a corrupt store; DRAY_ABORTED. */
  async list(o: RunOptions = {}): Promise<ImageRecord[]> {
    throwIfAborted(o.signal);
    return [...(await this.#read()).values()].sort(byName);
  }

  /**
   * Read-modify-write under the cross-process lock: `fn` gets the current records (keyed by
   * name) and edits the map in place; if it throws, nothing is written and the error passes
   * through. Records are validated before writing (the key must equal `record.name`). An
   * unchanged map is not rewritten. Keep `fn` short: other writers wait for it. Does I/O.
   * @throws DRAY_STORE_LOCKED after `lockTimeoutMs` of waiting, or when the lock was lost;
   *   DRAY_STORE (corrupt file, I/O), DRAY_NO_SPACE, DRAY_INVALID_ARGUMENT (bad records), DRAY_ABORTED.
   */
  async update(
    fn: (records: Map<string, ImageRecord>) => void | Promise<void>,
    o: RunOptions = {},
  ): Promise<void> {
    const lock = await acquireLock(this.#lockPath, {
      staleMs: this.#staleMs,
      timeoutMs: this.#timeoutMs,
      what: `image store ${this.#file}`,
      ...(o.signal ? { signal: o.signal } : {}),
    });
    if (!lock) throw new DrayError('DRAY_INTERNAL', 'image store lock: no lock and no reason');
    try {
      const records = await this.#read();
      const before = serialize(records);
      await fn(records);
      for (const [key, r] of records) {
        if (key !== r.name) {
          throw new DrayError(
            'DRAY_INVALID_ARGUMENT',
            `image record ${JSON.stringify(r.name)} stored under ${JSON.stringify(key)}`,
          );
        }
        checkName(r.name);
        const ok = recordSchema.safeParse(r, english);
        if (!ok.success) {
          throw new DrayError(
            'DRAY_INVALID_ARGUMENT',
            `invalid image record ${r.name}: ${z.prettifyError(ok.error)}`,
          );
        }
      }
      const after = serialize(records);
      if (after === before) return;
      throwIfAborted(o.signal, 'updating the image store');
      if (lock.compromised) {
        throw new DrayError('DRAY_STORE_LOCKED', `image store ${this.#file}: lost the lock while updating`, {
          cause: lock.compromised,
          hint: 'another process reclaimed the lock (was this process stalled?); retry',
        });
      }
      await this.#write(after);
    } finally {
      await lock.release();
    }
  }

  async #read(): Promise<Map<string, ImageRecord>> {
    let text: string;
    try {
      const st = await fs.stat(this.#file);
      if (st.size > MAX_FILE_BYTES) throw this.#corrupt(`${st.size} bytes is larger than ${MAX_FILE_BYTES}`);
      text = await fs.readFile(this.#file, 'utf8');
    } catch (e) {
      if (e instanceof DrayError) throw e;
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return new Map();
      throw new DrayError('DRAY_STORE', `cannot read image store ${this.#file}: ${(e as Error).message}`, {
        cause: e,
      });
    }
    let raw: unknown;
    try {
      raw = JSON.parse(text);
    } catch (e) {
      throw this.#corrupt((e as Error).message, e);
    }
    const parsed = fileSchema.safeParse(raw, english);
    if (!parsed.success) throw this.#corrupt(z.prettifyError(parsed.error), parsed.error);
    const records = new Map<string, ImageRecord>();
    for (const r of parsed.data.images) {
      if (records.has(r.name)) throw this.#corrupt(`duplicate name ${r.name}`);
      // the digest was checked (isDigest) by the schema
      records.set(r.name, r as unknown as ImageRecord);
    }
    return records;
  }

  #corrupt(why: string, cause?: unknown): DrayError {
    return new DrayError('DRAY_STORE', `image store ${this.#file} is corrupt: ${why}`, {
      cause,
      hint: `move it aside ('mv ${this.#file} ${this.#file}.corrupt'), then pull or tag your images again; blobs under content/ are not affected`,
    });
  }

  async #write(text: string): Promise<void> {
    const tmp = path.join(this.root, `${FILE}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
    try {
      const fh = await fs.open(tmp, 'wx', 0o644);
      try {
        await fh.writeFile(text);
        await fh.sync();
      } finally {
        await fh.close();
      }
      await fs.rename(tmp, this.#file);
    } catch (e) {
      await fs.rm(tmp, { force: true }).catch(() => {});
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOSPC' || code === 'EDQUOT') {
        throw new DrayError(
          'DRAY_NO_SPACE',
          `cannot write image store ${this.#file}: no space left on device`,
          {
            cause: e,
            hint: `free space on the filesystem holding ${this.root}`,
          },
        );
      }
      throw new DrayError('DRAY_STORE', `cannot write image store ${this.#file}: ${(e as Error).message}`, {
        cause: e,
      });
    }
    // After the rename the update is done; a failed directory fsync only weakens durability
    // across a power loss and must not report a write that other processes already see as failed.
    try {
      const dir = await fs.open(this.root, 'r');
      try {
        await dir.sync();
      } finally {
        await dir.close();
      }
    } catch {
      // see above
    }
  }
}

function byName(a: ImageRecord, b: ImageRecord): number {
  return a.name < b.name ? -1 : a.name > b.name ? 1 : 0;
}

function serialize(records: Map<string, ImageRecord>): string {
  return `${JSON.stringify({ version: FORMAT_VERSION, images: [...records.values()].sort(byName) }, null, 2)}\n`;
}

function checkName(name: string): void {
  if (typeof name !== 'string' || name.length === 0 || name.length > 4096 || /[\s\u0000-\u001f]/.test(name)) {
    throw new DrayError('DRAY_INVALID_ARGUMENT', `invalid image name ${JSON.stringify(name)}`, {
      hint: 'pass a normalised reference such as docker.io/library/busybox:latest',
    });
  }
}
