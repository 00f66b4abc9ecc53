/**
 * Comparing two images as `docker build` users see them: the merged file tree (every path
 * with its type, mode, owner, size, content hash and link target; times left out) and the
 * parts of the config a build sets. Both sides go through the same reader — a docker archive
 * (`dray save`, `docker save`) unpacked by GNU tar, layers listed by the independent tar
 * lister of interop-helpers.ts (not dray's own reader) and merged with the image-spec's
 * whiteout rules — so a difference is the builders', not the readers'.
 */
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { gunzipSync } from 'node:zlib';
import { save } from '../../src/index.ts';
import type { DockerEngine } from '../harness/docker-engine.ts';
import { runChecked, tempDir } from '../harness/tools.ts';
import { type FsEntry, listTar } from './interop-helpers.ts';

/** One path of a merged root filesystem, in comparable form. */
export interface TreeEntry {
  /** Relative path, no leading `/`, no trailing `/`. */
  path: string;
  type: 'file' | 'dir' | 'symlink' | 'char' | 'block' | 'fifo';
  /** Permission bits incl. setuid/setgid/sticky. */
  mode: number;
  uid: number;
  gid: number;
  /** Content size; 0 for anything but files. */
  size: number;
  /** `sha256:…` of the content, files only. */
  sha256?: string;
  /** Symlink target. */
  linkname?: string;
}

/** The config fields a Dockerfile sets, with null and absent made the same (both mean unset). */
export interface ConfigProjection {
  Env?: string[];
  Cmd?: string[];
  Entrypoint?: string[];
  WorkingDir?: string;
  User?: string;
  Labels?: Record<string, string>;
  ExposedPorts?: string[];
  Volumes?: string[];
  StopSignal?: string;
  Healthcheck?: unknown;
  Shell?: string[];
  OnBuild?: string[];
  history: Array<{ created_by: string; empty_layer: boolean }>;
}

export interface ImageSnapshot {
  /** The raw image config JSON as the archive carries it. */
  config: Record<string, unknown>;
  tree: TreeEntry[];
}

interface ArchiveManifest {
  Config: string;
  Layers: string[];
}

/**
 * Reads a docker archive (docker save layout, gzip or plain layers) from `file`: the first
 * image's config and its merged file tree. Does I/O: runs `tar -x` into a temp dir under `work`.
 */
export async function readDockerArchive(file: string, work: string): Promise<ImageSnapshot> {
  const dir = join(work, `x-${Math.random().toString(36).slice(2)}`);
  await mkdir(dir, { recursive: true });
  await runChecked('tar', ['-C', dir, '-xf', file]);
  const manifest = JSON.parse(await readFile(join(dir, 'manifest.json'), 'utf8')) as ArchiveManifest[];
  const m = manifest[0];
  if (m === undefined) throw new Error(`${file}: manifest.json lists no image`);
  const config = JSON.parse(await readFile(join(dir, m.Config), 'utf8')) as Record<string, unknown>;
  const layers: FsEntry[][] = [];
  for (const l of m.Layers) {
    let buf = await readFile(join(dir, l));
    if (buf[0] === 0x1f && buf[1] === 0x8b) buf = gunzipSync(buf);
    layers.push(listTar(buf));
  }
  return { config, tree: mergeLayers(layers) };
}

/**
 * Applies layer listings in order (image-spec layer.md): `.wh.<name>` deletes `<name>` and
 * everything below it, `.wh..wh..opq` hides what lower layers had in its directory, a
 * non-directory replaces whatever was at its path (and below), a hard link becomes a copy of
 * the file it names (a tree has no "first" link). Whiteouts of a layer apply before its
 * entries, whatever their order in the tar. Returns the tree sorted by path, root left out.
 */
export function mergeLayers(layers: FsEntry[][]): TreeEntry[] {
  const tree = new Map<string, TreeEntry>();
  const removeBelow = (p: string, self: boolean) => {
    for (const k of [...tree.keys()]) if ((self && k === p) || k.startsWith(`${p}/`)) tree.delete(k);
  };
  for (const layer of layers) {
    for (const e of layer) {
      const slash = e.path.lastIndexOf('/');
      const dir = slash === -1 ? '' : e.path.slice(0, slash);
      const base = e.path.slice(slash + 1);
      if (base === '.wh..wh..opq') {
        if (dir === '') tree.clear();
        else removeBelow(dir, false);
      } else if (base.startsWith('.wh.')) {
        removeBelow(dir === '' ? base.slice(4) : `${dir}/${base.slice(4)}`, true);
      }
    }
    for (const e of layer) {
      if (e.path === '' || e.path.split('/').at(-1)?.startsWith('.wh.')) continue;
      let entry: TreeEntry;
      if (e.type === 'hardlink') {
        const target = tree.get(e.link ?? '');
        if (target === undefined) throw new Error(`hard link ${e.path} names ${e.link}, not seen before`);
        entry = { ...target, path: e.path };
      } else {
        entry = {
          path: e.path,
          type: e.type,
          mode: e.mode,
          uid: e.uid,
          gid: e.gid,
          size: e.size,
          ...(e.hash !== undefined ? { sha256: e.hash } : {}),
          ...(e.type === 'symlink' ? { linkname: e.link ?? '' } : {}),
        };
      }
      const old = tree.get(e.path);
      if (old !== undefined && (old.type !== 'dir' || entry.type !== 'dir')) removeBelow(e.path, true);
      tree.set(e.path, entry);
    }
  }
  return [...tree.values()].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}

