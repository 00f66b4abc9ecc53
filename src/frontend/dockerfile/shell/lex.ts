/**
 * Shell-word expansion and word splitting as BuildKit's `shell.Lex` does it for Dockerfile
 * instructions: quotes, the escape token, `$VAR`, `${VAR}` and the `${VAR<op>word}` forms
 * (`:-` `-` `:+` `+` `:?` `?` `#` `##` `%` `%%` `/` `//`). No command substitution, no
 * globbing, no arithmetic — exactly what upstream supports, with upstream's error wording.
 */
import { DrayError } from '../../../errors.ts';
import { type EnvGetter, type EnvInput, toEnvGetter } from './env.ts';
import { goQuote, isDigit, isLetter, isSpace } from './gotext.ts';
import { replacePattern, ShellError, scannerChars, trimPrefixPattern, trimSuffixPattern } from './pattern.ts';

/** Lexer switches, named after BuildKit's `Lex` fields. */
export interface ShellLexOptions {
  /** Keep quote characters in the output (they still group words). */
  rawQuotes?: boolean;
  /** Keep escape tokens in the output (they still escape). */
  rawEscapes?: boolean;
  /** Treat `'` and `"` as ordinary characters. */
  skipProcessQuotes?: boolean;
  /** Leave references to unset variables as written (`$X`, `${X:-w}`) instead of expanding. */
  skipUnsetEnv?: boolean;
}

/** What `processWordWithMatches` returns. */
export interface ProcessWordResult {
  /** The expanded word. */
  result: string;
  /** Variables the word referenced that were set (an empty value counts as set). */
  matched: Set<string>;
  /** Variables the word referenced that were not set. */
  unmatched: Set<string>;
}

const EOF = '';

/**
 * Expands Dockerfile words. One instance is reusable and holds no state between calls.
 *
 * ```ts
 * const lex = new ShellLex('\\');
 * lex.processWord('${NAME:-world}', ['NAME=dray']); // 'dray'
 * lex.processWords('a "b c"', []); // ['a', 'b c']
 * ```
 */
export class ShellLex {
  /** The escape character: `\` by default, `` ` `` after `# escape=``. */
  readonly escapeToken: string;
  readonly rawQuotes: boolean;
  readonly rawEscapes: boolean;
  readonly skipProcessQuotes: boolean;
  readonly skipUnsetEnv: boolean;

  /** Throws DRAY_INVALID_ARGUMENT when `escapeToken` is not a single character. */
  constructor(escapeToken = '\\', o: ShellLexOptions = {}) {
    if ([...escapeToken].length !== 1) {
      throw new DrayError('DRAY_INVALID_ARGUMENT', `invalid escape token ${goQuote(escapeToken)}`, {
        hint: 'use "\\" or "`"',
      });
    }
    this.escapeToken = escapeToken;
    this.rawQuotes = o.rawQuotes ?? false;
    this.rawEscapes = o.rawEscapes ?? false;
    this.skipProcessQuotes = o.skipProcessQuotes ?? false;
    this.skipUnsetEnv = o.skipUnsetEnv ?? false;
  }

  /**
   * Expands `word` into one string; spaces between words are kept.
   * Throws DRAY_DOCKERFILE (`failed to process "<word>": <reason>`) on bad syntax or a
   * `${VAR?msg}` whose variable is unset.
   */
  processWord(word: string, env: EnvInput): string {
    return this.#run(word, env, true).result;
  }

  /**
   * Expands `word` and splits the result into words on unquoted whitespace (whitespace that
   * came from a variable's value splits too, as upstream). Throws like `processWord`.
   */
  processWords(word: string, env: EnvInput): string[] {
    return this.#run(word, env, false).words;
  }

  /** `processWord` plus which referenced variables were set and which were not. */
  processWordWithMatches(word: string, env: EnvInput): ProcessWordResult {
    const r = this.#run(word, env, true);
    return { result: r.result, matched: r.matched, unmatched: r.unmatched };
  }

  #run(word: string, env: EnvInput, capture: boolean) {
    const sw = new ShellWord(this, word, toEnvGetter(env), capture);
    try {
      const { result, words } = sw.processStopOn(EOF, this.rawEscapes);
      return { result, words, matched: sw.matches, unmatched: sw.nonmatches };
    } catch (e) {
      if (!(e instanceof ShellError)) throw e;
      throw new DrayError('DRAY_DOCKERFILE', `failed to process ${goQuote(word)}: ${e.message}`, {
        cause: e,
      });
    }
  }
}

// Splits expanded text into words. The buffer is shared by every nested `processStopOn` of
// one word, and each of them clears it when it starts: upstream does the same, so text
// collected before a `${VAR:-…}` is dropped from ProcessWords' output — kept for parity.
class Words {
  readonly words: string[] = [];
  inWord = false;
  readonly buf: { s: string };

