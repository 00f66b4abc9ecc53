import { abortError, isDrayError } from '../../errors.ts';

/**
 * A counting semaphore for file system work: keeps the libuv thread pool busy without
 * queueing tens of thousands of requests at once. `run` rejects once the signal fired.
 */
export class Limiter {
  readonly #max: number;
  #active = 0;
  readonly #queue: (() => void)[] = [];
  readonly #signal: AbortSignal | undefined;
  readonly #what: string;

  constructor(max: number, signal?: AbortSignal, what = 'file operation') {
    this.#max = max;
    this.#signal = signal;
    this.#what = what;
  }

  /** Runs `fn` when a slot is free. */
  async run<T>(fn: () => Promise<T>): Promise<T> {
    if (this.#signal?.aborted) throw abortError(this.#signal, this.#what);
    if (this.#active >= this.#max) {
      await new Promise<void>((resolve) => this.#queue.push(resolve));
      if (this.#signal?.aborted) {
        this.#release();
        throw abortError(this.#signal, this.#what);
      }
    } else this.#active++;
    try {
      return await fn();
    } finally {
      this.#release();
    }
  }

  #release(): void {
    const next = this.#queue.shift();
    if (next) next();
    else this.#active--;
  }
}

/**
 * Awaits every promise (so no work is still running when it returns) and throws the first
 * rejection that is not just the echo of an abort, if any.
 */
export async function settleAll<T>(promises: readonly Promise<T>[]): Promise<T[]> {
  const results = await Promise.allSettled(promises);
  const out: T[] = [];
  let first: unknown;
  let failed = false;
  for (const r of results) {
    if (r.status === 'fulfilled') out.push(r.value);
    else if (!failed || (isDrayError(first, 'DRAY_ABORTED') && !isDrayError(r.reason, 'DRAY_ABORTED'))) {
      first = r.reason;
      failed = true;
    }
  }
  if (failed) throw first;
  return out;
}
