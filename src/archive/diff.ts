import { open } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { DrayError, throwIfAborted } from '../errors.ts';
import type { LayerEntry, LayerWriter, LayerWriterOptions } from './layer-writer.ts';
import { writeLayer } from './layer-writer.ts';
import type { TarEntryType, TarHeader } from './types.ts';
import {
  deviceNumbers,
  type FileMeta,
  readDirSorted,
  readXattrs,
  statChildren,
  statIfExists,
  type WalkEntry,
  walkTree,
  type XattrIndex,
} from './walk.ts';

/**
 * Layer diffs: what changed between two directory trees, or what an overlayfs upper directory
 * holds, as the ordered tar entries of an OCI layer (image-spec layer.md "Change Types",
 * "Whiteouts"), and `writeDiff`, which streams them into a compressed layer blob.
 *
 * Semantics follow containerd's `WriteDiff` (continuity `fs.Changes` + `sameFile`) and moby's
 * `changes.go`: a deleted path is one whiteout `.wh.<name>` (a deleted directory's children
 * get none); a changed or added entry is written whole; the parent directories of every
 * written entry are written too (with their new metadata) so that an unpack restores their
 * modes and owners; an opaque overlay directory becomes its entry plus `.wh..wh..opq`.
 */

/** Where a diff comes from. */
export type DiffSource =
  /** Two directory trees: `upper` is the new state, `lower` the old one (absent = empty). */
  | { kind: 'trees'; lower?: string; upper: string }
  /**
   * The upper directory of an overlay mount (after unmounting, or while it is quiet) and
   * that mount's lower directories, top first (`lowerdir=` order). Lower directories may
   * themselves hold overlay whiteouts and opaque directories (committed snapshots do).
   * `redirect_dir` and `metacopy` must be off: an upper using them is refused.
   */
  | { kind: 'overlay-upper'; upper: string; lower: string[] };

/** Options for {@link diffEntries}. */
export interface DiffOptions {
  signal?: AbortSignal;
  /**
   * How a file present on both sides is judged unchanged. `metadata` (default): type, mode,
   * uid/gid, size, mtime to the nanosecond, device numbers, link target and xattrs are equal
   * (containerd's `sameFile`; when both mtimes have zero nanoseconds, i.e. may have been
   * truncated by a copy, the bytes are compared). `content`: additionally compare the bytes
   * of every same-looking regular file, so a rewrite that kept size and mtime is still seen.
   */
  compare?: 'metadata' | 'content';
  /**
   * SOURCE_DATE_EPOCH, seconds: every mtime after it is written as it (BuildKit's
   * `rewrite-timestamp` clamp), and whiteouts get it as their mtime (0 without it).
   */
  sourceDateEpoch?: number;
  /**
   * Read and compare extended attributes (one `getfattr` per tree). Default true; 'trees' mode
   * only: an overlay upper cannot be read without them (opaque directories are xattrs).
   */
  xattrs?: boolean;
}

/** Options for {@link writeDiff}. */
export interface WriteDiffOptions extends DiffOptions, LayerWriterOptions {}

/**
 * Streams the layer that turns `source`'s lower state into its upper state: entries in a
 * deterministic order, uncompressed tar hashed for the diffID and compressed (on other
 * threads) in the same pass. Pipe `writer.readable` to its destination and `await
 * writer.close()` for the descriptor, diffID and sizes. Does I/O.
 * Errors (on `close()` and the readable): DRAY_INVALID_ARGUMENT (a path that cannot go into a
 * layer, an overlay upper using redirect_dir/metacopy), DRAY_CONFIG (no `getfattr`),
 * DRAY_ABORTED, fs errors.
 */
export function writeDiff(source: DiffSource, o: WriteDiffOptions = {}): LayerWriter {
  return writeLayer(diffEntries(source, o), o);
}

/**
 * The entries of the layer for `source`, in layer order: parents before children, siblings
 * sorted by name bytes, a whiteout where its deleted name sorted, an opaque marker right
 * after its directory; hard links within the layer as `link` entries to their first path.
 * Files carry their absolute path in `source` for the writer to read. Does I/O.
 */
