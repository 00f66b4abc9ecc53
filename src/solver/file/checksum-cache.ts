import { randomBytes } from 'node:crypto';
import { mkdir, open, readFile, rename, rm } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { Meta } from './tree.ts';

/**
 * A persistent stat cache for content checksums: a file whose (device, inode, size, mtime,
 * ctime, mode) are unchanged is not read again. ctime cannot be set by users, so any write
 * or rename moves it; a file changed within the same clock tick as it was hashed is not
 * cached ("racily clean", as git calls it) and is hashed again next time.
 */

/** A cached file's stat identity and content hash. */
interface Entry {
  size: number;
  mtimeNs: bigint;
  ctimeNs: bigint;
  perm: number;
  /** Hex sha256 of the content. */
  sha256: string;
  /** The cache generation (load count) that last used the entry. */
  gen: number;
}

/** Entries unused for this many loads are dropped on save. */
const KEEP_GENERATIONS = 16;
/** Coarse file-system clocks tick every 1–10 ms; a change this close to the hash may share its ctime. */
const RACY_NS = 50_000_000n;
const VERSION = 1;

/**
 * Content hashes of files keyed by their stat identity, loaded from and saved to one JSON
 * file. Safe to share between concurrent checksum runs of one process.
 */
export class ChecksumCache {
  readonly file: string;
  readonly #entries = new Map<string, Entry>();
  #gen = 1;
  #dirty = false;
  /** Lookups answered from the cache / not (since construction). */
  hits = 0;
  misses = 0;

  /** `file` is where the cache lives; nothing is read until {@link load}. No I/O. */
  constructor(file: string) {
    this.file = file;
  }

  /** Number of cached files. */
  get size(): number {
    return this.#entries.size;
  }

  /**
   * Reads the cache file. A missing, unreadable or corrupt file leaves the cache empty
   * (it only saves work). Does I/O.
   */
  async load(): Promise<void> {
    let text: string;
    try {
      text = await readFile(this.file, 'utf8');
    } catch {
      return;
    }
    try {
      const doc = JSON.parse(text) as { version?: number; gen?: number; entries?: unknown[] };
      if (doc.version !== VERSION || !Array.isArray(doc.entries)) return;
      this.#gen = (typeof doc.gen === 'number' ? doc.gen : 0) + 1;
      for (const raw of doc.entries) {
        const e = raw as [string, number, string, string, number, string, number];
        if (!Array.isArray(e) || e.length !== 7 || !/^[0-9a-f]{64}$/.test(String(e[5]))) continue;
        this.#entries.set(e[0], {
          size: e[1],
          mtimeNs: BigInt(e[2]),
          ctimeNs: BigInt(e[3]),
          perm: e[4],
          sha256: e[5],
          gen: e[6],
        });
      }
    } catch {
      this.#entries.clear();
    }
  }

  /**
   * Writes the cache atomically (temp file, rename; no fsync: it only saves work), dropping
   * entries no run has used for a while. Does I/O. @throws fs errors (the caller may ignore them).
   */
  async save(): Promise<void> {
    if (!this.#dirty) return;
    const entries: unknown[] = [];
    for (const [k, e] of this.#entries) {
      if (e.gen + KEEP_GENERATIONS < this.#gen) {
        this.#entries.delete(k);
        continue;
      }
      entries.push([k, e.size, String(e.mtimeNs), String(e.ctimeNs), e.perm, e.sha256, e.gen]);
    }
    const dir = dirname(this.file);
    await mkdir(dir, { recursive: true });
    const tmp = `${this.file}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
    try {
      const fh = await open(tmp, 'wx', 0o600);
      try {
        // No fsync: this is a cache. A crash may lose the newest version, never tear it.
        await fh.writeFile(JSON.stringify({ version: VERSION, gen: this.#gen, entries }));
      } finally {
        await fh.close();
      }
      await rename(tmp, this.file);
    } catch (e) {
      await rm(tmp, { force: true });
      throw e;
    }
    this.#dirty = false;
  }

  /** The cached content hash of a regular file with exactly this stat identity. No I/O. */
  lookup(m: Meta): string | undefined {
    const e = this.#entries.get(key(m));
    if (e && e.size === m.size && e.mtimeNs === m.mtimeNs && e.ctimeNs === m.ctimeNs && e.perm === m.perm) {
      // Refreshed only now and then, so that a build that changed nothing does not rewrite
      // the whole file; an entry in use never gets old enough to be dropped.
      if (this.#gen - e.gen >= KEEP_GENERATIONS / 2) {
        e.gen = this.#gen;
        this.#dirty = true;
      }
      this.hits++;
      return e.sha256;
    }
    this.misses++;
    return undefined;
  }

  /**
   * Records a content hash read for a file with stat identity `m`, the read having started
   * at `startedNs` (wall clock). Not recorded when the file changed too shortly before. No I/O.
   */
  store(m: Meta, sha256: string, startedNs: bigint): void {
    if (m.ctimeNs + RACY_NS >= startedNs) return;
    this.#entries.set(key(m), {
      size: m.size,
      mtimeNs: m.mtimeNs,
      ctimeNs: m.ctimeNs,
      perm: m.perm,
      sha256,
      gen: this.#gen,
    });
    this.#dirty = true;
  }
}

function key(m: Meta): string {
  return `${m.dev}:${m.ino}`;
}

/** Wall-clock time in nanoseconds (comparable to file ctimes). */
export function nowNs(): bigint {
  return BigInt(Date.now()) * 1_000_000n;
}
