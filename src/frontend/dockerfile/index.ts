/**
 * The Dockerfile frontend. Today: the parser (`parseDockerfile`, AST, directives, heredocs,
 * flags, located errors) and the shell-word lexer (`ShellLex`), both following BuildKit
 * exactly. The instruction layer and the graph conversion build on these.
 */
export type {
  Directive,
  DirectiveMatch,
  FlagDef,
  FlagSpec,
  FlagValues,
  Heredoc,
  Node,
  ParsedDirectives,
  ParsedFlags,
  ParseOptions,
  ParseResult,
  ParseWarning,
  SourceRange,
  SplitCommand,
} from './parser/index.ts';
export {
  chompHeredocContent,
  DirectiveParser,
  defaultEscapeToken,
  detectSyntax,
  directiveNames,
  dockerfileError,
  dumpNode,
  errorLocations,
  heredocsFromLine,
  instructionError,
  instructionNames,
  isKnownInstruction,
  newNode,
  nodeArgs,
  parseDirective,
  parseDockerfile,
  parseFlags,
  parseHeredoc,
  parseJSONArray,
  parseWords,
  splitCommand,
  suggestName,
  unknownInstructionError,
  withSuggestion,
} from './parser/index.ts';
export type {
  EnvGetter,
  EnvInput,
  EnvListOptions,
  ProcessWordResult,
  ShellLexOptions,
} from './shell/index.ts';
export { emptyEnv, envsFromList, ShellLex, toEnvGetter } from './shell/index.ts';
