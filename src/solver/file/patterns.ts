import { DrayError } from '../../errors.ts';

/**
 * Path patterns as BuildKit reads them: Go's `filepath.Match` (COPY source wildcards),
 * Go's `filepath.Clean`, and .dockerignore patterns (moby/patternmatcher: `*`, `?`, `**`,
 * classes, `!` re-includes, matching that reuses the parent directory's results).
 * Paths are '/'-separated and relative; nothing here does I/O.
 */

/** Go's `filepath.Clean` for '/'-separated paths: '.', '..' and repeated slashes resolved lexically. Pure. */
export function cleanPath(p: string): string {
  if (p === '') return '.';
  const rooted = p.startsWith('/');
  const out: string[] = [];
  for (const part of p.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') {
      if (out.length > 0 && out[out.length - 1] !== '..') out.pop();
      else if (!rooted) out.push('..');
      continue;
    }
    out.push(part);
  }
  const s = (rooted ? '/' : '') + out.join('/');
  return s === '' ? '.' : s;
}

/** Go's `unicode.IsSpace` set, for `strings.TrimSpace` (JS `trim()` also strips U+FEFF). */
const SPACE = '\\t\\n\\v\\f\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000';
const trimRe = new RegExp(`^[${SPACE}]+|[${SPACE}]+$`, 'g');

/** Go's `strings.TrimSpace`. Pure. */
export function trimSpace(s: string): string {
  return s.replace(trimRe, '');
}

function badPattern(pattern: string): DrayError {
  return new DrayError('DRAY_INVALID_ARGUMENT', `syntax error in pattern: ${JSON.stringify(pattern)}`, {
    hint: 'check the brackets and escapes of the pattern (Go filepath.Match syntax)',
  });
}

/** True when `name` holds an unescaped `*`, `?` or `[` (fsutil's containsWildcards). Pure. */
export function hasWildcards(name: string): boolean {
  for (let i = 0; i < name.length; i++) {
    const c = name[i];
    if (c === '\\') i++;
    else if (c === '*' || c === '?' || c === '[') return true;
  }
  return false;
}

/**
 * Go's `filepath.Match` on Linux: `*` any run of non-'/' characters, `?` one non-'/'
 * character, `[...]` a class (`^` negates, `a-z` ranges, `\` escapes), `\x` the literal x.
 * Pure. @throws DRAY_INVALID_ARGUMENT for a malformed pattern (Go's ErrBadPattern).
 */
export function goMatch(pattern: string, name: string): boolean {
  const pat = Array.from(pattern);
  const s = Array.from(name);
  const r = matchFrom(pat, 0, s, 0);
  if (r === 'bad') throw badPattern(pattern);
  return r;
}

type MatchResult = boolean | 'bad';

/** One chunk: optional leading stars, then literal/class/? items up to the next unbracketed star. */
function scanChunk(pat: string[], i: number): { star: boolean; start: number; end: number } {
  let star = false;
  while (i < pat.length && pat[i] === '*') {
    i++;
    star = true;
  }
  const start = i;
  let inClass = false;
  for (; i < pat.length; i++) {
    const c = pat[i];
    if (c === '\\') {
      if (i + 1 < pat.length) i++;
    } else if (c === '[') inClass = true;
    else if (c === ']') inClass = false;
    else if (c === '*' && !inClass) break;
  }
  return { star, start, end: i };
}

function matchFrom(pat: string[], pi: number, s: string[], si: number): MatchResult {
  while (pi < pat.length) {
    const { star, start, end } = scanChunk(pat, pi);
    pi = end;
    if (star && start === end) {
      // A trailing star takes the rest of the name, unless that crosses a separator.
      return !s.slice(si).includes('/');
    }
    const first = matchChunk(pat, start, end, s, si);
    if (first === 'bad') return 'bad';
    if (first !== false && (first === s.length || pi < pat.length)) {
      si = first;
      continue;
    }
    let advanced = false;
    if (star) {
      // The star swallows 1..n non-separator characters before the chunk matches.
      for (let k = si; k < s.length && s[k] !== '/'; k++) {
        const t = matchChunk(pat, start, end, s, k + 1);
        if (t === 'bad') return 'bad';
        if (t !== false) {
          if (pi === pat.length && t !== s.length) continue;
          si = t;
          advanced = true;
          break;
        }
      }
    }
    if (advanced) continue;
    // No match: still report a malformed remainder, as Go does.
    while (pi < pat.length) {
      const c = scanChunk(pat, pi);
      pi = c.end;
      if (matchChunk(pat, c.start, c.end, [], 0) === 'bad') return 'bad';
    }
    return false;
  }
  return si === s.length;
}

