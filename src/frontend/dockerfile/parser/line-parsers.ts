/**
 * Per-instruction argument parsers (BuildKit's `line_parsers.go`): each turns the text after
 * the keyword and flags into the `next` chain of argument nodes. No variable expansion
 * happens here; that is the instruction layer's job.
 */
import { goQuote, goToLower, isSpace, trimLeftSpace } from '../shell/gotext.ts';
import { goString, parseGoJSON } from './json.ts';
import { type Node, newNode } from './node.ts';
import { goSplit, splitCommand, whitespaceRe } from './split-command.ts';

/** A parse failure on one instruction; the parser adds the line numbers. */
export class LineError extends Error {
  override name = 'LineError';
}

/** The message for exec-form arrays that hold something other than strings. */
export const notStringArrayMessage = 'when using JSON array syntax, arrays must be comprised of strings only';

/** What an argument parser produced. */
export interface LineResult {
  next: Node | undefined;
  json: boolean;
}

type LineParser = (rest: string, escapeToken: string) => LineResult;

function chain(values: readonly string[]): Node | undefined {
  let head: Node | undefined;
  let prev: Node | undefined;
  for (const value of values) {
    const n = newNode({ value });
    if (prev) prev.next = n;
    else head = n;
    prev = n;
  }
  return head;
}

function plain(next: Node | undefined): LineResult {
  return { next, json: false };
}

/**
 * Splits `rest` into words on whitespace, keeping quotes and escapes in the words
 * (BuildKit's `parseWords`); a quoted empty string is a word.
 */
export function parseWords(rest: string, escapeToken: string): string[] {
  const chars = Array.from(rest);
  const n = chars.length;
  const words: string[] = [];
  let phase: 'spaces' | 'word' | 'quote' = 'spaces';
  let quote = '';
  let blankOK = false;
  let buf = '';
  for (let i = 0; i <= n; i++) {
    let ch = chars[i] ?? '';
    if (phase === 'spaces') {
      if (i === n) break;
      if (isSpace(ch)) continue;
      phase = 'word';
    }
    if (i === n) {
      if (blankOK || buf.length > 0) words.push(buf);
      break;
    }
    if (phase === 'word') {
      if (isSpace(ch)) {
        phase = 'spaces';
        if (blankOK || buf.length > 0) words.push(buf);
        buf = '';
        blankOK = false;
        continue;
      }
      if (ch === "'" || ch === '"') {
        quote = ch;
        blankOK = true;
        phase = 'quote';
      }
      if (ch === escapeToken) {
        // An escape at the very end is dropped; otherwise it stays with the next character.
        if (i + 1 === n) continue;
        buf += ch;
        i++;
        ch = chars[i]!;
      }
      buf += ch;
      continue;
    }
    if (ch === quote) phase = 'word';
    // Inside single quotes the escape token is an ordinary character.
    if (ch === escapeToken && quote !== "'") {
      if (i + 1 === n) {
        phase = 'word';
        continue;
      }
      i++;
      buf += ch;
      ch = chars[i]!;
    }
    buf += ch;
  }
  return words;
}

function keyValue(key: string, value: string, sep: string): Node {
  return newNode({ value: key, next: newNode({ value, next: newNode({ value: sep }) }) });
}

/**
 * ENV/LABEL arguments: the legacy `KEY value…` form gives `[key, value, ""]`, the
 * `k=v k2=v2` form gives `[k, v, "=", k2, v2, "="]` (quotes kept for later expansion).
 */
export function parseNameVal(rest: string, key: string, escapeToken: string): Node | undefined {
  const words = parseWords(rest, escapeToken);
  if (words.length === 0) return undefined;
  if (!words[0]!.includes('=')) {
    const parts = goSplit(rest, whitespaceRe, 2);
    if (parts.length < 2) throw new LineError(`${key} must have two arguments`);
    return keyValue(parts[0]!, parts[1]!, '');
  }
  const values: string[] = [];
  for (const word of words) {
    const eq = word.indexOf('=');
    if (eq < 0) {
      throw new LineError(`Syntax error - can't find = in ${goQuote(word)}. Must be of the form: name=value`);
    }
    values.push(word.slice(0, eq), word.slice(eq + 1), '=');
  }
  return chain(values);
}

/** ARG: each word (`name`, `name=`, `name=value`) is one argument. */
function parseNameOrNameVal(rest: string, escapeToken: string): LineResult {
  return plain(chain(parseWords(rest, escapeToken)));
}

/** FROM, EXPOSE and the shell form of ADD/COPY/VOLUME: words split on blanks, quotes kept. */
function parseStringsWhitespaceDelimited(rest: string): LineResult {
  if (rest === '') return plain(undefined);
  return plain(chain(goSplit(rest, whitespaceRe, -1)));
}

