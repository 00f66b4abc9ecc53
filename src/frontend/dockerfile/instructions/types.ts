/**
 * Typed Dockerfile instructions, shaped like BuildKit's `instructions` package so the
 * conversion can follow upstream step by step. Every command keeps its source text, keyword
 * as written, lines and comments; values are as parsed (not yet expanded) unless said.
 */

/** 1-based first and last line of an instruction (heredoc bodies included). */
export interface Location {
  startLine: number;
  endLine: number;
}

/** What every command has (BuildKit's `withNameAndCode`). */
export interface CommandBase {
  /** The keyword as written (`RUN`, `run`). */
  name: string;
  /** The instruction line, trimmed (continuations joined, heredoc bodies excluded). */
  code: string;
  location: Location;
  /** Comment lines directly above the instruction. */
  comments: readonly string[];
}

/** `key=value` (or legacy `key value`, then `noDelim`) of ENV and LABEL. */
export interface KeyValuePair {
  key: string;
  value: string;
  noDelim: boolean;
}

/** One name of an ARG, with its default when given. */
export interface ArgDefinition {
  key: string;
  value?: string;
  /** The comment line above the ARG that starts with its name, without the name. */
  docComment: string;
}

export interface EnvCommand extends CommandBase {
  kind: 'env';
  env: KeyValuePair[];
}

export interface MaintainerCommand extends CommandBase {
  kind: 'maintainer';
  maintainer: string;
}

export interface LabelCommand extends CommandBase {
  kind: 'label';
  labels: KeyValuePair[];
}

/** A heredoc used as a COPY/ADD source. */
export interface SourceContent {
  /** The heredoc's name: the file name in the destination. */
  path: string;
  /** The body (leading tabs already removed for `<<-`). */
  data: string;
  /** Expand variables in the body (the delimiter was not quoted). */
  expand: boolean;
}

/** Sources and destination of COPY and ADD. */
export interface SourcesAndDest {
  destPath: string;
  sourcePaths: string[];
  sourceContents: SourceContent[];
}

export interface AddCommand extends CommandBase, SourcesAndDest {
  kind: 'add';
  chown: string;
  chmod: string;
  link: boolean;
  excludePatterns: string[];
  /** Set only when `--keep-git-dir` was given. */
  keepGitDir?: boolean;
  checksum: string;
  /** Set only when `--unpack` was given. */
  unpack?: boolean;
}

export interface CopyCommand extends CommandBase, SourcesAndDest {
  kind: 'copy';
  from: string;
  chown: string;
  chmod: string;
  link: boolean;
  excludePatterns: string[];
  parents: boolean;
}

export interface OnbuildCommand extends CommandBase {
  kind: 'onbuild';
  /** The trigger instruction as written (ONBUILD removed, heredoc bodies appended). */
  expression: string;
}

export interface WorkdirCommand extends CommandBase {
  kind: 'workdir';
  path: string;
}

/** A heredoc of RUN (and, in principle, CMD/ENTRYPOINT). */
export interface ShellInlineFile {
  name: string;
  /** The raw body (not yet chomped). */
  data: string;
  chomp: boolean;
}

/** The command line of RUN, CMD and ENTRYPOINT. */
export interface ShellDependantCmdLine {
  /** Exec form: the JSON array; shell form: one string, the words joined by spaces. ENTRYPOINT with none: undefined. */
  cmdLine: string[] | undefined;
  files: ShellInlineFile[];
  /** Shell form: run through the image's SHELL. */
  prependShell: boolean;
}

/** A `RUN --mount` type. */
export type MountType = 'bind' | 'cache' | 'tmpfs' | 'secret' | 'ssh';
export type MountSharing = 'shared' | 'private' | 'locked';

/** One `RUN --mount` (BuildKit's `instructions.Mount`). */
export interface RunMount {
  type: MountType;
  from: string;
  source: string;
  target: string;
  readOnly: boolean;
  /** tmpfs size in bytes; 0 = unlimited. */
  sizeLimit: number;
  /** `id=` (cache and secret ids). */
  cacheId: string;
  /** '' when not given. */
  cacheSharing: MountSharing | '';
  required: boolean;
  /** Secrets: the environment variable to expose the secret as (`env=`). */
  env?: string;
  mode?: number;
  uid?: number;
  gid?: number;
}

export interface RunCommand extends CommandBase, ShellDependantCmdLine {
  kind: 'run';
  /** The `--mount` values as written (expanded at conversion time). */
  mountSpecs: string[];
  /** The mounts parsed without expansion (only `from` is meaningful before expansion). */
  mounts: RunMount[];
  /** `--network`: `default`, `none` or `host`. */
  network: string;
  /** `--security`: `sandbox` or `insecure`. */
  security: string;
  /** `--device` values (a labs feature; rejected at conversion). */
  devices: string[];
}

export interface CmdCommand extends CommandBase, ShellDependantCmdLine {
  kind: 'cmd';
}

export interface EntrypointCommand extends CommandBase, ShellDependantCmdLine {
  kind: 'entrypoint';
}

/** Docker's HealthcheckConfig; durations in nanoseconds, 0 = inherit. */
export interface Healthcheck {
  test: string[];
  interval: number;
  timeout: number;
  startPeriod: number;
  startInterval: number;
  retries: number;
}

export interface HealthcheckCommand extends CommandBase {
  kind: 'healthcheck';
  health: Healthcheck;
}

export interface ExposeCommand extends CommandBase {
  kind: 'expose';
  /** As written, sorted (upstream sorts before expansion). */
  ports: string[];
}

export interface UserCommand extends CommandBase {
  kind: 'user';
  user: string;
}

export interface VolumeCommand extends CommandBase {
  kind: 'volume';
  volumes: string[];
}

export interface StopSignalCommand extends CommandBase {
  kind: 'stopsignal';
  signal: string;
}

export interface ArgCommand extends CommandBase {
  kind: 'arg';
  args: ArgDefinition[];
}

export interface ShellCommand extends CommandBase {
  kind: 'shell';
  shell: string[];
}

/** Every instruction but FROM. */
export type Command =
  | AddCommand
  | ArgCommand
  | CmdCommand
  | CopyCommand
  | EntrypointCommand
  | EnvCommand
  | ExposeCommand
  | HealthcheckCommand
  | LabelCommand
  | MaintainerCommand
  | OnbuildCommand
  | RunCommand
  | ShellCommand
  | StopSignalCommand
  | UserCommand
  | VolumeCommand
  | WorkdirCommand;

/** A build stage: its FROM and the commands up to the next FROM. */
export interface Stage {
  kind: 'stage';
  /** Lower-cased `AS` name; '' when unnamed. */
  name: string;
  commands: Command[];
  /** The FROM keyword as written. */
  origCmd: string;
  /** The image or stage it starts from, as written (expanded at conversion). */
  baseName: string;
  /** `--platform` as written; '' when absent. */
  platform: string;
  docComment: string;
  /** The FROM line, trimmed. */
  sourceCode: string;
  location: Location;
  comments: readonly string[];
}