/** Matches pat[start, end) at s[si…]; returns the index after the match, false, or 'bad'. */
function matchChunk(
  pat: string[],
  start: number,
  end: number,
  s: string[],
  si: number,
): number | false | 'bad' {
  let failed = false;
  let i = start;
  while (i < end) {
    if (!failed && si >= s.length) failed = true;
    const c = pat[i];
    if (c === '[') {
      let ch = -1;
      if (!failed) ch = (s[si++] as string).codePointAt(0) as number;
      i++;
      let negated = false;
      if (i < end && pat[i] === '^') {
        negated = true;
        i++;
      }
      let matched = false;
      let ranges = 0;
      for (;;) {
        if (i < end && pat[i] === ']' && ranges > 0) {
          i++;
          break;
        }
        const lo = classChar(pat, i, end);
        if (lo === 'bad') return 'bad';
        i = lo.next;
        let hi = lo.cp;
        if (pat[i] === '-') {
          const h = classChar(pat, i + 1, end);
          if (h === 'bad') return 'bad';
          i = h.next;
          hi = h.cp;
        }
        if (lo.cp <= ch && ch <= hi) matched = true;
        ranges++;
      }
      if (matched === negated) failed = true;
    } else if (c === '?') {
      if (!failed) {
        if (s[si] === '/') failed = true;
        si++;
      }
      i++;
    } else {
      let lit = c;
      if (c === '\\') {
        i++;
        if (i >= end) return 'bad';
        lit = pat[i];
      }
      if (!failed) {
        if (lit !== s[si]) failed = true;
        si++;
      }
      i++;
    }
  }
  return failed ? false : si;
}

/** One character of a class (maybe escaped); a class must not end right after it. */
function classChar(pat: string[], i: number, end: number): { cp: number; next: number } | 'bad' {
  if (i >= end || pat[i] === '-' || pat[i] === ']') return 'bad';
  if (pat[i] === '\\') {
    i++;
    if (i >= end) return 'bad';
  }
  const cp = (pat[i] as string).codePointAt(0) as number;
  i++;
  if (i >= end) return 'bad';
  return { cp, next: i };
}

/** Regex metacharacters that mean nothing to filepath.Match and must match literally. */
const LITERAL_ESCAPE = new Set(['.', '+', '(', ')', '|', '{', '}', '$']);

/** One compiled .dockerignore pattern (patternmatcher's Pattern). */
class Pattern {
  readonly text: string;
  readonly exclusion: boolean;
  #kind: 'exact' | 'prefix' | 'suffix' | 'regexp' = 'exact';
  #re: RegExp | undefined;

  constructor(text: string, exclusion: boolean) {
    this.text = text;
    this.exclusion = exclusion;
    this.#compile();
  }

  /** The pattern without a trailing `/**` or `/*` (fsutil's prefix test for skipping directories). */
  get prefixPart(): string {
    if (this.text.endsWith('/**')) return this.text.slice(0, -3);
    if (this.text.endsWith('/*')) return this.text.slice(0, -2);
    return this.text;
  }

  match(path: string): boolean {
    switch (this.#kind) {
      case 'exact':
        return path === this.text;
      case 'prefix':
        return path.startsWith(this.text.slice(0, -2));
      case 'suffix': {
        const suffix = this.text.slice(2);
        if (path.endsWith(suffix)) return true;
        return suffix.startsWith('/') && path === suffix.slice(1);
      }
      default:
        return (this.#re as RegExp).test(path);
    }
  }

  #compile(): void {
    const chars = Array.from(this.text);
    let re = '^';
    let kind: 'exact' | 'prefix' | 'suffix' | 'regexp' = 'exact';
    for (let i = 0, step = 0; i < chars.length; i++, step++) {
      const c = chars[i] as string;
      if (c === '*') {
        if (chars[i + 1] === '*') {
          i++;
          if (chars[i + 1] === '/') i++;
          if (i + 1 >= chars.length) {
            // `**` at the end matches everything below, like .gitignore.
            if (kind === 'exact') kind = 'prefix';
            else {
              re += '.*';
              kind = 'regexp';
            }
          } else {
            re += '(.*/)?';
            kind = 'regexp';
          }
          if (step === 0) kind = 'suffix';
        } else {
          re += '[^/]*';
          kind = 'regexp';
        }
      } else if (c === '?') {
        re += '[^/]';
        kind = 'regexp';
      } else if (LITERAL_ESCAPE.has(c)) {
        re += `\\${c}`;
      } else if (c === '\\') {
        if (i + 1 < chars.length) {
          re += `\\${chars[++i]}`;
          kind = 'regexp';
        } else re += '\\\\';
      } else if (c === '[' || c === ']') {
        re += c;
        kind = 'regexp';
      } else {
        re += c;
      }
    }
    this.#kind = kind;
    if (kind === 'regexp') this.#re = compileRegExp(`${re}$`, this.text);
  }
}

