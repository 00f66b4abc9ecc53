import type { Dirent } from 'node:fs';
import { lstat, readdir, realpath } from 'node:fs/promises';
import { DrayError, throwIfAborted } from '../../errors.ts';
import { listDirs } from './fs-pool.ts';
import type { ListResult } from './fs-worker.ts';
import { fsError } from './fsops.ts';
import { lstatMeta, type Meta } from './meta.ts';
import { compareNames } from './names.ts';
import {
  cleanPath,
  createPathFilter,
  type FilterState,
  goMatch,
  hasWildcards,
  type PathFilter,
} from './patterns.ts';
import { joinRel, resolveInRoot } from './rootpath.ts';

export type { Kind, Meta } from './meta.ts';
export { lstatMeta } from './meta.ts';
export { compareNames } from './names.ts';

/**
 * A host directory as a build step sees it: a local build context through its
 * .dockerignore filters, or a mounted snapshot with none. Paths are resolved inside the
 * root (symlinks as in a chroot), and a path the filters leave out does not exist, except
 * a directory that holds an included path (BuildKit's context transfer sends it).
 */
export interface FileTree {
  /** The directory on the host. */
  root: string;
  /** .dockerignore-style patterns: only matching paths are in the tree (default all). */
  include?: readonly string[];
  /** .dockerignore-style patterns (with `!` re-includes) of paths left out. */
  exclude?: readonly string[];
}

/** Directory entries sorted by name bytes. Does I/O. */
async function readDirSorted(dir: string): Promise<Dirent[]> {
  const entries = await readdir(dir, { withFileTypes: true });
  return entries.sort((a, b) => compareNames(a.name, b.name));
}

/** One entry to copy or hash: the copied source itself, or something below it. */
export interface ScanNode {
  /** Path relative to the copied source ('' for the source itself). */
  rel: string;
  /** Absolute path on the host. */
  abs: string;
  meta: Meta;
  /** Selected by the patterns; false for a directory kept only because something below it is. */
  include: boolean;
  /** Directories: the kept entries, sorted by name bytes. */
  children?: ScanNode[];
}

/** Options for {@link TreeView.scan}. */
export interface ScanOptions {
  /** The action's own include/exclude patterns, relative to the scanned source. */
  action?: PathFilter;
  signal?: AbortSignal;
}

/** A resolved source path. */
export interface Resolved {
  /** Path relative to the tree root ('' for the root). */
  rel: string;
  meta: Meta;
}

/** A {@link FileTree} opened for reading: its real root and compiled filters. */
export class TreeView {
  readonly root: string;
  readonly filter: PathFilter | undefined;

  private constructor(root: string, filter: PathFilter | undefined) {
    this.root = root;
    this.filter = filter;
  }

  /**
   * Opens a tree: resolves its root, compiles its patterns. Does I/O.
   * @throws DRAY_INVALID_ARGUMENT when the root is not a directory or a pattern is malformed.
   */
  static async open(tree: FileTree): Promise<TreeView> {
    let root: string;
    try {
      root = await realpath(tree.root);
      if (!(await lstat(root)).isDirectory()) throw new Error('not a directory');
    } catch (e) {
      throw new DrayError('DRAY_INVALID_ARGUMENT', `source tree ${tree.root} is not a directory`, {
        cause: e,
      });
    }
    const filtered = (tree.include?.length ?? 0) > 0 || (tree.exclude?.length ?? 0) > 0;
    return new TreeView(root, filtered ? createPathFilter(tree.include, tree.exclude) : undefined);
  }

  /** Absolute host path of a root-relative path. Pure. */
  abs(rel: string): string {
    return rel === '' ? this.root : `${this.root}/${rel}`;
  }

  /** The filter state of `rel` (undefined without filters or for the root). Pure. */
  stateOf(rel: string): FilterState | undefined {
    return this.filter && rel !== '' ? this.filter.stateOf(rel) : undefined;
  }

  /**
   * Whether an existing path is in the tree: selected by the filters, or a directory with
   * something selected below it. Does I/O (only for such directories).
   */
  async visible(rel: string, meta: Meta): Promise<boolean> {
    const f = this.filter;
    if (!f || rel === '') return true;
    const state = f.stateOf(rel);
    if (state.selected) return true;
    if (meta.kind !== 'dir' || f.canSkip(rel, state)) return false;
    return await this.#hasSelectedBelow(rel, state);
  }