  constructor(buf: { s: string }) {
    this.buf = buf;
  }

  addChar(ch: string): void {
    if (isSpace(ch)) {
      if (this.inWord && this.buf.s.length > 0) {
        this.words.push(this.buf.s);
        this.buf.s = '';
        this.inWord = false;
      }
    } else {
      this.addRawChar(ch);
    }
  }

  addRawChar(ch: string): void {
    this.buf.s += ch;
    this.inWord = true;
  }

  addString(s: string): void {
    for (const ch of s) this.addChar(ch);
  }

  addRawString(s: string): void {
    this.buf.s += s;
    this.inWord = true;
  }

  getWords(): string[] {
    if (this.buf.s.length > 0) {
      this.words.push(this.buf.s);
      this.buf.s = '';
      this.inWord = false;
    }
    return this.words;
  }
}

function isSpecialParam(ch: string): boolean {
  return '@*#?-$!0'.includes(ch) && ch.length === 1;
}

function isHeredocSpace(ch: string): boolean {
  return ch === '\t' || ch === '\r' || ch === ' ';
}

// One expansion of one word: a cursor over its code points plus the capture sets.
class ShellWord {
  readonly lex: ShellLex;
  readonly chars: string[];
  pos = 0;
  readonly env: EnvGetter;
  readonly capture: boolean;
  rawEscapes: boolean;
  readonly matches = new Set<string>();
  readonly nonmatches = new Set<string>();
  readonly wordsBuf = { s: '' };

  constructor(lex: ShellLex, word: string, env: EnvGetter, capture: boolean) {
    this.lex = lex;
    this.chars = scannerChars(word);
    this.env = env;
    this.capture = capture;
    this.rawEscapes = lex.rawEscapes;
  }

  peek(): string {
    return this.chars[this.pos] ?? EOF;
  }

  next(): string {
    const ch = this.chars[this.pos];
    if (ch === undefined) return EOF;
    this.pos++;
    return ch;
  }

  processStopOn(stop: string, rawEscapes: boolean): { result: string; words: string[] } {
    let result = '';
    this.wordsBuf.s = '';
    const words = new Words(this.wordsBuf);
    const saved = this.rawEscapes;
    this.rawEscapes = rawEscapes;
    const esc = this.lex.escapeToken;
    const quotes = !this.lex.skipProcessQuotes;
    try {
      while (this.peek() !== EOF) {
        const ch = this.peek();
        if (stop !== EOF && ch === stop) {
          this.next();
          return { result, words: words.getWords() };
        }
        if (ch === '$') {
          const tmp = this.processDollar();
          result += tmp;
          words.addString(tmp);
          continue;
        }
        if (ch === '<' || (quotes && (ch === "'" || ch === '"'))) {
          const tmp =
            ch === '<'
              ? this.processPossibleHeredoc()
              : ch === "'"
                ? this.processSingleQuote()
                : this.processDoubleQuote();
          result += tmp;
          words.addRawString(tmp);
          continue;
        }
        let c = this.next();
        if (c === esc) {
          if (this.rawEscapes) {
            words.addRawChar(c);
            result += c;
          }
          // The escape token escapes the next character; at the end it is dropped.
          c = this.next();
          if (c === EOF) break;
          words.addRawChar(c);
        } else {
          words.addChar(c);
        }
        result += c;
      }
      if (stop !== EOF) {
        throw new ShellError(`unexpected end of statement while looking for matching ${stop}`);
      }
      return { result, words: words.getWords() };
    } finally {
      this.rawEscapes = saved;
    }
  }

  processSingleQuote(): string {
    // Everything up to the next ' is literal; a ' cannot be escaped inside.
    let result = '';
    const open = this.next();
    if (this.lex.rawQuotes) result += open;
    for (;;) {
      const ch = this.next();
      if (ch === EOF) {
        throw new ShellError('unexpected end of statement while looking for matching single-quote');
      }
      if (ch === "'") {
        if (this.lex.rawQuotes) result += ch;
        return result;
      }
      result += ch;
    }
  }

  processDoubleQuote(): string {
    // Literal except `$` expansions; the escape token only escapes " $ and itself.
    let result = '';
    const open = this.next();
    if (this.lex.rawQuotes) result += open;
    const esc = this.lex.escapeToken;
    for (;;) {
      const peek = this.peek();
      if (peek === EOF) {
        throw new ShellError('unexpected end of statement while looking for matching double-quote');
      }
      if (peek === '"') {
        const ch = this.next();
        if (this.lex.rawQuotes) result += ch;
        return result;
      }
      if (peek === '$') {
        result += this.processDollar();
        continue;
      }
      let ch = this.next();
      if (ch === esc) {
        if (this.rawEscapes) result += ch;
        const after = this.peek();
        if (after === EOF) continue;
        if (after === '"' || after === '$' || after === esc) ch = this.next();
      }
      result += ch;
    }
  }

