/**
 * Text formatting shared by the renderers: docker's sizes and progress bar
 * (docker/cli `pkg/jsonmessage`, docker/go-units `size.go`), BuildKit's durations. Pure.
 */

const decimalUnits = ['B', 'kB', 'MB', 'GB', 'TB', 'PB', 'EB', 'ZB', 'YB'] as const;

/** Go's `%.<p>g`: at most `p` significant digits, no trailing zeros, Go-style exponent. */
export function formatG(x: number, p: number): string {
  if (x === 0) return '0';
  const s = x.toPrecision(p);
  const m = /^(-?[\d.]+)e([+-])(\d+)$/.exec(s);
  if (m) return `${trimZeros(m[1] ?? '')}e${m[2]}${(m[3] ?? '').padStart(2, '0')}`;
  return trimZeros(s);
}

function trimZeros(s: string): string {
  return s.includes('.') ? s.replace(/\.?0+$/, '') : s;
}

/**
 * A byte count as docker prints it (go-units `HumanSizeWithPrecision`): decimal units
 * (1 kB = 1000 B) and `precision` significant digits. docker's progress lines use
 * `HumanSize`, which is precision 4 (`12.35MB`); `docker images` uses 3 (`12.3MB`).
 */
export function humanSize(bytes: number, precision = 4): string {
  let size = bytes;
  let i = 0;
  while (size >= 1000 && i < decimalUnits.length - 1) {
    size /= 1000;
    i++;
  }
  return `${formatG(size, precision)}${decimalUnits[i]}`;
}

/** Go's `time.Duration.String()` for whole seconds: `0s`, `45s`, `1m30s`, `2h0m5s`. */
export function goDurationSeconds(seconds: number): string {
  const s = Math.max(0, Math.floor(seconds));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = s % 60;
  if (h > 0) return `${h}h${m}m${sec}s`;
  if (m > 0) return `${m}m${sec}s`;
  return `${sec}s`;
}

/** Width of docker's bar: 50 steps of 2 %, drawn with `=` and a `>` head. */
export const barWidth = 50;

/** Inputs to {@link progressText}. */
export interface ProgressTextInput {
  current?: number | undefined;
  total?: number | undefined;
  /** Epoch ms the transfer started; enables docker's time-left estimate. */
  started?: number | undefined;
  /** Epoch ms now. */
  now?: number | undefined;
  /** Terminal width: the bar needs more than 110 columns, the time left more than 50 (as docker). */
  columns?: number | undefined;
}

/**
 * docker's progress text (`JSONProgress.String`): `[=====>      ]  12.35MB/50MB 3s`. Empty
 * when nothing is known; only the size when the total is unknown; the size alone when
 * `current` overshoots `total`; no bar in terminals of 110 columns or fewer.
 */
export function progressText(p: ProgressTextInput): string {
  const current = p.current ?? 0;
  const total = p.total ?? 0;
  const columns = p.columns ?? 200;
  if (current <= 0 && total <= 0) return '';
  if (total <= 0) return humanSize(current).padStart(8);
  const steps = Math.min(barWidth, Math.floor(Math.floor((current / total) * 100) / 2));
  let bar = '';
  if (columns > 110) bar = `[${'='.repeat(steps)}>${' '.repeat(Math.max(0, barWidth - steps))}] `;
  let numbers = `${humanSize(current).padStart(8)}/${humanSize(total)}`;
  if (current > total) numbers = humanSize(current).padStart(8);
  let left = '';
  if (current > 0 && p.started !== undefined && p.now !== undefined && steps < barWidth && columns > 50) {
    // docker counts from the start second and estimates with the average rate so far.
    const elapsed = p.now - Math.floor(p.started / 1000) * 1000;
    const perByte = elapsed / current;
    left = ` ${goDurationSeconds(((total - current) * perByte) / 1000)}`;
  }
  return bar + numbers + left;
}

/** The id docker shows for a blob: the first 12 hex digits of its digest; other ids as they are. */
export function shortId(id: string): string {
  const m = /^[a-z0-9]+(?:[+._-][a-z0-9]+)*:([a-fA-F0-9]{12,})$/.exec(id);
  return m ? (m[1] ?? id).slice(0, 12) : id;
}

/** BuildKit's plain byte counts (`%.2f` of `units.Bytes`): `37B`, `1.05MB`, `28.23MB`. */
export function bkBytes(n: number): string {
  let size = n;
  let i = 0;
  while (size >= 1000 && i < decimalUnits.length - 1) {
    size /= 1000;
    i++;
  }
  return `${i === 0 ? String(Math.round(size)) : trimZeros(size.toFixed(2))}${decimalUnits[i]}`;
}

/** Seconds with BuildKit's log-line precision: 3 decimals under 10 s, 2 under 100 s, else 1. */
export function logSeconds(ms: number): string {
  const s = Math.max(0, ms) / 1000;
  return s.toFixed(s < 10 ? 3 : s < 100 ? 2 : 1);
}

/** Cuts `s` to at most `width` columns (wide characters count 2), so a redrawn line never wraps. */
export function fitWidth(s: string, width: number): string {
  if (width <= 0) return '';
  let w = 0;
  let out = '';
  for (const ch of s) {
    const cw = charWidth(ch.codePointAt(0) ?? 0);
    if (w + cw > width) return out;
    w += cw;
    out += ch;
  }
  return out;
}

function charWidth(cp: number): number {
  if (cp < 0x20 || (cp >= 0x7f && cp < 0xa0)) return 0;
  if (cp >= 0x300 && cp <= 0x36f) return 0; // combining marks
  // East Asian wide and fullwidth ranges, and emoji.
  if (
    (cp >= 0x1100 && cp <= 0x115f) ||
    (cp >= 0x2e80 && cp <= 0xa4cf) ||
    (cp >= 0xac00 && cp <= 0xd7a3) ||
    (cp >= 0xf900 && cp <= 0xfaff) ||
    (cp >= 0xfe30 && cp <= 0xfe4f) ||
    (cp >= 0xff00 && cp <= 0xff60) ||
    (cp >= 0xffe0 && cp <= 0xffe6) ||
    (cp >= 0x1f300 && cp <= 0x1faff) ||
    (cp >= 0x20000 && cp <= 0x3fffd)
  )
    return 2;
  return 1;
}
