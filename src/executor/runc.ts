/**
 * The runc executor: one `runc run` per build step, as BuildKit's runcexecutor. Each run gets a
 * bundle directory (`<root>/bundles/<id>`: config.json, hosts, resolv.conf, runc's log) and a
 * container in runc's state dir (`<root>/runc`); both are gone when run() settles, whatever
 * happened. Output is streamed through pipes (no terminal, stdin is /dev/null).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { addAbortListener } from 'node:events';
import { access, mkdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { constants as osConstants } from 'node:os';
import { join, posix, resolve } from 'node:path';
import { abortError, DrayError, isDrayError, throwIfAborted } from '../errors.ts';
import { defaultHostname, hostsFile, readContainerResolvConf } from './net-files.ts';
import { mkdirAllInRoot, resolveInRoot } from './root-path.ts';
import { createSpec, defaultNofile, mergeEnv } from './spec.ts';
import { recordMountStubs } from './stubs.ts';
import type { ExecRequest, ExecResult, Executor, RuncExecutorOptions } from './types.ts';
import { resolveUser } from './user.ts';

/** CAP_SYS_RESOURCE: needed to raise RLIMIT_NOFILE above our own hard limit. */
const capSysResource = 24n;

/**
 * RLIMIT_NOFILE for containers: docker's 1048576, but never more than this process may set
 * (its hard limit, unless it holds CAP_SYS_RESOURCE; and fs.nr_open), or runc would fail
 * with "error setting rlimit type 7: operation not permitted". Does I/O (reads /proc).
 */
async function hostNofile(): Promise<number> {
  const [limits, status, nrOpen] = await Promise.all([
    readFile('/proc/self/limits', 'utf8').catch(() => ''),
    readFile('/proc/self/status', 'utf8').catch(() => ''),
    readFile('/proc/sys/fs/nr_open', 'utf8').catch(() => ''),
  ]);
  let max = defaultNofile;
  const nr = Number.parseInt(nrOpen, 10);
  if (nr > 0) max = Math.min(max, nr);
  const capEff = /^CapEff:\s*([0-9a-f]+)$/m.exec(status)?.[1];
  const canRaise = capEff !== undefined && (BigInt(`0x${capEff}`) >> capSysResource) & 1n;
  const hard = /^Max open files\s+\S+\s+(\S+)/m.exec(limits)?.[1];
  if (!canRaise && hard !== undefined && hard !== 'unlimited') max = Math.min(max, Number(hard));
  return max;
}

/** BuildKit adds a cgroup namespace only on cgroup v2 hosts (moby/buildkit#4108). */
async function hasCgroupV2Namespace(): Promise<boolean> {
  try {
    await access('/proc/self/ns/cgroup');
    await access('/sys/fs/cgroup/cgroup.subtree_control');
    return true;
  } catch {
    return false;
  }
}

interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** Runs a short runc command (kill, delete) to completion; never rejects. */
function runcCommand(bin: string, args: string[]): Promise<{ ok: boolean; stderr: string }> {
  return new Promise((done) => {
    const child = spawn(bin, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr?.setEncoding('utf8').on('data', (s: string) => {
      if (stderr.length < 4096) stderr += s;
    });
    child.on('error', (e) => done({ ok: false, stderr: e.message }));
    child.on('close', (code) => done({ ok: code === 0, stderr }));
  });
}

function waitForExit(child: ChildProcess): Promise<Exit> {
  return new Promise((done, fail) => {
    child.once('error', fail);
    // 'close', not 'exit': all output has been read once the pipes are closed.
    child.once('close', (code, signal) => done({ code, signal }));
  });
}

/** The last error runc logged (`--log-format json`): how runc reports failing to start the process. */
async function runcLoggedError(logPath: string): Promise<string | undefined> {
  const text = await readFile(logPath, 'utf8').catch(() => '');
  let last: string | undefined;
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    try {
      const entry = JSON.parse(line) as { level?: unknown; msg?: unknown };
      if ((entry.level === 'error' || entry.level === 'fatal') && typeof entry.msg === 'string')
        last = entry.msg;
    } catch {}
  }
  return last;
}

