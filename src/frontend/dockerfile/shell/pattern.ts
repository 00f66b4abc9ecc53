/**
 * The shell patterns of `${VAR#p}`, `${VAR%p}` and `${VAR/p/r}`, matched the way BuildKit
 * matches them: `*` and `?` are wildcards, `\*`, `\?` and `\\` are literal, and everything
 * else (brackets included — BuildKit has no bracket expressions) is a literal character.
 * Go's regexp semantics are kept where JS differs: `?`/`*` never match a newline, and
 * replace-all follows Go's rules for empty matches and `$` templates.
 */

/** An expansion failure; `ShellLex` wraps it into a `DrayError` naming the whole word. */
export class ShellError extends Error {
  override name = 'ShellError';
}

/**
 * Translates a pattern to a regexp (BuildKit's `convertShellPatternToRegex`). A backslash
 * before `}` or `/` is dropped (it only kept the character inside `${}`); any other escape
 * than `\*`, `\?` or `\\` is an error.
 */
export function shellPatternToRegExp(pattern: string, greedy: boolean, anchored: boolean): RegExp {
  const chars = scannerChars(pattern);
  let out = anchored ? '^' : '';
  const star = greedy ? '[^\\n]*' : '[^\\n]*?';
  for (let i = 0; i < chars.length; i++) {
    let tok = chars[i]!;
    switch (tok) {
      case '*':
        out += star;
        continue;
      case '?':
        out += '[^\\n]';
        continue;
      case '\\': {
        const peek = chars[i + 1];
        if (peek === '}' || peek === '/') continue;
        i++;
        const escaped = chars[i];
        if (escaped !== '*' && escaped !== '?' && escaped !== '\\') {
          throw new ShellError(`invalid escape '\\${escaped ?? '\ufffd'}'`);
        }
        out += '\\';
        tok = escaped;
        break;
      }
      case '[':
      case ']':
      case '{':
      case '}':
      case '.':
      case '+':
      case '(':
      case ')':
      case '|':
      case '^':
      case '$':
        out += '\\';
        break;
    }
    out += tok;
  }
  return new RegExp(out, 'gu');
}

/**
 * The code points Go's text/scanner yields for `s`: it drops a byte-order mark at the very
 * start, and so does every BuildKit lexer built on it.
 */
export function scannerChars(s: string): string[] {
  const chars = Array.from(s);
  if (chars[0] === '\ufeff') chars.shift();
  return chars;
}

function findFirst(re: RegExp, value: string): [number, number] | undefined {
  re.lastIndex = 0;
  const m = re.exec(value);
  return m ? [m.index, m.index + m[0].length] : undefined;
}

function patternError(pattern: string, e: unknown): never {
  const msg = e instanceof Error ? e.message : String(e);
  throw new ShellError(`invalid pattern (${pattern}) in substitution: ${msg}`);
}

/** `${VAR#pattern}` / `${VAR##pattern}`: removes the shortest (or longest) matching prefix. */
export function trimPrefixPattern(pattern: string, value: string, greedy: boolean): string {
  let re: RegExp;
  try {
    re = shellPatternToRegExp(pattern, greedy, true);
  } catch (e) {
    patternError(pattern, e);
  }
  const idx = findFirst(re, value);
  return idx ? value.slice(idx[1]) : value;
}

// Reverses a pattern but keeps each escape pair in order ("a\*c" becomes "c\*a"), so a
// suffix search can run as a prefix search on the reversed value.
function reversePattern(pattern: string): string {
  const chars = Array.from(pattern);
  const out: string[] = new Array(chars.length);
  const last = chars.length - 1;
  for (let i = 0; i <= last; ) {
    const tok = chars[i]!;
    const at = last - i;
    if (tok === '\\' && i !== last) {
      out[at - 1] = tok;
      out[at] = chars[i + 1]!;
      i += 2;
    } else {
      out[at] = tok;
      i++;
    }
  }
  return out.join('');
}

function reverseString(s: string): string {
  return Array.from(s).reverse().join('');
}

/** `${VAR%pattern}` / `${VAR%%pattern}`: removes the shortest (or longest) matching suffix. */
export function trimSuffixPattern(pattern: string, value: string, greedy: boolean): string {
  return reverseString(trimPrefixPattern(reversePattern(pattern), reverseString(value), greedy));
}

/** `${VAR/pattern/replacement}` and `${VAR//pattern/replacement}`. */
export function replacePattern(pattern: string, value: string, replacement: string, all: boolean): string {
  let re: RegExp;
  try {
    re = shellPatternToRegExp(pattern, true, false);
  } catch (e) {
    patternError(pattern, e);
  }
  if (!all) {
    // A single replacement is inserted literally (Go slices the string around the match).
    const idx = findFirst(re, value);
    return idx ? value.slice(0, idx[0]) + replacement + value.slice(idx[1]) : value;
  }
  return goReplaceAll(re, value, replacement);
}

// Go's Regexp.ReplaceAllString: an empty match right after a previous match is not
// replaced, the search always advances by at least one character, and the replacement is a
// template where `$0`/`${0}` is the match, `$$` is a dollar and other names expand to "".
function goReplaceAll(re: RegExp, src: string, template: string): string {
  let out = '';
  let lastMatchEnd = 0;
  let searchPos = 0;
  while (searchPos <= src.length) {
    re.lastIndex = searchPos;
    const m = re.exec(src);
    if (!m) break;
    const start = m.index;
    const end = start + m[0].length;
    out += src.slice(lastMatchEnd, start);
    if (end > lastMatchEnd || start === 0) out += expandTemplate(template, m[0]);
    lastMatchEnd = end;
    let width = 0;
    if (searchPos < src.length) width = src.codePointAt(searchPos)! > 0xffff ? 2 : 1;
    if (searchPos + width > end) searchPos += width;
    else if (searchPos + 1 > end) searchPos++;
    else searchPos = end;
  }
  return out + src.slice(lastMatchEnd);
}

function isNameChar(ch: string): boolean {
  return ch === '_' || /^[\p{L}\p{Nd}]$/u.test(ch);
}

// Go's Regexp.Expand for a regexp without capture groups.
function expandTemplate(template: string, whole: string): string {
  let out = '';
  let rest = template;
  for (;;) {
    const dollar = rest.indexOf('$');
    if (dollar < 0) break;
    out += rest.slice(0, dollar);
    rest = rest.slice(dollar + 1);
    if (rest.startsWith('$')) {
      out += '$';
      rest = rest.slice(1);
      continue;
    }
    const ref = extractName(rest);
    if (!ref) {
      out += '$';
      continue;
    }
    rest = ref.rest;
    if (ref.num === 0) out += whole;
  }
  return out + rest;
}

function extractName(s: string): { num: number; rest: string } | undefined {
  let str = s;
  const brace = str.startsWith('{');
  if (brace) str = str.slice(1);
  const chars = Array.from(str);
  let n = 0;
  let len = 0;
  while (n < chars.length && isNameChar(chars[n]!)) {
    len += chars[n]!.length;
    n++;
  }
  if (n === 0) return undefined;
  const name = str.slice(0, len);
  let end = len;
  if (brace) {
    if (str[end] !== '}') return undefined;
    end++;
  }
  let num = 0;
  for (const c of name) {
    if (c < '0' || c > '9' || num >= 1e8) {
      num = -1;
      break;
    }
    num = num * 10 + (c.charCodeAt(0) - 48);
  }
  if (name[0] === '0' && name.length > 1) num = -1;
  return { num, rest: str.slice(end) };
}
