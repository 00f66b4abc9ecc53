/**
 * AST → typed instructions, as BuildKit's `instructions/parse.go`: one parser per keyword
 * with upstream's argument checks, flags (BuildKit's BFlags semantics) and wording, then
 * `parseStages` groups commands under their FROM and collects the ARGs before the first FROM.
 */
import { DrayError } from '../../../errors.ts';
import {
  chompHeredocContent,
  dockerfileError,
  errorLocations,
  type FlagSpec,
  type Heredoc,
  instructionNames,
  type Node,
  nodeArgs,
  parseFlags,
  parseHeredoc,
  withSuggestion,
} from '../parser/index.ts';
import { goQuote, trimSpace } from '../shell/gotext.ts';
import { parseGoDuration } from './duration.ts';
import { parseMount } from './run-mount.ts';
import type {
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
  OnbuildCommand,
  RunCommand,
  ShellCommand,
  ShellDependantCmdLine,
  SourceContent,
  SourcesAndDest,
  Stage,
  StopSignalCommand,
  UserCommand,
  VolumeCommand,
  WorkdirCommand,
} from './types.ts';

/** A lint finding made while parsing (the conversion's linter decides whether to report it). */
export type ParseLint = (
  rule: string,
  message: string,
  location: Location,
  comments: readonly string[],
) => void;

// An instruction's problem before it is located (upstream returns these unwrapped).
class InstructionProblem extends Error {}

function fail(message: string): never {
  throw new InstructionProblem(message);
}

interface Request {
  command: string;
  args: string[];
  heredocs: Heredoc[];
  json: boolean;
  original: string;
  flags: string[];
  location: Location;
  comments: readonly string[];
}

function requestFromNode(node: Node): Request {
  return {
    command: node.value,
    args: nodeArgs(node),
    heredocs: node.heredocs,
    json: node.attributes.json,
    original: node.original,
    flags: node.flags,
    location: { startLine: node.startLine, endLine: node.endLine },
    comments: node.prevComment,
  };
}

function base(req: Request): CommandBase {
  return { name: req.command, code: trimSpace(req.original), location: req.location, comments: req.comments };
}

// BFlags.Parse: flag errors are plain messages here; the caller locates them.
function flagsOf<S extends FlagSpec>(req: Request, spec: S) {
  try {
    return parseFlags(req.flags, spec);
  } catch (e) {
    if (e instanceof DrayError) fail(e.message);
    throw e;
  }
}

function mustParseHeredoc(src: string): Heredoc | undefined {
  try {
    return parseHeredoc(src);
  } catch {
    return undefined;
  }
}

const errAtLeastOneArgument = (c: string) => `${c} requires at least one argument`;
const errExactlyOneArgument = (c: string) => `${c} requires exactly one argument`;
const errNoDestinationArgument = (c: string) =>
  `${c} requires at least two arguments, but only one was provided. Destination could not be determined`;

/** Exec form keeps the words; shell form joins them with spaces (upstream `handleJSONArgs`). */
function handleJSONArgs(args: readonly string[], json: boolean): string[] {
  if (args.length === 0) return [];
  if (json) return [...args];
  return [args.join(' ')];
}

function parseKvps(args: readonly string[], cmdName: string): KeyValuePair[] {
  if (args.length === 0) fail(errAtLeastOneArgument(cmdName));
  if (args.length % 3 !== 0) fail(`Bad input to ${cmdName}, too many arguments`);
  const out: KeyValuePair[] = [];
  for (let j = 0; j < args.length; j += 3) {
    if (args[j]!.length === 0) fail(`${cmdName} names can not be blank`);
    out.push({ key: args[j]!, value: args[j + 1]!, noDelim: args[j + 2] === '' });
  }
  return out;
}

function docComment(comments: readonly string[], name: string): string {
  if (name === '') return '';
  for (const line of comments) if (line.startsWith(`${name} `)) return line.slice(name.length + 1);
  return '';
}

function parseEnv(req: Request): EnvCommand {
  flagsOf(req, {});
  return { kind: 'env', ...base(req), env: parseKvps(req.args, 'ENV') };
}

