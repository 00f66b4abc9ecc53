import type { ProgressEvent, ProgressKind, ProgressWriter } from './types.ts';

/**
 * Progress writers: small wrappers a library function passes around in `RunOptions.progress`.
 * None does I/O; renderers (`render/`) are the only writers that draw. Every writer ignores
 * `write` after `close` (undici's "nothing after end" rule; a late event is a bug upstream,
 * never a crash).
 */

/** The writer that drops everything; the default wherever `progress` is not given. */
export const noProgress: ProgressWriter = Object.freeze({
  write(_e: ProgressEvent): void {},
  close(): void {},
});

/** Options for {@link oneOff} and {@link step}. */
export interface OneOffOptions {
  /** Event id; defaults to the name. Give one when two steps may share a name. */
  id?: string;
  /** Defaults to 'step'. */
  kind?: ProgressKind;
  group?: string;
  /** Clock (epoch ms), for tests. */
  now?: () => number;
}

/**
 * Reports a one-off step (BuildKit's `progress.OneOff`): writes a `started` event now and
 * returns `done`. `done(value)` marks the step completed and returns the value; `done(error)`
 * marks it completed with `error` set and rethrows the error. Only the first call reports.
 * No I/O. Usage: `const done = oneOff(o.progress, 'send tarball'); return done(await send(o))`
 * — for async work that may reject, prefer {@link step}, which also catches the rejection.
 */
export function oneOff(
  w: ProgressWriter | undefined,
  name: string,
  o: OneOffOptions = {},
): <T>(result: T | Error) => T {
  const now = o.now ?? Date.now;
  const started = now();
  const base: ProgressEvent = { id: o.id ?? name, kind: o.kind ?? 'step', name };
  if (o.group !== undefined) base.group = o.group;
  w?.write({ ...base, started, timestamp: started });
  let reported = false;
  return <T>(result: T | Error): T => {
    if (!reported && w) {
      reported = true;
      const completed = now();
      const e: ProgressEvent = { ...base, started, completed, timestamp: completed };
      if (result instanceof Error) e.error = errorText(result);
      w.write(e);
    }
    if (result instanceof Error) throw result;
    return result;
  };
}

/**
 * Runs `fn` as a one-off step: reports it started, then completed (or completed with `error`
 * when `fn` throws or rejects, after which the same error is rethrown unchanged).
 * `await step(o.progress, 'export layers', () => exportLayers(o))`. No I/O of its own.
 */
export async function step<T>(
  w: ProgressWriter | undefined,
  name: string,
  fn: () => T | Promise<T>,
  o: OneOffOptions = {},
): Promise<T> {
  const done = oneOff(w, name, o);
  let value: T;
  try {
    value = await fn();
  } catch (e) {
    // Report, but rethrow the original value even when it is not an Error.
    try {
      done(e instanceof Error ? e : new Error(String(e)));
    } catch {}
    throw e;
  }
  return done(value);
}

function errorText(e: Error): string {
  return e.message || e.name;
}

/**
 * A view of `w` that sets `group` on every event (BuildKit's `WithPrefix`). Closing the view
 * stops it writing but leaves `w` open, since several views usually share one writer.
 */
export function prefixed(w: ProgressWriter | undefined, group: string): ProgressWriter {
  let closed = false;
  return {
    write(e) {
      if (!closed) w?.write({ ...e, group });
    },
    close() {
      closed = true;
    },
  };
}

/** Sends every event to each writer; closing it closes them all. */
export function tee(...writers: Array<ProgressWriter | undefined>): ProgressWriter {
  const ws = writers.filter((w): w is ProgressWriter => w !== undefined);
  let closed = false;
  return {
    write(e) {
      if (closed) return;
      for (const w of ws) w.write(e);
    },
    close() {
      if (closed) return;
      closed = true;
      for (const w of ws) w.close();
    },
  };
}

