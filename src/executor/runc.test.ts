import assert from 'node:assert/strict';
import {
  appendFile,
  mkdir,
  mkdtemp,
  readdir,
  readFile,
  rm,
  stat,
  symlink,
  writeFile,
} from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type TestContext, test } from 'node:test';
import { busyboxImageDir } from '../../test/harness/docker-engine.ts';
import { isCI, requireTool, runChecked, tempDir } from '../../test/harness/tools.ts';
import { isDrayError } from '../errors.ts';
import { createRuncExecutor, type ExecRequest, type Executor } from './index.ts';

interface Env {
  root: string;
  rootfs: string;
  ex: Executor;
}

/** A fresh busybox rootfs with a few users, and an executor whose root is checked clean after the test. */
async function setup(t: TestContext): Promise<Env | undefined> {
  if (!requireTool(t, 'runc')) return undefined;
  if (process.getuid?.() !== 0) {
    if (isCI()) throw new Error('runc tests need root (CI=true: not skipping)');
    process.stderr.write(`# SKIP ${t.fullName}: needs root\n`);
    t.skip('needs root');
    return undefined;
  }
  const rootfs = await busyboxImageDir(t);
  await appendFile(join(rootfs, 'etc', 'passwd'), 'app:x:1000:1001:App:/home/app:/bin/sh\n');
  await writeFile(
    join(rootfs, 'etc', 'group'),
    'root:x:0:\nwheel:x:10:root,app\nappgrp:x:1001:\ndocker:x:999:app,other\n',
  );
  const root = await mkdtemp(join(tmpdir(), 'dray-executor-'));
  // Checked before removal (t.after hooks run in registration order).
  t.after(async () => {
    try {
      await assertClean(root);
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });
  return { root, rootfs, ex: createRuncExecutor({ root }) };
}

/** No container left in runc's state, no bundle, no mount under the executor root. */
async function assertClean(root: string): Promise<void> {
  const list = await runChecked('runc', ['--root', join(root, 'runc'), 'list', '-q']);
  assert.equal(list.stdout.trim(), '', 'runc list is empty');
  assert.deepEqual(await readdir(join(root, 'bundles')).catch(() => []), [], 'no bundle left');
  const mountinfo = await readFile('/proc/self/mountinfo', 'utf8');
  assert.ok(!mountinfo.includes(root), 'no mount left under the executor root');
}

interface Output {
  exitCode: number;
  stdout: string;
  stderr: string;
}

async function run(env: Env, req: Partial<ExecRequest> & Pick<ExecRequest, 'args'>): Promise<Output> {
  let stdout = '';
  let stderr = '';
  const r = await env.ex.run({
    rootfs: env.rootfs,
    env: [],
    ...req,
    output: (s, c) => {
      if (s === 1) stdout += c.toString();
      else stderr += c.toString();
      req.output?.(s, c);
    },
  });
  return { exitCode: r.exitCode, stdout, stderr };
}

const sh = (script: string) => ['sh', '-c', script];

test('runs a process: output streamed per stream, exit code returned', async (t) => {
  const env = await setup(t);
  if (!env) return;
  const r = await run(env, { args: sh('echo hello; echo oops >&2; exit 7') });
  assert.deepEqual(r, { exitCode: 7, stdout: 'hello\n', stderr: 'oops\n' });
  assert.equal((await run(env, { args: ['true'] })).exitCode, 0);

  // Chunks arrive while the process runs, not at the end.
  let firstAt = 0;
  const start = Date.now();
  const streamed = await run(env, {
    args: sh('echo first; sleep 1; echo second'),
    output: () => {
      firstAt ||= Date.now();
    },
  });
  assert.equal(streamed.stdout, 'first\nsecond\n');
  assert.ok(
    Date.now() - firstAt >= 700,
    `first chunk came ${firstAt - start} ms after start, before the sleep`,
  );
});

test('env, default PATH and HOME, cwd created when missing', async (t) => {
  const env = await setup(t);
  if (!env) return;
  const r = await run(env, {
    args: sh('echo "$FOO|$PATH|$HOME|$(pwd)"'),
    env: ['FOO=bar baz'],
    cwd: '/work/dir',
  });
  assert.equal(
    r.stdout,
    'bar baz|/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin|/root|/work/dir\n',
  );
  const created = await stat(join(env.rootfs, 'work', 'dir'));
  assert.ok(created.isDirectory());
  assert.equal(created.mode & 0o777, 0o755);

  const custom = await run(env, { args: sh('echo "$PATH|$HOME"'), env: ['PATH=/bin', 'HOME=/custom'] });
  assert.equal(custom.stdout, '/bin|/custom\n');

  // As a user: HOME from passwd, the new working directory owned by that user.
  const asApp = await run(env, { args: sh('echo "$HOME|$(pwd)"'), user: 'app', cwd: '/srv/app' });
  assert.equal(asApp.stdout, '/home/app|/srv/app\n');
  const owned = await stat(join(env.rootfs, 'srv', 'app'));
  assert.deepEqual([owned.uid, owned.gid], [1000, 1001]);
  // A numeric user without an entry: HOME is /.
  assert.equal((await run(env, { args: sh('echo $HOME'), user: '4242' })).stdout, '/\n');
});

test('a working directory symlinked out of the rootfs is created inside it', async (t) => {
  const env = await setup(t);
  if (!env) return;
  const outside = await tempDir(t, 'dray-outside-');
  await symlink(outside, join(env.rootfs, 'escape'));
  const r = await run(env, { args: sh('pwd'), cwd: '/escape/made' });
  assert.equal(r.exitCode, 0);
  assert.deepEqual(await readdir(outside), [], 'nothing created on the host');
  assert.ok((await stat(join(env.rootfs, outside, 'made'))).isDirectory());
});

test('users: name, uid, name:group, uid:gid and supplementary groups', async (t) => {
  const env = await setup(t);
  if (!env) return;
  const ids = async (user?: string) => {
    const r = await run(env, { args: sh('echo "$(id -u) $(id -g) $(id -G)"'), user });
    assert.equal(r.exitCode, 0, r.stderr);
    const [uid, gid, ...groups] = r.stdout.trim().split(' ').map(Number);
    return { uid, gid, groups: [...new Set(groups)].sort((a, b) => a - b) };
  };
  assert.deepEqual(await ids(), { uid: 0, gid: 0, groups: [0, 10] });
  assert.deepEqual(await ids('app'), { uid: 1000, gid: 1001, groups: [10, 999, 1001] });
  assert.deepEqual(await ids('1000'), { uid: 1000, gid: 1001, groups: [10, 999, 1001] });
  assert.deepEqual(await ids('app:docker'), { uid: 1000, gid: 999, groups: [999] });
  assert.deepEqual(await ids('app:77'), { uid: 1000, gid: 77, groups: [77] });
  assert.deepEqual(await ids('4242:4343'), { uid: 4242, gid: 4343, groups: [4343] });
  assert.deepEqual(await ids('4242:wheel'), { uid: 4242, gid: 10, groups: [10] });
});

test('an unknown user fails before anything runs', async (t) => {
  const env = await setup(t);
  if (!env) return;
  await assert.rejects(
    run(env, { args: ['true'], user: 'nobody2' }),
    (e) =>
      isDrayError(e, 'DRAY_BUILD') &&
      e.message === 'unable to find user nobody2: no matching entries in passwd file',
  );
  await assert.rejects(
    run(env, { args: ['true'], user: 'app:nogroup' }),
    (e) => isDrayError(e, 'DRAY_BUILD') && /unable to find group nogroup/.test(e.message),
  );
});

test('a symlinked /etc/passwd pointing outside the rootfs is not read from the host', async (t) => {
  const env = await setup(t);
  if (!env) return;
  const outside = await tempDir(t, 'dray-outside-');
  await writeFile(join(outside, 'passwd'), 'escapee:x:4242:4242::/home/escapee:/bin/sh\n');
  await rm(join(env.rootfs, 'etc', 'passwd'));
  await symlink(join(outside, 'passwd'), join(env.rootfs, 'etc', 'passwd'));
  await assert.rejects(
    run(env, { args: ['true'], user: 'escapee' }),
    (e) => isDrayError(e, 'DRAY_BUILD') && /unable to find user escapee/.test(e.message),
  );
  // Relative, climbing out.
  await rm(join(env.rootfs, 'etc', 'passwd'));
  await symlink(`../../../../../../..${outside}/passwd`, join(env.rootfs, 'etc', 'passwd'));
  await assert.rejects(
    run(env, { args: ['true'], user: 'escapee' }),
    (e) => isDrayError(e, 'DRAY_BUILD') && /unable to find user escapee/.test(e.message),
  );
});

test('network none has only loopback; host sees the host interfaces', async (t) => {
  const env = await setup(t);
  if (!env) return;
  const none = await run(env, { args: sh('ls /sys/class/net; cat /sys/class/net/lo/operstate') });
  assert.equal(none.stdout, 'lo\nunknown\n');
  const hostIfs = (await readdir('/sys/class/net')).sort();
  const host = await run(env, { args: ['ls', '-1', '/sys/class/net'], network: 'host' });
  assert.deepEqual(host.stdout.trim().split('\n').sort(), hostIfs);
  assert.ok(hostIfs.length > 1, 'the host has more than loopback, or this test proves nothing');
});

test('hostname, /etc/hosts and /etc/resolv.conf; their stubs leave the rootfs', async (t) => {
  const env = await setup(t);
  if (!env) return;
  const etcBefore = (await readdir(join(env.rootfs, 'etc'))).sort();
  const r = await run(env, { args: sh('hostname; cat /etc/hosts; grep -c ^nameserver /etc/resolv.conf') });
  const lines = r.stdout.split('\n');
  assert.deepEqual(lines.slice(0, 3), [
    'buildkitsandbox',
    '127.0.0.1\tlocalhost buildkitsandbox',
    '::1\tlocalhost ip6-localhost ip6-loopback',
  ]);
  assert.ok(Number(lines[3]) >= 1, 'resolv.conf has a nameserver');
  const named = await run(env, { args: sh('hostname; grep -c myhost /etc/hosts'), hostname: 'myhost' });
  assert.equal(named.stdout, 'myhost\n1\n');
  // The files are read-only binds.
  const write = await run(env, { args: sh('echo x >> /etc/hosts') });
  assert.notEqual(write.exitCode, 0);
  assert.deepEqual((await readdir(join(env.rootfs, 'etc'))).sort(), etcBefore, 'mount stubs removed');
});

test('bind mounts (ro and rw) and tmpfs', async (t) => {
  const env = await setup(t);
  if (!env) return;
  const src = await tempDir(t, 'dray-bind-');
  await writeFile(join(src, 'in.txt'), 'from host\n');
  const r = await run(env, {
    args: sh(
      [
        'cat /data/in.txt',
        'echo written > /data/out.txt',
        'cat /ro/in.txt',
        'echo nope > /ro/x 2>/dev/null || echo ro-refused',
        'echo tmp > /scratch/f && cat /scratch/f',
        'grep " /scratch " /proc/mounts',
      ].join(' && '),
    ),
    mounts: [
      { type: 'bind', source: src, destination: '/data' },
      { type: 'bind', source: src, destination: '/ro', readonly: true },
      { type: 'tmpfs', destination: '/scratch', size: 1 << 20 },
    ],
  });
  assert.equal(r.exitCode, 0, r.stderr);
  const lines = r.stdout.split('\n');
  assert.deepEqual(lines.slice(0, 4), ['from host', 'from host', 'ro-refused', 'tmp']);
  assert.match(lines[4] ?? '', /^tmpfs \/scratch tmpfs rw,nosuid,.*size=1024k/);
  assert.equal(await readFile(join(src, 'out.txt'), 'utf8'), 'written\n');
  // The mount targets did not exist: their stubs are gone, nothing written to the rootfs.
  for (const d of ['data', 'ro', 'scratch']) {
    await assert.rejects(stat(join(env.rootfs, d)), { code: 'ENOENT' });
  }
  // A target that existed stays.
  await mkdir(join(env.rootfs, 'data'));
  await run(env, { args: ['true'], mounts: [{ type: 'tmpfs', destination: '/data' }] });
  assert.ok((await stat(join(env.rootfs, 'data'))).isDirectory());
});

test("docker's capability set, no_new_privs, nofile limit", async (t) => {
  const env = await setup(t);
  if (!env) return;
  const r = await run(env, {
    args: sh('grep -E "^(Cap|NoNewPrivs)" /proc/self/status; ulimit -Sn; ulimit -Hn'),
  });
  const status = Object.fromEntries(
    r.stdout
      .split('\n')
      .filter((l) => l.includes(':'))
      .map((l) => l.split(/:\s*/) as [string, string]),
  );
  // CHOWN DAC_OVERRIDE FOWNER FSETID KILL SETGID SETUID SETPCAP NET_BIND_SERVICE NET_RAW
  // SYS_CHROOT MKNOD AUDIT_WRITE SETFCAP
  assert.equal(status.CapEff, '00000000a80425fb');
  assert.equal(status.CapPrm, '00000000a80425fb');
  assert.equal(status.CapBnd, '00000000a80425fb');
  assert.equal(status.CapInh, '0000000000000000');
  assert.equal(status.CapAmb, '0000000000000000');
  assert.equal(status.NoNewPrivs, '1');
  const [soft, hard] = r.stdout.trim().split('\n').slice(-2).map(Number);
  assert.equal(soft, hard);
  assert.ok(soft !== undefined && soft > 1024 && soft <= 1048576, `nofile ${soft}`);
});

test('a missing executable is a runtime error with runc message', async (t) => {
  const env = await setup(t);
  if (!env) return;
  await assert.rejects(
    run(env, { args: ['nosuch-binary', 'x'] }),
    (e) =>
      isDrayError(e, 'DRAY_RUNTIME') &&
      /exec: "nosuch-binary": executable file not found in \$PATH/.test(e.message),
  );
});

test('a missing runc binary is a runtime error with a hint', async (t) => {
  const env = await setup(t);
  if (!env) return;
  const ex = createRuncExecutor({ root: env.root, runc: '/nonexistent/runc' });
  await assert.rejects(
    ex.run({ rootfs: env.rootfs, args: ['true'], env: [] }),
    (e) =>
      isDrayError(e, 'DRAY_RUNTIME') &&
      /\/nonexistent\/runc/.test(e.message) &&
      /install runc/.test(e.hint ?? ''),
  );
});

/** Resolves once `marker` shows up on stdout. */
function waitOutput(marker: string): { output: ExecRequest['output']; seen: Promise<void> } {
  let text = '';
  let ready!: () => void;
  const seen = new Promise<void>((r) => (ready = r));
  return {
    output: (_s, c) => {
      text += c.toString();
      if (text.includes(marker)) ready();
    },
    seen,
  };
}

test('abort kills the container quickly and cleans up', async (t) => {
  const env = await setup(t);
  if (!env) return;
  const ac = new AbortController();
  const w = waitOutput('started');
  const p = env.ex.run({
    rootfs: env.rootfs,
    env: [],
    args: sh('echo started; exec sleep 100'),
    output: w.output,
    signal: ac.signal,
  });
  await w.seen;
  const t0 = Date.now();
  ac.abort();
  await assert.rejects(p, (e) => isDrayError(e, 'DRAY_ABORTED'));
  assert.ok(Date.now() - t0 < 3000, `abort took ${Date.now() - t0} ms`);
  // assertClean (t.after) checks runc list, bundles and mountinfo.

  // Aborting while runc is still starting the container, and before anything started.
  for (const delayMs of [0, 5, 30]) {
    const early = new AbortController();
    const q = env.ex.run({ rootfs: env.rootfs, env: [], args: ['sleep', '100'], signal: early.signal });
    setTimeout(() => early.abort(), delayMs);
    await assert.rejects(q, (e) => isDrayError(e, 'DRAY_ABORTED'));
    await assertClean(env.root);
  }
  await assert.rejects(
    env.ex.run({ rootfs: env.rootfs, env: [], args: ['true'], signal: AbortSignal.abort() }),
    (e) => isDrayError(e, 'DRAY_ABORTED'),
  );
});

test('a process killed by a signal reports 128 + signal', async (t) => {
  const env = await setup(t);
  if (!env) return;
  const w = waitOutput('started');
  const p = env.ex.run({
    rootfs: env.rootfs,
    env: [],
    args: sh('echo started; exec sleep 100'),
    output: w.output,
  });
  await w.seen;
  const [id] = await readdir(join(env.root, 'runc'));
  assert.ok(id, 'one container running');
  const state = await runChecked('runc', ['--root', join(env.root, 'runc'), 'state', id]);
  process.kill((JSON.parse(state.stdout) as { pid: number }).pid, 'SIGKILL');
  assert.deepEqual(await p, { exitCode: 137 });
});
