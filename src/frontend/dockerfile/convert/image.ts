/**
 * The image config as dockerfile2llb handles it: a Go `DockerOCIImage` (only the fields that
 * struct knows survive, times in Go's RFC 3339 form) that the instructions edit, and its
 * JSON form with Go's `omitempty` rules (empty lists, maps and strings are left out).
 */
import type { HealthConfig, HistoryEntry, ImageConfig, Platform } from '../../../oci/index.ts';

/** The runtime config part, with Go's zero values as `undefined`/''. */
export interface ConfigModel {
  User: string;
  ExposedPorts: Record<string, object> | undefined;
  Env: string[] | undefined;
  Entrypoint: string[] | undefined;
  Cmd: string[] | undefined;
  Volumes: Record<string, object> | undefined;
  WorkingDir: string;
  Labels: Record<string, string> | undefined;
  StopSignal: string;
  ArgsEscaped: boolean;
  Healthcheck: HealthConfig | undefined;
  OnBuild: string[] | undefined;
  Shell: string[] | undefined;
}

/** An image config being built. `created` is dropped on load, as upstream does. */
export interface ImageModel {
  author: string;
  architecture: string;
  os: string;
  osVersion: string;
  osFeatures: string[] | undefined;
  variant: string;
  config: ConfigModel;
  rootfs: { type: 'layers'; diff_ids: ImageConfig['rootfs']['diff_ids'] };
  history: HistoryEntry[];
}

const defaultPathEnvUnix = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
const defaultPathEnvWindows =
  'c:\\Windows\\System32;c:\\Windows;C:\\Windows\\System32\\WindowsPowerShell\\v1.0';

/** BuildKit's `system.DefaultPathEnv`. */
export function defaultPathEnv(os: string): string {
  return os === 'windows' ? defaultPathEnvWindows : defaultPathEnvUnix;
}

/**
 * A time as Go re-marshals it (RFC 3339 with nanoseconds, trailing zeros dropped, a zero
 * offset written `Z`). Unparseable values are kept as they are.
 */
export function goTime(s: string): string {
  const m = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|z|[+-]\d\d:\d\d)$/.exec(s);
  if (!m) return s;
  const frac = (m[2] ?? '').slice(0, 9).replace(/0+$/, '');
  const zone = m[3] === 'z' || m[3] === 'Z' || m[3] === '+00:00' || m[3] === '-00:00' ? 'Z' : m[3]!;
  return `${m[1]}${frac ? `.${frac}` : ''}${zone}`;
}

function goHistory(h: HistoryEntry): HistoryEntry {
  return {
    ...(h.created ? { created: goTime(h.created) } : {}),
    ...(h.created_by ? { created_by: h.created_by } : {}),
    ...(h.author ? { author: h.author } : {}),
    ...(h.comment ? { comment: h.comment } : {}),
    ...(h.empty_layer ? { empty_layer: true } : {}),
  };
}

function list(v: readonly string[] | null | undefined): string[] | undefined {
  return v ? [...v] : undefined;
}

function set(v: Record<string, object> | null | undefined): Record<string, object> | undefined {
  if (!v) return undefined;
  const out: Record<string, object> = {};
  for (const k of Object.keys(v)) out[k] = {};
  return out;
}

function cloneHealth(h: HealthConfig | undefined): HealthConfig | undefined {
  return h ? { ...h, ...(h.Test ? { Test: [...h.Test] } : {}) } : undefined;
}

/** Reads an image config as Go's json.Unmarshal into DockerOCIImage does (unknown fields dropped). */
export function imageFromConfig(c: ImageConfig): ImageModel {
  const cc = c.config ?? {};
  return {
    author: c.author ?? '',
    architecture: c.architecture ?? '',
    os: c.os ?? '',
    osVersion: c['os.version'] ?? '',
    osFeatures: list(c['os.features']),
    variant: c.variant ?? '',
    config: {
      User: cc.User ?? '',
      ExposedPorts: set(cc.ExposedPorts),
      Env: list(cc.Env),
      Entrypoint: list(cc.Entrypoint),
      Cmd: list(cc.Cmd),
      Volumes: set(cc.Volumes),
      WorkingDir: cc.WorkingDir ?? '',
      Labels: cc.Labels ? { ...cc.Labels } : undefined,
      StopSignal: cc.StopSignal ?? '',
      ArgsEscaped: cc.ArgsEscaped ?? false,
      Healthcheck: cloneHealth(cc.Healthcheck),
      OnBuild: list(cc.OnBuild),
      Shell: list(cc.Shell),
    },
    rootfs: { type: 'layers', diff_ids: [...(c.rootfs?.diff_ids ?? [])] },
    history: (c.history ?? []).map(goHistory),
  };
}

/** The config BuildKit starts `FROM scratch` with (dockerfile2llb `emptyImage`). */
export function emptyImage(p: Platform): ImageModel {
  return {
    author: '',
    architecture: p.architecture,
    os: p.os,
    osVersion: p['os.version'] ?? '',
    osFeatures: list(p['os.features']),
    variant: p.variant ?? '',
    config: {
      User: '',
      ExposedPorts: undefined,
      Env: p.os === 'windows' ? undefined : [`PATH=${defaultPathEnv(p.os)}`],
      Entrypoint: undefined,
      Cmd: undefined,
      Volumes: undefined,
      WorkingDir: '/',
      Labels: undefined,
      StopSignal: '',
      ArgsEscaped: false,
      Healthcheck: undefined,
      OnBuild: undefined,
      Shell: undefined,
    },
    rootfs: { type: 'layers', diff_ids: [] },
    history: [],
  };
}