function parseMaintainer(req: Request): MaintainerCommand {
  if (req.args.length !== 1) fail(errExactlyOneArgument('MAINTAINER'));
  flagsOf(req, {});
  return { kind: 'maintainer', ...base(req), maintainer: req.args[0]! };
}

function parseLabel(req: Request): LabelCommand {
  flagsOf(req, {});
  return { kind: 'label', ...base(req), labels: parseKvps(req.args, 'LABEL') };
}

function parseSourcesAndDest(req: Request, command: string): SourcesAndDest {
  const srcs = req.args.slice(0, -1);
  const dest = req.args[req.args.length - 1]!;
  if (mustParseHeredoc(dest)) fail(`${command} cannot accept a heredoc as a destination`);
  const byName = new Map(req.heredocs.map((h) => [h.name, h]));
  const sourcePaths: string[] = [];
  const sourceContents: SourceContent[] = [];
  for (const src of srcs) {
    const doc = mustParseHeredoc(src);
    if (doc) {
      let content = byName.get(doc.name)?.content ?? '';
      if (doc.chomp) content = chompHeredocContent(content);
      sourceContents.push({ data: content, path: doc.name, expand: doc.expand });
    } else {
      sourcePaths.push(src);
    }
  }
  return { destPath: dest, sourcePaths, sourceContents };
}

function parseAdd(req: Request): AddCommand {
  if (req.args.length < 2) fail(errNoDestinationArgument('ADD'));
  const { values, used } = flagsOf(req, {
    chown: { type: 'string' },
    chmod: { type: 'string' },
    link: { type: 'bool' },
    'keep-git-dir': { type: 'bool' },
    checksum: { type: 'string' },
    unpack: { type: 'bool' },
    exclude: { type: 'strings' },
  });
  const sd = parseSourcesAndDest(req, 'ADD');
  return {
    kind: 'add',
    ...base(req),
    ...sd,
    chown: values.chown,
    chmod: values.chmod,
    link: values.link,
    excludePatterns: values.exclude,
    ...(used.includes('keep-git-dir') ? { keepGitDir: values['keep-git-dir'] } : {}),
    checksum: values.checksum,
    ...(used.includes('unpack') ? { unpack: values.unpack } : {}),
  };
}

function parseCopy(req: Request): CopyCommand {
  if (req.args.length < 2) fail(errNoDestinationArgument('COPY'));
  const { values } = flagsOf(req, {
    chown: { type: 'string' },
    from: { type: 'string' },
    chmod: { type: 'string' },
    link: { type: 'bool' },
    exclude: { type: 'strings' },
    parents: { type: 'bool' },
  });
  const sd = parseSourcesAndDest(req, 'COPY');
  return {
    kind: 'copy',
    ...base(req),
    ...sd,
    from: values.from,
    chown: values.chown,
    chmod: values.chmod,
    link: values.link,
    parents: values.parents,
    excludePatterns: values.exclude,
  };
}

const validStageName = /^[a-z][a-z0-9-_.]*$/;

function parseBuildStageName(args: readonly string[]): string {
  if (args.length === 3 && args[1]!.toLowerCase() === 'as') {
    const name = args[2]!.toLowerCase();
    if (!validStageName.test(name))
      fail(
        `invalid name for build stage: ${goQuote(args[2]!)}, name can't start with a number or contain symbols`,
      );
    return name;
  }
  if (args.length !== 1) fail('FROM requires either one or three arguments');
  return '';
}

function parseFrom(req: Request): Stage {
  const name = parseBuildStageName(req.args);
  const { values } = flagsOf(req, { platform: { type: 'string' } });
  return {
    kind: 'stage',
    name,
    commands: [],
    origCmd: req.command,
    baseName: req.args[0]!,
    platform: values.platform,
    docComment: docComment(req.comments, name),
    sourceCode: trimSpace(req.original),
    location: req.location,
    comments: req.comments,
  };
}

