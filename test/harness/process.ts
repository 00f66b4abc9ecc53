/**
 * Long-running child processes for the harness (registry, dockerd): started with
 * their output in a log file, stopped with SIGTERM and, after a grace period, SIGKILL.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { openSync, readFileSync } from 'node:fs';

export interface ManagedProcess {
  readonly child: ChildProcess;
  readonly pid: number;
  readonly logFile: string;
  /** True once the process has exited. */
  readonly exited: boolean;
  /** Last `bytes` of the combined stdout/stderr log. */
  logTail(bytes?: number): string;
  /** SIGTERM, then SIGKILL after `graceMs` (default 5 s). Resolves when the process has exited. Idempotent. */
  stop(graceMs?: number): Promise<void>;
}

/** Spawns `cmd args` detached from stdin, stdout+stderr appended to `logFile`. Rejects if it cannot start. */
export async function startProcess(
  cmd: string,
  args: string[],
  o: { cwd?: string; env?: Record<string, string>; logFile: string },
): Promise<ManagedProcess> {
  const fd = openSync(o.logFile, 'a');
  const child = spawn(cmd, args, { cwd: o.cwd, env: o.env ?? process.env, stdio: ['ignore', fd, fd] });
  let exited = false;
  const exitedP = new Promise<void>((resolve) => {
    child.on('exit', () => {
      exited = true;
      resolve();
    });
  });
  await new Promise<void>((resolve, reject) => {
    child.once('spawn', resolve);
    child.once('error', reject);
  });
  const pid = child.pid;
  if (pid === undefined) throw new Error(`${cmd}: no pid`);
  const logTail = (bytes = 4000) => {
    try {
      const s = readFileSync(o.logFile, 'utf8');
      return s.slice(-bytes);
    } catch {
      return '';
    }
  };
  let stopping: Promise<void> | undefined;
  const stop = (graceMs = 5000): Promise<void> => {
    stopping ??= (async () => {
      if (exited) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => {
        if (!exited) child.kill('SIGKILL');
      }, graceMs);
      await exitedP;
      clearTimeout(timer);
    })();
    return stopping;
  };
  return {
    child,
    pid,
    logFile: o.logFile,
    get exited() {
      return exited;
    },
    logTail,
    stop,
  };
}
