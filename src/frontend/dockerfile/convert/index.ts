/**
 * Dockerfile → op graph + image config, with BuildKit's dockerfile2llb semantics: stages,
 * ARG scoping, every instruction, RUN mounts, COPY/ADD rules, ONBUILD, vertex names,
 * history lines and build checks. No I/O of its own: FROM images are resolved through the
 * caller's `resolveImage`.
 */
export type { DockerfileGraph, DockerfileToGraphOptions } from './convert.ts';
export { dockerfileToGraph } from './convert.ts';
export type { DockerfileWarning } from './lint.ts';
