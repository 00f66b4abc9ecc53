import type { Digest } from '../digest/index.ts';
import { DrayError } from '../errors.ts';
import { familiarName, familiarString, type Reference } from './reference.ts';

// A shell-style pattern with Go's path.Match semantics, which distribution's FamiliarMatch
// uses: "*" is any run of characters other than "/", "?" one character other than "/",
// "[...]" a class ("^" negates; ranges "a-z"; "\" escapes), "\c" the character c.
type Token =
  | { kind: 'char'; ch: string }
  | { kind: 'any' }
  | { kind: 'class'; negated: boolean; ranges: Array<[lo: number, hi: number]> };

// The pattern split at each run of "*": `star` says whether a run precedes the tokens.
interface Chunk {
  star: boolean;
  tokens: Token[];
}

function badPattern(pattern: string): DrayError {
  return new DrayError('DRAY_INVALID_ARGUMENT', `syntax error in pattern: ${pattern}`);
}

// Compiles the whole pattern up front, so a malformed one is reported whether or not it
// would have matched (Go's path.Match does the same since Go 1.16).
function compile(pattern: string): Chunk[] {
  const p = Array.from(pattern);
  const chunks: Chunk[] = [{ star: false, tokens: [] }];
  let i = 0;
  // One class member: a character other than "-" and "]" (or any escaped one), which
  // must not be the last of the pattern since the class still needs its "]".
  const member = (): number => {
    if (p[i] === '\\') i++;
    else if (p[i] === '-' || p[i] === ']') throw badPattern(pattern);
    const ch = p[i++];
    if (ch === undefined || i >= p.length) throw badPattern(pattern);
    return ch.codePointAt(0) ?? 0;
  };
  while (i < p.length) {
    const c = p[i++] ?? '';
    const current = chunks[chunks.length - 1] ?? { star: false, tokens: [] };
    if (c === '*') {
      if (current.star && current.tokens.length === 0) continue; // "**" is one "*"
      chunks.push({ star: true, tokens: [] });
    } else if (c === '?') {
      current.tokens.push({ kind: 'any' });
    } else if (c === '\\') {
      const ch = p[i++];
      if (ch === undefined) throw badPattern(pattern);
      current.tokens.push({ kind: 'char', ch });
    } else if (c === '[') {
      const negated = p[i] === '^';
      if (negated) i++;
      const ranges: Array<[number, number]> = [];
      for (;;) {
        if (p[i] === ']' && ranges.length > 0) {
          i++;
          break;
        }
        const lo = member();
        let hi = lo;
        if (p[i] === '-') {
          i++;
          hi = member();
        }
        ranges.push([lo, hi]);
      }
      current.tokens.push({ kind: 'class', negated, ranges });
    } else {
      current.tokens.push({ kind: 'char', ch: c });
    }
  }
  return chunks;
}

// Matches the tokens at s[at...]; returns the index after the match, or -1.
function matchTokens(tokens: Token[], s: string[], at: number): number {
  let j = at;
  for (const t of tokens) {
    const ch = s[j];
    if (ch === undefined) return -1;
    if (t.kind === 'char') {
      if (ch !== t.ch) return -1;
    } else if (t.kind === 'any') {
      if (ch === '/') return -1;
    } else {
      const cp = ch.codePointAt(0) ?? 0;
      const inClass = t.ranges.some(([lo, hi]) => lo <= cp && cp <= hi);
      if (inClass === t.negated) return -1;
    }
    j++;
  }
  return j;
}

// Go's strategy, kept for identical answers: each chunk takes the first position its
// star allows (a star never crosses "/"), except that the last chunk must end the name.
function matchCompiled(chunks: Chunk[], name: string): boolean {
  const s = Array.from(name);
  let at = 0;
  for (let k = 0; k < chunks.length; k++) {
    const chunk = chunks[k] ?? { star: false, tokens: [] };
    const last = k === chunks.length - 1;
    if (chunk.star && chunk.tokens.length === 0) return !s.slice(at).includes('/'); // trailing "*"
    let end = matchTokens(chunk.tokens, s, at);
    if (end < 0 || (last && end !== s.length)) {
      end = -1;
      if (chunk.star) {
        for (let skip = at; skip < s.length && s[skip] !== '/'; skip++) {
          const e = matchTokens(chunk.tokens, s, skip + 1);
          if (e >= 0 && (!last || e === s.length)) {
            end = e;
            break;
          }
        }
      }
      if (end < 0) return false;
    }
    at = end;
  }
  return at === s.length;
}

/**
 * Reports whether a reference matches a shell pattern: distribution's `FamiliarMatch`.
 * No I/O. The pattern (Go `path.Match` syntax: `*`, `?`, `[a-z]`, `[^x]`, `\c`; `*` and
 * `?` never match `/`) is tried against {@link familiarString} and then, for a named
 * reference, against {@link familiarName}, so `foo/*` matches `foo/bar:1`.
 *
 * @throws DrayError `DRAY_INVALID_ARGUMENT`: `syntax error in pattern: <pattern>`.
 */
export function familiarMatch(pattern: string, ref: Reference | Digest): boolean {
  return familiarMatcher(pattern)(ref);
}

/**
 * {@link familiarMatch} with the pattern compiled once, for matching many references: a
 * malformed pattern throws here, before any reference is tried. No I/O.
 *
 * @throws DrayError `DRAY_INVALID_ARGUMENT`: `syntax error in pattern: <pattern>`.
 */
export function familiarMatcher(pattern: string): (ref: Reference | Digest) => boolean {
  const chunks = compile(pattern);
  return (ref) =>
    typeof ref === 'string'
      ? matchCompiled(chunks, ref)
      : matchCompiled(chunks, familiarString(ref)) || matchCompiled(chunks, familiarName(ref));
}
