/**
 * A private Docker engine for interop tests (`docker load`, `docker run`, `docker pull`
 * from the test registry): dockerd with its own data root, exec root, pidfile and unix
 * socket in a temp dir, no iptables and no bridge, so it touches nothing shared. dockerd
 * starts its own managed containerd when no system one runs. Stopped in t.after.
 *
 * Also: a busybox rootfs folder built from /bin/busybox (+ one symlink per applet), to
 * `docker import` as the tiny base image the anchors use.
 */
import { spawn } from 'node:child_process';
import { chmod, mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { startProcess } from './process.ts';
import { type RunCommandOptions, runChecked, runCommand, tempDir, waitFor } from './tools.ts';

export interface DockerEngine {
  /** `unix:///…/docker.sock`: DOCKER_HOST for the docker CLI. */
  host: string;
  socketPath: string;
  dataRoot: string;
  /** Env for child processes: DOCKER_HOST, and a private DOCKER_CONFIG. */
  env: Record<string, string>;
  /** Runs the docker CLI against this engine. */
  docker(args: string[], o?: RunCommandOptions): ReturnType<typeof runCommand>;
  logTail(bytes?: number): string;
  stop(): Promise<void>;
}

/** GET http://docker/<path> over the unix socket; resolves with status and body. */
export function engineGet(socketPath: string, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath, path, method: 'GET', timeout: 2000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () =>
        resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }),
      );
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end();
  });
}

/**
 * Starts dockerd and waits (up to 60 s) for `GET /_ping` = OK. Needs root, `dockerd`,
 * `containerd` and `runc` (check with requireTool first). Registries in
 * `insecureRegistries` (e.g. `127.0.0.1:PORT`) are reached over plain HTTP.
 */
export async function startDockerd(
  t: Pick<TestContext, 'after'>,
  o: { insecureRegistries?: string[] } = {},
): Promise<DockerEngine> {
  // Short base path: a unix socket path must stay under 108 bytes.
  const dir = await mkdtemp(join(tmpdir(), 'dd-'));
  const dataRoot = join(dir, 'data');
  const execRoot = join(dir, 'exec');
  const socketPath = join(dir, 'docker.sock');
  const dockerConfig = join(dir, 'config');
  await mkdir(dockerConfig);
  const args = [
    '--data-root',
    dataRoot,
    '--exec-root',
    execRoot,
    '--pidfile',
    join(dir, 'docker.pid'),
    '--host',
    `unix://${socketPath}`,
    '--iptables=false',
    '--ip-masq=false',
    '--bridge=none',
    '--userland-proxy=false',
    '--log-level=warn',
  ];
  for (const r of o.insecureRegistries ?? []) args.push('--insecure-registry', r);
  const proc = await startProcess('dockerd', args, { cwd: dir, logFile: join(dir, 'dockerd.log') });
  const cleanup = async () => {
    await proc.stop(15_000);
    // The data root holds overlay mounts only while containers run; the engine unmounts on exit.
    await rm(dir, { recursive: true, force: true, maxRetries: 3 }).catch(() => {});
  };
  try {
    await waitFor(
      'dockerd /_ping',
      async () => {
        if (proc.exited) throw new Error(`dockerd exited: ${proc.logTail(2000)}`);
        const r = await engineGet(socketPath, '/_ping');
        return r.status === 200 && r.body === 'OK';
      },
      { timeoutMs: 60_000, intervalMs: 200 },
    );
  } catch (e) {
    await cleanup();
    throw e;
  }
  let stopped: Promise<void> | undefined;
  const stop = () => {
    stopped ??= cleanup();
    return stopped;
  };
  t.after(stop);
  const env = { DOCKER_HOST: `unix://${socketPath}`, DOCKER_CONFIG: dockerConfig };
  return {
    host: env.DOCKER_HOST,
    socketPath,
    dataRoot,
    env,
    docker: (a, ro = {}) =>
      runCommand('docker', a, { timeoutMs: 180_000, ...ro, env: { ...env, ...ro.env } }),
    logTail: proc.logTail,
    stop,
  };
}

/** Builds a busybox rootfs (bin/busybox + applet symlinks, etc, tmp, root) in a temp dir; returns the dir. */
export async function busyboxImageDir(t: Pick<TestContext, 'after'>): Promise<string> {
  const dir = await tempDir(t, 'dray-busybox-');
  await mkdir(join(dir, 'bin'));
  for (const d of ['etc', 'tmp', 'root']) await mkdir(join(dir, d));
  await chmod(join(dir, 'tmp'), 0o1777);
  await writeFile(join(dir, 'bin', 'busybox'), await readFile('/bin/busybox'), { mode: 0o755 });
  await chmod(join(dir, 'bin', 'busybox'), 0o755);
  const list = await runChecked('/bin/busybox', ['--list']);
  for (const a of list.stdout.split('\n').filter((x) => /^[a-z0-9_.[-]+$/.test(x) && x !== 'busybox')) {
    await symlink('busybox', join(dir, 'bin', a));
  }
  await writeFile(join(dir, 'etc', 'passwd'), 'root:x:0:0:root:/root:/bin/sh\n');
  await writeFile(join(dir, 'etc', 'group'), 'root:x:0:\n');
  return dir;
}

/** `tar -C rootfs -c . | docker import - ref` against `engine`; resolves with the image ID. */
export async function importRootfs(engine: DockerEngine, rootfs: string, ref: string): Promise<string> {
  const tar = spawn('tar', ['--numeric-owner', '--owner=0', '--group=0', '-C', rootfs, '-cf', '-', '.'], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const imp = spawn('docker', ['import', '--change', 'CMD ["sh"]', '-', ref], {
    env: { ...process.env, ...engine.env },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  if (!tar.stdout || !imp.stdin || !imp.stdout || !imp.stderr) throw new Error('no pipes');
  tar.stdout.pipe(imp.stdin);
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  imp.stdout.on('data', (c: Buffer) => out.push(c));
  imp.stderr.on('data', (c: Buffer) => err.push(c));
  const code = await new Promise<number | null>((resolve, reject) => {
    imp.on('error', reject);
    imp.on('close', resolve);
  });
  if (code !== 0) throw new Error(`docker import failed: ${Buffer.concat(err).toString()}`);
  return Buffer.concat(out).toString().trim();
}
