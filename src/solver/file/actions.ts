import { constants } from 'node:fs';
import { chmod, lchown, lstat, mkdir, open, realpath, rm, symlink } from 'node:fs/promises';
import { DrayError, throwIfAborted } from '../../errors.ts';
import type { Chown, FileAction, MkdirAction, MkfileAction, RmAction, SymlinkAction } from '../ops.ts';
import { parseMode } from './chmod.ts';
import { resolveChownInRoot } from './chown.ts';
import { type CopyEnv, copyAction } from './copy.ts';
import { fsError, mkdirAll, type Owner, setFixedTime } from './fsops.ts';
import { Limiter } from './limit.ts';
import { cleanPath } from './patterns.ts';
import { cleanActionPath, joinRel, resolveInRoot, splitPath } from './rootpath.ts';
import { type FileTree, lstatMeta, TreeView } from './tree.ts';

/** Options for {@link applyFileActions}. */
export interface ApplyFileActionsOptions {
  signal?: AbortSignal;
  /**
   * Turns a `--chown` into ids. Default: {@link resolveChownInRoot} on the destination as
   * it is when the action runs (BuildKit reads the destination's /etc/passwd and /etc/group).
   */
  resolveChown?: (chown: Chown) => Promise<{ uid: number; gid: number }>;
  /** Called for what could not be carried over (extended attributes the file system refused). */
  onWarning?: (message: string) => void;
}

/** Parallel file system requests in flight (the libuv pool has 4 threads; a queue keeps them busy). */
const PARALLEL = 32;

/**
 * Applies file actions in order to the directory `dest` (the root of the result, e.g. a
 * mounted writable snapshot), with BuildKit's FileOp semantics. Every path is resolved
 * inside its root as in a chroot: symlinks in `dest` and in sources never lead outside,
 * and `..` cannot climb above a root. `inputs(i)` gives the tree behind a copy's `input`.
 * Does I/O.
 * @throws DRAY_BUILD for what BuildKit refuses (`"/x": not found`, a directory copied onto
 *   a file, a missing parent without createDestPath or makeParents, rm of a missing path…),
 *   DRAY_INVALID_ARGUMENT (bad pattern or chmod), DRAY_INVALID_ARCHIVE / DRAY_UNSAFE_ARCHIVE
 *   (ADD of a broken archive), DRAY_NO_SPACE, DRAY_ABORTED.
 */
export async function applyFileActions(
  dest: string,
  actions: readonly FileAction[],
  inputs: (index: number) => FileTree,
  o: ApplyFileActionsOptions = {},
): Promise<void> {
  let destRoot: string;
  try {
    destRoot = await realpath(dest);
    if (!(await lstat(destRoot)).isDirectory()) throw new Error('not a directory');
  } catch (e) {
    throw new DrayError('DRAY_INVALID_ARGUMENT', `file actions: destination ${dest} is not a directory`, {
      cause: e,
    });
  }
  const privileged = process.getuid?.() === 0;
  const resolveChown = o.resolveChown ?? ((c: Chown) => resolveChownInRoot(destRoot, c));
  const owner = async (c: Chown | undefined): Promise<Owner | undefined> =>
    c ? await resolveChown(c) : undefined;
  const views = new Map<number, Promise<TreeView>>();
  const view = (i: number): Promise<TreeView> => {
    let v = views.get(i);
    if (!v) {
      v = TreeView.open(inputs(i));
      views.set(i, v);
    }
    return v;
  };
  for (const action of actions) {
    throwIfAborted(o.signal, 'file actions');
    switch (action.action) {
      case 'copy': {
        const chowned = await owner(action.chown);
        const env: CopyEnv = {
          destRoot,
          limiter: new Limiter(PARALLEL, o.signal, 'copy'),
          privileged,
          warnings: [],
          ...(chowned ? { owner: chowned } : {}),
          ...(action.chmod !== undefined && action.chmod !== '' ? { mode: parseMode(action.chmod) } : {}),
          ...(action.mtime !== undefined ? { time: action.mtime } : {}),
          ...(o.signal ? { signal: o.signal } : {}),
        };
        await copyAction(env, action, await view(action.input));
        for (const w of env.warnings) o.onWarning?.(w);
        break;
      }
      case 'mkdir':
        await mkdirAction(destRoot, action, await owner(action.chown));
        break;
      case 'mkfile':
        await mkfileAction(destRoot, action, await owner(action.chown));
        break;
      case 'rm':
        await rmAction(destRoot, action);
        break;
      case 'symlink':
        await symlinkAction(destRoot, action, await owner(action.chown));
        break;
      default:
        throw new DrayError('DRAY_INVALID_ARGUMENT', `unknown file action ${JSON.stringify(action)}`);
    }
  }
}

