import { spawn } from 'node:child_process';
import { lstat, readFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { abortError, DrayError } from '../errors.ts';

/**
 * The host tools the snapshotters drive: `mount`/`umount` (Node has no mount syscalls),
 * `cp -a` and `rm -rf` (one process per tree instead of one fs call per file on this thread),
 * `sync -f` (syncfs) and the kernel's mount table. Each runs as one child process; a
 * snapshot operation spawns a handful, never one per file.
 */

/** What a finished tool run printed. */
interface ToolResult {
  code: number | null;
  stderr: string;
}

/** Keeps every command line well below ARG_MAX. */
const MAX_ARG_BYTES = 96 * 1024;

function runTool(
  cmd: string,
  args: readonly string[],
  o: { cwd?: string; signal?: AbortSignal | undefined } = {},
): Promise<ToolResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, {
      stdio: ['ignore', 'ignore', 'pipe'],
      env: { PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin', LC_ALL: 'C' },
      ...(o.cwd ? { cwd: o.cwd } : {}),
      ...(o.signal ? { signal: o.signal } : {}),
    });
    const err: Buffer[] = [];
    child.stderr.on('data', (b: Buffer) => err.push(b));
    child.on('error', (e: NodeJS.ErrnoException) => {
      if (o.signal?.aborted) reject(abortError(o.signal, cmd));
      else if (e.code === 'ENOENT')
        reject(
          new DrayError('DRAY_CONFIG', `${cmd} not found`, {
            cause: e,
            hint: `install ${cmd} (util-linux / coreutils) and put it on PATH`,
          }),
        );
      else reject(new DrayError('DRAY_INTERNAL', `${cmd}: ${e.message}`, { cause: e }));
    });
    child.on('close', (code) => {
      if (o.signal?.aborted) return reject(abortError(o.signal, cmd));
      resolve({ code, stderr: Buffer.concat(err).toString('utf8').trim() });
    });
  });
}

function firstLines(s: string): string {
  return s.split('\n').slice(0, 2).join(' ').trim();
}

/**
 * Mounts `fstype` at `target` (absolute) with `options` (`-o`), running `mount` in `cwd` so
 * that relative paths in the options resolve against it. Does I/O.
 * @throws DRAY_SNAPSHOT with mount's message; DRAY_CONFIG when `mount` is missing.
 */
export async function mountFs(
  fstype: string,
  options: string,
  target: string,
  o: { cwd?: string; signal?: AbortSignal | undefined } = {},
): Promise<void> {
  const r = await runTool('mount', ['-t', fstype, '-o', options, fstype, target], o);
  if (r.code !== 0) {
    throw new DrayError('DRAY_SNAPSHOT', `mount ${fstype} on ${target}: ${firstLines(r.stderr)}`, {
      hint: 'the kernel logs the reason (dmesg); the snapshotter needs root and overlayfs, or use the copy snapshotter',
    });
  }
}

/**
 * Unmounts `target`. A busy mount is retried for about a second, then detached lazily
 * (`umount -l`) so a leftover process cannot pin the snapshot forever. Not being mounted
 * counts as success. Does I/O.
 * @throws DRAY_SNAPSHOT when the mount stays.
 */
export async function unmount(target: string): Promise<void> {
  let delay = 10;
  for (let attempt = 0; ; attempt++) {
    const lazy = attempt >= 6;
    const r = await runTool('umount', lazy ? ['-l', target] : [target]);
    if (r.code === 0 || !(await isMountPoint(target))) return;
    if (lazy) throw new DrayError('DRAY_SNAPSHOT', `umount ${target}: ${firstLines(r.stderr)}`);
    await sleep(delay);
    delay *= 2;
  }
}

/** Decodes mountinfo's octal escapes (`\040` for a space…). */
function unescapeMountinfo(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_m, o: string) => String.fromCharCode(Number.parseInt(o, 8)));
}

/** The mount points of this process's mount namespace, in mount order. Does I/O. */
export async function mountPoints(): Promise<string[]> {
  const text = await readFile('/proc/self/mountinfo', 'utf8');
  const out: string[] = [];
  for (const line of text.split('\n')) {
    const f = line.split(' ');
    if (f.length > 4) out.push(unescapeMountinfo(f[4] as string));
  }
  return out;
}