  async #hasSelectedBelow(rel: string, state: FilterState): Promise<boolean> {
    const f = this.filter as PathFilter;
    let entries: Dirent[];
    try {
      entries = await readDirSorted(this.abs(rel));
    } catch {
      return false;
    }
    for (const e of entries) {
      const r = joinRel(rel, e.name);
      const s = f.child(r, state);
      if (s.selected) return true;
      if (e.isDirectory() && !f.canSkip(r, s) && (await this.#hasSelectedBelow(r, s))) return true;
    }
    return false;
  }

  /**
   * Resolves a source path inside the tree (BuildKit's `rootPath`: every symlink on the way
   * is followed inside the root; the last one only with `followFinal`). Undefined when the
   * path, or a symlink it went through, is not in the tree. Does I/O.
   */
  async resolve(path: string, followFinal: boolean): Promise<Resolved | undefined> {
    const links: string[] = [];
    const rel = await resolveInRoot(this.root, path, { followFinal, onSymlink: (l) => links.push(l) });
    if (this.filter) for (const l of links) if (!this.filter.matches(l, false)) return undefined;
    const meta = await lstatMeta(this.abs(rel));
    if (!meta || !(await this.visible(rel, meta))) return undefined;
    return { rel, meta };
  }

  /**
   * Expands a wildcard source (fsutil's `ResolveWildcards`): the part before the first
   * component with a wildcard is resolved (its last symlink only with `followLinks`), then
   * walked without following symlinks; each path matching the rest (Go `filepath.Match`)
   * is a match, and a matching directory is not descended into. Returns paths relative to
   * the root, in walk order, each with the name it was matched under (`shown`, from the
   * source path as written). A path without wildcards is returned as is. Does I/O.
   * @throws DRAY_BUILD `"<prefix>": not found` when the part before the wildcard is missing.
   */
  async wildcard(src: string, followLinks: boolean): Promise<{ path: string; shown: string }[]> {
    const parts = cleanPath(`/${src}`)
      .split('/')
      .filter((p) => p !== '');
    const i = parts.findIndex(hasWildcards);
    if (i < 0) {
      const p = parts.join('/');
      return [{ path: p, shown: p }];
    }
    const prefix = parts.slice(0, i).join('/');
    const pattern = parts.slice(i).join('/');
    const base = await this.resolve(prefix, followLinks);
    if (!base) throw notFound(`/${prefix}`);
    const out: { path: string; shown: string }[] = [];
    if (base.meta.kind !== 'dir') return out;
    // `*` and `?` never match '/', so deeper paths cannot match (a class might: allow for it).
    const maxDepth = pattern.split('/').length + (pattern.match(/\[/g)?.length ?? 0);
    const walk = async (
      rel: string,
      sub: string,
      depth: number,
      state: FilterState | undefined,
    ): Promise<void> => {
      let entries: Dirent[];
      try {
        entries = await readDirSorted(this.abs(rel));
      } catch (e) {
        throw fsError(e, `reading /${rel}`);
      }
      for (const e of entries) {
        const r = joinRel(rel, e.name);
        const s = joinRel(sub, e.name);
        const st = this.filter ? this.filter.child(r, state) : undefined;
        const isDir = e.isDirectory();
        if (st && !st.selected) {
          if (!isDir || this.filter?.canSkip(r, st)) continue;
        }
        if (goMatch(pattern, s)) {
          if (st && !st.selected && !(await this.#hasSelectedBelow(r, st))) continue;
          out.push({ path: r, shown: joinRel(prefix, s) });
          continue;
        }
        if (isDir && depth < maxDepth) await walk(r, s, depth + 1, st);
      }
    };
    await walk(base.rel, '', 1, this.stateOf(base.rel));
    return out;
  }

  /**
   * Lists what a copy of `top` (an entry of this tree) takes: the entry and, for a
   * directory, everything below it that is in the tree and selected by `o.action`
   * (relative to `top`), plus the directories leading to such entries (`include: false`
   * when the action's patterns leave them out themselves). Children are sorted by name
   * bytes. Does I/O (readdir and lstat, on the file workers).
   */
  async scan(top: Resolved, o: ScanOptions): Promise<ScanNode> {
    const root: ScanNode = { rel: '', abs: this.abs(top.rel), meta: top.meta, include: true };
    if (top.meta.kind !== 'dir') return root;
    const f = this.filter;
    const a = o.action;
    // Breadth first, so each level is listed by the workers in a few large requests.
    const first: Pending = {
      node: root,
      treeRel: top.rel,
      ts: this.stateOf(top.rel),
      tSel: true,
      dirs: [],
      kept: [],
      visible: false,
    };
    let level: Pending[] = [first];
    const skipped: Promise<void>[] = [];
    while (level.length > 0) {
      throwIfAborted(o.signal, 'reading source files');
      const lists = await listDirs(
        level.map((p) => p.node.abs),
        o.signal,
      );
      const next: Pending[] = [];
      for (let i = 0; i < level.length; i++) {
        const p = level[i] as Pending;
        const list = lists[i] as ListResult;
        if ('error' in list)
          throw fsError(Object.assign(new Error(list.error.message), list.error), `reading /${p.treeRel}`);
        for (const [name, meta] of list.entries) {
          if (!meta) {
            // Node decodes names as UTF-8; one that is not cannot be opened by its decoded name.
            if (name.includes('\ufffd')) {
              throw new DrayError(
                'DRAY_INVALID_ARGUMENT',
                `${p.node.abs}/${name}: file name is not valid UTF-8`,
                {
                  hint: 'rename the file',
                },
              );
            }
            continue; // removed meanwhile
          }
          const tRel = joinRel(p.treeRel, name);
          const rel = joinRel(p.node.rel, name);
          const ts = f ? f.child(tRel, p.ts) : undefined;
          const as = a ? a.child(rel, p.as) : undefined;
          const tSel = ts ? ts.selected : true;
          const aSel = as ? as.selected : true;
          const abs = `${p.node.abs}/${name}`;
          if (meta.kind !== 'dir') {
            if (tSel) p.visible = true;
            if (tSel && aSel) p.kept.push({ rel, abs, meta, include: true });
            continue;
          }
          if (f && ts && !tSel && f.canSkip(tRel, ts)) continue;
          if (a && as && !aSel && a.canSkip(rel, as)) {
            // Nothing below can be copied; only whether the directory exists still matters.
            if (tSel) p.visible = true;
            else if (f && ts) {
              skipped.push(
                this.#hasSelectedBelow(tRel, ts).then((v) => {
                  if (v) p.visible = true;
                }),
              );
            }
            continue;
          }
          const child: Pending = {
            node: { rel, abs, meta, include: aSel },
            treeRel: tRel,
            tSel,
            dirs: [],
            kept: [],
            visible: false,
            ...(ts ? { ts } : {}),
            ...(as ? { as } : {}),
          };
          p.dirs.push(child);
          p.kept.push(child.node);
          next.push(child);
        }
      }
      level = next;
    }
    await Promise.all(skipped);
    finish(first);
    return root;
  }
}

/** A directory being scanned: its node, filter states, and what was found below it. */
interface Pending {
  node: ScanNode;
  treeRel: string;
  ts?: FilterState;
  as?: FilterState;
  tSel: boolean;
  /** Child directories, in name order (their nodes are also in `kept`, in place). */
  dirs: Pending[];
  /** Child entries in name order; directories are dropped again by `finish` when empty of anything kept. */
  kept: ScanNode[];
  /** Something below is in the tree (a directory excluded by the context filters still exists then). */
  visible: boolean;
}

/**
 * Post-order pass of a scan: a directory is in the tree when selected or something below
 * is; it is kept when in the tree and selected by the action or holding kept entries.
 */
function finish(p: Pending): void {
  const drop = new Set<ScanNode>();
  for (const d of p.dirs) {
    finish(d);
    const visible = d.tSel || d.visible;
    if (visible) p.visible = true;
    if (!visible || (!d.node.include && (d.node.children?.length ?? 0) === 0)) drop.add(d.node);
  }
  p.node.children = drop.size === 0 ? p.kept : p.kept.filter((n) => !drop.has(n));
}

/** BuildKit's cache-key error for a missing source (`"/x": not found`). */
export function notFound(path: string): DrayError {
  return new DrayError('DRAY_BUILD', `${JSON.stringify(path)}: not found`, {
    hint: 'check the source path, and that .dockerignore does not exclude it',
  });
}
