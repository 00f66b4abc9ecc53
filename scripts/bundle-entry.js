// The CLI bundle's entry (scripts/bundle.ts): the CLI, plus undici bundled in but still
// evaluated only on first use — src/registry/undici.ts asks for it through this hook, since
// from source it can only reach undici with a CommonJS require of node_modules (~60 ms of
// module loading that the bundle avoids).
globalThis[Symbol.for('dray.undici')] = () => require('undici');

export * from '../src/cli/main.ts';
