import type { Readable, Writable } from 'node:stream';
import { createRenderer, DrayError, type ProgressWriter } from '../index.ts';
import { type CliEnvironment, resolveEnvironment } from './env.ts';

/** The process around the CLI, injectable so tests run commands in-process. */
export interface CliIO {
  stdout: Writable;
  stderr: Writable;
  stdin: Readable;
  env: NodeJS.ProcessEnv;
  /** Whether stdout is a terminal (live progress) and stdin is one (prompts). */
  isTTY: boolean;
  stdinIsTTY: boolean;
  signal?: AbortSignal;
}

export type ProgressMode = 'auto' | 'tty' | 'plain' | 'rawjson' | 'quiet';
export const progressModes: readonly ProgressMode[] = ['auto', 'tty', 'plain', 'rawjson', 'quiet'];

/** Global flags every command sees. */
export interface GlobalFlags {
  root?: string;
  config?: string;
  insecureRegistry?: string[];
  debug?: boolean;
  maxConcurrentTransfers?: string;
}

export class CliContext {
  readonly io: CliIO;
  readonly env: CliEnvironment;
  readonly #concurrency: number | undefined;
  constructor(io: CliIO, flags: GlobalFlags) {
    this.io = io;
    this.env = resolveEnvironment(flags, io.env, io.isTTY);
    this.#concurrency = parseConcurrency(flags.maxConcurrentTransfers);
  }

  /** Registry options for verbs, from the environment and flags. */
  registry(): { configDir: string; insecureRegistries: string[]; concurrency?: number } {
    return {
      configDir: this.env.configDir,
      insecureRegistries: this.env.insecureRegistries,
      ...(this.#concurrency ? { concurrency: this.#concurrency } : {}),
    };
  }

  /** A progress renderer on stdout, where docker pull/push print theirs. */
  progress(mode: ProgressMode, quiet = false, out: NodeJS.WritableStream = this.io.stdout): ProgressWriter {
    if (!progressModes.includes(mode)) {
      throw new DrayError('DRAY_INVALID_ARGUMENT', `invalid progress mode: ${JSON.stringify(mode)}`, {
        hint: `use one of ${progressModes.join(', ')}`,
      });
    }
    const kind = quiet ? 'quiet' : mode === 'auto' ? (this.io.isTTY ? 'tty' : 'plain') : mode;
    return createRenderer(kind, out);
  }

  print(line: string): void {
    this.io.stdout.write(`${line}\n`);
  }
}

function parseConcurrency(v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1 || n > 64) {
    throw new DrayError('DRAY_INVALID_ARGUMENT', `invalid --max-concurrent-transfers: ${JSON.stringify(v)}`, {
      hint: 'give a whole number from 1 to 64',
    });
  }
  return n;
}

/** Runs a command body with the context built from the global flags; errors go to main's handler. */
export type Run = (fn: (ctx: CliContext) => Promise<void>) => Promise<void>;

/** Spread helper: `{ signal }` only when the CLI has one. */
export function signalOf(ctx: CliContext): { signal?: AbortSignal } {
  return ctx.io.signal ? { signal: ctx.io.signal } : {};
}
