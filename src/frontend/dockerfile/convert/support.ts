/**
 * Small pieces of dockerfile2llb that need Go's exact behaviour: `fmt` formatting of lists
 * in history lines, signal names, `--chmod` syntax, platform strings and the predefined
 * platform ARGs.
 */
import type { Platform } from '../../../oci/index.ts';
import { cleanPath } from '../../../solver/index.ts';
import { formatGoDuration, type Healthcheck } from '../instructions/index.ts';
import { goQuote } from '../shell/gotext.ts';
import { EnvList } from './env-list.ts';

/** Go's `path.Clean` (the file engine's, shared). */
export { cleanPath };

/** Go's `fmt.Sprintf("%v", []string)`: `[a b c]`. */
export function goList(items: readonly string[] | undefined): string {
  return `[${(items ?? []).join(' ')}]`;
}

/** Go's `fmt.Sprintf("%q", []string)`: `["a" "b"]`. */
export function goQuotedList(items: readonly string[] | undefined): string {
  return `[${(items ?? []).map(goQuote).join(' ')}]`;
}

/** Go's `%+v` of a HealthcheckConfig value, as HEALTHCHECK history lines show it. */
export function goHealthcheck(h: Healthcheck): string {
  return (
    `{Test:${goList(h.test)} Interval:${formatGoDuration(h.interval)} Timeout:${formatGoDuration(h.timeout)} ` +
    `StartPeriod:${formatGoDuration(h.startPeriod)} StartInterval:${formatGoDuration(h.startInterval)} Retries:${h.retries}}`
  );
}

// moby/sys/signal's Linux table (without the SIG prefix).
const signalNames = new Set([
  'ABRT',
  'ALRM',
  'BUS',
  'CHLD',
  'CLD',
  'CONT',
  'FPE',
  'HUP',
  'ILL',
  'INT',
  'IO',
  'IOT',
  'KILL',
  'PIPE',
  'POLL',
  'PROF',
  'PWR',
  'QUIT',
  'SEGV',
  'STKFLT',
  'STOP',
  'SYS',
  'TERM',
  'TRAP',
  'TSTP',
  'TTIN',
  'TTOU',
  'URG',
  'USR1',
  'USR2',
  'VTALRM',
  'WINCH',
  'XCPU',
  'XFSZ',
  'RTMIN',
  ...Array.from({ length: 15 }, (_, i) => `RTMIN+${i + 1}`),
  ...Array.from({ length: 14 }, (_, i) => `RTMAX-${14 - i}`),
  'RTMAX',
]);

/** moby/sys/signal `ParseSignal`: a non-zero number or a known name (`SIGTERM`, `term`). */
export function isValidSignal(raw: string): boolean {
  if (/^[+-]?[0-9]+$/.test(raw)) {
    const n = Number.parseInt(raw, 10);
    return n !== 0 && Number.isSafeInteger(n);
  }
  let name = raw.toUpperCase();
  if (name.startsWith('SIG')) name = name.slice(3);
  return signalNames.has(name);
}

/**
 * Whether a symbolic mode parses (tonistiigi/dchapes-mode, BSD setmode syntax):
 * `[ugoa]*[+-=][rwxXstugo]*` clauses, comma-separated, operators may chain (`u+x-w`).
 */
export function isValidSymbolicMode(s: string): boolean {
  if (s === '') return false;
  let i = 0;
  for (;;) {
    while (i < s.length && 'augo'.includes(s[i]!)) i++;
    if (i >= s.length) return false;
    for (;;) {
      const op = s[i]!;
      i++;
      if (op !== '+' && op !== '-' && op !== '=') return false;
      while (i < s.length && 'rstwXxugo'.includes(s[i]!)) i++;
      if (i >= s.length) return true;
      if (s[i] !== ',') continue;
      i++;
      break;
    }
  }
}

/** containerd `platforms.FormatAll`: `os[(os.version)]/arch[/variant]`. */
export function formatPlatformAll(p: Platform): string {
  if (!p.os) return 'unknown';
  let os = p.os;
  const features = [...(p['os.features'] ?? [])].sort().join('+');
  if (p['os.version'] || features) os += `(${p['os.version'] ?? ''}${features ? `+${features}` : ''})`;
  return [os, p.architecture, p.variant].filter((s) => s).join('/');
}

