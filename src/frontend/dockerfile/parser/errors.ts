/**
 * Dockerfile errors with source locations. BuildKit's parser returns its plain message
 * ("file with no instructions", "ENV must have two arguments") with the lines attached as
 * data; the instruction layer prefixes "dockerfile parse error on line N: ". dray keeps both
 * wordings and records the lines on the error so a renderer can show the Dockerfile snippet.
 */
import { DrayError } from '../../../errors.ts';
import { goToLower } from '../shell/gotext.ts';
import type { Node } from './node.ts';

/** A span of source: 1-based lines (BuildKit's `Range`; `character` is 0 when unknown). */
export interface SourceRange {
  start: { line: number; character: number };
  end: { line: number; character: number };
}

const locations = new WeakMap<DrayError, SourceRange[][]>();

/** One range per line from `start` to `end` (BuildKit's `toRanges`; `end < start` means `start`). */
export function lineRanges(start: number, end: number): SourceRange[] {
  const last = Math.max(start, end);
  const out: SourceRange[] = [];
  for (let i = start; i <= last; i++) {
    out.push({ start: { line: i, character: 0 }, end: { line: i, character: 0 } });
  }
  return out;
}

/**
 * A DRAY_DOCKERFILE error whose message is `message` exactly, located at lines
 * `startLine..endLine` (read back with `errorLocations`); the hint names the lines unless
 * `o.hint` is given.
 */
export function dockerfileError(
  message: string,
  startLine: number,
  endLine = startLine,
  o: { cause?: unknown; hint?: string } = {},
): DrayError {
  const where = endLine > startLine ? `lines ${startLine}-${endLine}` : `line ${startLine}`;
  const err = new DrayError('DRAY_DOCKERFILE', message, {
    hint: o.hint ?? `fix the Dockerfile at ${where}`,
    cause: o.cause,
  });
  locations.set(err, [lineRanges(startLine, endLine)]);
  return err;
}

/** The source locations recorded on a Dockerfile error (outermost last), if any. */
export function errorLocations(err: unknown): SourceRange[][] | undefined {
  return err instanceof DrayError ? locations.get(err) : undefined;
}

/**
 * The error BuildKit's instruction layer reports for a node it cannot use:
 * `dockerfile parse error on line <startLine>: <message>`, located at the node's lines.
 */
export function instructionError(node: Node, message: string): DrayError {
  return dockerfileError(
    `dockerfile parse error on line ${node.startLine}: ${message}`,
    node.startLine,
    node.endLine,
  );
}

/** Every Dockerfile instruction keyword, lower case (BuildKit's `command` package). */
export const instructionNames = [
  'add',
  'arg',
  'cmd',
  'copy',
  'entrypoint',
  'env',
  'expose',
  'from',
  'healthcheck',
  'label',
  'maintainer',
  'onbuild',
  'run',
  'shell',
  'stopsignal',
  'user',
  'volume',
  'workdir',
] as const;

/**
 * The option closest to `value` within edit distance 2, for "did you mean" hints (BuildKit's
 * `suggest.Search`); `undefined` when none is close or `value` matches one exactly. When not
 * `caseSensitive`, the suggestion takes the case style of `value` (all lower, all upper).
 */
export function suggestName(
  value: string,
  options: readonly string[],
  caseSensitive: boolean,
): string | undefined {
  const val = caseSensitive ? value : goToLower(value);
  let match: string | undefined;
  let minDist = 3;
  for (const option of options) {
    const opt = caseSensitive ? option : goToLower(option);
    if (opt === val) return undefined;
    const dist = levenshtein(val, opt);
    if (dist < minDist) {
      match = caseSensitive ? opt : matchCase(opt, value);
      minDist = dist;
    }
  }
  return match;
}

function matchCase(val: string, orig: string): string {
  if (orig === goToLower(orig)) return goToLower(val);
  if (orig === orig.toUpperCase()) return val.toUpperCase();
  return val;
}

function levenshtein(a: string, b: string): number {
  const s = Array.from(a);
  const t = Array.from(b);
  let prev = Array.from({ length: t.length + 1 }, (_, j) => j);
  for (let i = 1; i <= s.length; i++) {
    const cur = [i];
    for (let j = 1; j <= t.length; j++) {
      const cost = s[i - 1] === t[j - 1] ? 0 : 1;
      cur[j] = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + cost);
    }
    prev = cur;
  }
  return prev[t.length]!;
}

/** Appends ` (did you mean X?)` when `suggestName` finds X. */
export function withSuggestion(
  message: string,
  value: string,
  options: readonly string[],
  caseSensitive: boolean,
): string {
  const match = suggestName(value, options, caseSensitive);
  return match === undefined ? message : `${message} (did you mean ${match}?)`;
}

/**
 * BuildKit's error for an instruction keyword it does not know:
 * `dockerfile parse error on line 3: unknown instruction: RUNN (did you mean RUN?)`.
 */
export function unknownInstructionError(node: Node): DrayError {
  const options = instructionNames.map((n) => n.toUpperCase());
  return instructionError(
    node,
    withSuggestion(`unknown instruction: ${node.value}`, node.value, options, false),
  );
}
