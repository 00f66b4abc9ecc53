import type { Compression } from '../archive/index.ts';
import { DrayError } from '../errors.ts';
import type { CacheMode } from './exporter.ts';

/** Where `--cache-to` writes (buildx's syntax and BuildKit's attributes). */
export type CacheExportSpec =
  | ({ type: 'registry'; ref: string } & CacheExportCommon)
  | ({ type: 'local'; dest: string; tag: string } & CacheExportCommon)
  | { type: 'inline'; mode: 'min'; ignoreError: boolean };

interface CacheExportCommon {
  mode: CacheMode;
  /** Layers in this compression (recompressed when they are not). Default: as built. */
  compression?: Compression;
  compressionLevel?: number;
  /** An image manifest rather than an index (for registries that refuse indexes of blobs). */
  imageManifest: boolean;
  /** OCI media types (default) or Docker's manifest list. */
  ociMediaTypes: boolean;
  /** A failed export warns instead of failing the build. */
  ignoreError: boolean;
  /** Export the contents of `RUN --mount=type=cache` directories too. */
  mounts: boolean;
}

/** Where `--cache-from` reads. */
export type CacheImportSpec =
  | { type: 'registry'; ref: string }
  | { type: 'local'; src: string; tag?: string; digest?: string };

/**
 * Parses a `--cache-to` value: `type=registry,ref=R[,mode=min|max][,compression=…]
 * [,compression-level=N][,image-manifest=true][,oci-mediatypes=false][,ignore-error=true]
 * [,mounts=true]`, `type=local,dest=DIR[,tag=T][,…]`, `type=inline`, or a bare reference
 * (= type=registry,ref=…). No I/O. Throws DRAY_INVALID_ARGUMENT saying what is wrong.
 */
export function parseCacheExportSpec(value: string): CacheExportSpec {
  const a = attributes(value, '--cache-to');
  const type = a.get('type') ?? 'registry';
  const flag = (name: string, dflt: boolean): boolean => bool(a, name, dflt, value);
  if (type === 'inline') {
    known(a, ['type', 'mode', 'ignore-error'], value);
    if ((a.get('mode') ?? 'min') !== 'min')
      throw bad(
        value,
        "the inline cache holds only the final image's steps (mode=min)",
        'use type=registry or type=local for mode=max',
      );
    return { type: 'inline', mode: 'min', ignoreError: flag('ignore-error', false) };
  }
  const commonKeys = [
    'type',
    'mode',
    'compression',
    'compression-level',
    'force-compression',
    'image-manifest',
    'oci-mediatypes',
    'ignore-error',
    'mounts',
  ];
  const mode = a.get('mode') ?? 'min';
  if (mode !== 'min' && mode !== 'max') throw bad(value, `mode=${mode} is not min or max`);
  const compression = a.get('compression');
  let comp: Compression | undefined;
  if (compression !== undefined) {
    if (compression === 'uncompressed') comp = 'none';
    else if (compression === 'gzip' || compression === 'zstd') comp = compression;
    else throw bad(value, `compression=${compression} is not supported`, 'use gzip, zstd or uncompressed');
  }
  const levelText = a.get('compression-level');
  const level = levelText === undefined ? undefined : Number(levelText);
  if (level !== undefined && (!Number.isInteger(level) || level < 0 || level > 22))
    throw bad(value, `compression-level=${levelText} is not a level (gzip 0-9, zstd 1-22)`);
  const common: CacheExportCommon = {
    mode,
    ...(comp ? { compression: comp } : {}),
    ...(level !== undefined ? { compressionLevel: level } : {}),
    imageManifest: flag('image-manifest', false),
    ociMediaTypes: flag('oci-mediatypes', true),
    ignoreError: flag('ignore-error', false),
    mounts: flag('mounts', false),
  };
  flag('force-compression', false);
  if (common.imageManifest && !common.ociMediaTypes)
    throw bad(value, 'image-manifest=true needs OCI media types', 'leave out oci-mediatypes=false');
  if (type === 'registry') {
    known(a, [...commonKeys, 'ref'], value);
    const ref = required(a, 'ref', value);
    return { type: 'registry', ref, ...common };
  }
  if (type === 'local') {
    known(a, [...commonKeys, 'dest', 'tag'], value);
    const dest = required(a, 'dest', value);
    return { type: 'local', dest, tag: a.get('tag') ?? 'latest', ...common };
  }
  throw bad(value, `cache type ${type} is not supported`, 'use registry, local or inline');
}