/** A writer that records events, for tests. */
export interface CollectedProgress extends ProgressWriter {
  /** Every event written before `close`, in order (copies). */
  readonly events: ProgressEvent[];
  readonly closed: boolean;
  /** Events written after `close` (ignored, but counted so tests can assert there were none). */
  readonly writesAfterClose: number;
  /** The merged state of one id (see {@link mergeEvent}), or undefined if never written. */
  state(id: string): ProgressEvent | undefined;
  /** Ids in order of first appearance. */
  ids(): string[];
}

/** A {@link CollectedProgress}: records events in memory. */
export function collectProgress(): CollectedProgress {
  const events: ProgressEvent[] = [];
  const states = new Map<string, ProgressEvent>();
  let closed = false;
  let late = 0;
  return {
    events,
    get closed() {
      return closed;
    },
    get writesAfterClose() {
      return late;
    },
    write(e) {
      if (closed) {
        late++;
        return;
      }
      events.push({ ...e });
      states.set(e.id, mergeEvent(states.get(e.id), e));
    },
    close() {
      closed = true;
    },
    state: (id) => states.get(id),
    ids: () => [...states.keys()],
  };
}

/**
 * Folds an update into the state of its id: fields the update sets replace the old ones,
 * fields it leaves out are kept. `log` is not state (each event carries its own chunk) and
 * `message` is a one-off line, so neither is kept from `prev`.
 */
export function mergeEvent(prev: ProgressEvent | undefined, next: ProgressEvent): ProgressEvent {
  const out: ProgressEvent = { ...prev, id: next.id };
  delete out.log;
  delete out.message;
  for (const [k, v] of Object.entries(next)) {
    if (v !== undefined) (out as unknown as Record<string, unknown>)[k] = v;
  }
  return out;
}

/** Options for {@link mergeProgress}. */
export interface MergeProgressOptions {
  /** Forward pending events at most this often. Default 100 ms. */
  intervalMs?: number;
}

/** A writer that batches; `flush()` forwards what is pending now. */
export interface MergingWriter extends ProgressWriter {
  flush(): void;
}

/**
 * Keeps only the newest state per id until the next flush (BuildKit's progress reader
 * semantics), so a slow consumer sees merged updates instead of a queue: 10 000 byte-count
 * updates to one layer between two flushes reach `target` as one event. Nothing that matters
 * is lost: fields are merged with {@link mergeEvent}, log chunks of one stream are joined,
 * and `message` events are forwarded in order (pending events are flushed before them).
 * Flushes on an unref'd timer every `intervalMs`, on `flush()` and on `close()`, which then
 * closes `target`; nothing is written after that.
 */
export function mergeProgress(target: ProgressWriter, o: MergeProgressOptions = {}): MergingWriter {
  const interval = o.intervalMs ?? 100;
  let pending = new Map<string, ProgressEvent>();
  let timer: NodeJS.Timeout | undefined;
  let closed = false;

  const flush = (): void => {
    if (timer) {
      clearTimeout(timer);
      timer = undefined;
    }
    if (pending.size === 0) return;
    const out = pending;
    pending = new Map();
    for (const e of out.values()) target.write(e);
  };

  const schedule = (): void => {
    if (timer || interval <= 0) return;
    timer = setTimeout(flush, interval);
    timer.unref();
  };

  return {
    write(e) {
      if (closed) return;
      if (e.kind === 'message' || e.message !== undefined) {
        flush();
        target.write(e);
        return;
      }
      const prev = pending.get(e.id);
      if (prev?.log && e.log && prev.log.stream !== e.log.stream) {
        // Two streams cannot share one chunk; keep their order by flushing first.
        flush();
        pending.set(e.id, { ...e });
      } else if (prev) {
        const merged = mergeEvent(prev, e);
        if (prev.log)
          merged.log = e.log ? { stream: e.log.stream, data: prev.log.data + e.log.data } : prev.log;
        pending.set(e.id, merged); // keeps the id's first position, so renderers number ids in order
      } else {
        pending.set(e.id, { ...e });
      }
      if (interval <= 0) flush();
      else schedule();
    },
    flush() {
      if (!closed) flush();
    },
    close() {
      if (closed) return;
      flush();
      closed = true;
      target.close();
    },
  };
}
