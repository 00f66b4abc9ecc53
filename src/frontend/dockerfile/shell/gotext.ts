/**
 * Go's text primitives that BuildKit's parser and lexer rely on, re-stated for JS strings.
 * JavaScript's `\s`, `toLowerCase` and `JSON.stringify` differ from Go's `unicode.IsSpace`,
 * `strings.ToLower` and `strconv.Quote` at the edges (U+0085, U+FEFF, final sigma, C1
 * controls), and the AST dump must match upstream byte for byte, so these exist once here.
 */

const spaceRe = /^\p{White_Space}$/u;
const letterRe = /^\p{L}$/u;
const digitRe = /^\p{Nd}$/u;
const printRe = /^[\p{L}\p{M}\p{N}\p{P}\p{S}]$/u;

/** Go's `unicode.IsSpace` for one code point (the White_Space property; not U+FEFF). */
export function isSpace(ch: string): boolean {
  if (ch.length === 1) {
    const c = ch.charCodeAt(0);
    if (c < 0x80) return c === 0x20 || (c >= 0x09 && c <= 0x0d);
  }
  return spaceRe.test(ch);
}

/** Go's `unicode.IsLetter` for one code point. */
export function isLetter(ch: string): boolean {
  if (ch.length === 1 && ch.charCodeAt(0) < 0x80) return /[A-Za-z]/.test(ch);
  return letterRe.test(ch);
}

/** Go's `unicode.IsDigit` (decimal digits of any script) for one code point. */
export function isDigit(ch: string): boolean {
  if (ch.length === 1 && ch.charCodeAt(0) < 0x80) return ch >= '0' && ch <= '9';
  return digitRe.test(ch);
}

/** Go's `strings.TrimLeftFunc(s, unicode.IsSpace)`. */
export function trimLeftSpace(s: string): string {
  let i = 0;
  while (i < s.length) {
    const cp = s.codePointAt(i)!;
    const ch = String.fromCodePoint(cp);
    if (!isSpace(ch)) break;
    i += ch.length;
  }
  return s.slice(i);
}

/** Go's `strings.TrimRightFunc(s, unicode.IsSpace)`. */
export function trimRightSpace(s: string): string {
  let end = s.length;
  while (end > 0) {
    let start = end - 1;
    const low = s.charCodeAt(start);
    if (low >= 0xdc00 && low <= 0xdfff && start > 0) {
      const high = s.charCodeAt(start - 1);
      if (high >= 0xd800 && high <= 0xdbff) start--;
    }
    if (!isSpace(s.slice(start, end))) break;
    end = start;
  }
  return s.slice(0, end);
}

/** Go's `strings.TrimSpace`. */
export function trimSpace(s: string): string {
  return trimRightSpace(trimLeftSpace(s));
}

/**
 * Go's `strings.ToLower`: the simple per-character mapping. Unlike `toLowerCase` it never
 * looks at context (final sigma) and maps U+0130 to a plain `i`.
 */
export function goToLower(s: string): string {
  if (/^[\x00-\x7f]*$/.test(s)) return s.toLowerCase();
  let out = '';
  for (const ch of s) {
    if (ch === '\u0130') {
      out += 'i';
      continue;
    }
    const lower = ch.toLowerCase();
    out += [...lower].length === 1 ? lower : ch;
  }
  return out;
}

const hex = '0123456789abcdef';

/**
 * Go's `strconv.Quote`: double-quoted, with Go escapes for `"`, `\` and every character that
 * is not printable (`\n`, `\x00`, `\u00a0`, `\U0001f600`…). Lone surrogates print as
 * U+FFFD's escape, as Go does for runes that are not valid.
 */
export function goQuote(s: string): string {
  let out = '"';
  for (const ch of s) {
    const cp = ch.codePointAt(0)!;
    if (ch === '"' || ch === '\\') {
      out += `\\${ch}`;
      continue;
    }
    if (cp === 0x20 || (cp > 0x20 && cp < 0x7f)) {
      out += ch;
      continue;
    }
    const isSurrogate = cp >= 0xd800 && cp <= 0xdfff;
    if (!isSurrogate && cp >= 0x80 && printRe.test(ch)) {
      out += ch;
      continue;
    }
    switch (cp) {
      case 0x07:
        out += '\\a';
        continue;
      case 0x08:
        out += '\\b';
        continue;
      case 0x0c:
        out += '\\f';
        continue;
      case 0x0a:
        out += '\\n';
        continue;
      case 0x0d:
        out += '\\r';
        continue;
      case 0x09:
        out += '\\t';
        continue;
      case 0x0b:
        out += '\\v';
        continue;
    }
    if (cp < 0x20 || cp === 0x7f) {
      out += `\\x${hex[cp >> 4]}${hex[cp & 0xf]}`;
    } else if (isSurrogate) {
      out += '\\ufffd';
    } else if (cp < 0x10000) {
      out += `\\u${cp.toString(16).padStart(4, '0')}`;
    } else {
      out += `\\U${cp.toString(16).padStart(8, '0')}`;
    }
  }
  return `${out}"`;
}