/** containerd `platforms.Format`: `os/arch[/variant]`. */
export function formatPlatformShort(p: Platform): string {
  if (!p.os) return 'unknown';
  return [p.os, p.architecture, p.variant].filter((s) => s).join('/');
}

/**
 * The predefined ARGs every stage may declare (dockerfile2llb `defaultArgs`): BUILD* for the
 * build platform, TARGET* for the target, TARGETSTAGE; a `--build-arg` of the same name
 * overrides its value.
 */
export function defaultArgs(
  build: Platform,
  target: Platform,
  overrides: Readonly<Record<string, string>>,
  targetStage: string,
): EnvList {
  const pairs: Array<[string, string]> = [
    ['BUILDPLATFORM', formatPlatformShort(build)],
    ['BUILDOS', build.os],
    ['BUILDOSVERSION', build['os.version'] ?? ''],
    ['BUILDARCH', build.architecture],
    ['BUILDVARIANT', build.variant ?? ''],
    ['TARGETPLATFORM', formatPlatformAll(target)],
    ['TARGETOS', target.os],
    ['TARGETOSVERSION', target['os.version'] ?? ''],
    ['TARGETARCH', target.architecture],
    ['TARGETVARIANT', target.variant ?? ''],
    ['TARGETSTAGE', targetStage === '' ? 'default' : targetStage],
  ];
  let env = new EnvList();
  for (const [k, v] of pairs) env = env.set(k, Object.hasOwn(overrides, k) ? overrides[k]! : v);
  return env;
}

/** Go's `strings.SplitN(str, " ", 2)` with the first part upper-cased (dockerfile2llb `uppercaseCmd`). */
export function uppercaseCmd(s: string): string {
  const sp = s.indexOf(' ');
  return sp < 0 ? s.toUpperCase() : s.slice(0, sp).toUpperCase() + s.slice(sp);
}

/** The first line of a heredoc body, `...` when there are more (dockerfile2llb `summarizeHeredoc`). */
export function summarizeHeredoc(doc: string): string {
  const lines = doc.trim().replaceAll('\r\n', '\n').split('\n');
  return lines.length > 1 ? `${lines[0]}...` : lines[0]!;
}

/** Go's `path.Join`. */
export function joinPath(...parts: string[]): string {
  const nonEmpty = parts.filter((p) => p !== '');
  return nonEmpty.length === 0 ? '' : cleanPath(nonEmpty.join('/'));
}

/** Go's `path.Base`. */
export function basePath(p: string): string {
  if (p === '') return '.';
  const trimmed = p.replace(/\/+$/, '');
  if (trimmed === '') return '/';
  return trimmed.slice(trimmed.lastIndexOf('/') + 1);
}

/**
 * BuildKit's `system.NormalizePath` on Linux: relative paths are joined to `parent` (which
 * cleans them); absolute ones are kept as written; with `keepSlash` a trailing `/` or `/.`
 * survives.
 */
export function normalizePath(parent: string, newPath: string, keepSlash: boolean): string {
  const orig = newPath;
  let par = parent === '' ? '/' : parent;
  if (!par.startsWith('/')) par = joinPath('/', par);
  let p = newPath === '' ? par : newPath;
  if (!p.startsWith('/')) p = joinPath(par, p);
  if (keepSlash) {
    if (orig.endsWith('/') && !p.endsWith('/')) p += '/';
    else if (orig.endsWith('/.')) {
      if (p !== '/') p += '/';
      p += '.';
    }
  }
  return p;
}

/** LLB's own path normalisation of file-op paths (client/llb `normalizePath`): always cleaned. */
export function llbPath(parent: string, p: string, keepSlash: boolean): string {
  let out = cleanPath(p);
  if (!out.startsWith('/')) out = joinPath('/', parent, out);
  if (keepSlash) {
    if (p.endsWith('/') && !out.endsWith('/')) out += '/';
    else if (p.endsWith('/.')) {
      if (out !== '/') out += '/';
      out += '.';
    }
  }
  return out;
}

/** Whether a path holds a glob character (`*`, `?`, `[`; `\` escapes the next byte). */
export function containsWildcards(name: string): boolean {
  for (let i = 0; i < name.length; i++) {
    const c = name[i];
    if (c === '*' || c === '?' || c === '[') return true;
    if (c === '\\') i++;
  }
  return false;
}
