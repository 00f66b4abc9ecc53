import * as fs from 'node:fs/promises';
import { join } from 'node:path';
import type { Digest } from '../digest/index.ts';
import type { Descriptor } from '../oci/index.ts';
import { atomicWriteFile, readJsonFile } from './atomic.ts';

/** A cached result: the layers a vertex with this cache key produced. */
export interface CacheRecord {
  key: Digest;
  layers: Array<{ diffId: Digest; blob: Descriptor; created?: number }>;
  /** Epoch ms the result was made. */
  created: number;
  /** The vertex's name when it ran, for `dray history` and debugging. */
  name?: string;
}

/**
 * The solver's persistent cache: cache key → result, one small JSON file per key under
 * `<root>/cache/records/`, written atomically, so later processes reuse what earlier ones
 * built. A record is only a claim: the solver checks its blobs are still in the content
 * store before trusting it.
 */
export class CacheRecords {
  readonly dir: string;

  constructor(dataRoot: string) {
    this.dir = join(dataRoot, 'cache', 'records');
  }

  #path(key: Digest): string {
    const hex = key.slice(key.indexOf(':') + 1);
    return join(this.dir, hex.slice(0, 2), `${hex}.json`);
  }

  /** The record for `key`, or undefined. Does I/O. */
  async get(key: Digest): Promise<CacheRecord | undefined> {
    const r = await readJsonFile<CacheRecord>(this.#path(key));
    return r?.key === key ? r : undefined;
  }

  /** Stores (or replaces) a record. Does I/O. */
  async put(r: CacheRecord): Promise<void> {
    await atomicWriteFile(this.#path(r.key), JSON.stringify(r));
  }

  /** Every record (for prune). Does I/O. */
  async *list(): AsyncGenerator<CacheRecord> {
    let shards: string[];
    try {
      shards = await fs.readdir(this.dir);
    } catch {
      return;
    }
    for (const s of shards) {
      for (const f of await fs.readdir(join(this.dir, s)).catch(() => [] as string[])) {
        if (!f.endsWith('.json')) continue;
        const r = await readJsonFile<CacheRecord>(join(this.dir, s, f));
        if (r) yield r;
      }
    }
  }

  /** Deletes a record. Does I/O. */
  async remove(key: Digest): Promise<void> {
    await fs.rm(this.#path(key), { force: true });
  }
}
