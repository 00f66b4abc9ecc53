/**
 * Users and groups of a root filesystem, looked up as docker build does: `USER`/`RUN` follow
 * BuildKit's `oci.GetUser` (moby/sys/user `GetExecUser`), `COPY --chown` follows BuildKit's
 * file-op `readUser`. The two differ on purpose (upstream they do too): an unknown name is an
 * error for USER but silently root for --chown.
 */
import { DrayError } from '../errors.ts';
import { readFileInRoot } from './root-path.ts';
import type { ResolvedUser } from './types.ts';

/** One /etc/passwd line. */
export interface PasswdEntry {
  name: string;
  uid: number;
  gid: number;
  home: string;
}

/** One /etc/group line. */
export interface GroupEntry {
  name: string;
  gid: number;
  members: string[];
}

/** moby/sys/user bounds ids to int32 for 32-bit systems. */
const maxId = 2 ** 31 - 1;

/** Go's `strconv.Atoi` with errors ignored, as moby/sys/user reads numeric fields (bad → 0). */
function atoiOrZero(s: string | undefined): number {
  if (s === undefined || !/^[+-]?\d+$/.test(s)) return 0;
  const n = Number(s);
  return Number.isSafeInteger(n) ? n : 0;
}

/**
 * Parses /etc/passwd text (`name:pass:uid:gid:gecos:home:shell`). Lines are trimmed, blank ones
 * skipped; like moby/sys/user, `#` is not a comment here and bad numbers read as 0. No I/O.
 */
export function parsePasswd(text: string): PasswdEntry[] {
  const out: PasswdEntry[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '') continue;
    const f = line.split(':');
    out.push({ name: f[0] ?? '', uid: atoiOrZero(f[2]), gid: atoiOrZero(f[3]), home: f[5] ?? '' });
  }
  return out;
}

/** Parses /etc/group text (`name:pass:gid:user,user`). Blank lines and `#` comments are skipped. No I/O. */
export function parseGroup(text: string): GroupEntry[] {
  const out: GroupEntry[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const f = line.split(':');
    const list = f[3] ?? '';
    out.push({ name: f[0] ?? '', gid: atoiOrZero(f[2]), members: list === '' ? [] : list.split(',') });
  }
  return out;
}

/** A user or group argument: a number (range-checked) or a name. */
interface IdArg {
  name: string;
  id?: number;
}

function rangeError(): DrayError {
  return new DrayError('DRAY_BUILD', `uids and gids must be in range 0-${maxId}`);
}

/** moby/sys/user `parseNumeric`: anything Atoi accepts is an id and must be in 0..2^31-1. */
function parseIdArg(s: string): IdArg {
  if (!/^[+-]?\d+$/.test(s)) return { name: s };
  const n = Number(s);
  if (!Number.isSafeInteger(n) || n < 0 || n > maxId) throw rangeError();
  return { name: s, id: n };
}

/** BuildKit's `ParseUIDGID` fast path: `root` or an unsigned 32-bit decimal. */
function fastId(s: string): number | undefined {
  if (s === 'root') return 0;
  if (!/^\+?\d+$/.test(s)) return undefined;
  const n = Number(s);
  return n <= 0xffffffff ? n : undefined;
}

/** Reads a user database file; on any failure to open it, `undefined`, as `GetUser` ignores it. */
async function readUserDb(rootfs: string, path: string): Promise<string | undefined> {
  try {
    return await readFileInRoot(rootfs, path);
  } catch (e) {
    if (e instanceof DrayError && /exceeds/.test(e.message)) throw e;
    return undefined;
  }
}

/**
 * Resolves a Dockerfile `USER` value in `rootfs` as BuildKit's runc executor does:
 * - `uid:gid` (numbers, or `root`, on both sides) is used as is, without reading any file and
 *   without supplementary groups;
 * - otherwise `user[:group]`: the user (name, or uid) is looked up in /etc/passwd — the first
 *   entry wins and gives uid, primary gid and home; a name must exist, a number need not (then
 *   gid 0); an explicit group (name or gid) replaces the gid, a name must exist in /etc/group;
 * - without an explicit group, the supplementary groups are the /etc/group entries listing the
 *   matched user's name;
 * - `undefined`/`''` is root (`0`), and never fails.
 * `home` is the matched passwd entry's (for `uid:gid`, the first entry with that uid), else `/`.
 * Files are read inside the rootfs (symlinks cannot reach the host's files).
 * Does I/O. Throws DRAY_BUILD: `unable to find user x: no matching entries in passwd file`,
 * `unable to find group x: no matching entries in group file`, ids out of range.
 */
export async function resolveUser(rootfs: string, user: string | undefined): Promise<ResolvedUser> {
  const spec = user === undefined || user === '' ? '0' : user;
  const colon = spec.indexOf(':');
  if (colon >= 0) {
    const uid = fastId(spec.slice(0, colon));
    const gid = fastId(spec.slice(colon + 1));
    if (uid !== undefined && gid !== undefined) {
      const passwd = await readUserDb(rootfs, '/etc/passwd').catch(() => undefined);
      const entry = passwd === undefined ? undefined : parsePasswd(passwd).find((u) => u.uid === uid);
      return { uid, gid, additionalGids: [], home: entry?.home || '/' };
    }
  }
  try {
    return await execUser(rootfs, spec);
  } catch (e) {
    // BuildKit: the default user (root) never fails the step.
    if (user === undefined || user === '') return { uid: 0, gid: 0, additionalGids: [], home: '/' };
    throw e;
  }
}

