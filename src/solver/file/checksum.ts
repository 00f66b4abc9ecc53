import { createHash } from 'node:crypto';
import { readlink } from 'node:fs/promises';
import type { Digest } from '../../digest/index.ts';
import { throwIfAborted } from '../../errors.ts';
import type { CopyAction } from '../ops.ts';
import { type ChecksumCache, nowNs } from './checksum-cache.ts';
import { hashFiles } from './fs-pool.ts';
import type { HashResult } from './fs-worker.ts';
import { deviceNumbers, fsError } from './fsops.ts';
import { Limiter, settleAll } from './limit.ts';
import { cleanPath, createPathFilter } from './patterns.ts';
import { cleanActionPath } from './rootpath.ts';
import { compareNames, type FileTree, notFound, type ScanNode, TreeView } from './tree.ts';

/**
 * Content checksums for cache keys (the idea of BuildKit's contenthash, dray's own
 * encoding): a sha256 over the selected paths, each with its type, permission bits, link
 * target or device numbers, and content. Ownership, timestamps, extended attributes and
 * where the tree lives on the host are left out, so a checkout by another user, a `touch`
 * or a moved context keep their keys. A manifest (path → per-entry digest) lets the solver
 * say which paths changed between two builds.
 */

/** Per-path digests behind a checksum. Paths start with '/', relative to the tree root. */
export interface ChecksumManifest {
  digest: Digest;
  files: Record<string, string>;
}

/** Options for the checksum functions. */
export interface ChecksumOptions {
  signal?: AbortSignal;
  /** Skips reading files whose stat identity is cached; new hashes are added to it. */
  cache?: ChecksumCache;
  /** Called with the host path of every file whose content is read (tests, statistics). */
  onReadFile?: (path: string) => void;
}

/**
 * The checksum of every path in `tree` (after its filters). Does I/O (reads every file not
 * in `o.cache`). With `manifest: true`, also the per-path digests.
 * @throws DRAY_INVALID_ARGUMENT (bad root or pattern), DRAY_ABORTED, fs errors as DRAY_BUILD.
 */
export async function checksumTree(
  tree: FileTree,
  o?: ChecksumOptions & { manifest?: false },
): Promise<Digest>;
export async function checksumTree(
  tree: FileTree,
  o: ChecksumOptions & { manifest: true },
): Promise<ChecksumManifest>;
export async function checksumTree(
  tree: FileTree,
  o: ChecksumOptions & { manifest?: boolean } = {},
): Promise<Digest | ChecksumManifest> {
  const view = await TreeView.open(tree);
  const meta = await view.resolve('', false);
  const nodes: [string, ScanNode][] = [];
  if (meta) {
    const top = await view.scan(meta, o.signal ? { signal: o.signal } : {});
    for (const c of top.children ?? []) collect(c, `/${c.rel}`, nodes);
  }
  const m = await manifestOf(nodes, o);
  return o.manifest ? m : m.digest;
}

/**
 * The checksum of what a copy action reads from `tree`: its source path or wildcard
 * matches (symlinks followed as the action says), with the action's include/exclude
 * patterns. Paths are named as the source path writes them (a wildcard's matches by their
 * own names). Does I/O.
 * @throws DRAY_BUILD `"/x": not found` for a missing source (or a wildcard that matches
 *   nothing without `allowEmptyWildcard`), DRAY_INVALID_ARGUMENT, DRAY_ABORTED.
 */
export async function checksumCopySources(
  tree: FileTree,
  action: CopyAction,
  o?: ChecksumOptions & { manifest?: false },
): Promise<Digest>;
export async function checksumCopySources(
  tree: FileTree,
  action: CopyAction,
  o: ChecksumOptions & { manifest: true },
): Promise<ChecksumManifest>;
export async function checksumCopySources(
  tree: FileTree,
  action: CopyAction,
  o: ChecksumOptions & { manifest?: boolean } = {},
): Promise<Digest | ChecksumManifest> {
  const view = await TreeView.open(tree);
  const follow = action.followSymlinks === true;
  const srcPath = cleanActionPath(action.src);
  const matches = action.allowWildcard
    ? await view.wildcard(srcPath, follow)
    : [{ path: srcPath, shown: cleanPath(srcPath).slice(1) }];
  if (matches.length === 0 && !action.allowEmptyWildcard) throw notFound(srcPath);
  const filter =
    action.include?.length || action.exclude?.length
      ? createPathFilter(action.include, action.exclude)
      : undefined;
  const nodes: [string, ScanNode][] = [];
  for (const m of matches) {
    const top = await view.resolve(m.path, follow);
    if (!top) throw notFound(cleanPath(`/${m.path}`));
    const node = await view.scan(top, {
      ...(filter ? { action: filter } : {}),
      ...(o.signal ? { signal: o.signal } : {}),
    });
    collect(node, `/${m.shown}`, nodes);
  }
  const man = await manifestOf(nodes, o);
  return o.manifest ? man : man.digest;
}