/** Mount points at or below `dir`, deepest (last mounted) first. Does I/O. */
export async function mountsUnder(dir: string): Promise<string[]> {
  const prefix = dir.endsWith('/') ? dir : `${dir}/`;
  return (await mountPoints()).filter((m) => m === dir || m.startsWith(prefix)).reverse();
}

async function isMountPoint(path: string): Promise<boolean> {
  return (await mountPoints()).includes(path);
}

/**
 * Removes trees with one `rm -rf --one-file-system` (never crossing into a mount that is
 * still there). Entries that are not writable (an unprivileged copy of a read-only directory)
 * are made writable and the removal retried. Missing paths are fine. Does I/O.
 * @throws DRAY_SNAPSHOT when something stays.
 */
export async function removeTrees(paths: readonly string[]): Promise<void> {
  const present = (
    await Promise.all(
      paths.map(async (p) =>
        (await lstat(p).then(
          () => true,
          () => false,
        ))
          ? p
          : undefined,
      ),
    )
  ).filter((p) => p !== undefined);
  for (const batch of batches(present)) {
    let r = await runTool('rm', ['-rf', '--one-file-system', '--', ...batch]);
    if (r.code !== 0) {
      await runTool('chmod', ['-R', 'u+rwX', '--', ...batch]);
      r = await runTool('rm', ['-rf', '--one-file-system', '--', ...batch]);
    }
    if (r.code !== 0)
      throw new DrayError('DRAY_SNAPSHOT', `cannot remove ${batch[0]}: ${firstLines(r.stderr)}`);
  }
}

function* batches(paths: readonly string[]): Generator<string[]> {
  let batch: string[] = [];
  let bytes = 0;
  for (const p of paths) {
    batch.push(p);
    bytes += Buffer.byteLength(p) + 1;
    if (bytes >= MAX_ARG_BYTES) {
      yield batch;
      batch = [];
      bytes = 0;
    }
  }
  if (batch.length > 0) yield batch;
}

/**
 * Copies the tree `src` to the new path `dst` with everything an image tree needs (modes,
 * owners, nanosecond times, xattrs, hard links, devices): `cp -a --reflink=auto`, which
 * shares extents on btrfs/xfs. Does I/O.
 * @throws DRAY_SNAPSHOT; DRAY_ABORTED (the copy is killed; `dst` is left for the caller).
 */
export async function copyTree(src: string, dst: string, signal?: AbortSignal): Promise<void> {
  const r = await runTool('cp', ['-a', '--reflink=auto', '--', src, dst], { signal });
  if (r.code !== 0)
    throw new DrayError('DRAY_SNAPSHOT', `copy ${src} to ${dst}: ${firstLines(r.stderr)}`, {
      hint: 'check free space and that the snapshot root is writable',
    });
}

/**
 * Flushes the filesystem holding `path` (`sync -f`, syncfs(2)): one call makes a whole
 * unpacked tree durable before it is renamed into place. Does I/O.
 * @throws DRAY_SNAPSHOT.
 */
export async function syncFilesystem(path: string): Promise<void> {
  const r = await runTool('sync', ['-f', '--', path]);
  if (r.code !== 0) throw new DrayError('DRAY_SNAPSHOT', `sync ${path}: ${firstLines(r.stderr)}`);
}

/**
 * Removes one extended attribute from each path (`setfattr -h -x`). Missing attributes are
 * fine. Does I/O.
 */
export async function removeXattr(name: string, paths: readonly string[]): Promise<void> {
  for (const p of paths) {
    const r = await runTool('setfattr', ['-h', '-x', name, '--', p]);
    if (r.code !== 0 && !/No such attribute/i.test(r.stderr))
      throw new DrayError('DRAY_SNAPSHOT', `remove ${name} from ${p}: ${firstLines(r.stderr)}`);
  }
}

/**
 * Sets an extended attribute (`setfattr -h -n -v`). Does I/O.
 * @throws DRAY_SNAPSHOT with setfattr's message.
 */
export async function setXattr(path: string, name: string, value: string): Promise<void> {
  const r = await runTool('setfattr', ['-h', '-n', name, '-v', value, '--', path]);
  if (r.code !== 0) throw new DrayError('DRAY_SNAPSHOT', `set ${name} on ${path}: ${firstLines(r.stderr)}`);
}
