/**
 * The environment a word is expanded against. BuildKit passes an `EnvGetter`; callers here
 * may also pass a `KEY=value` list, a Map or a plain record, which `toEnvGetter` adapts.
 */

/** Looks up variables for expansion (BuildKit's `shell.EnvGetter`). */
export interface EnvGetter {
  /** The value of `name`, or `undefined` when it is not set (empty string means set). */
  get(name: string): string | undefined;
  /** The names in the order they were defined (duplicates kept, as upstream). */
  keys(): string[];
}

/** Anything `ShellLex` accepts as an environment. */
export type EnvInput =
  | EnvGetter
  | readonly string[]
  | ReadonlyMap<string, string>
  | Readonly<Record<string, string>>;

/** Options for building an env getter from a list. */
export interface EnvListOptions {
  /**
   * Match names case-insensitively, as BuildKit does on Windows. Linux (dray's target) is
   * case-sensitive, which is the default.
   */
  caseInsensitive?: boolean;
}

/**
 * Builds an env getter from `KEY=value` entries (BuildKit's `EnvsFromSlice`): the last
 * duplicate wins, and an entry without `=` defines the name with an empty value.
 */
export function envsFromList(list: readonly string[], o: EnvListOptions = {}): EnvGetter {
  const norm = o.caseInsensitive ? (k: string) => k.toUpperCase() : (k: string) => k;
  const values = new Map<string, string>();
  const keys: string[] = [];
  for (const entry of list) {
    const eq = entry.indexOf('=');
    const k = eq < 0 ? entry : entry.slice(0, eq);
    const v = eq < 0 ? '' : entry.slice(eq + 1);
    keys.push(k);
    values.set(norm(k), v);
  }
  return { get: (name) => values.get(norm(name)), keys: () => [...keys] };
}

/** An env with no variables (the heredoc lexer uses it). */
export const emptyEnv: EnvGetter = { get: () => undefined, keys: () => [] };

function isEnvGetter(x: EnvInput): x is EnvGetter {
  return (
    typeof (x as EnvGetter).get === 'function' &&
    typeof (x as EnvGetter).keys === 'function' &&
    !(x instanceof Map)
  );
}

/** Adapts any `EnvInput` to an `EnvGetter` (case-sensitive names). */
export function toEnvGetter(env: EnvInput): EnvGetter {
  if (Array.isArray(env)) return envsFromList(env as readonly string[]);
  if (env instanceof Map) {
    const m = env as ReadonlyMap<string, string>;
    return { get: (name) => m.get(name), keys: () => [...m.keys()] };
  }
  if (isEnvGetter(env as EnvInput)) return env as EnvGetter;
  const rec = env as Readonly<Record<string, string>>;
  return {
    get: (name) => (Object.hasOwn(rec, name) ? rec[name] : undefined),
    keys: () => Object.keys(rec),
  };
}