/**
 * The paths whose entries differ between two manifests (added, removed or changed), sorted
 * by name bytes. Pure.
 */
export function changedPaths(a: ChecksumManifest, b: ChecksumManifest): string[] {
  const out: string[] = [];
  for (const [k, v] of Object.entries(a.files)) if (b.files[k] !== v) out.push(k);
  for (const k of Object.keys(b.files)) if (!(k in a.files)) out.push(k);
  return out.sort(compareNames);
}

function collect(n: ScanNode, key: string, out: [string, ScanNode][]): void {
  out.push([key, n]);
  for (const c of n.children ?? [])
    collect(c, key === '/' ? `/${lastName(c.rel)}` : `${key}/${lastName(c.rel)}`, out);
}

function lastName(rel: string): string {
  return rel.slice(rel.lastIndexOf('/') + 1);
}

async function manifestOf(nodes: [string, ScanNode][], o: ChecksumOptions): Promise<ChecksumManifest> {
  const content = await contentHashes(
    nodes.map(([, n]) => n).filter((n) => n.meta.kind === 'file'),
    o,
  );
  const limiter = new Limiter(16, o.signal, 'checksum');
  const links = new Map<ScanNode, string>();
  await settleAll(
    nodes
      .filter(([, n]) => n.meta.kind === 'symlink')
      .map(([, n]) => limiter.run(async () => void links.set(n, await readlink(n.abs)))),
  );
  const order = nodes
    .map(([k, n]) => [k, entryDigest(n, content.get(n) ?? links.get(n) ?? '')] as const)
    .sort((x, y) => compareNames(x[0], y[0]));
  const files: Record<string, string> = {};
  const total = createHash('sha256');
  for (const [k, d] of order) {
    files[k] = d;
    total.update(`${k}\0${d}\n`);
  }
  return { digest: `sha256:${total.digest('hex')}` as Digest, files };
}

/** One entry's digest: type, permission bits and what the type carries (content hash, link target, device). */
function entryDigest(n: ScanNode, carried: string): string {
  const m = n.meta;
  let payload = carried;
  if (m.kind === 'char' || m.kind === 'block') {
    const { major, minor } = deviceNumbers(m.rdev);
    payload = `${major}:${minor}`;
  }
  const h = createHash('sha256')
    .update(`${m.kind} ${m.perm.toString(8)}\n`)
    .update(payload);
  return `sha256:${h.digest('hex')}`;
}

/** Content hashes of regular files: from the cache, else read and hashed on the file workers. */
async function contentHashes(files: ScanNode[], o: ChecksumOptions): Promise<Map<ScanNode, string>> {
  const out = new Map<ScanNode, string>();
  const misses: ScanNode[] = [];
  for (const n of files) {
    const hit = o.cache?.lookup(n.meta);
    if (hit) out.set(n, hit);
    else misses.push(n);
  }
  if (misses.length === 0) return out;
  throwIfAborted(o.signal, 'checksum');
  for (const n of misses) o.onReadFile?.(n.abs);
  const started = nowNs();
  const hashes = await hashFiles(
    misses.map((n) => ({ path: n.abs, size: n.meta.size })),
    o.signal,
  );
  misses.forEach((n, i) => {
    const h = hashes[i] as HashResult;
    if ('error' in h) {
      throw fsError(Object.assign(new Error(h.error.message), h.error), `reading ${n.abs} for its checksum`);
    }
    // A file that changed size since the scan is hashed as read, but not cached under the old stat.
    if (h.size === n.meta.size) o.cache?.store(n.meta, h.sha256, started);
    out.set(n, h.sha256);
  });
  return out;
}
