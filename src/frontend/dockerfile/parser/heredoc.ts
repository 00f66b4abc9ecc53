/**
 * Heredoc delimiters on RUN/COPY/ADD lines (`<<EOF`, `<<-EOF`, `<<"EOF"`, `3<<EOF`), found
 * the way BuildKit finds them: the line is lexed into shell words, and every word that is
 * `[N]<<[-]WORD` with WORD a single shell word opens a heredoc.
 */
import { DrayError } from '../../../errors.ts';
import { emptyEnv, ShellLex } from '../shell/index.ts';
import type { Heredoc } from './node.ts';

// Go's \s is [\t\n\f\r ] and \d is ASCII.
const heredocRe = /^([0-9]*)<<(-?)[\t\n\f\r ]*([^<]*)$/u;

const maxUint64 = 2n ** 64n - 1n;

const plainLex = new ShellLex('\\', { skipUnsetEnv: true });
const rawQuoteLex = new ShellLex('\\', { skipUnsetEnv: true, rawQuotes: true });
const lineLex = new ShellLex('\\', { skipUnsetEnv: true, rawQuotes: true, rawEscapes: true });

function countQuotes(s: string): number {
  let n = 0;
  for (const ch of s) if (ch === "'" || ch === '"') n++;
  return n;
}

/**
 * Parses one word as a heredoc opener (BuildKit's `ParseHeredoc`). Returns `undefined`
 * when the word is not one; `content` is empty (the parser fills it). The delimiter is
 * quoted — and the body not expanded — when lexing with and without quotes differ.
 * Throws DRAY_DOCKERFILE when the delimiter does not lex (an unclosed quote).
 */
export function parseHeredoc(src: string): Heredoc | undefined {
  const m = heredocRe.exec(src);
  if (!m) return undefined;
  const [, digits = '', dash, rest = ''] = m;
  if (rest === '') return undefined;
  const words = plainLex.processWords(rest, emptyEnv);
  if (words.length !== 1) return undefined;
  const wordsRaw = rawQuoteLex.processWords(rest, emptyEnv);
  if (wordsRaw.length !== words.length) {
    throw new DrayError(
      'DRAY_DOCKERFILE',
      `internal lexing of heredoc produced inconsistent results: ${rest}`,
    );
  }
  const name = words[0]!;
  // Go parses the descriptor as a uint64 and, on overflow, keeps the maximum.
  let fd = digits === '' ? 0n : BigInt(digits);
  if (fd > maxUint64) fd = maxUint64;
  return {
    name,
    content: '',
    expand: countQuotes(name) === countQuotes(wordsRaw[0]!),
    chomp: dash === '-',
    fileDescriptor: Number(fd),
  };
}

/**
 * The heredocs a line opens, in order (BuildKit's `heredocsFromLine`). A line that does not
 * lex as shell words opens none. Throws like `parseHeredoc`.
 */
export function heredocsFromLine(line: string): Heredoc[] {
  let words: string[];
  try {
    words = lineLex.processWords(line, emptyEnv);
  } catch {
    words = [];
  }
  const docs: Heredoc[] = [];
  for (const word of words) {
    const doc = parseHeredoc(word);
    if (doc) docs.push(doc);
  }
  return docs;
}

/**
 * Removes the leading tabs of every line, for `<<-` heredocs (BuildKit's
 * `ChompHeredocContent`; the parser leaves `content` raw).
 */
export function chompHeredocContent(src: string): string {
  return src.replace(/(?<=^|\n)\t+/g, '');
}