async function execUser(rootfs: string, spec: string): Promise<ResolvedUser> {
  const colon = spec.indexOf(':');
  const userPart = colon >= 0 ? spec.slice(0, colon) : spec;
  const groupPart = colon >= 0 ? spec.slice(colon + 1) : '';
  const userArg = userPart === '' ? undefined : parseIdArg(userPart);
  const groupArg = groupPart === '' ? undefined : parseIdArg(groupPart);

  const res: ResolvedUser = { uid: 0, gid: 0, additionalGids: [], home: '/' };
  const passwdText = await readUserDb(rootfs, '/etc/passwd');
  const users = passwdText === undefined ? [] : parsePasswd(passwdText);
  const match = users.find((u) =>
    userArg === undefined
      ? u.uid === 0
      : userArg.id !== undefined
        ? u.uid === userArg.id
        : u.name === userArg.name,
  );
  let matchedName = '';
  if (match) {
    matchedName = match.name;
    res.uid = match.uid;
    res.gid = match.gid;
    res.home = match.home || '/';
  } else if (userArg) {
    if (userArg.id === undefined) {
      throw new DrayError(
        'DRAY_BUILD',
        `unable to find user ${userArg.name}: no matching entries in passwd file`,
      );
    }
    res.uid = userArg.id;
  }

  if (groupArg === undefined && matchedName === '') return res;
  const groupText = await readUserDb(rootfs, '/etc/group');
  const groups = groupText === undefined ? [] : parseGroup(groupText);
  if (groupArg) {
    const g = groups.find((x) =>
      groupArg.id !== undefined ? x.gid === groupArg.id : x.name === groupArg.name,
    );
    if (g) res.gid = g.gid;
    else if (groupArg.id !== undefined) res.gid = groupArg.id;
    else
      throw new DrayError(
        'DRAY_BUILD',
        `unable to find group ${groupArg.name}: no matching entries in group file`,
      );
  } else {
    res.additionalGids = groups.filter((g) => g.members.includes(matchedName)).map((g) => g.gid);
  }
  return res;
}

/** `llb.WithUser`'s parseUID: `root`, or a signed 32-bit decimal (negatives are refused here). */
function chownId(s: string): number | undefined {
  if (s === 'root') return 0;
  if (!/^[+-]?\d+$/.test(s)) return undefined;
  const n = Number(s);
  if (n > maxId || n < -(2 ** 31)) return undefined; // out of int32: BuildKit treats it as a name
  if (n < 0) throw new DrayError('DRAY_BUILD', `invalid chown id ${s}: ${rangeError().message}`);
  return n;
}

/** Reads a user database for --chown: missing is "no entries", anything else unusable fails. */
async function readChownDb(rootfs: string, path: string): Promise<string | undefined> {
  try {
    return await readFileInRoot(rootfs, path);
  } catch (e) {
    if (e instanceof DrayError) throw e;
    throw new DrayError('DRAY_BUILD', `reading ${path} of the destination: ${(e as Error).message}`, {
      cause: e,
    });
  }
}

/**
 * Resolves `COPY --chown=<user>[:<group>]` (also ADD) in `rootfs` (the destination stage) as
 * BuildKit does (client/llb `WithUser` + solver `readUser`); pass the text after the first `:`
 * as `group`, `undefined` when there is no colon:
 * - user `root` or a number: uid = gid = that number (numbers need not exist);
 * - user name: uid and gid are those of its first /etc/passwd entry;
 * - group `root` or a number: gid = that number; group name: gid of its first /etc/group entry;
 * - a name with no entry (or no file) is **not** an error: BuildKit silently leaves the id at 0
 *   (the user) or at the user's gid (the group) — unlike `USER`, and unlike the classic builder,
 *   which failed with `can't find uid for user x`;
 * - an empty group (`user:`, moby/buildkit#3555) gives gid 0, as BuildKit does today.
 * The docs' "a username without group uses the same numeric UID as the GID" holds for UIDs only;
 * a username gets its passwd primary group. Files are read inside the rootfs. Does I/O.
 * Throws DRAY_BUILD when /etc/passwd or /etc/group is unreadable (not a regular file, over
 * 10 MiB) or an id is negative.
 */
export async function resolveChown(
  rootfs: string,
  user: string,
  group?: string,
): Promise<{ uid: number; gid: number }> {
  let uid = 0;
  let gid = 0;
  // BuildKit marshals an empty user name (`--chown=:group`) as id 0.
  const uidNum = user === '' ? 0 : chownId(user);
  if (uidNum !== undefined) {
    uid = uidNum;
    gid = uidNum;
  } else {
    const text = await readChownDb(rootfs, '/etc/passwd');
    const entry = text === undefined ? undefined : parsePasswd(text).find((u) => u.name === user);
    if (entry) {
      uid = entry.uid;
      gid = entry.gid;
    }
  }
  if (group !== undefined) {
    // BuildKit marshals an empty group name as id 0.
    const gidNum = group === '' ? 0 : chownId(group);
    if (gidNum !== undefined) {
      gid = gidNum;
    } else {
      const text = await readChownDb(rootfs, '/etc/group');
      const entry = text === undefined ? undefined : parseGroup(text).find((g) => g.name === group);
      if (entry) gid = entry.gid;
    }
  }
  return { uid, gid };
}