export async function* diffEntries(source: DiffSource, o: DiffOptions = {}): AsyncGenerator<LayerEntry> {
  throwIfAborted(o.signal, 'layer diff');
  const epoch = o.sourceDateEpoch;
  if (epoch !== undefined && (!Number.isSafeInteger(epoch) || epoch < 0)) {
    throw new DrayError(
      'DRAY_INVALID_ARGUMENT',
      `invalid sourceDateEpoch ${epoch}: must be a non-negative integer`,
    );
  }
  switch (source.kind) {
    case 'trees':
      yield* diffTrees(
        source.lower === undefined ? undefined : resolve(source.lower),
        resolve(source.upper),
        o,
      );
      return;
    case 'overlay-upper':
      yield* diffOverlayUpper(
        resolve(source.upper),
        source.lower.map((l) => resolve(l)),
        o,
      );
      return;
    default: {
      const never: never = source;
      throw new DrayError('DRAY_INVALID_ARGUMENT', `unknown diff source ${JSON.stringify(never)}`);
    }
  }
}

const WH_PREFIX = '.wh.';
const OPAQUE = '.wh..wh..opq';

interface Node {
  meta: FileMeta;
  xattrs: Map<string, Buffer> | undefined;
}

/** Writes entries: pending parent directories first, hard links, header fields. */
class Emitter {
  readonly #o: DiffOptions;
  readonly #links = new Map<string, string>();
  /** Directories entered but not yet written, outermost first. */
  readonly #pending: { name: string; node: Node; written: boolean }[] = [];

  constructor(o: DiffOptions) {
    this.#o = o;
  }

  enter(name: string, node: Node, written: boolean): void {
    this.#pending.push({ name, node, written });
  }

  leave(): void {
    this.#pending.pop();
  }

  /** The entries that write `name` (and any unwritten parents). */
  *entry(name: string, node: Node): Generator<LayerEntry> {
    yield* this.#parents();
    yield this.#entry(name, node);
  }