function abs(root: string, rel: string): string {
  return rel === '' ? root : `${root}/${rel}`;
}

/** BuildKit's mkdir: with makeParents, fsutil's MkdirAll; without, one mkdir and an existing path is fine. */
async function mkdirAction(root: string, a: MkdirAction, owner: Owner | undefined): Promise<void> {
  const rel = await resolveInRoot(root, a.path, { followFinal: true });
  const perm = a.mode & 0o777;
  if (a.makeParents) {
    await mkdirAll(root, rel, {
      perm,
      ...(owner ? { owner } : {}),
      ...(a.mtime !== undefined ? { time: a.mtime } : {}),
    });
    return;
  }
  const p = abs(root, rel);
  try {
    await mkdir(p, perm);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') return;
    throw fsError(e, `mkdir ${cleanPath(`/${a.path}`)}`);
  }
  try {
    await chmod(p, perm);
    if (owner) await lchown(p, owner.uid, owner.gid);
    if (a.mtime !== undefined) await setFixedTime(p, a.mtime);
  } catch (e) {
    throw fsError(e, `mkdir ${cleanPath(`/${a.path}`)}`);
  }
}

/** BuildKit's mkfile (os.WriteFile): creates or truncates; an existing file keeps its mode. */
async function mkfileAction(root: string, a: MkfileAction, owner: Owner | undefined): Promise<void> {
  const rel = await resolveInRoot(root, a.path, { followFinal: true });
  const p = abs(root, rel);
  const shown = cleanPath(`/${a.path}`);
  try {
    const existed = (await lstatMeta(p)) !== undefined;
    // NOFOLLOW: the path was resolved inside the root; never write through a symlink put there since.
    const fh = await open(
      p,
      constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC | constants.O_NOFOLLOW,
      a.mode & 0o777,
    );
    try {
      await fh.writeFile(a.data);
      if (!existed) await fh.chmod(a.mode & 0o777);
    } finally {
      await fh.close();
    }
    if (owner) await lchown(p, owner.uid, owner.gid);
    if (a.mtime !== undefined) await setFixedTime(p, a.mtime);
  } catch (e) {
    throw fsError(e, `mkfile ${shown}`);
  }
}

/** BuildKit's rm: the parent is resolved inside the root, the last component is removed (never followed). */
async function rmAction(root: string, a: RmAction): Promise<void> {
  if (a.allowWildcard) {
    const view = await TreeView.open({ root });
    for (const m of await view.wildcard(cleanActionPath(a.path), false))
      await rmPath(root, m.path, a.allowNotFound === true);
    return;
  }
  await rmPath(root, a.path, a.allowNotFound === true);
}

async function rmPath(root: string, path: string, allowNotFound: boolean): Promise<void> {
  const p = cleanPath(`/${path}`);
  const { dir, base } = splitPath(p);
  if (base === '')
    throw new DrayError('DRAY_BUILD', 'rmPath: invalid empty path', { hint: 'rm of / is not allowed' });
  const rel = joinRel(await resolveInRoot(root, dir, { followFinal: true }), base);
  // BuildKit stats the path, following a final symlink on the host; a link that is there counts
  // as there here, whatever it points to.
  if (!allowNotFound && !(await lstatMeta(abs(root, rel)))) {
    throw new DrayError('DRAY_BUILD', `stat ${p}: no such file or directory`, {
      hint: 'allow a missing path (allowNotFound) or check the path',
    });
  }
  try {
    await rm(abs(root, rel), { recursive: true, force: true });
  } catch (e) {
    throw fsError(e, `rm ${p}`);
  }
}

/** BuildKit's symlink: the link's path is resolved inside the root; the target is stored as given. */
async function symlinkAction(root: string, a: SymlinkAction, owner: Owner | undefined): Promise<void> {
  const rel = await resolveInRoot(root, a.path, { followFinal: true });
  const p = abs(root, rel);
  try {
    await symlink(a.target, p);
    if (owner) await lchown(p, owner.uid, owner.gid);
    if (a.mtime !== undefined) await setFixedTime(p, a.mtime);
  } catch (e) {
    throw fsError(e, `symlink ${a.target} ${cleanPath(`/${a.path}`)}`);
  }
}
