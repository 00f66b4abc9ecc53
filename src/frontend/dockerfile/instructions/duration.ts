/**
 * Go's `time.ParseDuration` and `time.Duration.String`, exactly: HEALTHCHECK takes its
 * intervals in Go's syntax (`1m30s`, `1.5h`, `300ms`) and BuildKit writes them back in
 * history with Go's formatting, so both directions must match upstream byte for byte.
 */

const unitNs: Record<string, bigint> = {
  ns: 1n,
  us: 1_000n,
  µs: 1_000n, // U+00B5 micro sign
  μs: 1_000n, // U+03BC Greek mu
  ms: 1_000_000n,
  s: 1_000_000_000n,
  m: 60_000_000_000n,
  h: 3_600_000_000_000n,
};

const maxInt64 = (1n << 63n) - 1n;
const overflowLimit = 1n << 63n;

/** Go's `time` package quoting: `"` + s + `"` (the characters Go escapes never occur in practice here). */
function quote(s: string): string {
  return `"${s}"`;
}

function isDigit(c: string | undefined): boolean {
  return c !== undefined && c >= '0' && c <= '9';
}

/**
 * Parses a duration as Go's `time.ParseDuration`: `[-+]?([0-9]*(\.[0-9]*)?[a-z]+)+`, or `0`.
 * Returns nanoseconds. Throws a plain `Error` with Go's message (`time: invalid duration
 * "x"`, `time: missing unit in duration "1"`, `time: unknown unit "d" in duration "1d"`),
 * which the instruction layer turns into a located Dockerfile error.
 */
export function parseGoDuration(input: string): number {
  const invalid = () => new Error(`time: invalid duration ${quote(input)}`);
  let s = input;
  let neg = false;
  if (s !== '' && (s[0] === '-' || s[0] === '+')) {
    neg = s[0] === '-';
    s = s.slice(1);
  }
  if (s === '0') return 0;
  if (s === '') throw invalid();
  let d = 0n;
  while (s !== '') {
    if (!(s[0] === '.' || isDigit(s[0]))) throw invalid();
    // Integer part.
    let i = 0;
    let v = 0n;
    while (isDigit(s[i])) {
      v = v * 10n + BigInt(s.charCodeAt(i) - 48);
      if (v > overflowLimit) throw invalid();
      i++;
    }
    const pre = i > 0;
    s = s.slice(i);
    // Fraction part: digits past what fits are dropped, as Go does.
    let post = false;
    let f = 0n;
    let scale = 1n;
    if (s[0] === '.') {
      s = s.slice(1);
      let j = 0;
      let overflow = false;
      while (isDigit(s[j])) {
        if (!overflow) {
          const next = f * 10n + BigInt(s.charCodeAt(j) - 48);
          if (next > maxInt64) overflow = true;
          else {
            f = next;
            scale *= 10n;
          }
        }
        j++;
      }
      post = j > 0;
      s = s.slice(j);
    }
    if (!pre && !post) throw invalid();
    let u = 0;
    while (u < s.length && s[u] !== '.' && !isDigit(s[u])) u++;
    if (u === 0) throw new Error(`time: missing unit in duration ${quote(input)}`);
    const unitName = s.slice(0, u);
    s = s.slice(u);
    const unit = unitNs[unitName];
    if (unit === undefined)
      throw new Error(`time: unknown unit ${quote(unitName)} in duration ${quote(input)}`);
    if (v > overflowLimit / unit) throw invalid();
    v *= unit;
    if (f > 0n) {
      // Go computes this in float64: uint64(float64(f) * (float64(unit) / scale)).
      v += BigInt(Math.trunc(Number(f) * (Number(unit) / Number(scale))));
      if (v > overflowLimit) throw invalid();
    }
    d += v;
    if (d > overflowLimit) throw invalid();
  }
  if (neg) return -Number(d);
  if (d > maxInt64) throw invalid();
  return Number(d);
}

// Go's fmtFrac: the fraction of v / 10^prec without trailing zeros ('' when zero).
function fraction(v: bigint, prec: number): { frac: string; rest: bigint } {
  let digits = '';
  let printed = false;
  let x = v;
  for (let i = 0; i < prec; i++) {
    const digit = x % 10n;
    printed = printed || digit !== 0n;
    if (printed) digits = digit.toString() + digits;
    x /= 10n;
  }
  return { frac: printed ? `.${digits}` : '', rest: x };
}

/** Formats nanoseconds as Go's `time.Duration.String` (`1m30s`, `1.5s`, `300ms`, `0s`, `1h0m0s`). */
export function formatGoDuration(ns: number): string {
  const neg = ns < 0;
  let u = BigInt(Math.abs(Math.trunc(ns)));
  let out: string;
  if (u < 1_000_000_000n) {
    if (u === 0n) return '0s';
    let unit: string;
    let prec: number;
    if (u < 1_000n) {
      unit = 'ns';
      prec = 0;
    } else if (u < 1_000_000n) {
      unit = 'µs';
      prec = 3;
    } else {
      unit = 'ms';
      prec = 6;
    }
    const { frac, rest } = fraction(u, prec);
    out = `${rest}${frac}${unit}`;
  } else {
    const { frac, rest } = fraction(u, 9);
    u = rest;
    out = `${u % 60n}${frac}s`;
    u /= 60n;
    if (u > 0n) {
      out = `${u % 60n}m${out}`;
      u /= 60n;
      if (u > 0n) out = `${u}h${out}`;
    }
  }
  return neg ? `-${out}` : out;
}