/** One line per entry (what a deepEqual diff shows best): path type mode uid:gid size hash -> link. */
export function describeTree(tree: TreeEntry[]): string[] {
  return tree.map((e) => {
    const parts = [e.path, e.type, e.mode.toString(8).padStart(4, '0'), `${e.uid}:${e.gid}`, String(e.size)];
    if (e.sha256 !== undefined) parts.push(e.sha256.slice(7, 23));
    if (e.linkname !== undefined) parts.push(`-> ${e.linkname}`);
    return parts.join(' ');
  });
}

/** The comparable config fields of a raw image config. */
export function projectConfig(config: Record<string, unknown>): ConfigProjection {
  const c = (config.config ?? {}) as Record<string, unknown>;
  const out: ConfigProjection = { history: [] };
  const set = <K extends keyof ConfigProjection>(k: K, v: unknown) => {
    if (v !== null && v !== undefined) out[k] = v as ConfigProjection[K];
  };
  set('Env', c.Env);
  set('Cmd', c.Cmd);
  set('Entrypoint', c.Entrypoint);
  if (c.WorkingDir !== '') set('WorkingDir', c.WorkingDir);
  if (c.User !== '') set('User', c.User);
  set('Labels', c.Labels);
  if (c.ExposedPorts != null) out.ExposedPorts = Object.keys(c.ExposedPorts as object).sort();
  if (c.Volumes != null) out.Volumes = Object.keys(c.Volumes as object).sort();
  if (c.StopSignal !== '') set('StopSignal', c.StopSignal);
  set('Healthcheck', c.Healthcheck);
  set('Shell', c.Shell);
  set('OnBuild', c.OnBuild);
  const history = (config.history ?? []) as Array<{ created_by?: string; empty_layer?: boolean }>;
  out.history = history.map((h) => ({ created_by: h.created_by ?? '', empty_layer: h.empty_layer === true }));
  return out;
}

/** The image `name` of dray's data root `root`, through `save` (the docker archive format). Does I/O. */
export async function drayImageSnapshot(
  t: Pick<TestContext, 'after'>,
  root: string,
  name: string,
): Promise<ImageSnapshot> {
  const work = await tempDir(t, 'dray-cmp-');
  const file = join(work, 'image.tar');
  await save([name], { root, output: file });
  return readDockerArchive(file, work);
}

/** The image `ref` of a Docker engine, through `docker save`. Does I/O. */
export async function dockerImageSnapshot(
  t: Pick<TestContext, 'after'>,
  engine: DockerEngine,
  ref: string,
): Promise<ImageSnapshot> {
  const work = await tempDir(t, 'dray-cmp-');
  const file = join(work, 'image.tar');
  const r = await engine.docker(['save', '-o', file, ref]);
  if (r.code !== 0) throw new Error(`docker save ${ref} exited ${r.code}: ${r.stderr}`);
  return readDockerArchive(file, work);
}

/**
 * The Dockerfile line a failed build points at: `line N` in the message when it has one
 * (parse errors), else the line whose text is the failed step's name (`[stage 2/3] RUN x`
 * → the line `RUN x`). undefined when neither is found.
 */
export function failedLine(
  message: string,
  step: string | undefined,
  dockerfile: string,
): number | undefined {
  const m = /\bline (\d+)\b/.exec(message);
  if (m) return Number(m[1]);
  if (step === undefined) return undefined;
  const text = step.replace(/^\[[^\]]*\]\s*/, '').trim();
  const lines = dockerfile.split('\n').map((l) => l.trim());
  const exact = lines.indexOf(text);
  if (exact !== -1) return exact + 1;
  const loose = lines.findIndex((l) => l !== '' && (l.startsWith(text) || text.startsWith(l)));
  return loose === -1 ? undefined : loose + 1;
}

/** A projection as lines (`Env: [...]`, `history[3]: {...}`), keys sorted, for lineDiff. */
export function configLines(p: ConfigProjection): string[] {
  const out: string[] = [];
  for (const [k, v] of Object.entries(p).sort(([a], [b]) => (a < b ? -1 : 1))) {
    if (k === 'history') {
      for (const [i, h] of (v as ConfigProjection['history']).entries())
        out.push(`history[${i}]: ${JSON.stringify(h)}`);
    } else out.push(`${k}: ${JSON.stringify(v)}`);
  }
  return out;
}

/**
 * The lines only `theirs` has (`- `), then those only `mine` has (`+ `), as multisets, each in
 * its list's order: empty exactly when the two lists hold the same lines.
 */
export function lineDiff(mine: string[], theirs: string[]): string[] {
  const only = (a: string[], b: string[], sign: string) => {
    const left = new Map<string, number>();
    for (const l of b) left.set(l, (left.get(l) ?? 0) + 1);
    const out: string[] = [];
    for (const l of a) {
      const n = left.get(l) ?? 0;
      if (n > 0) left.set(l, n - 1);
      else out.push(`${sign} ${l}`);
    }
    return out;
  };
  return [...only(theirs, mine, '-'), ...only(mine, theirs, '+')];
}