/** A deep copy (upstream `clone`). */
export function cloneImage(src: ImageModel): ImageModel {
  const c = src.config;
  return {
    ...src,
    osFeatures: list(src.osFeatures),
    config: {
      ...c,
      ExposedPorts: set(c.ExposedPorts),
      Env: list(c.Env),
      Entrypoint: list(c.Entrypoint),
      Cmd: list(c.Cmd),
      Volumes: set(c.Volumes),
      Labels: c.Labels ? { ...c.Labels } : undefined,
      Healthcheck: cloneHealth(c.Healthcheck),
      OnBuild: list(c.OnBuild),
      Shell: list(c.Shell),
    },
    rootfs: { type: 'layers', diff_ids: [...src.rootfs.diff_ids] },
    history: src.history.map((h) => ({ ...h })),
  };
}

function envKey(kv: string): string {
  const eq = kv.indexOf('=');
  return eq < 0 ? kv : kv.slice(0, eq);
}

/** Sets `k=v` in a config Env list: replaced in place when the key exists, else appended. */
export function addEnv(env: readonly string[] | undefined, k: string, v: string): string[] {
  const out = [...(env ?? [])];
  const i = out.findIndex((e) => envKey(e) === k);
  if (i >= 0) out[i] = `${k}=${v}`;
  else out.push(`${k}=${v}`);
  return out;
}

/** Splits `KEY=value` (no `=`: empty value). */
export function parseKeyValue(kv: string): [string, string] {
  const eq = kv.indexOf('=');
  return eq < 0 ? [kv, ''] : [kv.slice(0, eq), kv.slice(eq + 1)];
}

// Go writes map keys sorted by their bytes.
function sortedMap<T>(v: Record<string, T>): Record<string, T> {
  const keys = Object.keys(v).sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
  const out: Record<string, T> = {};
  for (const k of keys) out[k] = v[k] as T;
  return out;
}

function nonEmpty<T>(v: T[] | undefined): T[] | undefined {
  return v && v.length > 0 ? v : undefined;
}

function nonEmptyMap<T>(v: Record<string, T> | undefined): Record<string, T> | undefined {
  return v && Object.keys(v).length > 0 ? v : undefined;
}

/**
 * The JSON config, with Go's `omitempty` rules, field order and sorted map keys; no
 * `created` (the exporter sets it).
 */
export function imageToConfig(img: ImageModel): ImageConfig {
  const c = img.config;
  const h = c.Healthcheck;
  const health: HealthConfig | undefined = h
    ? {
        ...(nonEmpty(h.Test) ? { Test: [...(h.Test ?? [])] } : {}),
        ...(h.Interval ? { Interval: h.Interval } : {}),
        ...(h.Timeout ? { Timeout: h.Timeout } : {}),
        ...(h.StartPeriod ? { StartPeriod: h.StartPeriod } : {}),
        ...(h.StartInterval ? { StartInterval: h.StartInterval } : {}),
        ...(h.Retries ? { Retries: h.Retries } : {}),
      }
    : undefined;
  const config = {
    ...(c.User ? { User: c.User } : {}),
    ...(nonEmptyMap(c.ExposedPorts) ? { ExposedPorts: sortedMap(set(c.ExposedPorts) ?? {}) } : {}),
    ...(nonEmpty(c.Env) ? { Env: [...(c.Env ?? [])] } : {}),
    ...(nonEmpty(c.Entrypoint) ? { Entrypoint: [...(c.Entrypoint ?? [])] } : {}),
    ...(nonEmpty(c.Cmd) ? { Cmd: [...(c.Cmd ?? [])] } : {}),
    ...(nonEmptyMap(c.Volumes) ? { Volumes: sortedMap(set(c.Volumes) ?? {}) } : {}),
    ...(c.WorkingDir ? { WorkingDir: c.WorkingDir } : {}),
    ...(nonEmptyMap(c.Labels) ? { Labels: sortedMap(c.Labels ?? {}) } : {}),
    ...(c.StopSignal ? { StopSignal: c.StopSignal } : {}),
    ...(c.ArgsEscaped ? { ArgsEscaped: true } : {}),
    ...(health ? { Healthcheck: health } : {}),
    ...(nonEmpty(c.OnBuild) ? { OnBuild: [...(c.OnBuild ?? [])] } : {}),
    ...(nonEmpty(c.Shell) ? { Shell: [...(c.Shell ?? [])] } : {}),
  };
  return {
    ...(img.author ? { author: img.author } : {}),
    architecture: img.architecture,
    os: img.os,
    ...(img.osVersion ? { 'os.version': img.osVersion } : {}),
    ...(nonEmpty(img.osFeatures) ? { 'os.features': [...(img.osFeatures ?? [])] } : {}),
    ...(img.variant ? { variant: img.variant } : {}),
    config,
    rootfs: { type: 'layers', diff_ids: [...img.rootfs.diff_ids] },
    ...(img.history.length > 0 ? { history: img.history.map((e) => ({ ...e })) } : {}),
  };
}

/** The image's platform, from its os/architecture fields. */
export function imagePlatform(img: ImageModel): Platform {
  return {
    architecture: img.architecture,
    os: img.os,
    ...(img.osVersion ? { 'os.version': img.osVersion } : {}),
    ...(img.osFeatures ? { 'os.features': [...img.osFeatures] } : {}),
    ...(img.variant ? { variant: img.variant } : {}),
  };
}
