import type { Readable } from 'node:stream';
import { DrayError, throwIfAborted } from '../errors.ts';
import type { RunOptions } from '../progress/index.ts';
import { decompressStream } from './compression.ts';
import { readTar } from './tar-reader.ts';
import { createTarWriter, type TarBody, type TarWriter } from './tar-writer.ts';
import type { TarHeader } from './types.ts';
import { cleanName, parseWhiteout } from './whiteout.ts';

/** One range of an id mapping, shaped like the OCI runtime spec's `LinuxIDMapping`. */
export interface IdMapping {
  containerID: number;
  hostID: number;
  size: number;
}

export interface FlattenOptions extends RunOptions {
  /** Maps the layers' (container) uids to the output's (host) uids; unmapped ids are an error. */
  uidMap?: readonly IdMapping[];
  gidMap?: readonly IdMapping[];
  /** Called for hard links that cannot be kept (their target was never in the image). */
  onWarning?: (message: string) => void;
}

/**
 * The merged root filesystem of an image as one tar stream, what `docker export` of a
 * container made from the image gives, without unpacking anything to disk. Does I/O on the
 * layers only; returns at once, errors destroy the returned stream.
 *
 * `layers` are opened lazily, bottom first in the array (as in a manifest) but read top
 * (last) to bottom, each decompressed by content. A path is emitted once, from the topmost
 * layer that has it; lower content is skipped when an upper layer deleted it (`.wh.name`),
 * made its directory opaque (`.wh..wh..opq`) or put a non-directory on one of its parent
 * paths. Whiteouts never appear in the output. Entries keep their layer's order inside
 * each layer, upper layers first, so the output is deterministic; it goes through the
 * shared tar writer.
 *
 * Hard links: a link whose target is an earlier entry of its own layer that is also in the
 * output is emitted as a link to it. When the target was overwritten or deleted by an upper
 * layer, the link keeps the old content (as on disk): the first such link becomes a regular
 * file with the target's content (the layer is read a second time for just those bodies)
 * and further links point to it. A link whose target lives in a lower layer waits until
 * that layer reaches the target and is emitted right after it (or becomes the file). So
 * every link in the output follows its target, and GNU tar can extract it.
 *
 * Limitation: when one layer holds the same name twice, its first occurrence is used.
 *
 * Errors (on the stream): DRAY_UNSAFE_ARCHIVE / DRAY_INVALID_ARCHIVE as `applyLayer`
 * raises them for names, DRAY_INVALID_ARGUMENT for an id the maps do not cover,
 * DRAY_ABORTED.
 */
export function flattenLayers(
  layers: ReadonlyArray<() => Promise<Readable>>,
  o: FlattenOptions = {},
): Readable {
  const w = createTarWriter(o.signal ? { signal: o.signal } : {});
  new Flattener(layers, w, o).run().then(
    () => w.finish().catch(() => {}),
    (err: unknown) => {
      if (!w.readable.destroyed) w.readable.destroy(err as Error);
    },
  );
  return w.readable;
}

/** What upper layers hide: `deleted` paths (and their subtrees), `covers` paths' subtrees ('' = everything). */
interface Hidden {
  deleted: Set<string>;
  covers: Set<string>;
}

interface Seen {
  /** Name under which this entry's inode is in the output, if it is. */
  emittedAs?: string;
  /** For links: the first non-link entry of this layer they lead to. */
  target?: string;
  /** For links waiting on a lower layer: the target they wait for. */
  lower?: string;
}

class Flattener {
  readonly layers: ReadonlyArray<() => Promise<Readable>>;
  readonly w: TarWriter;
  readonly o: FlattenOptions;
  /** What layers above the current one hide. */
  readonly hidden: Hidden = { deleted: new Set(), covers: new Set() };
  /** Paths already in the output (or claimed by a waiting link). */
  readonly claimed = new Set<string>();
  /** Target path → links (headers) from upper layers waiting for it. */
  waiting = new Map<string, TarHeader[]>();

  constructor(layers: ReadonlyArray<() => Promise<Readable>>, w: TarWriter, o: FlattenOptions) {
    this.layers = layers;
    this.w = w;
    this.o = o;
  }

  async run(): Promise<void> {
    throwIfAborted(this.o.signal, 'flattening layers');
    for (let k = this.layers.length - 1; k >= 0; k--) await this.#layer(k);
    for (const [target, ws] of this.waiting) {
      for (const x of ws) this.#warn(`dropping hard link ${x.name}: its target ${target} is in no layer`);
    }
  }

