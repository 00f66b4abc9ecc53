import { chmod, mkdir, unlink } from 'node:fs/promises';
import { DrayError, throwIfAborted } from '../../errors.ts';
import type { CopyAction } from '../ops.ts';
import { applyMode, type ModeSpec } from './chmod.ts';
import { extractArchive, isArchive } from './extract.ts';
import { runJobs } from './fs-pool.ts';
import type { Job, Times } from './fs-worker.ts';
import { fsError, makeNode, mkdirAll, nsToSeconds, type Owner, setFixedTime } from './fsops.ts';
import { type Limiter, settleAll } from './limit.ts';
import { lstatMeta } from './meta.ts';
import { cleanPath, createPathFilter } from './patterns.ts';
import { baseName, cleanActionPath, joinRel, resolveInRoot, splitPath } from './rootpath.ts';
import { notFound, type ScanNode, type TreeView } from './tree.ts';
import { readXattrs, writeXattrs, type XattrIndex } from './xattr.ts';

/**
 * One COPY action with BuildKit's semantics (solver/llbsolver/file `docopy` over
 * tonistiigi/fsutil `copy.Copy`): wildcard expansion, "into a directory" rules, directory
 * contents, include/exclude patterns, hard links, ownership, modes, timestamps and
 * extended attributes, ADD's archive extraction. Writes only inside the destination root:
 * its path is resolved like a chroot and nothing below it is followed.
 */

/** What every copy of one action shares. */
export interface CopyEnv {
  /** Real path of the destination root. */
  destRoot: string;
  /** `--chown`, resolved. */
  owner?: Owner;
  mode?: ModeSpec;
  /** Fixed timestamp (epoch seconds) for everything copied. */
  time?: number;
  limiter: Limiter;
  signal?: AbortSignal;
  /** Running as root: ownership is copied (otherwise only an explicit owner is set). */
  privileged: boolean;
  /** Things that were skipped (extended attributes that could not be set). */
  warnings: string[];
}

/**
 * Applies one copy action from `src` into the destination root. Does I/O.
 * @throws DRAY_BUILD (`"/x": not found`, "cannot copy to non-directory", …), DRAY_NO_SPACE, DRAY_ABORTED.
 */
