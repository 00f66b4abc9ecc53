/**
 * Instruction flags (`--from=x`, `--link`, `--mount=…` repeated), checked and typed as
 * BuildKit's `BFlags` does, with its error wording. Values are returned as written; what a
 * value means (a mount spec, a chown) is the instruction's business.
 */
import { DrayError } from '../../../errors.ts';
import { goToLower } from '../shell/gotext.ts';
import { instructionError, withSuggestion } from './errors.ts';
import type { Node } from './node.ts';

/** One accepted flag: a boolean, a string, or a string that may repeat. */
export type FlagDef =
  | { type: 'bool'; default?: boolean }
  | { type: 'string'; default?: string }
  | { type: 'strings' };

/** The flags an instruction accepts, by name without the dashes. */
export type FlagSpec = Record<string, FlagDef>;

/** Parsed values: booleans, strings (default `''`), and arrays for repeatable flags. */
export type FlagValues<S extends FlagSpec> = {
  [K in keyof S]: S[K] extends { type: 'bool' }
    ? boolean
    : S[K] extends { type: 'string' }
      ? string
      : string[];
};

/** What `parseFlags` returns. */
export interface ParsedFlags<S extends FlagSpec> {
  values: FlagValues<S>;
  /** Names given on the line, in first-use order (BuildKit's `Used()`). */
  used: Array<keyof S & string>;
}

/**
 * Checks `flags` (a node's `flags`, or the node itself) against `spec`:
 * `unknown flag: --frm (did you mean from?)`, `duplicate flag specified: --from`,
 * `missing a value on flag: --from`, `expecting boolean value for flag --link, not: x`.
 * Processing stops at a bare `--`. Throws DRAY_DOCKERFILE; given a node, the message is
 * prefixed `dockerfile parse error on line N: ` as BuildKit's instruction layer does.
 */
export function parseFlags<S extends FlagSpec>(flags: Node | readonly string[], spec: S): ParsedFlags<S> {
  const node = Array.isArray(flags) ? undefined : (flags as Node);
  const args: readonly string[] = node ? node.flags : (flags as readonly string[]);
  const fail = (message: string): never => {
    throw node ? instructionError(node, message) : new DrayError('DRAY_DOCKERFILE', message);
  };

  const values: Record<string, boolean | string | string[]> = {};
  for (const [name, def] of Object.entries(spec)) {
    values[name] =
      def.type === 'bool' ? (def.default ?? false) : def.type === 'string' ? (def.default ?? '') : [];
  }
  const used: string[] = [];
  const names = Object.keys(spec);

  for (const arg of args) {
    // `--` ends the flags (POSIX utility syntax guideline 10).
    if (arg === '--') break;
    if (!arg.startsWith('--')) fail(`arg should start with -- : ${arg}`);
    const eq = arg.indexOf('=');
    const flagName = eq < 0 ? arg : arg.slice(0, eq);
    const value = eq < 0 ? '' : arg.slice(eq + 1);
    const hasValue = eq >= 0;
    const name = flagName.slice(2);
    const def = Object.hasOwn(spec, name) ? spec[name] : undefined;
    if (!def) return fail(withSuggestion(`unknown flag: ${flagName}`, name, names, true));
    if (used.includes(name)) {
      if (def.type !== 'strings') fail(`duplicate flag specified: ${flagName}`);
    } else {
      used.push(name);
    }
    switch (def.type) {
      case 'bool': {
        if (hasValue && value === '') fail(`missing a value on flag: ${flagName}`);
        const v = goToLower(value);
        if (v === 'true' || v === '') values[name] = true;
        else if (v === 'false') values[name] = false;
        else fail(`expecting boolean value for flag ${flagName}, not: ${value}`);
        break;
      }
      case 'string':
        if (!hasValue) fail(`missing a value on flag: ${flagName}`);
        values[name] = value;
        break;
      case 'strings':
        if (!hasValue) fail(`missing a value on flag: ${flagName}`);
        (values[name] as string[]).push(value);
        break;
    }
  }
  return { values: values as FlagValues<S>, used: used as Array<keyof S & string> };
}