function parseOnBuild(req: Request): OnbuildCommand {
  if (req.args.length === 0) fail(errAtLeastOneArgument('ONBUILD'));
  flagsOf(req, {});
  const trigger = trimSpace(req.args[0]!).toUpperCase();
  if (trigger === 'ONBUILD') fail("Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed");
  if (trigger === 'MAINTAINER' || trigger === 'FROM') fail(`${trigger} isn't allowed as an ONBUILD trigger`);
  let expression = req.original.replace(/^[\t\n\v\f\r ]*ONBUILD[\t\n\v\f\r ]*/i, '');
  for (const h of req.heredocs) expression += `\n${h.content}${h.name}`;
  return { kind: 'onbuild', ...base(req), expression };
}

function parseWorkdir(req: Request): WorkdirCommand {
  if (req.args.length !== 1) fail(errExactlyOneArgument('WORKDIR'));
  flagsOf(req, {});
  return { kind: 'workdir', ...base(req), path: req.args[0]! };
}

function shellDependentCommand(req: Request, emptyAsUndefined: boolean): ShellDependantCmdLine {
  const args = handleJSONArgs(req.args, req.json);
  return {
    cmdLine: emptyAsUndefined && args.length === 0 ? undefined : args,
    files: req.heredocs.map((h) => ({ name: h.name, data: h.content, chomp: h.chomp })),
    prependShell: !req.json,
  };
}

function parseRun(req: Request): RunCommand {
  const { values } = flagsOf(req, {
    device: { type: 'strings' },
    mount: { type: 'strings' },
    network: { type: 'string', default: 'default' },
    security: { type: 'string', default: 'sandbox' },
  });
  const cmdline = shellDependentCommand(req, false);
  const mounts = values.mount.map((m) => {
    try {
      return parseMount(m);
    } catch (e) {
      return fail((e as Error).message);
    }
  });
  if (!['default', 'none', 'host'].includes(values.network))
    fail(`invalid network mode ${goQuote(values.network)}`);
  if (!['insecure', 'sandbox'].includes(values.security))
    fail(`security ${goQuote(values.security)} is not valid`);
  return {
    kind: 'run',
    ...base(req),
    ...cmdline,
    mountSpecs: values.mount,
    mounts,
    network: values.network,
    security: values.security,
    devices: values.device,
  };
}

function parseCmd(req: Request): CmdCommand {
  flagsOf(req, {});
  return { kind: 'cmd', ...base(req), ...shellDependentCommand(req, false) };
}

function parseEntrypoint(req: Request): EntrypointCommand {
  flagsOf(req, {});
  return { kind: 'entrypoint', ...base(req), ...shellDependentCommand(req, true) };
}

// 0 when empty; at least 1ms otherwise (upstream `parseOptInterval`).
function parseOptInterval(name: string, value: string): number {
  if (value === '') return 0;
  let d: number;
  try {
    d = parseGoDuration(value);
  } catch (e) {
    return fail((e as Error).message);
  }
  if (d === 0) return 0;
  if (d < 1_000_000) fail(`Interval ${goQuote(name)} cannot be less than 1ms`);
  return d;
}

function parseHealthcheck(req: Request): HealthcheckCommand {
  if (req.args.length === 0) fail(errAtLeastOneArgument('HEALTHCHECK'));
  let typ = req.args[0]!.toUpperCase();
  const args = req.args.slice(1);
  if (typ === 'NONE') {
    if (args.length !== 0) fail('HEALTHCHECK NONE takes no arguments');
    const health: Healthcheck = {
      test: [typ],
      interval: 0,
      timeout: 0,
      startPeriod: 0,
      startInterval: 0,
      retries: 0,
    };
    return { kind: 'healthcheck', ...base(req), health };
  }
  const { values } = flagsOf(req, {
    interval: { type: 'string' },
    timeout: { type: 'string' },
    'start-period': { type: 'string' },
    'start-interval': { type: 'string' },
    retries: { type: 'string' },
  });
  if (typ !== 'CMD') fail(`Unknown type ${goQuote(typ)} in HEALTHCHECK (try CMD)`);
  const cmd = handleJSONArgs(args, req.json);
  if (cmd.length === 0) fail('Missing command after HEALTHCHECK CMD');
  if (!req.json) typ = 'CMD-SHELL';
  const health: Healthcheck = {
    test: [typ, ...cmd],
    interval: parseOptInterval('interval', values.interval),
    timeout: parseOptInterval('timeout', values.timeout),
    startPeriod: parseOptInterval('start-period', values['start-period']),
    startInterval: parseOptInterval('start-interval', values['start-interval']),
    retries: 0,
  };
  if (values.retries !== '') {
    const r = values.retries;
    if (!/^[+-]?[0-9]+$/.test(r)) fail(`strconv.ParseInt: parsing ${goQuote(r)}: invalid syntax`);
    const n = Number.parseInt(r, 10);
    if (n > 2147483647 || n < -2147483648)
      fail(`strconv.ParseInt: parsing ${goQuote(r)}: value out of range`);
    if (n < 0) fail(`--retries cannot be negative (${n})`);
    health.retries = n;
  }
  return { kind: 'healthcheck', ...base(req), health };
}

