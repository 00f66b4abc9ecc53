import type { EnvGetter } from '../shell/index.ts';

/**
 * An immutable environment with BuildKit's `llb.EnvList` semantics: setting a key that
 * exists moves it to the end, so the order of a step's environment is the order in which
 * keys were last set (what a `RUN env` prints). The image config's `Env` is different: there
 * a key that exists is replaced in place (see `addEnv` in image.ts).
 */
export class EnvList implements EnvGetter {
  readonly #entries: ReadonlyMap<string, string>;

  constructor(entries: ReadonlyMap<string, string> = new Map()) {
    this.#entries = entries;
  }

  /** A list with `key` set to `value`, moved to the end. */
  set(key: string, value: string): EnvList {
    const next = new Map(this.#entries);
    next.delete(key);
    next.set(key, value);
    return new EnvList(next);
  }

  /** A list without `key`. */
  delete(key: string): EnvList {
    if (!this.#entries.has(key)) return this;
    const next = new Map(this.#entries);
    next.delete(key);
    return new EnvList(next);
  }

  get(key: string): string | undefined {
    return this.#entries.get(key);
  }

  has(key: string): boolean {
    return this.#entries.has(key);
  }

  keys(): string[] {
    return [...this.#entries.keys()];
  }

  /** `KEY=value` entries in order. */
  toArray(): string[] {
    return [...this.#entries].map(([k, v]) => `${k}=${v}`);
  }
}

/** An env getter that sees `overrides` first (secrets exposed as env show as `****` in names). */
export function overlayEnv(base: EnvGetter, overrides: ReadonlyMap<string, string>): EnvGetter {
  if (overrides.size === 0) return base;
  return {
    get: (k) => (overrides.has(k) ? overrides.get(k) : base.get(k)),
    keys: () => [...base.keys().filter((k) => !overrides.has(k)), ...overrides.keys()],
  };
}
