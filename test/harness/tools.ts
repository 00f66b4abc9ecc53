/**
 * Small helpers shared by the integration harness: finding binaries, free ports,
 * temp dirs with automatic cleanup, and running a command to completion.
 *
 * A missing binary skips the test loudly on a laptop and fails it under `CI=true`
 * (STYLE.md §5: never a silent pass).
 */
import { spawn } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import type { TestContext } from 'node:test';

/** Absolute path of `name` on PATH (or `name` itself if it is a path that exists), else undefined. No I/O besides stat. */
export function whichTool(name: string, path = process.env.PATH ?? ''): string | undefined {
  const candidates = name.includes('/') ? [name] : path.split(delimiter).map((d) => join(d || '.', name));
  for (const c of candidates) {
    try {
      accessSync(c, constants.X_OK);
      return c;
    } catch {}
  }
  return undefined;
}

/** Whether the run is CI (`CI=true` or `CI=1`): missing tools fail instead of skipping. */
export function isCI(): boolean {
  const v = process.env.CI?.toLowerCase();
  return v === 'true' || v === '1';
}

/**
 * Checks that every named binary is on PATH. Returns true when all are present.
 * Otherwise: under CI=true it throws (the test fails); elsewhere it calls
 * `t.skip('<name> not on PATH')`, prints a loud line to stderr and returns false;
 * the caller must then `return`.
 */
export function requireTool(t: TestContext, ...names: string[]): boolean {
  const missing = names.filter((n) => whichTool(n) === undefined);
  if (missing.length === 0) return true;
  const msg = `${missing.join(', ')} not on PATH`;
  if (isCI()) throw new Error(`${msg} (CI=true: a missing binary fails the run)`);
  process.stderr.write(`# SKIP ${t.fullName}: ${msg}\n`);
  t.skip(msg);
  return false;
}

/** A TCP port that was free on 127.0.0.1 a moment ago (bind port 0, read it, close). */
export async function freePort(): Promise<number> {
  return await new Promise((resolve, reject) => {
    const s = createServer();
    s.unref();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const addr = s.address();
      if (addr === null || typeof addr === 'string') {
        s.close();
        reject(new Error('freePort: no address'));
        return;
      }
      s.close(() => resolve(addr.port));
    });
  });
}

/** Creates a fresh temp dir (`$TMPDIR/<prefix>XXXXXX`), removed recursively in `t.after`. */
export async function tempDir(t: Pick<TestContext, 'after'>, prefix = 'dray-test-'): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  t.after(() => rm(dir, { recursive: true, force: true, maxRetries: 3 }));
  return dir;
}

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface RunCommandOptions {
  /** Extra variables merged over process.env (a value of undefined removes the variable). */
  env?: Record<string, string | undefined>;
  /** Written to stdin, then stdin is closed. Without it stdin is /dev/null. */
  input?: string | Buffer;
  /** Kill (SIGKILL) after this long; the result then has `signal: 'SIGKILL'`. Default 120 s. */
  timeoutMs?: number;
  cwd?: string;
  signal?: AbortSignal;
}

/** Runs `cmd args` to completion and collects its output (utf8). Never throws on a non-zero exit; rejects if the binary cannot start. */
export async function runCommand(cmd: string, args: string[], o: RunCommandOptions = {}): Promise<RunResult> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries({ ...process.env, ...o.env })) if (v !== undefined) env[k] = v;
  return await new Promise((resolve, reject) => {
    const child = spawn(cmd, args, {
      env,
      cwd: o.cwd,
      stdio: [o.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
      signal: o.signal,
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout?.on('data', (b: Buffer) => out.push(b));
    child.stderr?.on('data', (b: Buffer) => err.push(b));
    const timer = setTimeout(() => child.kill('SIGKILL'), o.timeoutMs ?? 120_000);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({
        code,
        signal,
        stdout: Buffer.concat(out).toString('utf8'),
        stderr: Buffer.concat(err).toString('utf8'),
      });
    });
    if (o.input !== undefined && child.stdin) child.stdin.end(o.input);
  });
}

/** Like runCommand but throws (with stderr) unless the exit code is 0. */
export async function runChecked(cmd: string, args: string[], o: RunCommandOptions = {}): Promise<RunResult> {
  const r = await runCommand(cmd, args, o);
  if (r.code !== 0) {
    throw new Error(`${cmd} ${args.join(' ')} exited ${r.code ?? r.signal}: ${r.stderr.trim().slice(-2000)}`);
  }
  return r;
}

/** Polls `check` every `intervalMs` until it returns true or `timeoutMs` passes (then throws with `what`). */
export async function waitFor(
  what: string,
  check: () => Promise<boolean>,
  o: { timeoutMs?: number; intervalMs?: number } = {},
): Promise<void> {
  const deadline = Date.now() + (o.timeoutMs ?? 15_000);
  let last: unknown;
  for (;;) {
    try {
      if (await check()) return;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`, { cause: last });
    await new Promise((r) => setTimeout(r, o.intervalMs ?? 50));
  }
}
