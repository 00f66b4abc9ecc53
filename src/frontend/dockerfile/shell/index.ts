/**
 * Shell-word expansion for Dockerfile instructions, as BuildKit's `frontend/dockerfile/shell`
 * does it: `ShellLex` expands `$VAR`/`${VAR…}` and quotes, and splits words. Pure functions,
 * no I/O. Errors are `DrayError` DRAY_DOCKERFILE with BuildKit's wording.
 */
export type { EnvGetter, EnvInput, EnvListOptions } from './env.ts';
export { emptyEnv, envsFromList, toEnvGetter } from './env.ts';
export type { ProcessWordResult, ShellLexOptions } from './lex.ts';
export { ShellLex } from './lex.ts';
