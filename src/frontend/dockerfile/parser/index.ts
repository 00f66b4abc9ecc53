/**
 * The Dockerfile parser, as BuildKit's `frontend/dockerfile/parser`: text → AST (`Node`),
 * directives, heredocs, warnings, the upstream AST dump, and helpers the instruction layer
 * shares (flags, located errors, "did you mean"). Pure functions, no I/O. Errors are
 * `DrayError` DRAY_DOCKERFILE with BuildKit's wording; `errorLocations` gives their lines.
 */
export type { Directive, DirectiveMatch } from './directives.ts';
export { DirectiveParser, detectSyntax, directiveNames, parseDirective } from './directives.ts';
export type { SourceRange } from './errors.ts';
export {
  dockerfileError,
  errorLocations,
  instructionError,
  instructionNames,
  suggestName,
  unknownInstructionError,
  withSuggestion,
} from './errors.ts';
export type { FlagDef, FlagSpec, FlagValues, ParsedFlags } from './flags.ts';
export { parseFlags } from './flags.ts';
export { chompHeredocContent, heredocsFromLine, parseHeredoc } from './heredoc.ts';
export { isKnownInstruction, parseJSONArray, parseWords } from './line-parsers.ts';
export type { Heredoc, Node } from './node.ts';
export { dumpNode, newNode, nodeArgs } from './node.ts';
export type { ParsedDirectives, ParseOptions, ParseResult, ParseWarning } from './parser.ts';
export { defaultEscapeToken, parseDockerfile } from './parser.ts';
export type { SplitCommand } from './split-command.ts';
export { splitCommand } from './split-command.ts';
