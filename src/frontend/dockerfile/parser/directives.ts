/**
 * Parser directives (`# syntax=`, `# escape=`, `# check=`), with BuildKit's rules: they are
 * only read at the very top of the file, before any instruction, blank line or other
 * comment; names are case-insensitive; each may appear once; unknown names end the block.
 */
import { DrayError } from '../../../errors.ts';
import { trimLeftSpace } from '../shell/gotext.ts';
import { dockerfileError, lineRanges, type SourceRange } from './errors.ts';
import { goString, parseGoJSON } from './json.ts';
import { scanLines } from './scanner.ts';

/** The directives BuildKit knows. */
export const directiveNames = ['syntax', 'escape', 'check'] as const;

/** One parsed directive. */
export interface Directive {
  /** Lower-cased name: `syntax`, `escape` or `check`. */
  name: string;
  /** The value, surrounding whitespace removed. */
  value: string;
  /** Where it was found (1-based line; counts a skipped shebang line). */
  location: SourceRange[];
}

// Go's \s is [\t\n\f\r ] and its `.` is "anything but \n"; JS's differ, so spell them out.
const directiveRe = /^([a-zA-Z][a-zA-Z0-9]*)[\t\n\f\r ]*=[\t\n\f\r ]*([^\n]+?)[\t\n\f\r ]*$/u;

/**
 * Reads directives line by line (BuildKit's `DirectiveParser`). Once a line is not a
 * directive, every later line is ignored.
 */
export class DirectiveParser {
  #line: number;
  readonly #comment: string;
  readonly #seen = new Set<string>();
  #done = false;

  /**
   * `line`: lines already consumed before the first one given (1 after a shebang).
   * `comment`: the comment prefix, `#` by default (`//` is accepted for `syntax`).
   */
  constructor(o: { line?: number; comment?: string } = {}) {
    this.#line = o.line ?? 0;
    this.#comment = o.comment ?? '#';
  }

  /** True once a line ended the directive block. */
  get done(): boolean {
    return this.#done;
  }

  /**
   * Parses the next line (without its newline). Returns the directive, or `undefined` when
   * the line is not one. Throws DRAY_DOCKERFILE `only one <name> parser directive can be
   * used` on a repeated directive.
   */
  parseLine(line: string): Directive | undefined {
    this.#line++;
    if (this.#done) return undefined;
    if (!line.startsWith(this.#comment)) {
      this.#done = true;
      return undefined;
    }
    const m = directiveRe.exec(trimLeftSpace(line.slice(this.#comment.length)));
    const name = m?.[1]?.toLowerCase();
    if (!m || name === undefined || !(directiveNames as readonly string[]).includes(name)) {
      this.#done = true;
      return undefined;
    }
    if (this.#seen.has(name)) {
      throw dockerfileError(`only one ${name} parser directive can be used`, this.#line);
    }
    this.#seen.add(name);
    return { name, value: m[2]!, location: lineRanges(this.#line, this.#line) };
  }

  /**
   * Parses the directives at the top of `text`. A repeated directive stops the scan: the
   * directives before it are returned with the error.
   */
  parseAll(text: string): { directives: Directive[]; error?: DrayError } {
    const directives: Directive[] = [];
    for (const raw of scanLines(text).lines) {
      if (this.#done) break;
      // bufio.ScanLines drops the newline and one carriage return before it.
      let line = raw.endsWith('\n') ? raw.slice(0, -1) : raw;
      if (line.endsWith('\r')) line = line.slice(0, -1);
      try {
        const d = this.parseLine(line);
        if (d) directives.push(d);
      } catch (e) {
        if (e instanceof DrayError) return { directives, error: e };
        throw e;
      }
    }
    return { directives };
  }
}

/** A directive found by `detectSyntax` / `parseDirective`. */
export interface DirectiveMatch {
  /** The value up to the first space (`docker/dockerfile:1` of `docker/dockerfile:1 // x`). */
  value: string;
  /** The whole value. */
  cmdline: string;
  location: SourceRange[];
}

/** Drops a leading UTF-8 byte-order mark. */
export function discardBOM(text: string): string {
  return text.startsWith('\ufeff') ? text.slice(1) : text;
}

function fromParser(key: string, text: string, parser: DirectiveParser): DirectiveMatch | undefined {
  for (const d of parser.parseAll(text).directives) {
    if (d.name !== key) continue;
    const sp = d.value.indexOf(' ');
    return { value: sp < 0 ? d.value : d.value.slice(0, sp), cmdline: d.value, location: d.location };
  }
  return undefined;
}

function findDirective(key: string, input: string, anyFormat: boolean): DirectiveMatch | undefined {
  let text = discardBOM(input);
  let line = 0;
  // A `#!` first line is a shebang, not a directive: skip it but count it.
  const nl = text.indexOf('\n');
  if (text.startsWith('#!')) {
    text = nl < 0 ? '' : text.slice(nl + 1);
    line = 1;
  }
  const found = fromParser(key, text, new DirectiveParser({ line }));
  if (found || !anyFormat) return found;
  const slashes = fromParser(key, text, new DirectiveParser({ line, comment: '//' }));
  if (slashes) return slashes;
  // Last resort: the whole input is a JSON object carrying the key.
  const doc = parseGoJSON(text);
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) return undefined;
  const v = (doc as Record<string, unknown>)[key];
  if (typeof v !== 'string' || !Object.hasOwn(doc, key)) return undefined;
  const value = goString(v);
  return { value, cmdline: value, location: lineRanges(line, line) };
}

/**
 * The frontend a Dockerfile asks for (BuildKit's `DetectSyntax`): `# syntax=ref` at the
 * top, also `// syntax=ref`, or a JSON document `{"syntax": "ref"}`; a shebang line is
 * skipped. `undefined` when there is none.
 */
export function detectSyntax(text: string): DirectiveMatch | undefined {
  return findDirective('syntax', text, true);
}

/**
 * A named directive at the top of the file (BuildKit's `ParseDirective`), `#` form only;
 * e.g. `parseDirective('check', text)` for `# check=skip=all`.
 */
export function parseDirective(key: string, text: string): DirectiveMatch | undefined {
  return findDirective(key, text, false);
}
