import { DrayError } from '../errors.ts';
import type { Challenge, Scope } from './auth-types.ts';

/**
 * `WWW-Authenticate` parsing (RFC 7235 §4.1, §2.1) and token scopes (distribution
 * `docs/spec/auth/scope.md`).
 */

/** The parameter key a token68 credential (`Negotiate abc==`) is stored under: not a valid param name. */
export const token68Param = '';

const tchar = /[!#$%&'*+\-.^_`|~0-9A-Za-z]/;
const token68Char = /[A-Za-z0-9\-._~+/]/;

/**
 * Parses one or more `WWW-Authenticate` header values into challenges, in order. Handles
 * several challenges in one value (`Bearer realm="a", Basic realm="b"`), quoted strings with
 * `\` escapes, `token68` credentials (stored under the `''` key), case-insensitive scheme and
 * parameter names (returned lower-cased; values keep their case), and empty list elements.
 * Lenient as browsers are: an unquoted value runs to the next comma or space (so
 * `realm=https://a/token` works), an unterminated quote runs to the end, the first of duplicate
 * parameters wins, and unparsable pieces are skipped. No I/O; never throws.
 */
export function parseChallenges(header: string | readonly string[] | undefined | null): Challenge[] {
  if (header === undefined || header === null) return [];
  const values = typeof header === 'string' ? [header] : header;
  const out: Challenge[] = [];
  for (const v of values) parseOne(v, out);
  return out;
}

function parseOne(s: string, out: Challenge[]): void {
  let i = 0;
  const n = s.length;
  const isWs = (c: string | undefined) => c === ' ' || c === '\t';
  const skipWs = () => {
    while (i < n && isWs(s[i])) i++;
  };
  const readToken = () => {
    const start = i;
    while (i < n && tchar.test(s[i] as string)) i++;
    return s.slice(start, i);
  };
  const skipToComma = () => {
    while (i < n && s[i] !== ',') {
      if (s[i] === '"') readQuoted();
      else i++;
    }
  };
  const readQuoted = () => {
    i++; // opening quote
    let v = '';
    while (i < n && s[i] !== '"') {
      if (s[i] === '\\' && i + 1 < n) i++;
      v += s[i];
      i++;
    }
    if (i < n) i++; // closing quote
    return v;
  };

  while (i < n) {
    while (i < n && (isWs(s[i]) || s[i] === ',')) i++;
    if (i >= n) break;
    const scheme = readToken();
    if (!scheme) {
      i++;
      skipToComma();
      continue;
    }
    const challenge: Challenge = { scheme: scheme.toLowerCase(), params: {} };
    out.push(challenge);
    if (i < n && !isWs(s[i]) && s[i] !== ',') {
      skipToComma(); // `Basic/x`: not a challenge we understand; keep the scheme, drop the rest
      continue;
    }
    skipWs();

    // token68: `1*token68char *"="`, then the end of this challenge.
    const t68start = i;
    while (i < n && token68Char.test(s[i] as string)) i++;
    if (i > t68start) {
      while (i < n && s[i] === '=') i++;
      const t68end = i;
      skipWs();
      if (i >= n || s[i] === ',') {
        challenge.params[token68Param] = s.slice(t68start, t68end);
        continue;
      }
    }
    i = t68start;

    // #auth-param, until a token that is not followed by "=" (the next challenge's scheme).
    for (;;) {
      while (i < n && (isWs(s[i]) || s[i] === ',')) i++;
      if (i >= n) break;
      const before = i;
      const name = readToken();
      if (!name) {
        skipToComma();
        continue;
      }
      skipWs();
      if (s[i] !== '=') {
        i = before; // a new challenge starts here
        break;
      }
      i++;
      skipWs();
      let value: string;
      if (s[i] === '"') value = readQuoted();
      else {
        const start = i;
        while (i < n && s[i] !== ',' && !isWs(s[i])) i++;
        value = s.slice(start, i);
      }
      const key = name.toLowerCase();
      if (!(key in challenge.params)) challenge.params[key] = value;
      skipWs();
      if (i < n && s[i] !== ',') skipToComma();
    }
  }
}

/** `repository:library/alpine:pull,push` — the distribution token spec's scope string. No I/O. */
export function formatScope(scope: Scope): string {
  return `${scope.type}:${scope.name}:${scope.actions.join(',')}`;
}

/**
 * Parses `type:name:actions`. The name may itself contain `:` (it runs to the last one).
 * No I/O.
 * @throws DRAY_INVALID_ARGUMENT for another resource type, an empty name or no actions.
 */
export function parseScope(text: string): Scope {
  const first = text.indexOf(':');
  const last = text.lastIndexOf(':');
  const type = text.slice(0, first);
  const name = text.slice(first + 1, last);
  const actions = text
    .slice(last + 1)
    .split(',')
    .map((a) => a.trim())
    .filter((a) => a !== '');
  if (
    first < 0 ||
    last === first ||
    (type !== 'repository' && type !== 'registry') ||
    !name ||
    !actions.length
  ) {
    throw new DrayError(
      'DRAY_INVALID_ARGUMENT',
      `invalid scope "${text}": expected repository|registry:name:actions`,
    );
  }
  return { type, name, actions };
}

/**
 * Scopes merged per resource, actions de-duplicated and sorted, resources sorted: the form a
 * token is requested and cached for. No I/O.
 */
export function normalizeScopes(scopes: readonly Scope[]): Scope[] {
  const merged = new Map<string, { type: Scope['type']; name: string; actions: Set<string> }>();
  for (const s of scopes) {
    const k = `${s.type}:${s.name}`;
    let m = merged.get(k);
    if (!m) merged.set(k, (m = { type: s.type, name: s.name, actions: new Set() }));
    for (const a of s.actions) if (a) m.actions.add(a);
  }
  return [...merged.entries()]
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([, m]) => ({ type: m.type, name: m.name, actions: [...m.actions].sort() }));
}

/** A stable string for a set of scopes (order- and duplicate-insensitive). No I/O. */
export function scopesKey(scopes: readonly Scope[]): string {
  return normalizeScopes(scopes).map(formatScope).join(' ');
}
