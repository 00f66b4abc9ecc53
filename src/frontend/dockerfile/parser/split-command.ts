/**
 * Splits an instruction line into keyword, `--flags` and the rest (BuildKit's
 * `splitCommand` / `extractBuilderFlags`).
 */
import { trimSpace } from '../shell/gotext.ts';

/** Runs of ASCII blanks that separate a keyword from its arguments (not newlines). */
export const whitespaceRe = /[\t\v\f\r ]+/gu;

/**
 * Go's `regexp.Split(s, n)`: at most `n` pieces (all when `n < 0`), the last piece holding
 * the remainder; an empty `s` gives `[""]`.
 */
export function goSplit(s: string, re: RegExp, n: number): string[] {
  if (n === 0) return [];
  if (s === '') return [''];
  const out: string[] = [];
  let beg = 0;
  let end = 0;
  let count = 0;
  for (const m of s.matchAll(re)) {
    if (n > 0 && (count >= n || out.length === n - 1)) break;
    count++;
    end = m.index;
    const mEnd = m.index + m[0].length;
    if (mEnd !== 0) out.push(s.slice(beg, end));
    beg = mEnd;
  }
  if (end !== s.length) out.push(s.slice(beg));
  return out;
}

/** An instruction line taken apart. */
export interface SplitCommand {
  /** The keyword as written. */
  cmd: string;
  /** Leading `--name[=value]` words, quotes and escapes resolved. */
  flags: string[];
  /** Everything after the flags, trimmed. */
  args: string;
}

/** Splits `line` into keyword, flags and arguments. */
export function splitCommand(line: string, escapeToken: string): SplitCommand {
  const parts = goSplit(trimSpace(line), whitespaceRe, 2);
  let args = '';
  let flags: string[] = [];
  if (parts.length === 2) ({ args, flags } = extractBuilderFlags(parts[1]!, escapeToken));
  return { cmd: parts[0]!, flags, args: trimSpace(args) };
}

const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8', { ignoreBOM: true });

// Go's unicode.IsSpace applied to a single byte taken as a rune (upstream's flag scanner
// walks bytes): ASCII blanks plus 0x85 and 0xA0.
function isSpaceByte(b: number): boolean {
  return b === 0x20 || (b >= 0x09 && b <= 0x0d) || b === 0x85 || b === 0xa0;
}

const Phase = { spaces: 0, word: 1, quote: 2 } as const;

/**
 * Takes the leading `--` words off `line`. Upstream scans bytes, not characters, so each
 * byte of a non-ASCII flag becomes one Latin-1 character (`é` reads as `Ã©`); this keeps that.
 * A bare `--` ends the flags and is dropped.
 */
export function extractBuilderFlags(line: string, escapeToken: string): { args: string; flags: string[] } {
  const bytes = encoder.encode(line);
  const esc = escapeToken.charCodeAt(0);
  const rest = (pos: number) => decoder.decode(bytes.subarray(pos));
  const flags: string[] = [];
  let phase: number = Phase.spaces;
  let word = '';
  let quote = 0;
  let blankOK = false;
  for (let pos = 0; pos <= bytes.length; pos++) {
    let ch = pos < bytes.length ? bytes[pos]! : -1;
    if (phase === Phase.spaces) {
      if (pos === bytes.length) break;
      if (isSpaceByte(ch)) continue;
      // Flags continue only while the next word starts with "--".
      if (ch !== 0x2d || pos + 1 === bytes.length || bytes[pos + 1] !== 0x2d)
        return { args: rest(pos), flags };
      phase = Phase.word;
    }
    if (pos === bytes.length) {
      if (word !== '--' && (blankOK || word.length > 0)) flags.push(word);
      break;
    }
    if (phase === Phase.word) {
      if (isSpaceByte(ch)) {
        phase = Phase.spaces;
        if (word === '--') return { args: rest(pos), flags };
        if (blankOK || word.length > 0) flags.push(word);
        word = '';
        blankOK = false;
        continue;
      }
      if (ch === 0x27 || ch === 0x22) {
        quote = ch;
        blankOK = true;
        phase = Phase.quote;
        continue;
      }
      if (ch === esc) {
        if (pos + 1 === bytes.length) continue;
        pos++;
        ch = bytes[pos]!;
      }
      word += String.fromCharCode(ch);
      continue;
    }
    // Inside quotes.
    if (ch === quote) {
      phase = Phase.word;
      continue;
    }
    if (ch === esc) {
      if (pos + 1 === bytes.length) {
        phase = Phase.word;
        continue;
      }
      pos++;
      ch = bytes[pos]!;
    }
    word += String.fromCharCode(ch);
  }
  return { args: '', flags };
}
