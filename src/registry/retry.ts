import { setTimeout as sleep } from 'node:timers/promises';
import { abortError } from '../errors.ts';

/** Retry policy for registry requests. */
export interface RetryOptions {
  /** Total tries including the first; 1 disables retries. Default 5. */
  attempts?: number;
  /** First backoff delay. Default 200 ms. */
  minDelayMs?: number;
  /** Largest delay, also the cap applied to a Retry-After. Default 5000 ms. */
  maxDelayMs?: number;
}

export interface ResolvedRetryOptions {
  attempts: number;
  minDelayMs: number;
  maxDelayMs: number;
}

/** Fills the retry defaults (5 attempts, 200 ms … 5 s) and clamps nonsense. No I/O. */
export function resolveRetryOptions(o: RetryOptions = {}): ResolvedRetryOptions {
  const attempts = Math.max(1, Math.floor(o.attempts ?? 5));
  const minDelayMs = Math.max(0, o.minDelayMs ?? 200);
  const maxDelayMs = Math.max(minDelayMs, o.maxDelayMs ?? 5000);
  return { attempts, minDelayMs, maxDelayMs };
}

/**
 * The delay before retry number `retry` (1-based): exponential from minDelayMs with "full
 * jitter" in its upper half, capped at maxDelayMs. A Retry-After (seconds or HTTP date) wins
 * when present, still capped so one header cannot stall a pull for an hour.
 */
export function backoffMs(retry: number, o: ResolvedRetryOptions, retryAfter?: string): number {
  const ra = parseRetryAfterMs(retryAfter);
  if (ra !== undefined) return Math.min(ra, o.maxDelayMs);
  const exp = Math.min(o.maxDelayMs, o.minDelayMs * 2 ** (retry - 1));
  return Math.round(exp / 2 + (Math.random() * exp) / 2);
}

/** Retry-After as milliseconds: delta-seconds or an HTTP-date; undefined when absent or bad. */
export function parseRetryAfterMs(v: string | undefined): number | undefined {
  if (!v) return undefined;
  const t = v.trim();
  if (/^\d+$/.test(t)) return Number(t) * 1000;
  const at = Date.parse(t);
  if (Number.isNaN(at)) return undefined;
  return Math.max(0, at - Date.now());
}

/** Sleeps `ms`, rejecting with DRAY_ABORTED when the signal fires. */
export async function delay(ms: number, signal?: AbortSignal): Promise<void> {
  if (ms <= 0) {
    if (signal?.aborted) throw abortError(signal);
    return;
  }
  try {
    await sleep(ms, undefined, signal ? { signal } : undefined);
  } catch (e) {
    if (signal?.aborted) throw abortError(signal);
    throw e;
  }
}