/** Go's RE2 works on code points: prefer the `u` flag; escapes RE2 accepts but `u` rejects fall back. */
function compileRegExp(source: string, pattern: string): RegExp {
  try {
    return new RegExp(source, 'u');
  } catch {
    try {
      return new RegExp(source);
    } catch (e) {
      throw new DrayError('DRAY_INVALID_ARGUMENT', `syntax error in pattern: ${JSON.stringify(pattern)}`, {
        cause: e,
      });
    }
  }
}

/** Per-pattern results for a directory, handed to its children (patternmatcher's MatchInfo). */
export type MatchState = readonly boolean[];

/**
 * An ordered list of .dockerignore patterns (moby/patternmatcher `New`): each trimmed,
 * cleaned, `!` marks a re-include; the last pattern that matches decides.
 */
export class PatternMatcher {
  readonly patterns: readonly Pattern[];
  /** True when some pattern is a `!` re-include. */
  readonly exclusions: boolean;

  /** @throws DRAY_INVALID_ARGUMENT for `!` alone or a malformed pattern. Pure. */
  constructor(patterns: readonly string[]) {
    const list: Pattern[] = [];
    let exclusions = false;
    for (const raw of patterns) {
      let p = trimSpace(raw);
      if (p === '') continue;
      p = cleanPath(p);
      let exclusion = false;
      if (p.startsWith('!')) {
        if (p.length === 1) {
          throw new DrayError('DRAY_INVALID_ARGUMENT', 'illegal exclusion pattern: "!"', {
            hint: 'a "!" line needs a pattern after it',
          });
        }
        exclusion = true;
        exclusions = true;
        p = p.slice(1);
      }
      goMatch(p, '.'); // syntax check, as patternmatcher does with filepath.Match
      list.push(new Pattern(p, exclusion));
    }
    this.patterns = list;
    this.exclusions = exclusions;
  }

  /**
   * patternmatcher's `MatchesUsingParentResults`: whether `file` is matched, given the state
   * of its parent directory (`undefined`: unknown, so every parent prefix is tested). Pure.
   */
  match(file: string, parent: MatchState | undefined): { matched: boolean; state: MatchState } {
    const known = parent !== undefined && parent.length > 0;
    const state: boolean[] = new Array(this.patterns.length).fill(false);
    let matched = false;
    for (let i = 0; i < this.patterns.length; i++) {
      const p = this.patterns[i] as Pattern;
      let m = known ? (parent[i] as boolean) : false;
      if (!m) {
        // An include that already matched, or an exclusion with nothing to undo, cannot change the result.
        if (p.exclusion !== matched) continue;
        m = p.match(file);
        if (!m && !known) {
          const dirs = file.split('/');
          for (let j = 1; j < dirs.length && !m; j++) m = p.match(dirs.slice(0, j).join('/'));
        }
      }
      state[i] = m;
      if (m) matched = !p.exclusion;
    }
    return { matched, state };
  }
}

/** Whether a pattern (minus a trailing glob) has characters that make prefix reasoning unsafe. */
const PATTERN_CHARS = /[*[\]?^\\]/;

/** Where a path stands under a {@link PathFilter} (opaque; passed from a directory to its children). */
export interface FilterState {
  readonly selected: boolean;
  /** The include patterns did not match (only with include patterns). */
  readonly notIncluded: boolean;
  /** The exclude patterns excluded it. */
  readonly excluded: boolean;
  readonly include?: MatchState;
  readonly exclude?: MatchState;
}

/** A build-context filter: include patterns (default all) minus exclude patterns. */
export interface PathFilter {
  /** Whether `relPath` ('/'-separated, relative to the filtered root) is selected. `isDir` is accepted for callers' symmetry: cleaned patterns match files and directories alike, as in BuildKit. */
  matches(relPath: string, isDir: boolean): boolean;
  /** True when neither `relPath` nor anything below it can be selected, so a walk may skip it. */
  canSkipDir(relPath: string): boolean;
  /** `matches` for a walk: the child's state from its parent's (`undefined` for a top-level name). */
  child(relPath: string, parent: FilterState | undefined): FilterState;
  /** `canSkipDir` for a walk, given the directory's own state. */
  canSkip(relPath: string, state: FilterState): boolean;
  /** The state of `relPath`, computed through all its parents (what a walk from the root would find). */
  stateOf(relPath: string): FilterState;
}

