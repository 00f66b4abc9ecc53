import { createReadStream } from 'node:fs';
import { access } from 'node:fs/promises';
import { PassThrough, type Readable } from 'node:stream';
import { DrayError } from '../errors.ts';
import { type BuildRecord, HistoryStore } from '../solver/index.ts';
import type { StoreOptions } from './context.ts';

/** One line of `dray history`. */
export interface BuildSummary {
  id: string;
  /** What was built (the frontend's `name` meta, else its target/context). */
  name: string;
  status: BuildRecord['status'];
  started: number;
  /** Milliseconds, when finished. */
  duration?: number;
  steps: number;
  cached: number;
  error?: string;
}

/** The builds recorded in a data root, newest first. Does I/O. */
export async function history(o: StoreOptions): Promise<BuildSummary[]> {
  const builds = await new HistoryStore(o.root).list();
  return builds.map((b) => {
    const named = b.vertices.filter((v) => v.name !== undefined);
    return {
      id: b.id,
      name: b.meta.name ?? b.meta.target ?? b.meta.context ?? '',
      status: b.status,
      started: b.started,
      ...(b.completed !== undefined ? { duration: b.completed - b.started } : {}),
      steps: named.length,
      cached: named.filter((v) => v.cached).length,
      ...(b.error !== undefined ? { error: b.error } : {}),
    };
  });
}

/** A build's full record. Throws DRAY_NOT_FOUND. Does I/O. */
export async function historyRecord(id: string, o: StoreOptions): Promise<BuildRecord> {
  return new HistoryStore(o.root).get(id);
}

/**
 * A build's logs, whole: one step's (by its `#N` number, or a unique part of its name), or
 * every step's, each under a `#N name` header. Throws DRAY_NOT_FOUND. Does I/O.
 */
export async function historyLogs(id: string, step: string | undefined, o: StoreOptions): Promise<Readable> {
  const store = new HistoryStore(o.root);
  const build = await store.get(id);
  const withLogs = build.vertices.filter((v) => (v.logBytes ?? 0) > 0 || v.name !== undefined);
  let chosen = withLogs;
  if (step !== undefined) {
    const n = /^#?(\d+)$/.exec(step);
    chosen = n
      ? build.vertices.filter((v) => v.step === Number(n[1]))
      : build.vertices.filter((v) => v.name?.includes(step));
    if (chosen.length === 0)
      throw new DrayError('DRAY_NOT_FOUND', `build ${build.id} has no step ${step}`, {
        hint: `steps are numbered 1–${build.vertices.length}; see 'dray history inspect ${build.id}'`,
      });
    if (chosen.length > 1)
      throw new DrayError(
        'DRAY_INVALID_ARGUMENT',
        `step ${JSON.stringify(step)} matches ${chosen.length} steps of build ${build.id}`,
        {
          hint: 'give the step number',
        },
      );
  }
  const out = new PassThrough();
  void (async () => {
    try {
      for (const v of chosen) {
        const path = store.logPath(build.id, v.step);
        const exists = await access(path).then(
          () => true,
          () => false,
        );
        if (step === undefined) out.write(`#${v.step} ${v.name ?? v.digest}${v.cached ? ' CACHED' : ''}\n`);
        if (!exists) continue;
        for await (const c of createReadStream(path))
          if (!out.write(c)) await new Promise((r) => out.once('drain', r));
      }
      out.end();
    } catch (e) {
      out.destroy(e as Error);
    }
  })();
  return out;
}

/** Removes builds older than `maxAgeMs`, then the oldest until at most `maxBytes` remain. Does I/O. */
export async function pruneHistory(
  o: StoreOptions & { maxAgeMs?: number; maxBytes?: number; keepLast?: number },
): Promise<{ removed: number; bytes: number }> {
  return new HistoryStore(o.root).prune({
    ...(o.maxAgeMs !== undefined ? { maxAgeMs: o.maxAgeMs } : {}),
    ...(o.maxBytes !== undefined ? { maxBytes: o.maxBytes } : {}),
    ...(o.keepLast !== undefined ? { keepLast: o.keepLast } : {}),
  });
}
