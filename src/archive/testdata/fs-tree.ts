/**
 * Test helper: a comparable description of a directory tree (path, type, mode, uid/gid,
 * size, content hash, link target, device numbers, mtime, xattrs), read without following
 * symlinks. Not part of the library.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { lstatSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';

export interface TreeEntry {
  path: string;
  type: string;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  sha256?: string;
  link?: string;
  rdev?: number;
  mtime: number;
  /** inode, for hard-link checks only (not compared by `describe`). */
  ino: number;
}

function typeOf(st: ReturnType<typeof lstatSync> & object): string {
  if (st.isFile()) return 'file';
  if (st.isDirectory()) return 'dir';
  if (st.isSymbolicLink()) return 'symlink';
  if (st.isFIFO()) return 'fifo';
  if (st.isCharacterDevice()) return 'char';
  if (st.isBlockDevice()) return 'block';
  return 'other';
}

/** Every entry below `root` (the root itself as '.'), sorted by path. */
export function readTree(root: string, o: { skip?: (rel: string) => boolean } = {}): TreeEntry[] {
  const out: TreeEntry[] = [];
  const walk = (rel: string): void => {
    const abs = rel === '.' ? root : `${root}/${rel}`;
    const st = lstatSync(abs);
    const type = typeOf(st);
    const e: TreeEntry = {
      path: rel,
      type,
      mode: st.mode & 0o7777,
      uid: st.uid,
      gid: st.gid,
      size: type === 'file' ? st.size : 0,
      mtime: Math.floor(st.mtimeMs / 1000),
      ino: st.ino,
    };
    if (type === 'file') e.sha256 = createHash('sha256').update(readFileSync(abs)).digest('hex');
    if (type === 'symlink') e.link = readlinkSync(abs);
    if (type === 'char' || type === 'block') e.rdev = st.rdev;
    out.push(e);
    if (type === 'dir') {
      for (const name of readdirSync(abs).sort()) {
        const child = rel === '.' ? name : `${rel}/${name}`;
        if (o.skip?.(child)) continue;
        walk(child);
      }
    }
  };
  walk('.');
  return out.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}

/** One comparable line per entry (no inode numbers). */
export function describe(tree: readonly TreeEntry[], o: { mtime?: boolean } = {}): string[] {
  return tree.map((e) =>
    [
      e.path,
      e.type,
      e.mode.toString(8),
      `${e.uid}:${e.gid}`,
      e.size,
      e.sha256 ?? '',
      e.link ?? '',
      e.rdev ?? '',
      o.mtime === false || e.type === 'symlink' ? '' : e.mtime,
    ].join(' '),
  );
}

/** Extended attributes of one path (not following symlinks), via getfattr; undefined when getfattr is missing. */
export function getXattrs(path: string): Map<string, Buffer> | undefined {
  const r = spawnSync('getfattr', ['-h', '-d', '-m', '-', '-e', 'hex', '--absolute-names', path]);
  if (r.error) return undefined;
  const m = new Map<string, Buffer>();
  for (const line of r.stdout.toString().split('\n')) {
    const i = line.indexOf('=0x');
    if (line.startsWith('#') || i < 0) continue;
    m.set(line.slice(0, i), Buffer.from(line.slice(i + 3), 'hex'));
  }
  return m;
}

/** True when `cmd` runs. */
export function has(cmd: string, args: string[] = ['--version']): boolean {
  return !spawnSync(cmd, args).error;
}