/**
 * BuildKit's filter for a build context or a COPY with `--exclude`/include patterns
 * (fsutil's filterFS): a path is selected when it matches some include pattern (or there
 * are none) and the exclude patterns, read in order with `!` re-includes, leave it
 * included. A directory that is excluded but has a re-include below it must still be
 * walked: {@link PathFilter.canSkipDir} says false for it. Pure.
 * @throws DRAY_INVALID_ARGUMENT for a malformed pattern.
 */
export function createPathFilter(include?: readonly string[], exclude?: readonly string[]): PathFilter {
  const inc = include && include.length > 0 ? new PatternMatcher(include) : undefined;
  const exc = exclude && exclude.length > 0 ? new PatternMatcher(exclude) : undefined;
  // fsutil skips a directory only when every relevant pattern is a plain path prefix.
  const onlyPrefixIncludes = inc
    ? inc.patterns.every((p) => p.exclusion || !PATTERN_CHARS.test(p.prefixPart))
    : true;
  const onlyPrefixExceptions = exc
    ? exc.patterns.every((p) => !p.exclusion || !PATTERN_CHARS.test(p.prefixPart))
    : true;

  const child = (rel: string, parent: FilterState | undefined): FilterState => {
    let notIncluded = false;
    let excluded = false;
    let incState: MatchState | undefined;
    let excState: MatchState | undefined;
    if (inc) {
      const r = inc.match(rel, parent?.include);
      incState = r.state;
      notIncluded = !r.matched;
    }
    if (exc) {
      const r = exc.match(rel, parent?.exclude);
      excState = r.state;
      excluded = r.matched;
    }
    return {
      selected: !notIncluded && !excluded,
      notIncluded,
      excluded,
      ...(incState ? { include: incState } : {}),
      ...(excState ? { exclude: excState } : {}),
    };
  };
  const stateOf = (rel: string): FilterState => {
    let state: FilterState = { selected: true, notIncluded: false, excluded: false };
    let prefix = '';
    for (const part of rel.split('/')) {
      prefix = prefix === '' ? part : `${prefix}/${part}`;
      state = child(prefix, prefix === part ? undefined : state);
    }
    return state;
  };
  const canSkip = (rel: string, state: FilterState): boolean => {
    if (state.selected) return false;
    const dirSlash = `${rel}/`;
    if (inc && state.notIncluded && onlyPrefixIncludes) {
      const leads = inc.patterns.some((p) => !p.exclusion && `${p.prefixPart}/`.startsWith(dirSlash));
      if (!leads) return true;
    }
    if (exc && state.excluded && onlyPrefixExceptions) {
      if (!exc.exclusions) return true;
      const leads = exc.patterns.some((p) => p.exclusion && `${p.prefixPart}/`.startsWith(dirSlash));
      if (!leads) return true;
    }
    return false;
  };
  return {
    matches: (relPath) => (isRoot(relPath) ? true : stateOf(relPath).selected),
    canSkipDir: (relPath) => (isRoot(relPath) ? false : canSkip(relPath, stateOf(relPath))),
    child,
    canSkip,
    stateOf,
  };
}

function isRoot(rel: string): boolean {
  return rel === '' || rel === '.';
}

/**
 * Parses a .dockerignore file as BuildKit does (moby/patternmatcher `ignorefile.ReadAll`):
 * a UTF-8 BOM is dropped, a line starting with `#` (in column 1) is a comment, lines are
 * trimmed, blank lines skipped, `!` then spaces marks a re-include, each pattern is cleaned
 * (`filepath.Clean`) and a leading `/` removed. Pure.
 */
export function readDockerignore(text: string): string[] {
  const out: string[] = [];
  const lines = text.split('\n');
  if (text.endsWith('\n')) lines.pop();
  for (let i = 0; i < lines.length; i++) {
    let line = lines[i] as string;
    if (line.endsWith('\r')) line = line.slice(0, -1);
    if (i === 0 && line.startsWith('\ufeff')) line = line.slice(1);
    if (line.startsWith('#')) continue;
    let p = trimSpace(line);
    if (p === '') continue;
    const invert = p.startsWith('!');
    if (invert) p = trimSpace(p.slice(1));
    if (p.length > 0) {
      p = cleanPath(p);
      if (p.length > 1 && p.startsWith('/')) p = p.slice(1);
    }
    out.push(invert ? `!${p}` : p);
  }
  return out;
}