/** MAINTAINER, USER, WORKDIR, STOPSIGNAL: the whole rest is one argument. */
function parseString(rest: string): LineResult {
  return plain(rest === '' ? undefined : newNode({ value: rest }));
}

/**
 * Parses an exec-form argument list. Returns the strings, `'not-json'` when `rest` is not a
 * JSON array (the caller falls back to shell form), or `'not-strings'` when it is an array
 * holding something else (an error upstream).
 */
export function parseJSONArray(rest: string): string[] | 'not-json' | 'not-strings' {
  const text = trimLeftSpace(rest);
  if (!text.startsWith('[')) return 'not-json';
  const doc = parseGoJSON(text);
  if (!Array.isArray(doc)) return 'not-json';
  if (!doc.every((x) => typeof x === 'string')) return 'not-strings';
  return (doc as string[]).map(goString);
}

function parseJSON(rest: string): LineResult | 'not-json' {
  const values = parseJSONArray(rest);
  if (values === 'not-strings') throw new LineError(notStringArrayMessage);
  if (values === 'not-json') return 'not-json';
  return { next: chain(values), json: true };
}

/** RUN, CMD, ENTRYPOINT, SHELL: a JSON array, or else the whole rest as one argument. */
function parseMaybeJSON(rest: string): LineResult {
  if (rest === '') return plain(undefined);
  const r = parseJSON(rest);
  return r === 'not-json' ? plain(newNode({ value: rest })) : r;
}

/** ADD, COPY, VOLUME: a JSON array, or else blank-separated words. */
function parseMaybeJSONToList(rest: string): LineResult {
  const r = parseJSON(rest);
  return r === 'not-json' ? parseStringsWhitespaceDelimited(rest) : r;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8', { ignoreBOM: true });

// Upstream tests single bytes with unicode.IsSpace here (0x85 and 0xA0 included).
function isSpaceByte(b: number): boolean {
  return b === 0x20 || (b >= 0x09 && b <= 0x0d) || b === 0x85 || b === 0xa0;
}

/** HEALTHCHECK: the type word (`CMD`, `NONE`) and then RUN-style arguments. */
function parseHealthConfig(rest: string): LineResult {
  const bytes = encoder.encode(rest);
  let sep = 0;
  while (sep < bytes.length && !isSpaceByte(bytes[sep]!)) sep++;
  let next = sep;
  while (next < bytes.length && isSpaceByte(bytes[next]!)) next++;
  if (sep === 0) return plain(undefined);
  const typ = decoder.decode(bytes.subarray(0, sep));
  const cmd = parseMaybeJSON(decoder.decode(bytes.subarray(next)));
  return { next: newNode({ value: typ, next: cmd.next }), json: cmd.json };
}

/** ONBUILD: the rest is a whole instruction, kept as the single child of the argument. */
function parseSubCommand(rest: string, escapeToken: string): LineResult {
  if (rest === '') return plain(undefined);
  const child = newNodeFromLine(rest, escapeToken, []);
  return plain(newNode({ children: [child] }));
}

/** Unknown keywords keep one empty argument, as upstream (the instruction layer rejects them). */
function parseIgnore(): LineResult {
  return plain(newNode());
}

const dispatch: Record<string, LineParser> = {
  add: parseMaybeJSONToList,
  arg: parseNameOrNameVal,
  cmd: parseMaybeJSON,
  copy: parseMaybeJSONToList,
  entrypoint: parseMaybeJSON,
  env: (rest, esc) => plain(parseNameVal(rest, 'ENV', esc)),
  expose: parseStringsWhitespaceDelimited,
  from: parseStringsWhitespaceDelimited,
  healthcheck: parseHealthConfig,
  label: (rest, esc) => plain(parseNameVal(rest, 'LABEL', esc)),
  maintainer: parseString,
  onbuild: parseSubCommand,
  run: parseMaybeJSON,
  shell: parseMaybeJSON,
  stopsignal: parseString,
  user: parseString,
  volume: parseMaybeJSONToList,
  workdir: parseString,
};

/** True when the parser knows `keyword` (any case). */
export function isKnownInstruction(keyword: string): boolean {
  return Object.hasOwn(dispatch, goToLower(keyword));
}

/**
 * Parses one complete instruction line into its node (no line numbers yet). Throws
 * `LineError` with upstream's message when the arguments are malformed.
 */
export function newNodeFromLine(line: string, escapeToken: string, comments: string[]): Node {
  const { cmd, flags, args } = splitCommand(line, escapeToken);
  const key = goToLower(cmd);
  const fn = Object.hasOwn(dispatch, key) ? dispatch[key]! : parseIgnore;
  const { next, json } = fn(args, escapeToken);
  return newNode({ value: cmd, original: line, flags, next, attributes: { json }, prevComment: comments });
}