  #warn(m: string): void {
    this.o.onWarning?.(m);
  }

  #isHidden(path: string, hidden: Hidden): boolean {
    if (hidden.covers.size === 0 && hidden.deleted.size === 0) return false;
    if (hidden.deleted.has(path) || hidden.covers.has('')) return true;
    let i = path.lastIndexOf('/');
    while (i > 0) {
      if (hidden.covers.has(path.slice(0, i))) return true;
      i = path.lastIndexOf('/', i - 1);
    }
    return false;
  }

  async #open(k: number): Promise<Readable> {
    const open = this.layers[k] as () => Promise<Readable>;
    return decompressStream(await open(), this.o);
  }

  async #layer(k: number): Promise<void> {
    const layerHidden: Hidden = { deleted: new Set(), covers: new Set() };
    const nextWaiting = new Map<string, TarHeader[]>();
    const seen = new Map<string, Seen>();
    /** Target path (in this layer) → links needing its content as a file (second pass). */
    const materialize = new Map<string, TarHeader[]>();
    const upperWaiting = this.waiting;
    const addTo = (m: Map<string, TarHeader[]>, key: string, h: TarHeader) => {
      const l = m.get(key);
      if (l) l.push(h);
      else m.set(key, [h]);
    };
    /** Links that must take the inode of `target` (an earlier entry of this layer). */
    const linkToEarlier = (links: TarHeader[], target: string) => {
      const s = seen.get(target) as Seen;
      const root = s.target ?? target;
      const r = seen.get(root) as Seen;
      if (r.lower !== undefined) {
        for (const h of links) addTo(nextWaiting, r.lower, h);
        return [];
      }
      if (r.emittedAs !== undefined)
        return links.map((h) => ({ ...h, type: 'link' as const, linkname: r.emittedAs, size: 0 }));
      for (const h of links) addTo(materialize, root, h);
      return [];
    };

    for await (const entry of readTar(await this.#open(k), this.o)) {
      const h0 = entry.header;
      const path = cleanName(h0.name).join('/');
      if (path === '') continue;
      const wh = parseWhiteout(path.split('/'), h0.name);
      if (wh !== undefined) {
        if (wh.kind === 'delete') {
          layerHidden.deleted.add(wh.path.join('/'));
          layerHidden.covers.add(wh.path.join('/'));
        } else if (wh.kind === 'opaque') layerHidden.covers.add(wh.dir.join('/'));
        continue;
      }
      if (seen.has(path)) continue; // duplicate in one layer: the first one counts (documented)
      const h: TarHeader = { ...h0, name: path };
      const visible = !this.claimed.has(path) && !this.#isHidden(path, this.hidden);
      if (h.type !== 'directory') layerHidden.covers.add(path);
      const waiters = upperWaiting.get(path);
      if (waiters) upperWaiting.delete(path);

      if (h.type === 'link') {
        const target = cleanName(h.linkname ?? '', 'hard link target').join('/');
        const links = visible ? [h] : [];
        if (waiters) links.push(...waiters);
        if (seen.has(target)) {
          const s = seen.get(target) as Seen;
          seen.set(path, { target: s.target ?? target });
          if (visible) this.claimed.add(path);
          for (const x of linkToEarlier(links, target)) await this.#emit(x);
          // a visible link emitted as a link shares the target's output name
        } else {
          // target in a lower layer (or nowhere): wait for it
          seen.set(path, { lower: target });
          if (visible) this.claimed.add(path);
          for (const x of links) addTo(nextWaiting, target, x);
        }
        continue;
      }

      if (visible) {
        this.claimed.add(path);
        seen.set(path, { emittedAs: path });
        await this.#emit(h, h.type === 'file' ? entry.chunks() : undefined);
        for (const x of waiters ?? []) await this.#emit({ ...x, type: 'link', linkname: path, size: 0 });
        continue;
      }
      seen.set(path, {});
      if (!waiters) continue;
      // shadowed here, but upper links still hold this inode
      const [first, ...rest] = waiters;
      const f = first as TarHeader;
      if (h.type === 'directory') {
        for (const x of waiters)
          this.#warn(`dropping hard link ${x.name}: its target ${path} is a directory`);
        continue;
      }
      await this.#emit({ ...h, name: f.name }, h.type === 'file' ? entry.chunks() : undefined);
      seen.set(path, { emittedAs: f.name });
      for (const x of rest) await this.#emit({ ...x, type: 'link', linkname: f.name, size: 0 });
    }

    if (materialize.size > 0) await this.#materialize(k, materialize);
    // upper links whose target this layer deleted (or never had) keep waiting only if not hidden here
    for (const [target, ws] of upperWaiting) {
      if (this.#isHidden(target, layerHidden)) {
        for (const x of ws) this.#warn(`dropping hard link ${x.name}: its target ${target} was deleted`);
      } else {
        const l = nextWaiting.get(target);
        if (l) l.push(...ws);
        else nextWaiting.set(target, ws);
      }
    }
    this.waiting = nextWaiting;
    for (const p of layerHidden.deleted) this.hidden.deleted.add(p);
    for (const p of layerHidden.covers) this.hidden.covers.add(p);
  }

  /** Second read of layer `k` for the bodies of shadowed files that links still need. */
  async #materialize(k: number, need: Map<string, TarHeader[]>): Promise<void> {
    for await (const entry of readTar(await this.#open(k), this.o)) {
      const header = entry.header;
      const path = cleanName(header.name).join('/');
      const links = need.get(path);
      if (!links) continue;
      need.delete(path);
      const [first, ...rest] = links as [TarHeader, ...TarHeader[]];
      await this.#emit({ ...header, name: first.name }, header.type === 'file' ? entry.chunks() : undefined);
      for (const x of rest) await this.#emit({ ...x, type: 'link', linkname: first.name, size: 0 });
      if (need.size === 0) break;
    }
  }

  async #emit(h: TarHeader, body?: TarBody): Promise<void> {
    const out: TarHeader = {
      ...h,
      uid: mapId(h.uid, this.o.uidMap, 'uid', h.name),
      gid: mapId(h.gid, this.o.gidMap, 'gid', h.name),
    };
    if (out.type !== 'file') out.size = 0;
    await this.w.add(out, body);
  }
}

function mapId(id: number, map: readonly IdMapping[] | undefined, what: string, name: string): number {
  if (!map || map.length === 0) return id;
  for (const m of map)
    if (id >= m.containerID && id < m.containerID + m.size) return m.hostID + (id - m.containerID);
  throw new DrayError(
    'DRAY_INVALID_ARGUMENT',
    `flattening layers: ${what} ${id} of ${name} is not in the ${what} map`,
  );
}