/**
 * Parses a `--cache-from` value: `type=registry,ref=R`, `type=local,src=DIR[,tag=T|digest=D]`,
 * or a bare reference (= type=registry,ref=…; an image with an inline cache works too).
 * No I/O. Throws DRAY_INVALID_ARGUMENT.
 */
export function parseCacheImportSpec(value: string): CacheImportSpec {
  const a = attributes(value, '--cache-from');
  const type = a.get('type') ?? 'registry';
  if (type === 'registry') {
    known(a, ['type', 'ref', 'mode'], value);
    const ref = required(a, 'ref', value);
    return { type: 'registry', ref };
  }
  if (type === 'local') {
    known(a, ['type', 'src', 'tag', 'digest'], value);
    const src = required(a, 'src', value);
    const tag = a.get('tag');
    const digest = a.get('digest');
    return { type: 'local', src, ...(tag ? { tag } : {}), ...(digest ? { digest } : {}) };
  }
  throw bad(
    value,
    `cache type ${type} is not supported for import`,
    'use registry (also for inline caches) or local',
  );
}

function attributes(value: string, flag: string): Map<string, string> {
  const out = new Map<string, string>();
  const v = value.trim();
  if (v === '')
    throw new DrayError('DRAY_INVALID_ARGUMENT', `${flag} needs a value`, {
      hint: `e.g. ${flag} type=registry,ref=HOST/REPO:TAG`,
    });
  if (!v.includes('=')) {
    out.set('type', 'registry');
    out.set('ref', v);
    return out;
  }
  for (const field of splitCsv(v)) {
    const eq = field.indexOf('=');
    if (eq <= 0) throw bad(value, `"${field}" is not key=value`);
    const k = field.slice(0, eq).trim().toLowerCase();
    if (out.has(k)) throw bad(value, `${k}= is given twice`);
    out.set(k, field.slice(eq + 1));
  }
  return out;
}

/** Comma-separated fields, double quotes protecting commas (buildx reads these values as CSV). */
function splitCsv(s: string): string[] {
  const out: string[] = [];
  let cur = '';
  let quoted = false;
  for (let i = 0; i < s.length; i++) {
    const c = s[i] as string;
    if (c === '"') {
      if (quoted && s[i + 1] === '"') {
        cur += '"';
        i++;
      } else quoted = !quoted;
    } else if (c === ',' && !quoted) {
      out.push(cur);
      cur = '';
    } else cur += c;
  }
  if (quoted) throw new DrayError('DRAY_INVALID_ARGUMENT', `unterminated quote in ${JSON.stringify(s)}`);
  out.push(cur);
  return out;
}

function required(a: Map<string, string>, name: string, value: string): string {
  const v = a.get(name);
  if (v) return v;
  const type = a.get('type') ?? 'registry';
  const example = name === 'ref' ? 'registry.example.com/app:buildcache' : '/tmp/buildcache';
  throw bad(value, `type=${type} needs ${name}=`, `e.g. type=${type},${name}=${example}`);
}

function bool(a: Map<string, string>, name: string, dflt: boolean, value: string): boolean {
  const v = a.get(name);
  if (v === undefined) return dflt;
  if (v === 'true' || v === '1') return true;
  if (v === 'false' || v === '0') return false;
  throw bad(value, `${name}=${v} is not true or false`);
}

function known(a: Map<string, string>, keys: readonly string[], value: string): void {
  for (const k of a.keys())
    if (!keys.includes(k)) throw bad(value, `unknown attribute ${k}=`, `known here: ${keys.join(', ')}`);
}

function bad(value: string, what: string, hint?: string): DrayError {
  return new DrayError(
    'DRAY_INVALID_ARGUMENT',
    `cache option ${JSON.stringify(value)}: ${what}`,
    hint ? { hint } : {},
  );
}
