/**
 * Frontends: turn a build definition into work for the solver. `dockerfile` parses
 * Dockerfiles as BuildKit does, expands their words and converts them into an op graph and
 * an image config (`dockerfileToGraph`; see ./dockerfile/index.ts).
 */
export * from './dockerfile/index.ts';