  processDollar(): string {
    this.next();
    const lex = this.lex;
    if (this.peek() !== '{') {
      const name = this.processName();
      if (name === '') return '$';
      const value = this.getEnv(name);
      if (value === undefined && lex.skipUnsetEnv) return `$${name}`;
      return value ?? '';
    }
    this.next();
    const first = this.peek();
    if (first === EOF) throw new ShellError("syntax error: missing '}'");
    if (first === '{' || first === '}' || first === ':')
      throw new ShellError('syntax error: bad substitution');

    const name = this.processName();
    let ch = this.next();
    // Go prints rune(EOF) as U+FFFD in the modifier of an error message.
    let chs = ch === EOF ? '\ufffd' : ch;

    if (ch === '}') {
      const value = this.getEnv(name);
      if (value === undefined && lex.skipUnsetEnv) return `\${${name}}`;
      return value ?? '';
    }

    if (ch === '/') return this.processReplace(name);

    let nullIsUnset = false;
    if (ch === ':') {
      nullIsUnset = true;
      ch = this.next();
      chs += ch === EOF ? '\ufffd' : ch;
    } else if (!['+', '-', '?', '#', '%'].includes(ch)) {
      throw new ShellError(`unsupported modifier (${chs}) in substitution`);
    }

    const patternOp = ch === '#' || ch === '%';
    if (nullIsUnset && patternOp) throw new ShellError(`unsupported modifier (${chs}) in substitution`);
    let word: string;
    try {
      word = this.processStopOn('}', patternOp).result;
    } catch (e) {
      if (this.peek() === EOF) throw new ShellError("syntax error: missing '}'");
      throw e;
    }

    const value = this.getEnv(name);
    if (value === undefined && lex.skipUnsetEnv) return `\${${name}${chs}${word}}`;
    const set = value !== undefined;
    const empty = !set || (nullIsUnset && value === '');

    switch (ch) {
      case '-':
        return empty ? word : value!;
      case '+':
        return empty ? '' : word;
      case '?':
        if (!set) throw new ShellError(`${name}: ${word !== '' ? word : 'is not allowed to be unset'}`);
        if (nullIsUnset && value === '') {
          throw new ShellError(`${name}: ${word !== '' ? word : 'is not allowed to be empty'}`);
        }
        return value!;
      case '%':
      case '#': {
        // One operator character is the shortest match, two the longest.
        const greedy = word.startsWith(ch);
        const pattern = greedy ? word.slice(1) : word;
        return ch === '%'
          ? trimSuffixPattern(pattern, value ?? '', greedy)
          : trimPrefixPattern(pattern, value ?? '', greedy);
      }
      default:
        throw new ShellError(`unsupported modifier (${chs}) in substitution`);
    }
  }

  processReplace(name: string): string {
    const all = this.peek() === '/';
    if (all) this.next();
    let pattern: string;
    try {
      pattern = this.processStopOn('/', true).result;
    } catch (e) {
      if (this.peek() === EOF) throw new ShellError(`syntax error: missing '/' in $\{}`);
      throw e;
    }
    let replacement: string;
    try {
      replacement = this.processStopOn('}', true).result;
    } catch (e) {
      if (this.peek() === EOF) throw new ShellError("syntax error: missing '}'");
      throw e;
    }
    const value = this.getEnv(name);
    if (value === undefined && this.lex.skipUnsetEnv) return `\${${name}/${pattern}/${replacement}}`;
    return replacePattern(pattern, value ?? '', replacement, all);
  }

  processName(): string {
    // A name is letters, digits and _; a leading digit reads a positional parameter
    // (all its digits) and a special parameter is one character.
    let name = '';
    while (this.peek() !== EOF) {
      const ch = this.peek();
      if (name === '' && isDigit(ch)) {
        while (this.peek() !== EOF && isDigit(this.peek())) name += this.next();
        return name;
      }
      if (name === '' && isSpecialParam(ch)) return this.next();
      if (!isLetter(ch) && !isDigit(ch) && ch !== '_') break;
      name += this.next();
    }
    return name;
  }

  processPossibleHeredoc(): string {
    this.next();
    if (this.peek() !== '<') return '<';
    this.next();
    // Whitespace between << and the delimiter stays part of the same word.
    let space = '';
    while (isHeredocSpace(this.peek())) space += this.next();
    return `<<${space}`;
  }

  getEnv(name: string): string | undefined {
    const v = this.env.get(name);
    if (this.capture) (v !== undefined ? this.matches : this.nonmatches).add(name);
    return v;
  }
}
