import { throwIfAborted } from '../errors.ts';
import type { Descriptor } from '../oci/index.ts';
import type { RunOptions } from '../progress/index.ts';

/**
 * containerd's handler model (core/images/handlers.go): a handler does its work for one
 * descriptor and returns the children to visit. `dispatch` runs siblings in parallel under
 * a concurrency limit and cancels everything on the first error.
 */
export type Handler = (d: Descriptor, o: RunOptions) => Promise<Descriptor[]>;

/** A counting semaphore; `run` waits for a slot. */
export class Limiter {
  #free: number;
  #waiting: Array<() => void> = [];
  constructor(slots: number) {
    this.#free = Math.max(1, slots);
  }
  async run<T>(fn: () => Promise<T>): Promise<T> {
    if (this.#free > 0) this.#free--;
    else await new Promise<void>((resolve) => this.#waiting.push(resolve));
    try {
      return await fn();
    } finally {
      const next = this.#waiting.shift();
      if (next) next();
      else this.#free++;
    }
  }
}

/**
 * Visits `roots` and, depth first, every child the handler returns. Siblings run in
 * parallel; a parent's handler has finished before its children start. The first error
 * aborts the rest (through the signal handed to the handlers) and is rethrown.
 */
export async function dispatch(handler: Handler, roots: Descriptor[], o: RunOptions = {}): Promise<void> {
  throwIfAborted(o.signal);
  const inner = new AbortController();
  const signal = o.signal ? AbortSignal.any([o.signal, inner.signal]) : inner.signal;
  const visit = async (d: Descriptor): Promise<void> => {
    const children = await handler(d, { ...o, signal });
    await Promise.all(children.map(visit));
  };
  try {
    await Promise.all(
      roots.map((d) =>
        visit(d).catch((e: unknown) => {
          inner.abort(e);
          throw e;
        }),
      ),
    );
  } catch (e) {
    inner.abort(e);
    throw e;
  }
}
