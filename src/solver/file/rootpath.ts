import { lstat, readlink } from 'node:fs/promises';
import { DrayError } from '../../errors.ts';
import { cleanPath } from './patterns.ts';

/**
 * Paths inside a root directory treated like a chroot (containerd/continuity's
 * `fs.RootPath`): symlinks met on the way are followed, absolute targets restart at the
 * root, and `..` never climbs above it. Nothing outside the root is ever looked at.
 */

/** Linux follows at most 40 links per lookup; continuity allows 255. */
const MAX_LINKS = 255;

/** What a resolution reports for each symlink it followed (relative to the root). */
export type OnSymlink = (rel: string) => void;

/**
 * Resolves `path` (absolute or relative, interpreted from the root) inside `root`, following
 * symlinks as if `root` were `/`. With `followFinal: false` the last component is kept as
 * it is (so a symlink there is not followed). Components that do not exist are kept
 * lexically. Returns the path relative to `root` ('' for the root itself, no leading '/').
 * Does I/O (lstat, readlink inside `root` only).
 * @throws DRAY_BUILD for a symlink loop; fs errors other than ENOENT/ENOTDIR pass through.
 */
export async function resolveInRoot(
  root: string,
  path: string,
  o: { followFinal: boolean; onSymlink?: OnSymlink },
): Promise<string> {
  const done: string[] = [];
  let todo = splitClean(path);
  let links = 0;
  let missing = false;
  while (todo.length > 0) {
    const c = todo.shift() as string;
    if (c === '..') {
      done.pop();
      continue;
    }
    const last = todo.length === 0;
    if (missing || (last && !o.followFinal)) {
      done.push(c);
      continue;
    }
    const rel = done.length === 0 ? c : `${done.join('/')}/${c}`;
    let isLink = false;
    try {
      isLink = (await lstat(`${root}/${rel}`)).isSymbolicLink();
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code !== 'ENOENT' && code !== 'ENOTDIR') throw e;
      // Missing from here on: the rest is kept as written (only '..' still applies).
      missing = true;
    }
    if (!isLink) {
      done.push(c);
      continue;
    }
    if (++links > MAX_LINKS) {
      throw new DrayError('DRAY_BUILD', `/${rel}: too many levels of symbolic links`);
    }
    o.onSymlink?.(rel);
    const target = await readlink(`${root}/${rel}`);
    if (target.startsWith('/')) done.length = 0;
    todo = [...target.split('/').filter((s) => s !== '' && s !== '.'), ...todo];
  }
  return done.join('/');
}

/** The components of a path after Go's `filepath.Clean` from '/', so '..' cannot climb above the root. */
function splitClean(path: string): string[] {
  const p = cleanPath(`/${path}`);
  return p === '/' ? [] : p.slice(1).split('/');
}

/**
 * BuildKit's `cleanPath` for action paths: absolute and cleaned, keeping a trailing '/'
 * (and a trailing '/.'), which mean "a directory" to COPY. Pure.
 */
export function cleanActionPath(s: string): string {
  let out = cleanPath(`/${s}`);
  if (s.endsWith('/.')) {
    if (out !== '/') out += '/';
    out += '.';
  } else if (s.endsWith('/') && out !== '/') out += '/';
  return out;
}

/** `dir` and `base` of a '/'-separated path (Go's `filepath.Split`: dir keeps its trailing '/'). Pure. */
export function splitPath(p: string): { dir: string; base: string } {
  const i = p.lastIndexOf('/');
  return { dir: p.slice(0, i + 1), base: p.slice(i + 1) };
}

/** Joins a path relative to a root ('' = the root) with a name. Pure. */
export function joinRel(rel: string, name: string): string {
  return rel === '' ? name : `${rel}/${name}`;
}

/** The name of a cleaned path's last component ('/' for the root). Pure. */
export function baseName(p: string): string {
  const c = cleanPath(p);
  if (c === '/') return '/';
  return c.slice(c.lastIndexOf('/') + 1);
}