function describe(args: readonly string[]): string {
  return `process "${args.join(' ')}"`;
}

/**
 * An Executor that runs each request with `runc run` in a fresh container (see createSpec for
 * the spec). The user is resolved in the rootfs (resolveUser); a missing working directory is
 * created owned by that user; mount stubs runc creates for missing targets are removed
 * afterwards if empty; /etc/hosts and /etc/resolv.conf are generated and bound read-only.
 *
 * `run` does I/O and spawns runc. It resolves with the exit code (non-zero is not an error) and
 * rejects with: DRAY_RUNTIME when runc is missing or fails to start the process (runc's own
 * message, e.g. `runc run failed: unable to start container process: exec: "x": executable
 * file not found in $PATH`); DRAY_BUILD for an unknown user or group; DRAY_INVALID_ARGUMENT
 * for a bad request; DRAY_ABORTED when `req.signal` fires (the container is killed first).
 * In every case the container and its bundle are removed before it settles.
 */
export function createRuncExecutor(o: RuncExecutorOptions): Executor {
  const root = resolve(o.root);
  const bin = o.runc ?? 'runc';
  const stateDir = join(root, 'runc');
  const bundles = join(root, 'bundles');
  let ready: Promise<{ nofile: number; cgroupNamespace: boolean }> | undefined;
  const setup = () => {
    ready ??= (async () => {
      await mkdir(stateDir, { recursive: true, mode: 0o711 });
      await mkdir(bundles, { recursive: true, mode: 0o711 });
      const [nofile, cgroupNamespace] = await Promise.all([hostNofile(), hasCgroupV2Namespace()]);
      return { nofile, cgroupNamespace };
    })().catch((e: unknown) => {
      ready = undefined;
      throw new DrayError('DRAY_RUNTIME', `cannot create executor root ${root}: ${(e as Error).message}`, {
        cause: e,
      });
    });
    return ready;
  };
  return { run: (req) => runContainer(req, { bin, stateDir, bundles, setup }) };
}

interface Ctx {
  bin: string;
  stateDir: string;
  bundles: string;
  setup: () => Promise<{ nofile: number; cgroupNamespace: boolean }>;
}

