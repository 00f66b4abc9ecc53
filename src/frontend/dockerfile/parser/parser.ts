/**
 * Turns Dockerfile text into the AST (BuildKit's `parser.Parse`): parser directives, the
 * escape token, comments, line continuations (with the empty-continuation warning),
 * per-instruction argument parsing and heredoc bodies, with 1-based line numbers.
 */
import { DrayError } from '../../../errors.ts';
import { goToLower, trimLeftSpace, trimSpace } from '../shell/gotext.ts';
import { type Directive, DirectiveParser, detectSyntax, discardBOM, parseDirective } from './directives.ts';
import { dockerfileError, errorLocations, type SourceRange, unknownInstructionError } from './errors.ts';
import { heredocsFromLine } from './heredoc.ts';
import { isKnownInstruction, LineError, newNodeFromLine } from './line-parsers.ts';
import { type Node, newNode } from './node.ts';
import { LineScanner, maxScanTokenSize } from './scanner.ts';

/** The escape token unless `# escape=` says otherwise. */
export const defaultEscapeToken = '\\';

/** A non-fatal finding (today: empty continuation lines, as upstream). */
export interface ParseWarning {
  /** Upstream's short text, e.g. `Empty continuation line found in: RUN a b`. */
  message: string;
  /** Longer explanation lines. */
  detail: string[];
  /** Documentation of the rule. */
  url: string;
  /** 1-based line the warning points at (the instruction's last line). */
  line: number;
  location: SourceRange;
}

/** The parser directives that apply to the file. */
export interface ParsedDirectives {
  /** The escape token in effect: `\` or `` ` ``. */
  escape: string;
  /** The frontend reference of `# syntax=` (as BuildKit's DetectSyntax finds it). */
  syntax?: string;
  /** The `# check=` value (lint configuration, e.g. `skip=all`). */
  check?: string;
  /** The directive lines the parser read at the top of the file, in order. */
  list: Directive[];
}

/** Everything `parseDockerfile` returns. */
export interface ParseResult {
  /** The root node: its `children` are the instructions. */
  ast: Node;
  directives: ParsedDirectives;
  warnings: ParseWarning[];
  /** Same as `directives.escape`; the instruction layer lexes words with it. */
  escapeToken: string;
}

/** Options of `parseDockerfile`. */
export interface ParseOptions {
  /**
   * Fail on the first unknown instruction keyword (`unknown instruction: RUNN (did you mean
   * RUN?)`). Off by default: upstream's parser keeps unknown instructions and its instruction
   * layer rejects them in order with the other instruction errors (`unknownInstructionError`).
   */
  rejectUnknownInstructions?: boolean;
}

const emptyContinuationUrl = 'https://docs.docker.com/go/dockerfile/rule/no-empty-continuation/';

// Parse state for directives: the escape token and the continuation pattern built from it.
class ParserState {
  escapeToken = defaultEscapeToken;
  continuationRe = continuationRegExp(defaultEscapeToken);
  readonly directives = new DirectiveParser();
  readonly found: Directive[] = [];

  // Throws for a repeated directive or an invalid escape token; true for a directive line.
  possibleDirective(line: string, lineNo: number): boolean {
    const d = this.directives.parseLine(line);
    if (!d) return false;
    if (d.name === 'escape') {
      if (d.value !== '`' && d.value !== '\\') {
        throw dockerfileError(`invalid escape token '${d.value}' does not match \` or \\`, lineNo);
      }
      this.escapeToken = d.value;
      this.continuationRe = continuationRegExp(d.value);
    }
    this.found.push(d);
    return true;
  }
}

// The escape token as the last non-blank character continues the line, unless it follows
// another escape token; alone on a line it continues too.
function continuationRegExp(esc: string): RegExp {
  const e = esc === '\\' ? '\\\\' : esc;
  return new RegExp(`([^${e}])${e}[ \\t]*$|^${e}[ \\t]*$`, 'u');
}

function isComment(line: string): boolean {
  return trimLeftSpace(line).startsWith('#');
}

function trimNewline(line: string): string {
  let end = line.length;
  while (end > 0 && (line[end - 1] === '\n' || line[end - 1] === '\r')) end--;
  return line.slice(0, end);
}

// Strips the newline (and leading blanks on an instruction's first line), reads a possible
// directive, and blanks out comment lines.
function processLine(
  state: ParserState,
  raw: string,
  stripLeft: boolean,
  lineNo: number,
): { line: string; directive: boolean } {
  let line = trimNewline(raw);
  if (stripLeft) line = trimLeftSpace(line);
  const directive = state.possibleDirective(line, lineNo);
  return { line: isComment(line) ? '' : line, directive };
}

function trimContinuation(line: string, state: ParserState): { line: string; end: boolean } {
  if (!state.continuationRe.test(line)) return { line, end: true };
  return { line: line.replace(state.continuationRe, '$1'), end: false };
}

function canContainHeredoc(node: Node): boolean {
  let n = node;
  if (goToLower(n.value) === 'onbuild' && n.next && n.next.children.length > 0) n = n.next.children[0]!;
  const keyword = goToLower(n.value);
  return (keyword === 'run' || keyword === 'copy' || keyword === 'add') && !n.attributes.json;
}

