/**
 * Typed Dockerfile instructions (BuildKit's `frontend/dockerfile/instructions`): AST nodes
 * become commands and stages with upstream's checks and error wording; `expandCommand`
 * applies variable expansion exactly where upstream does. Pure functions, no I/O.
 */
export { formatGoDuration, parseGoDuration } from './duration.ts';
export { expandCommand } from './expand.ts';
export type { ParsedStages, ParseLint } from './parse.ts';
export { parseCommand, parseInstruction, parseStages } from './parse.ts';
export type { WordExpander } from './run-mount.ts';
export { csvFields, parseMount, ramInBytes } from './run-mount.ts';
export type {
  AddCommand,
  ArgCommand,
  ArgDefinition,
  CmdCommand,
  Command,
  CommandBase,
  CopyCommand,
  EntrypointCommand,
  EnvCommand,
  ExposeCommand,
  Healthcheck,
  HealthcheckCommand,
  KeyValuePair,
  LabelCommand,
  Location,
  MaintainerCommand,
  MountSharing,
  MountType,
  OnbuildCommand,
  RunCommand,
  RunMount,
  ShellCommand,
  ShellDependantCmdLine,
  ShellInlineFile,
  SourceContent,
  SourcesAndDest,
  Stage,
  StopSignalCommand,
  UserCommand,
  VolumeCommand,
  WorkdirCommand,
} from './types.ts';