// Go's sort.Strings order: by UTF-8 bytes.
function byteCompare(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

function parseExpose(req: Request): ExposeCommand {
  if (req.args.length === 0) fail(errAtLeastOneArgument('EXPOSE'));
  flagsOf(req, {});
  return { kind: 'expose', ...base(req), ports: [...req.args].sort(byteCompare) };
}

function parseUser(req: Request): UserCommand {
  if (req.args.length !== 1) fail(errExactlyOneArgument('USER'));
  flagsOf(req, {});
  return { kind: 'user', ...base(req), user: req.args[0]! };
}

function parseVolume(req: Request): VolumeCommand {
  if (req.args.length === 0) fail(errAtLeastOneArgument('VOLUME'));
  flagsOf(req, {});
  const volumes: string[] = [];
  for (const v of req.args) {
    const t = trimSpace(v);
    if (t === '') fail('VOLUME specified can not be an empty string');
    volumes.push(t);
  }
  return { kind: 'volume', ...base(req), volumes };
}

// Upstream never parses STOPSIGNAL's flags: they are ignored.
function parseStopSignal(req: Request): StopSignalCommand {
  if (req.args.length !== 1) fail(errExactlyOneArgument('STOPSIGNAL'));
  return { kind: 'stopsignal', ...base(req), signal: req.args[0]! };
}

// Upstream never parses ARG's flags either.
function parseArg(req: Request): ArgCommand {
  if (req.args.length < 1) fail(errAtLeastOneArgument('ARG'));
  const args: ArgDefinition[] = req.args.map((arg) => {
    const eq = arg.indexOf('=');
    if (eq < 0) return { key: arg, docComment: docComment(req.comments, arg) };
    const key = arg.slice(0, eq);
    if (key.length === 0) fail('ARG names can not be blank');
    return { key, value: arg.slice(eq + 1), docComment: docComment(req.comments, key) };
  });
  return { kind: 'arg', ...base(req), args };
}

function parseShell(req: Request): ShellCommand {
  flagsOf(req, {});
  const shell = handleJSONArgs(req.args, req.json);
  if (shell.length === 0) fail(errAtLeastOneArgument('SHELL'));
  if (!req.json) fail('SHELL requires the arguments to be in JSON form');
  return { kind: 'shell', ...base(req), shell };
}

const upperInstructionNames = instructionNames.map((n) => n.toUpperCase());

function parseRequest(node: Node, lint?: ParseLint): Command | Stage {
  const req = requestFromNode(node);
  switch (node.value.toLowerCase()) {
    case 'env':
      return parseEnv(req);
    case 'maintainer':
      lint?.(
        'MaintainerDeprecated',
        'Maintainer instruction is deprecated in favor of using label',
        req.location,
        req.comments,
      );
      return parseMaintainer(req);
    case 'label':
      return parseLabel(req);
    case 'add':
      return parseAdd(req);
    case 'copy':
      return parseCopy(req);
    case 'from': {
      if (lint && req.args.length === 3) {
        const stageName = req.args[2]!;
        if (stageName !== stageName.toLowerCase())
          lint(
            'StageNameCasing',
            `Stage name '${stageName}' should be lowercase`,
            req.location,
            req.comments,
          );
        const cmd = req.command;
        const lower = cmd === cmd.toLowerCase();
        const upper = cmd === cmd.toUpperCase();
        const as = req.args[1]!;
        if ((lower && as !== as.toLowerCase()) || (!lower && upper && as !== as.toUpperCase()))
          lint(
            'FromAsCasing',
            `'${as}' and '${cmd}' keywords' casing do not match`,
            req.location,
            req.comments,
          );
      }
      return parseFrom(req);
    }
    case 'onbuild':
      return parseOnBuild(req);
    case 'workdir':
      return parseWorkdir(req);
    case 'run':
      return parseRun(req);
    case 'cmd':
      return parseCmd(req);
    case 'healthcheck':
      return parseHealthcheck(req);
    case 'entrypoint':
      return parseEntrypoint(req);
    case 'expose':
      return parseExpose(req);
    case 'user':
      return parseUser(req);
    case 'volume':
      return parseVolume(req);
    case 'stopsignal':
      return parseStopSignal(req);
    case 'arg':
      return parseArg(req);
    case 'shell':
      return parseShell(req);
  }
  return fail(withSuggestion(`unknown instruction: ${node.value}`, node.value, upperInstructionNames, false));
}

function located(e: unknown, node: Node, prefix: boolean): unknown {
  const message =
    e instanceof InstructionProblem ? e.message : e instanceof DrayError ? e.message : undefined;
  if (message === undefined) return e;
  if (e instanceof DrayError && errorLocations(e) && !prefix) return e;
  const text = prefix ? `dockerfile parse error on line ${node.startLine}: ${message}` : message;
  return dockerfileError(text, node.startLine, node.endLine, { cause: e });
}

/**
 * Turns one instruction node into a typed command or, for FROM, a stage (BuildKit's
 * `ParseInstruction`). No I/O. Throws DRAY_DOCKERFILE with upstream's plain message
 * (`COPY requires at least two arguments…`, `unknown flag: --frm (did you mean from?)`),
 * located at the node's lines.
 */
export function parseInstruction(node: Node, lint?: ParseLint): Command | Stage {
  try {
    return parseRequest(node, lint);
  } catch (e) {
    throw located(e, node, false);
  }
}

/**
 * Like {@link parseInstruction} but FROM is an error (ONBUILD triggers use it; BuildKit's
 * `ParseCommand`). No I/O. Throws DRAY_DOCKERFILE.
 */
export function parseCommand(node: Node): Command {
  const c = parseInstruction(node);
  if (c.kind === 'stage')
    throw dockerfileError('*instructions.Stage is not a command type', node.startLine, node.endLine);
  return c;
}

/** What {@link parseStages} returns. */
export interface ParsedStages {
  stages: Stage[];
  /** The ARG instructions before the first FROM. */
  metaArgs: ArgCommand[];
}

/**
 * Groups a parsed Dockerfile's instructions into stages (BuildKit's `instructions.Parse`).
 * No I/O. Throws DRAY_DOCKERFILE: `dockerfile parse error on line N: <problem>` for a bad
 * instruction (unknown keyword, bad flag, wrong arguments), and `no build stage in current
 * context` for an instruction other than ARG before the first FROM.
 */
export function parseStages(ast: Node, lint?: ParseLint): ParsedStages {
  const stages: Stage[] = [];
  const metaArgs: ArgCommand[] = [];
  for (const n of ast.children) {
    let cmd: Command | Stage;
    try {
      cmd = parseRequest(n, lint);
    } catch (e) {
      throw located(e, n, true);
    }
    if (stages.length === 0 && cmd.kind === 'arg') {
      metaArgs.push(cmd);
      continue;
    }
    if (cmd.kind === 'stage') {
      stages.push(cmd);
      continue;
    }
    const current = stages.at(-1);
    if (!current) throw dockerfileError('no build stage in current context', n.startLine, n.endLine);
    current.commands.push(cmd);
  }
  return { stages, metaArgs };
}