function located(e: unknown, start: number, end: number): unknown {
  if (e instanceof LineError) return dockerfileError(e.message, start, end);
  if (e instanceof DrayError && e.code === 'DRAY_DOCKERFILE' && !errorLocations(e)) {
    return dockerfileError(e.message, start, end, { cause: e });
  }
  return e;
}

// Upstream cuts one byte off a comment line to drop its `#`; when blanks precede the `#`
// and the first is not ASCII, what remains of that character is invalid UTF-8 (U+FFFD here).
function dropFirstByte(line: string): string {
  if (line.charCodeAt(0) < 0x80) return line.slice(1);
  return new TextDecoder('utf-8', { ignoreBOM: true }).decode(new TextEncoder().encode(line).subarray(1));
}

function decode(text: string | Uint8Array): string {
  return typeof text === 'string' ? text : new TextDecoder('utf-8', { ignoreBOM: true }).decode(text);
}

/**
 * Parses a Dockerfile exactly as BuildKit's parser does. `text` may be a string or the raw
 * bytes (UTF-8). Unknown instructions are kept (see `ParseOptions`); arguments are not
 * expanded. Throws DRAY_DOCKERFILE with BuildKit's message — `file with no instructions`,
 * `unterminated heredoc`, `ENV must have two arguments`, `dockerfile line greater than max
 * allowed size of 65535`… — and the lines recorded (`errorLocations`).
 */
export function parseDockerfile(text: string | Uint8Array, o: ParseOptions = {}): ParseResult {
  const scanner = new LineScanner(text);
  const state = new ParserState();
  const root = newNode({ startLine: -1 });
  const warnings: ParseWarning[] = [];
  let comments: string[] = [];
  let currentLine = 0;

  for (let raw = scanner.scan(); raw !== undefined; raw = scanner.scan()) {
    if (currentLine === 0) raw = discardBOM(raw);
    if (isComment(raw)) {
      const comment = trimSpace(dropFirstByte(raw));
      if (comment === '') comments = [];
      else comments.push(comment);
    }
    const first = processLine(state, raw, true, currentLine + 1);
    // A directive is not a comment of the next instruction.
    if (first.directive) comments.pop();
    currentLine++;

    const startLine = currentLine;
    let { line: part, end } = trimContinuation(first.line, state);
    if (end && part === '') continue;
    let line = part;
    let hasEmptyContinuation = false;
    while (!end) {
      const next = scanner.scan();
      if (next === undefined) break;
      const p = processLine(state, next, false, currentLine + 1);
      currentLine++;
      // Comment lines inside a continuation are dropped; blank ones are deprecated.
      if (isComment(next)) continue;
      if (trimLeftSpace(trimNewline(p.line)) === '') {
        hasEmptyContinuation = true;
        continue;
      }
      ({ line: part, end } = trimContinuation(p.line, state));
      line += part;
    }

    if (hasEmptyContinuation) {
      warnings.push({
        message: `Empty continuation line found in: ${line}`,
        detail: ['Empty continuation lines will become errors in a future release'],
        url: emptyContinuationUrl,
        line: currentLine,
        location: { start: { line: currentLine, character: 0 }, end: { line: currentLine, character: 0 } },
      });
    }

    let child: Node;
    try {
      child = newNodeFromLine(line, state.escapeToken, comments);
      if (canContainHeredoc(child) && line.includes('<<')) {
        for (const doc of heredocsFromLine(line)) {
          let content = '';
          let terminated = false;
          for (let body = scanner.scan(); body !== undefined; body = scanner.scan()) {
            currentLine++;
            let candidate = trimNewline(body);
            if (doc.chomp) candidate = candidate.replace(/^\t+/, '');
            if (candidate === doc.name) {
              terminated = true;
              break;
            }
            content += body;
          }
          if (!terminated) throw dockerfileError('unterminated heredoc', startLine, currentLine);
          child.heredocs.push({ ...doc, content });
        }
      }
    } catch (e) {
      throw located(e, startLine, currentLine);
    }

    child.startLine = startLine;
    child.endLine = currentLine;
    if (root.startLine < 0) root.startLine = startLine;
    root.endLine = currentLine;
    root.children.push(child);
    comments = [];
  }

  if (root.startLine < 0) {
    throw dockerfileError('file with no instructions', currentLine, currentLine, {
      hint: 'a Dockerfile needs at least one instruction, starting with FROM',
    });
  }
  if (scanner.tooLong) {
    throw dockerfileError(
      `dockerfile line greater than max allowed size of ${maxScanTokenSize - 1}`,
      currentLine,
      currentLine,
      { hint: `line ${currentLine + 1} is 64 KiB or longer: split it with line continuations` },
    );
  }
  if (o.rejectUnknownInstructions) {
    const unknown = root.children.find((c) => !isKnownInstruction(c.value));
    if (unknown) throw unknownInstructionError(unknown);
  }

  const source = decode(text);
  const directives: ParsedDirectives = { escape: state.escapeToken, list: state.found };
  const syntax = detectSyntax(source);
  if (syntax) directives.syntax = syntax.value;
  const check = parseDirective('check', source);
  if (check) directives.check = check.value;
  return { ast: root, directives, warnings, escapeToken: state.escapeToken };
}