export async function copyAction(env: CopyEnv, action: CopyAction, src: TreeView): Promise<void> {
  const srcPath = cleanActionPath(action.src);
  const destPath = cleanActionPath(action.dest);
  if (!action.createDestPath) {
    // BuildKit only checks that the destination's parent exists; it is not created.
    const p = await resolveInRoot(env.destRoot, action.dest, { followFinal: true });
    const parent = p.includes('/') ? p.slice(0, p.lastIndexOf('/')) : '';
    if (!(await lstatMeta(abs(env.destRoot, parent)))) {
      throw new DrayError(
        'DRAY_BUILD',
        `failed to stat ${action.dest}: lstat /${parent}: no such file or directory`,
        { hint: 'create the destination directory first' },
      );
    }
  }
  // COPY --parents: paths the user named must exist even though `include` narrows the copy.
  for (const required of action.requiredPaths ?? []) {
    const p = cleanActionPath(required);
    const found = /[*?[]/.test(p)
      ? (await src.wildcard(p, false)).length > 0
      : Boolean(await src.resolve(p, false));
    if (!found) throw notFound(p);
  }
  const matches = action.allowWildcard
    ? (await src.wildcard(srcPath, action.followSymlinks === true)).map((m) => m.path)
    : [srcPath];
  if (matches.length === 0) {
    if (action.allowEmptyWildcard) return;
    throw notFound(srcPath);
  }
  // `COPY --exclude=*.txt hom* /d/`: the patterns also drop wildcard matches themselves
  // (the reference's example), not only paths under a copied directory.
  const own =
    action.allowWildcard && action.exclude?.length ? createPathFilter(undefined, action.exclude) : undefined;
  for (const m of matches) {
    if (own && /[*?[]/.test(srcPath)) {
      const rel = m.replace(/^\/+/, '');
      const meta = await src.resolve(m, false);
      if (rel !== '' && !own.matches(rel, meta?.meta.kind === 'dir')) continue;
    }
    throwIfAborted(env.signal, 'copy');
    if (action.extractArchive) {
      const top = await src.resolve(m, true);
      if (top && top.meta.kind === 'file' && (await isArchive(src.abs(top.rel)))) {
        await extractArchive(env, src.abs(top.rel), destPath);
        continue;
      }
    }
    await copyOne(env, action, src, m, destPath);
  }
}

function abs(root: string, rel: string): string {
  return rel === '' ? root : `${root}/${rel}`;
}

/** fsutil `Copy` for one source path. */
async function copyOne(env: CopyEnv, action: CopyAction, src: TreeView, from: string, destPath: string) {
  const dirPerm = env.mode?.kind === 'octal' ? env.mode.mode & 0o777 : 0o755;
  const mk = {
    perm: dirPerm,
    ...(env.owner ? { owner: env.owner } : {}),
    ...(env.time !== undefined ? { time: env.time } : {}),
  };
  // The destination's parent (or the destination itself, when it ends in '/') must exist.
  const { base } = splitPath(destPath);
  const ensure = base !== '' && base !== '.' ? destPath.slice(0, destPath.length - base.length) : destPath;
  const created = await mkdirAll(
    env.destRoot,
    await resolveInRoot(env.destRoot, ensure, { followFinal: true }),
    mk,
  );
  let dst = await resolveInRoot(env.destRoot, cleanPath(destPath), { followFinal: true });

  const top = await src.resolve(from, action.followSymlinks === true);
  if (!top) throw notFound(cleanPath(`/${from}`));
  const srcIsDir = top.meta.kind === 'dir';
  const destMeta = await lstatMeta(abs(env.destRoot, dst));
  const name = baseName(`/${from}`);
  if (
    ((!action.dirCopyContents && srcIsDir && destMeta) || (!srcIsDir && destMeta?.kind === 'dir')) &&
    name !== '/'
  ) {
    dst = joinRel(dst, name);
  }
  const target =
    action.dirCopyContents && srcIsDir && !destMeta
      ? dst
      : dst.includes('/')
        ? dst.slice(0, dst.lastIndexOf('/'))
        : '';
  created.push(...(await mkdirAll(env.destRoot, target, mk)));

  const action_ =
    action.include?.length || action.exclude?.length
      ? createPathFilter(action.include, action.exclude)
      : undefined;
  // Without filters, one recursive getfattr runs while the workers list the tree; with
  // them, only the kept paths are read (an excluded node_modules is not walked).
  const filtered = action_ !== undefined || src.filter !== undefined;
  const whole = filtered ? undefined : readXattrs([src.abs(top.rel)], srcIsDir);
  whole?.catch(() => {});
  const tree = await src.scan(top, {
    ...(action_ ? { action: action_ } : {}),
    ...(env.signal ? { signal: env.signal } : {}),
  });
  const xattrs = whole ?? readXattrs(allPaths(tree), false);
  const c = new Copier(env, await xattrs);
  // A destination this copy just made is empty: nothing can be in the way below it.
  await c.copy(tree, dst, created.includes(dst));
  env.warnings.push(...(await writeXattrs(c.xattrs)));
  if (env.time !== undefined) {
    // Creating their contents moved the created directories' mtimes: set them again.
    for (const d of created.reverse()) await setFixedTime(abs(env.destRoot, d), env.time);
  }
}

/** What the directory pass found for one directory. */
interface DirState {
  /** Made by this copy (fsutil's `created`: decides which metadata it gets). */
  created: boolean;
  /** Known empty and without setgid when the pass started: its entries need no checks. */
  fresh: boolean;
}

/**
 * The copy of one scanned tree (fsutil's copier), in passes: directories top-down (made,
 * or checked and re-moded when they exist), then every other entry as batched jobs on the
 * file workers, then hard links to their first copies, then the directories' metadata
 * (last, since creating their contents moved their mtimes).
 */
class Copier {
  readonly #env: CopyEnv;
  readonly #srcXattrs: XattrIndex;
  readonly xattrs: { path: string; xattrs: Map<string, Buffer> }[] = [];
  readonly #uid = process.geteuid?.() ?? -1;
  readonly #gid = process.getegid?.() ?? -1;
  readonly #dirs = new Map<ScanNode, DirState>();

  constructor(env: CopyEnv, srcXattrs: XattrIndex) {
    this.#env = env;
    this.#srcXattrs = srcXattrs;
  }

  async copy(root: ScanNode, dst: string, dstFresh: boolean): Promise<void> {
    const env = this.#env;
    if (root.meta.kind === 'dir') await this.#makeDirs(root, dst, false, false, dstFresh);
    const jobs: Job[] = [];
    const links: Job[] = [];
    const metas: Job[] = [];
    const specials: { n: ScanNode; rel: string; fresh: boolean }[] = [];
    /** First copy of each multiply-linked source inode, in walk order (fsutil's inode map). */
    const inodes = new Map<string, string>();
    const walk = (n: ScanNode, rel: string, overwrite: boolean, fresh: boolean): void => {
      const target = abs(env.destRoot, rel);
      if (n.meta.kind === 'dir') {
        const st = this.#dirs.get(n) as DirState;
        for (const c of n.children ?? []) walk(c, joinRel(rel, lastName(c.rel)), true, st.fresh);
        if (n.include && (overwrite || st.created)) metas.push(this.#metaJob(n, target, fresh, false));
        else if (n.include) metas.push({ t: 'meta', dst: target, times: this.#timesOf(n) });
        else if (st.created) metas.push(this.#metaJob(n, target, fresh, false));
        return;
      }
      const m = n.meta;
      if (m.kind === 'file' && m.nlink > 1) {
        const key = `${m.dev}:${m.ino}`;
        const first = inodes.get(key);
        if (first !== undefined) {
          links.push({ t: 'link', from: first, dst: target, clear: !fresh });
          return;
        }
        inodes.set(key, target);
      }
      if (m.kind === 'fifo' || m.kind === 'char' || m.kind === 'block') {
        specials.push({ n, rel, fresh });
        return;
      }
      const base = this.#metaJob(n, target, fresh, m.kind === 'file');
      if (m.kind === 'file') jobs.push({ ...base, t: 'copy', src: n.abs, clear: !fresh });
      else if (m.kind === 'symlink') {
        const { perm: _perm, ...rest } = base;
        jobs.push({ ...rest, t: 'symlink', src: n.abs, clear: !fresh });
      } else if (m.kind === 'socket') {
        // BuildKit's mknod without the socket type bit: an empty regular file.
        jobs.push({ ...base, t: 'empty', clear: !fresh, perm: base.perm ?? m.perm });
      }
    };
    walk(root, dst, false, false);
    await this.#run(jobs);
    for (const s of specials) await this.#special(s.n, s.rel, s.fresh);
    await this.#run(links);
    await this.#run(metas);
  }

  /** Runs a pass on the workers; the first failure becomes the error BuildKit would give. */
  async #run(jobs: Job[]): Promise<void> {
    if (jobs.length === 0) return;
    const failed = await runJobs(jobs, this.#env.signal);
    if (!failed) return;
    const rel = failed.job.dst.slice(this.#env.destRoot.length + 1);
    if (failed.err.code === 'REPLACE_DIR') {
      throw new DrayError('DRAY_BUILD', `cannot replace to directory /${rel} with file`);
    }
    const e = Object.assign(new Error(failed.err.message), { code: failed.err.code });
    const what = failed.job.t === 'link' ? 'failed to create hard link' : 'failed to copy to';
    throw fsError(e, `${what} /${rel}`);
  }

  /** Directories, top-down: fsutil's copyDirectoryOnly for each. `fresh`: the parent is fresh. */
  async #makeDirs(
    n: ScanNode,
    rel: string,
    overwrite: boolean,
    fresh: boolean,
    empty = false,
  ): Promise<void> {
    const env = this.#env;
    const target = abs(env.destRoot, rel);
    const created = await env.limiter.run(() => this.#dirOnly(n, target, rel, overwrite, fresh));
    const st: DirState = { created, fresh: created || empty };
    this.#dirs.set(n, st);
    const subdirs = (n.children ?? []).filter((c) => c.meta.kind === 'dir');
    if (subdirs.length > 0) {
      await settleAll(subdirs.map((c) => this.#makeDirs(c, joinRel(rel, lastName(c.rel)), true, st.fresh)));
    }
  }

  /** Makes the directory, or checks an existing one (and with `overwrite` gives it the source's mode). */
  async #dirOnly(
    n: ScanNode,
    target: string,
    rel: string,
    overwrite: boolean,
    fresh: boolean,
  ): Promise<boolean> {
    const m = fresh ? undefined : await lstatMeta(target);
    try {
      if (!m) {
        await mkdir(target, 0o700);
        // Below an existing setgid directory it inherited setgid; without it, what is made
        // inside belongs to this process, which the metadata pass relies on.
        if (!fresh) await chmod(target, 0o700);
        return true;
      }
      if (m.kind !== 'dir') throw new DrayError('DRAY_BUILD', `cannot copy to non-directory: /${rel}`);
      if (overwrite) await chmod(target, n.meta.perm);
      return false;
    } catch (e) {
      throw fsError(e, `failed to mkdir /${rel}`);
    }
  }

  /** A fifo or device: made here (Node has no mknod; rare enough for a process each). */
  async #special(n: ScanNode, rel: string, fresh: boolean): Promise<void> {
    const target = abs(this.#env.destRoot, rel);
    if (!fresh) {
      const m = await lstatMeta(target);
      if (m?.kind === 'dir')
        throw new DrayError('DRAY_BUILD', `cannot replace to directory /${rel} with file`);
      if (m) await unlink(target);
    }
    await makeNode(target, n.meta.kind as 'fifo' | 'char' | 'block', n.meta.rdev, `/${rel}`);
    await this.#run([this.#metaJob(n, target, fresh, false)]);
  }

  /**
   * fsutil's copyFileInfo as a job: owner, mode (not for symlinks), times; queues the
   * xattrs. `fresh`: made just now in a directory this copy made, so owned by this process
   * already. `modeSet`: the file already has the source's mode (copyFile sets it).
   */
  #metaJob(n: ScanNode, target: string, fresh: boolean, modeSet: boolean): Job & { t: 'meta' } {
    const env = this.#env;
    const m = n.meta;
    const owner = env.owner ?? (env.privileged ? { uid: m.uid, gid: m.gid } : undefined);
    const chowned = owner !== undefined && !(fresh && owner.uid === this.#uid && owner.gid === this.#gid);
    const job: Job & { t: 'meta' } = { t: 'meta', dst: target, times: this.#timesOf(n) };
    if (chowned) job.owner = [owner.uid, owner.gid];
    if (m.kind !== 'symlink') {
      const perm = env.mode ? applyMode(env.mode, m.perm, m.kind === 'dir') : m.perm;
      // chown clears setuid/setgid, so those need the mode again.
      if (!modeSet || perm !== m.perm || (chowned && (perm & 0o6000) !== 0)) job.perm = perm;
    }
    const x = this.#srcXattrs.get(n.abs);
    if (x && x.size > 0) this.xattrs.push({ path: target, xattrs: x });
    return job;
  }

  #timesOf(n: ScanNode): Times {
    const t = this.#env.time;
    if (t !== undefined) return [t, t];
    return [nsToSeconds(n.meta.atimeNs), nsToSeconds(n.meta.mtimeNs)];
  }
}

/** Host paths of a scanned tree. */
function allPaths(n: ScanNode, out: string[] = []): string[] {
  out.push(n.abs);
  for (const c of n.children ?? []) allPaths(c, out);
  return out;
}

function lastName(rel: string): string {
  return rel.slice(rel.lastIndexOf('/') + 1);
}
