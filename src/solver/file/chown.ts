import { open } from 'node:fs/promises';
import type { Chown } from '../ops.ts';
import { resolveInRoot } from './rootpath.ts';

/** BuildKit refuses passwd/group files larger than this. */
const MAX_USER_FILE = 10 << 20;

/**
 * BuildKit's `readUser` for `--chown`: a numeric user is its own uid and gid; a name is
 * looked up in `<root>/etc/passwd` (uid and primary gid); a group, numeric or looked up in
 * `<root>/etc/group`, overrides the gid. A name that is not found (or a missing file) gives
 * 0, as in BuildKit. The files are read inside `root` (symlinks resolved as in a chroot).
 * Does I/O.
 */
export async function resolveChownInRoot(root: string, chown: Chown): Promise<{ uid: number; gid: number }> {
  let uid = 0;
  let gid = 0;
  if (/^\d+$/.test(chown.user)) {
    uid = Number(chown.user);
    gid = uid;
  } else if (chown.user !== '') {
    const entry = (await readDb(root, '/etc/passwd')).find((f) => f[0] === chown.user);
    if (entry) {
      uid = toId(entry[2]);
      gid = toId(entry[3]);
    }
  }
  if (chown.group !== undefined && chown.group !== '') {
    if (/^\d+$/.test(chown.group)) gid = Number(chown.group);
    else {
      const entry = (await readDb(root, '/etc/group')).find((f) => f[0] === chown.group);
      if (entry) gid = toId(entry[2]);
    }
  }
  return { uid, gid };
}

function toId(s: string | undefined): number {
  const n = Number(s);
  return Number.isInteger(n) && n >= 0 ? n : 0;
}

/** The colon-separated lines of a passwd/group file (comments and blank lines skipped); none when missing. */
async function readDb(root: string, path: string): Promise<string[][]> {
  const rel = await resolveInRoot(root, path, { followFinal: true });
  let text: string;
  try {
    const fh = await open(`${root}/${rel}`, 'r');
    try {
      const st = await fh.stat();
      if (!st.isFile()) return [];
      const buf = Buffer.alloc(Math.min(st.size, MAX_USER_FILE));
      const { bytesRead } = await fh.read(buf, 0, buf.length, 0);
      text = buf.subarray(0, bytesRead).toString('utf8');
    } finally {
      await fh.close();
    }
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return [];
    throw e;
  }
  return text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'))
    .map((l) => l.split(':'));
}