async function runContainer(req: ExecRequest, x: Ctx): Promise<ExecResult> {
  const what = describe(req.args);
  throwIfAborted(req.signal, what);
  if (req.args.length === 0) throw new DrayError('DRAY_INVALID_ARGUMENT', 'no command to run: args is empty');
  const rootStat = await stat(req.rootfs).catch(() => undefined);
  if (!rootStat?.isDirectory()) {
    throw new DrayError('DRAY_INVALID_ARGUMENT', `rootfs ${req.rootfs} is not a directory`);
  }
  const host = await x.setup();

  const id = `dray-${randomBytes(12).toString('hex')}`;
  const bundle = join(x.bundles, id);
  let cleanStubs: (() => Promise<void>) | undefined;
  let started = false;
  let aborted = false;
  try {
    const user = await resolveUser(req.rootfs, req.user);
    await mkdir(bundle, { mode: 0o711 });
    const network = req.network ?? 'none';
    const mounts = req.mounts ?? [];
    cleanStubs = await recordMountStubs(req.rootfs, [
      '/etc/resolv.conf',
      '/etc/hosts',
      ...mounts.map((m) => m.destination),
    ]);
    const cwd = posix.join('/', req.cwd ?? '/');
    const cwdHost = await resolveInRoot(req.rootfs, cwd);
    if (!(await stat(cwdHost).catch(() => undefined)))
      await mkdirAllInRoot(req.rootfs, cwd, user.uid, user.gid);

    const hostsPath = join(bundle, 'hosts');
    const resolvConfPath = join(bundle, 'resolv.conf');
    const spec = createSpec({
      rootfs: resolve(req.rootfs),
      args: req.args,
      env: mergeEnv(req.env),
      cwd,
      uid: user.uid,
      gid: user.gid,
      additionalGids: user.additionalGids,
      hostname: req.hostname ?? defaultHostname,
      network,
      mounts,
      hostsPath,
      resolvConfPath,
      nofile: host.nofile,
      cgroupNamespace: host.cgroupNamespace,
    });
    await Promise.all([
      writeFile(hostsPath, hostsFile(spec.hostname), { mode: 0o644 }),
      readContainerResolvConf(network).then((rc) => writeFile(resolvConfPath, rc, { mode: 0o644 })),
      writeFile(join(bundle, 'config.json'), JSON.stringify(spec)),
    ]);
    throwIfAborted(req.signal, what);

    const logPath = join(bundle, 'runc.log');
    // detached: its own process group, so a terminal's Ctrl-C reaches us (and our abort path)
    // rather than runc, as BuildKit runs runc with Setpgid.
    const child = spawn(
      x.bin,
      ['--root', x.stateDir, '--log', logPath, '--log-format', 'json', 'run', '--bundle', bundle, id],
      { stdio: ['ignore', 'pipe', 'pipe'], detached: true },
    );
    started = true;
    let outputError: unknown;
    const forward = (stream: 1 | 2) => (chunk: Buffer) => {
      try {
        req.output?.(stream, chunk);
      } catch (e) {
        outputError ??= e;
      }
    };
    child.stdout?.on('data', forward(1));
    child.stderr?.on('data', forward(2));
    const exited = waitForExit(child);
    let exitedYet = false;
    void exited.then(
      () => (exitedYet = true),
      () => (exitedYet = true),
    );
    using _ = req.signal
      ? addAbortListener(req.signal, () => {
          aborted = true;
          void killContainer(x, id, child, () => exitedYet);
        })
      : undefined;
    let exit: Exit;
    try {
      exit = await exited;
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      throw new DrayError('DRAY_RUNTIME', `cannot run ${x.bin}: ${(e as Error).message}`, {
        cause: e,
        hint:
          code === 'ENOENT'
            ? 'install runc (e.g. `apt-get install runc`) or pass its path as the `runc` option'
            : undefined,
      });
    }
    if (aborted) throw abortError(req.signal, what);
    if (outputError !== undefined) throw outputError;
    if (exit.code !== 0) {
      const runcError = await runcLoggedError(logPath);
      if (runcError !== undefined) throw new DrayError('DRAY_RUNTIME', runcError);
    }
    if (exit.code !== null) return { exitCode: exit.code };
    return { exitCode: 128 + (exit.signal ? (osConstants.signals[exit.signal] ?? 0) : 0) };
  } catch (e) {
    if (aborted || req.signal?.aborted) throw abortError(req.signal, what);
    if (isDrayError(e)) throw e;
    throw new DrayError('DRAY_RUNTIME', `running ${what}: ${(e as Error).message}`, { cause: e });
  } finally {
    // `runc run` deletes its container when the process exits; after an abort or a runc
    // failure the state may remain, and `runc delete --force` also kills what is left.
    if (started && (aborted || (await exists(join(x.stateDir, id))))) {
      await runcCommand(x.bin, ['--root', x.stateDir, 'delete', '--force', id]);
    }
    await cleanStubs?.();
    await rm(bundle, { recursive: true, force: true });
  }
}

async function exists(p: string): Promise<boolean> {
  return await access(p).then(
    () => true,
    () => false,
  );
}

/**
 * SIGKILLs the container's process with `runc kill`. Right after spawning, the container may
 * not exist yet (runc is still creating it): retry until the kill lands or runc exits; if
 * runc is still alive after 10 s, kill its process group, and `runc delete --force` (run on
 * every abort) kills whatever is left of the container.
 */
async function killContainer(
  x: Ctx,
  id: string,
  child: ChildProcess,
  hasExited: () => boolean,
): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!hasExited()) {
    const r = await runcCommand(x.bin, ['--root', x.stateDir, 'kill', id, 'KILL']);
    if (r.ok || hasExited()) return;
    if (Date.now() > deadline) {
      try {
        if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL');
      } catch {}
      return;
    }
    await new Promise((r) => setTimeout(r, 20));
  }
}
