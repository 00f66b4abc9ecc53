import type { Digest } from '../digest/index.ts';
import type { HistoryEntry, ImageConfig, Platform } from '../oci/index.ts';

/** PATH that docker and BuildKit give an image without one (system.DefaultPathEnv on Linux). */
export const defaultPathEnv = 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/**
 * The config of an image with no layers for `platform`, as BuildKit starts `FROM scratch`:
 * rootfs type "layers", WorkingDir "/", and the default PATH (not on Windows). No I/O.
 */
export function emptyImageConfig(platform: Platform): ImageConfig {
  return {
    architecture: platform.architecture,
    os: platform.os,
    ...(platform['os.version'] ? { 'os.version': platform['os.version'] } : {}),
    ...(platform['os.features'] ? { 'os.features': [...platform['os.features']] } : {}),
    ...(platform.variant ? { variant: platform.variant } : {}),
    config: { ...(platform.os === 'windows' ? {} : { Env: [defaultPathEnv] }), WorkingDir: '/' },
    rootfs: { type: 'layers', diff_ids: [] },
  };
}

/** What is known about each layer when its history entry has to be made up. */
export interface LayerMeta {
  /** RFC 3339 time the layer was made. */
  created?: string;
  /** What made it (becomes `created_by`). */
  description?: string;
}

/**
 * Reconciles `history` with the image's layers the way BuildKit's image exporter does
 * (exporter/containerimage/writer.go normalizeLayersAndHistory):
 * - more non-empty history entries than layers: the surplus ones, from the bottom up, are
 *   marked `empty_layer`;
 * - fewer: entries are appended for the extra layers from `layers` metadata, with comment
 *   `buildkit.exporter.image.v0`;
 * - a non-empty entry without `created` takes its layer's time;
 * - entries still without `created` take the first new layer's time (or the previous
 *   entry's), so a metadata-only step does not inherit a base layer's date.
 * Returns a new array; no I/O.
 */
export function normalizeLayersAndHistory(
  history: readonly HistoryEntry[],
  layers: readonly LayerMeta[],
): HistoryEntry[] {
  let out = history.map((h) => ({ ...h }));
  const historyLayers = out.filter((h) => !h.empty_layer).length;
  if (historyLayers > layers.length) {
    let l = 0;
    out = out.map((h) => {
      const copy = { ...h };
      if (l >= layers.length) copy.empty_layer = true;
      if (!copy.empty_layer) l++;
      return copy;
    });
  }
  if (layers.length > historyLayers) {
    for (const md of layers.slice(historyLayers)) {
      out.push({
        ...(md.created ? { created: md.created } : {}),
        ...(md.description ? { created_by: md.description } : {}),
        comment: 'buildkit.exporter.image.v0',
      });
    }
  }
  let layerIndex = 0;
  for (const h of out) {
    if (h.empty_layer) continue;
    if (h.created === undefined && layers[layerIndex]?.created) h.created = layers[layerIndex]!.created!;
    layerIndex++;
  }
  // The first time that follows a missing one, else the last time seen.
  let created: string | undefined;
  let sawMissing = false;
  for (const h of out) {
    if (h.created !== undefined) {
      created = h.created;
      if (sawMissing) break;
    } else {
      sawMissing = true;
    }
  }
  sawMissing = false;
  for (const h of out) {
    if (h.created !== undefined) {
      if (sawMissing) created = h.created;
    } else {
      sawMissing = true;
      if (created !== undefined) h.created = created;
    }
  }
  return out;
}

export interface PatchImageConfigOptions {
  /** The image's layers' uncompressed digests, bottom first: becomes rootfs.diff_ids. */
  diffIds: readonly Digest[];
  /** The history to write (already normalised). */
  history: readonly HistoryEntry[];
  /** SOURCE_DATE_EPOCH in seconds: clamps history and `created` to it (base image entries keep theirs). */
  sourceDateEpoch?: number;
  /** History of the base image, whose leading identical entries keep their times (buildkit#4614). */
  baseHistory?: readonly HistoryEntry[];
}

/**
 * The config to export (BuildKit's patchImageConfig): rootfs from `diffIds`, `history`,
 * times clamped to SOURCE_DATE_EPOCH, and `created` filled from the last history entry
 * when absent. Unknown fields of `config` are kept. Returns a new object; no I/O.
 */
export function patchImageConfig(config: ImageConfig, o: PatchImageConfigOptions): ImageConfig {
  const out: ImageConfig = { ...config, rootfs: { type: 'layers', diff_ids: [...o.diffIds] } };
  const history = o.history.map((h) => ({ ...h }));
  const epoch = o.sourceDateEpoch === undefined ? undefined : new Date(o.sourceDateEpoch * 1000);
  if (epoch) {
    const epochIso = epoch.toISOString().replace('.000Z', 'Z');
    let diverged = false;
    history.forEach((h, i) => {
      const base = o.baseHistory?.[i];
      if (!diverged && base && sameHistory(h, base)) return;
      diverged = true;
      if (h.created === undefined || Date.parse(h.created) > epoch.getTime()) h.created = epochIso;
    });
    if (out.created !== undefined && Date.parse(out.created) > epoch.getTime()) out.created = epochIso;
  }
  out.history = history;
  if (out.created === undefined) {
    const last = [...history].reverse().find((h) => h.created !== undefined);
    if (last?.created) out.created = last.created;
  }
  return out;
}

function sameHistory(a: HistoryEntry, b: HistoryEntry): boolean {
  return (
    a.created === b.created &&
    a.created_by === b.created_by &&
    a.author === b.author &&
    a.comment === b.comment &&
    Boolean(a.empty_layer) === Boolean(b.empty_layer)
  );
}

/** Changes `dray mutate` (and later the Dockerfile frontend) make to an image's runtime config. */
export interface ConfigChanges {
  /** `KEY=VALUE` entries; a key already set is replaced in place, new keys are appended. */
  env?: readonly string[];
  cmd?: readonly string[];
  entrypoint?: readonly string[];
  workdir?: string;
  user?: string;
  labels?: Readonly<Record<string, string>>;
}

/**
 * Applies `changes` to a config (returns a new object). Setting an entrypoint clears the
 * inherited Cmd unless a Cmd is given too, as docker does. No I/O.
 */
export function mutateImageConfig(config: ImageConfig, changes: ConfigChanges): ImageConfig {
  const c = { ...(config.config ?? {}) };
  if (changes.env) {
    const env = [...(c.Env ?? [])];
    for (const kv of changes.env) {
      const key = kv.includes('=') ? kv.slice(0, kv.indexOf('=')) : kv;
      const i = env.findIndex((e) => (e.includes('=') ? e.slice(0, e.indexOf('=')) : e) === key);
      if (i >= 0) env[i] = kv;
      else env.push(kv);
    }
    c.Env = env;
  }
  if (changes.entrypoint) {
    c.Entrypoint = [...changes.entrypoint];
    if (!changes.cmd) c.Cmd = null;
  }
  if (changes.cmd) c.Cmd = [...changes.cmd];
  if (changes.workdir !== undefined) c.WorkingDir = changes.workdir;
  if (changes.user !== undefined) c.User = changes.user;
  if (changes.labels) c.Labels = { ...(c.Labels ?? {}), ...changes.labels };
  return { ...config, config: c };
}
