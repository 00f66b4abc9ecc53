import { createRequire } from 'node:module';

type Undici = typeof import('undici');
let loaded: Undici | undefined;

/**
 * undici, loaded on first use: it takes ~100 ms to load, and most dray commands (a warm
 * build, images, inspect, save) never open a connection. undici is CommonJS, so a
 * synchronous require keeps every caller synchronous.
 */
export function undici(): Undici {
  // The CLI bundle carries its own copy (scripts/bundle-entry.js).
  const bundled = (globalThis as Record<symbol, unknown>)[Symbol.for('dray.undici')] as
    | (() => Undici)
    | undefined;
  loaded ??= bundled ? bundled() : (createRequire(import.meta.url)('undici') as Undici);
  return loaded;
}