  *whiteout(parent: string, name: string): Generator<LayerEntry> {
    yield* this.#parents();
    yield { header: this.#marker(parent === '' ? `${WH_PREFIX}${name}` : `${parent}/${WH_PREFIX}${name}`) };
  }

  *opaque(dir: string): Generator<LayerEntry> {
    yield* this.#parents();
    yield { header: this.#marker(`${dir}/${OPAQUE}`) };
  }

  *#parents(): Generator<LayerEntry> {
    for (const p of this.#pending) {
      if (p.written) continue;
      p.written = true;
      yield this.#entry(p.name, p.node);
    }
  }

  #marker(name: string): TarHeader {
    return { name, type: 'file', mode: 0, uid: 0, gid: 0, size: 0, mtime: this.#o.sourceDateEpoch ?? 0 };
  }

  #entry(name: string, { meta, xattrs }: Node): LayerEntry {
    const base = name.slice(name.lastIndexOf('/') + 1);
    if (base.startsWith(WH_PREFIX)) {
      throw new DrayError(
        'DRAY_INVALID_ARGUMENT',
        `${meta.path}: a file name starting with ${WH_PREFIX} cannot go into a layer`,
        {
          hint: `${WH_PREFIX} names mean deletions in OCI layers; rename the file`,
        },
      );
    }
    const header: TarHeader = {
      name,
      type: tarType(meta),
      mode: meta.mode,
      uid: meta.uid,
      gid: meta.gid,
      size: 0,
      mtime: mtimeSeconds(meta.mtimeNs, this.#o.sourceDateEpoch),
    };
    const x = layerXattrs(xattrs);
    if (x) header.xattrs = x;
    switch (meta.kind) {
      case 'file': {
        if (meta.nlink > 1) {
          const key = `${meta.dev}:${meta.ino}`;
          const first = this.#links.get(key);
          if (first !== undefined) {
            header.type = 'link';
            header.linkname = first;
            return { header };
          }
          this.#links.set(key, name);
        }
        header.size = meta.size;
        return { header, source: meta.path };
      }
      case 'symlink':
        header.linkname = meta.linkname ?? '';
        return { header };
      case 'character-device':
      case 'block-device': {
        const { major, minor } = deviceNumbers(meta.rdev);
        header.devmajor = major;
        header.devminor = minor;
        return { header };
      }
      default:
        return { header };
    }
  }
}

function tarType(meta: FileMeta): TarEntryType {
  if (meta.kind === 'socket') throw new DrayError('DRAY_INTERNAL', `${meta.path}: sockets are not archived`);
  return meta.kind;
}

const NS = 1_000_000_000n;

/** Epoch seconds (fractional) of an mtime, clamped to SOURCE_DATE_EPOCH when given. */
function mtimeSeconds(ns: bigint, epoch: number | undefined): number {
  if (epoch !== undefined && ns > BigInt(epoch) * NS) return epoch;
  const s = ns / NS;
  const rem = ns % NS;
  return Number(s) + Number(rem) / 1e9;
}

/** Overlayfs' own xattrs describe the upper dir, not the file: never written, never compared. */
function isOverlayXattr(name: string): boolean {
  return name.startsWith('trusted.overlay.') || name.startsWith('user.overlay.');
}

function layerXattrs(x: Map<string, Buffer> | undefined): Map<string, Buffer> | undefined {
  if (!x || x.size === 0) return undefined;
  const out = new Map<string, Buffer>();
  for (const k of [...x.keys()].sort()) if (!isOverlayXattr(k)) out.set(k, x.get(k) as Buffer);
  return out.size === 0 ? undefined : out;
}

function sameXattrs(a: Map<string, Buffer> | undefined, b: Map<string, Buffer> | undefined): boolean {
  const x = layerXattrs(a);
  const y = layerXattrs(b);
  if (!x || !y) return !x && !y;
  if (x.size !== y.size) return false;
  for (const [k, v] of x) {
    const w = y.get(k);
    if (!w?.equals(v)) return false;
  }
  return true;
}

/** containerd's `sameFile` (continuity fs/diff.go), plus directory mtimes and all xattrs. */
async function sameFile(l: Node, u: Node, o: DiffOptions): Promise<boolean> {
  const a = l.meta;
  const b = u.meta;
  if (a.kind !== b.kind || a.mode !== b.mode || a.uid !== b.uid || a.gid !== b.gid) return false;
  if ((a.kind === 'character-device' || a.kind === 'block-device') && a.rdev !== b.rdev) return false;
  if (a.kind === 'symlink' && a.linkname !== b.linkname) return false;
  if (a.size !== b.size) return false;
  if (!sameXattrs(l.xattrs, u.xattrs)) return false;
  if (a.mtimeNs / NS !== b.mtimeNs / NS) return false;
  const truncated = a.mtimeNs % NS === 0n && b.mtimeNs % NS === 0n;
  if (!truncated && a.mtimeNs !== b.mtimeNs) return false;
  if (a.kind === 'file' && a.size > 0 && (truncated || o.compare === 'content')) {
    return sameContent(a.path, b.path, o.signal);
  }
  return true;
}

async function sameContent(p1: string, p2: string, signal: AbortSignal | undefined): Promise<boolean> {
  const size = 256 * 1024;
  await using f1 = await open(p1, 'r');
  await using f2 = await open(p2, 'r');
  const b1 = Buffer.allocUnsafe(size);
  const b2 = Buffer.allocUnsafe(size);
  for (;;) {
    throwIfAborted(signal, 'layer diff');
    const [r1, r2] = await Promise.all([f1.read(b1, 0, size), f2.read(b2, 0, size)]);
    if (r1.bytesRead !== r2.bytesRead) return false;
    if (r1.bytesRead === 0) return true;
    if (!b1.subarray(0, r1.bytesRead).equals(b2.subarray(0, r2.bytesRead))) return false;
  }
}

// ---------------------------------------------------------------------------------------
// 'trees': a merge walk of both trees, one directory at a time (memory ∝ one directory).

async function* diffTrees(
  lower: string | undefined,
  upper: string,
  o: DiffOptions,
): AsyncGenerator<LayerEntry> {
  const withXattrs = o.xattrs !== false;
  const none: XattrIndex = new Map();
  const [lx, ux] = await Promise.all([
    withXattrs && lower !== undefined ? readXattrs([lower], { recursive: true, ...sig(o) }) : none,
    withXattrs ? readXattrs([upper], { recursive: true, ...sig(o) }) : none,
  ]);
  const em = new Emitter(o);
  const node = (meta: FileMeta, x: XattrIndex): Node => ({ meta, xattrs: x.get(meta.path) });

  async function* dir(rel: string, lAbs: string | undefined, uAbs: string): AsyncGenerator<LayerEntry> {
    throwIfAborted(o.signal, 'layer diff');
    const [uNames, lNames] = await Promise.all([
      readDirSorted(uAbs),
      lAbs === undefined ? Promise.resolve([]) : readDirSorted(lAbs),
    ]);
    const [uMeta, lMeta] = await Promise.all([
      statChildren(uAbs, uNames),
      lAbs === undefined ? Promise.resolve([]) : statChildren(lAbs, lNames),
    ]);
    let i = 0;
    let j = 0;
    while (i < uNames.length || j < lNames.length) {
      const un = uNames[i];
      const ln = lNames[j];
      const c =
        un === undefined ? 1 : ln === undefined ? -1 : Buffer.compare(Buffer.from(un), Buffer.from(ln));
      if (c > 0) {
        // Only in lower: deleted. One whiteout, whatever it held.
        yield* em.whiteout(rel, ln as string);
        j++;
        continue;
      }
      const name = rel === '' ? (un as string) : `${rel}/${un}`;
      const u = node(uMeta[i] as FileMeta, ux);
      const l = c === 0 ? node(lMeta[j] as FileMeta, lx) : undefined;
      i++;
      if (c === 0) j++;
      if (u.meta.kind === 'socket') continue;
      const lowerDir = l?.meta.kind === 'directory' ? l.meta.path : undefined;
      if (u.meta.kind === 'directory') {
        const same = l !== undefined && (await sameFile(l, u, o));
        if (!same) yield* em.entry(name, u);
        em.enter(name, u, !same);
        yield* dir(name, lowerDir, u.meta.path);
        em.leave();
      } else if (l === undefined || !(await sameFile(l, u, o))) {
        // Added, changed, or replacing another type (an unpacker removes what was there).
        yield* em.entry(name, u);
      }
    }
  }
  yield* dir('', lower, upper);
}

function sig(o: DiffOptions): { signal?: AbortSignal } {
  return o.signal ? { signal: o.signal } : {};
}

// ---------------------------------------------------------------------------------------
// 'overlay-upper': the upper dir says what changed; the lowers say what it hides or matches.

function isOpaque(x: Map<string, Buffer> | undefined): boolean {
  if (!x) return false;
  const v = x.get('trusted.overlay.opaque') ?? x.get('user.overlay.opaque');
  return v !== undefined && v.toString('latin1') === 'y';
}

/** A char device 0/0, or (kernel ≥ 6.7 "xwhiteouts") a 0-byte file with an overlay.whiteout xattr. */
function isWhiteout(n: Node): boolean {
  if (n.meta.kind === 'character-device') return n.meta.rdev === 0n;
  if (n.meta.kind === 'file' && n.meta.size === 0 && n.xattrs) {
    return n.xattrs.has('trusted.overlay.whiteout') || n.xattrs.has('user.overlay.whiteout');
  }
  return false;
}

const refused = ['redirect', 'metacopy'];

function checkOverlayFeatures(path: string, x: Map<string, Buffer> | undefined): void {
  if (!x) return;
  for (const k of x.keys()) {
    for (const f of refused) {
      if (k === `trusted.overlay.${f}` || k === `user.overlay.${f}`) {
        throw new DrayError(
          'DRAY_INVALID_ARGUMENT',
          `cannot diff overlay upper ${path}: it uses ${f === 'redirect' ? 'redirect_dir' : 'metacopy'} (${k})`,
          {
            hint: 'mount the overlay with redirect_dir=off,metacopy=off, or diff the merged tree against the lower one',
          },
        );
      }
    }
  }
}

async function* diffOverlayUpper(
  upper: string,
  lowers: string[],
  o: DiffOptions,
): AsyncGenerator<LayerEntry> {
  // 1. The upper tree, whole (metadata only: an upper holds what one step changed).
  const children = new Map<string, { base: string; node: Node }[]>();
  const all: string[] = [];
  for await (const e of walkTree(upper, { ...sig(o), xattrs: true }) as AsyncGenerator<WalkEntry>) {
    checkOverlayFeatures(e.meta.path, e.xattrs);
    const cut = e.name.lastIndexOf('/');
    const parent = cut < 0 ? '' : e.name.slice(0, cut);
    let list = children.get(parent);
    if (!list) children.set(parent, (list = []));
    list.push({ base: e.name.slice(cut + 1), node: { meta: e.meta, xattrs: e.xattrs } });
    all.push(e.name);
  }

  // 2. The same paths in every lower (a few lstats each), then their xattrs in one batch per lower.
  const lowerNodes: Map<string, Node>[] = [];
  for (const root of lowers) {
    throwIfAborted(o.signal, 'layer diff');
    const found = new Map<string, Node>();
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < all.length) {
        const rel = all[next++] as string;
        const meta = await statIfExists(join(root, rel));
        if (meta) found.set(rel, { meta, xattrs: undefined });
      }
    };
    await Promise.all(Array.from({ length: 16 }, worker));
    const x = await readXattrs(
      [...found.values()].map((n) => n.meta.path),
      sig(o),
    );
    for (const n of found.values()) n.xattrs = x.get(n.meta.path);
    lowerNodes.push(found);
  }

  /** The lower entry the merged view showed at `rel`, looking only in `visible` layers. */
  const lookup = (rel: string, visible: number[]): Node | undefined => {
    for (const i of visible) {
      const n = lowerNodes[i]?.get(rel);
      if (n) return isWhiteout(n) ? undefined : n;
    }
    return undefined;
  };
  /** The layers whose `rel` directory the merged directory `rel` showed, top first. */
  const visibleBelow = (rel: string, visible: number[]): number[] => {
    const out: number[] = [];
    for (const i of visible) {
      const n = lowerNodes[i]?.get(rel);
      if (!n) continue;
      if (n.meta.kind !== 'directory') break; // a whiteout or a file hides everything below it
      out.push(i);
      if (isOpaque(n.xattrs)) break;
    }
    return out;
  };

  // 3. Walk the upper tree in order.
  const em = new Emitter(o);
  async function* dir(rel: string, visible: number[]): AsyncGenerator<LayerEntry> {
    throwIfAborted(o.signal, 'layer diff');
    for (const { base, node: u } of children.get(rel) ?? []) {
      const name = rel === '' ? base : `${rel}/${base}`;
      const l = lookup(name, visible);
      if (isWhiteout(u)) {
        // A whiteout over nothing (the lower never had it) changes nothing: write none, as a tree diff would not.
        if (l) yield* em.whiteout(rel, base);
        continue;
      }
      if (u.meta.kind === 'socket') continue;
      if (u.meta.kind === 'directory') {
        const opaque = isOpaque(u.xattrs);
        const hides = opaque && l?.meta.kind === 'directory';
        const same = !hides && l !== undefined && (await sameFile(l, u, o));
        if (!same) yield* em.entry(name, u);
        if (hides) yield* em.opaque(name);
        em.enter(name, u, !same);
        yield* dir(name, opaque || l?.meta.kind !== 'directory' ? [] : visibleBelow(name, visible));
        em.leave();
      } else if (l === undefined || !(await sameFile(l, u, o))) {
        yield* em.entry(name, u);
      }
    }
  }
  yield* dir(
    '',
    lowers.map((_, i) => i),
  );
}
