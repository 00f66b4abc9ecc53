/** Shared pieces of the benchmark runner (run.ts) and its archive workloads (run-archive.ts). */
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const PROJECT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
export const DRAY_BIN = join(PROJECT, 'bin', 'dray.js');
export const CMD_TIMEOUT_MS = 600_000;

export const log = (s: string): void => {
  process.stderr.write(`${new Date().toISOString().slice(11, 19)} ${s}\n`);
};

export function intEnv(name: string, dflt: number, min: number, max: number): number {
  const v = process.env[name];
  if (v === undefined || v === '') return dflt;
  const n = Number(v);
  if (!Number.isInteger(n) || n < min || n > max)
    throw new Error(`${name} must be an integer in ${min}..${max}`);
  return n;
}

/** A cleanup stack with the `after` shape the harness expects. */
export class Cleanup {
  fns: Array<() => unknown> = [];
  after(fn: () => unknown): void {
    this.fns.push(fn);
  }
  async run(): Promise<void> {
    for (const fn of this.fns.splice(0).reverse()) {
      try {
        await fn();
      } catch (e) {
        log(`cleanup: ${String(e)}`);
      }
    }
  }
}

export interface Command {
  cmd: string;
  args: string[];
  env?: Record<string, string>;
}

/**
 * One benchmark workload: `tools[0]` is 'dray', the others are its anchors (peers). Every
 * tool runs 1 warm-up + BENCH_RUNS timed runs, alternating with the others.
 */
export interface Workload {
  /** Short key (BENCH_WORKLOADS, log file names). */
  key: string;
  name: string;
  /** Bytes of the data moved (for the anchors' MB/s column). */
  bytes: number;
  /** 'dray' first, then the anchors (and floors). */
  tools: string[];
  /**
   * Tools among `tools` that are floors, not peers: commands doing only part of the work any
   * tool must do (e.g. only decompressing the layers, or a bare curl upload). They are timed
   * like anchors, but never count as the fastest peer; their time over the fastest peer's is
   * the best ratio a tool could reach on this machine.
   */
  floors?: string[];
  describe: Record<string, string>;
  /** Untimed, once before the series, per tool. */
  setup?: (tool: string) => Promise<void>;
  /** Untimed per-run preparation; returns the command to time. */
  prepare: (tool: string, i: number) => Promise<Command>;
  /** Untimed check after a run; may return the size of the output it wrote. */
  check?: (tool: string, i: number) => Promise<number | undefined>;
  /** Untimed, after each run. */
  finish?: (tool: string, i: number) => Promise<void>;
}
