/**
 * Paths inside a container's root filesystem, resolved the way the container would see them:
 * symlinks are followed but can never leave the root (an absolute target starts again at the
 * root, `..` stops at it). containerd's `fs.RootPath` and filepath-securejoin do the same; the
 * build container is not running while these are used, so nothing races the resolution.
 */
import { constants } from 'node:fs';
import { chmod, chown, lstat, mkdir, open, readlink } from 'node:fs/promises';
import { join, posix } from 'node:path';
import { DrayError } from '../errors.ts';

/** Linux's own limit on symlinks followed in one lookup is 40; continuity allows 255. */
const maxSymlinks = 255;

function isMissing(e: unknown): boolean {
  const code = (e as NodeJS.ErrnoException).code;
  return code === 'ENOENT' || code === 'ENOTDIR';
}

/**
 * Host path of `path` (absolute or relative, as seen inside the container) under `root`,
 * following symlinks inside the root. Components that do not exist are appended as they are.
 * Does I/O (lstat, readlink). Throws DRAY_BUILD on a symlink loop.
 */
export async function resolveInRoot(root: string, path: string): Promise<string> {
  const done: string[] = [];
  const todo = path.split('/').reverse();
  let links = 0;
  while (todo.length > 0) {
    const part = todo.pop()!;
    if (part === '' || part === '.') continue;
    if (part === '..') {
      done.pop();
      continue;
    }
    const host = join(root, ...done, part);
    let isLink = false;
    try {
      isLink = (await lstat(host)).isSymbolicLink();
    } catch (e) {
      if (!isMissing(e)) throw e;
      // Nothing below a missing component can be a symlink: keep the rest as written.
      done.push(part);
      for (const rest of todo.reverse()) {
        if (rest === '..') done.pop();
        else if (rest !== '' && rest !== '.') done.push(rest);
      }
      break;
    }
    if (!isLink) {
      done.push(part);
      continue;
    }
    if (++links > maxSymlinks) {
      throw new DrayError('DRAY_BUILD', `resolving ${path} in ${root}: too many levels of symbolic links`);
    }
    const target = await readlink(host);
    if (target.startsWith('/')) done.length = 0;
    todo.push(...target.split('/').reverse());
  }
  return join(root, ...done);
}

/** Reads at most this much of /etc/passwd or /etc/group (BuildKit's limit too). */
export const maxUserFileBytes = 10 << 20;

/**
 * Contents of a small regular file inside the root (`/etc/passwd`), resolved with
 * resolveInRoot, so a symlink pointing outside the rootfs reads the rootfs's own file (or
 * nothing), never the host's. Resolves `undefined` when the file does not exist. Does I/O.
 * Throws DRAY_BUILD when it is not a regular file or is over `maxUserFileBytes`; other
 * fs errors pass through.
 */
export async function readFileInRoot(root: string, path: string): Promise<string | undefined> {
  const host = await resolveInRoot(root, path);
  let fh: Awaited<ReturnType<typeof open>>;
  try {
    // O_NOFOLLOW: the resolved path has no symlink left, unless something raced us.
    // O_NONBLOCK: a FIFO planted at /etc/passwd must not hang the build.
    fh = await open(host, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch (e) {
    if (isMissing(e)) return undefined;
    throw e;
  }
  try {
    const st = await fh.stat();
    if (!st.isFile()) throw new DrayError('DRAY_BUILD', `${path} in the rootfs is not a regular file`);
    if (st.size > maxUserFileBytes) {
      throw new DrayError('DRAY_BUILD', `${path} in the rootfs exceeds ${maxUserFileBytes} bytes`);
    }
    return await fh.readFile('utf8');
  } finally {
    await fh.close();
  }
}

/**
 * Creates directory `path` (as seen in the container) and its missing parents under `root`,
 * mode 0755 and owned by uid:gid, as BuildKit creates a missing working directory (only the
 * directories it creates are chowned). Symlinks on the way are followed inside the root.
 * Does I/O. Throws DRAY_BUILD when a component exists and is not a directory.
 */
export async function mkdirAllInRoot(root: string, path: string, uid: number, gid: number): Promise<void> {
  const host = await resolveInRoot(root, path);
  const rel = posix.relative(root, host);
  if (rel === '') return;
  let cur = root;
  for (const part of rel.split('/')) {
    cur = join(cur, part);
    let st: Awaited<ReturnType<typeof lstat>> | undefined;
    try {
      st = await lstat(cur);
    } catch (e) {
      if (!isMissing(e)) throw e;
    }
    if (st?.isDirectory()) continue;
    if (st)
      throw new DrayError(
        'DRAY_BUILD',
        `cannot create directory ${path}: ${posix.join('/', posix.relative(root, cur))} is not a directory`,
      );
    await mkdir(cur);
    // mkdir applies the umask; BuildKit ends with 0755 exactly.
    await chmod(cur, 0o755);
    await chown(cur, uid, gid);
  }
}
