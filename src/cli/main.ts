import { Command, CommanderError } from 'commander';
import { DrayError } from '../index.ts';
import { registerAppend } from './commands/append.ts';
import { registerArchive } from './commands/archive.ts';
import { registerBuild } from './commands/build.ts';
import { registerHistory } from './commands/history.ts';
import { registerImages } from './commands/images.ts';
import { registerInspect } from './commands/inspect.ts';
import { registerLogin } from './commands/login.ts';
import { registerMutate } from './commands/mutate.ts';
import { registerPrune } from './commands/prune.ts';
import { registerPull } from './commands/pull.ts';
import { registerPush } from './commands/push.ts';
import { registerTag } from './commands/tag.ts';
import { CliContext, type CliIO, type GlobalFlags, type Run } from './context.ts';

/** Exit codes: 1 for a failed command (docker's), 2 for usage errors, 130 when interrupted. */
export function exitCodeFor(e: unknown): number {
  if (e instanceof DrayError)
    return e.code === 'DRAY_ABORTED' ? 130 : e.code === 'DRAY_INVALID_ARGUMENT' ? 2 : 1;
  return 1;
}

/** Prints `error: <message>` and the hint; with --debug, the cause chain too. Never secrets: messages are built redacted. */
export function reportError(io: CliIO, e: unknown, debug: boolean): void {
  const message = e instanceof Error ? e.message : String(e);
  io.stderr.write(`error: ${message}\n`);
  if (e instanceof DrayError && e.hint) io.stderr.write(`hint: ${e.hint}\n`);
  if (!debug) return;
  if (e instanceof DrayError) io.stderr.write(`code: ${e.code}\n`);
  let cause = e instanceof Error ? e.cause : undefined;
  while (cause !== undefined) {
    io.stderr.write(
      `caused by: ${cause instanceof Error ? `${cause.name}: ${cause.message}` : String(cause)}\n`,
    );
    cause = cause instanceof Error ? cause.cause : undefined;
  }
  if (e instanceof Error && e.stack) io.stderr.write(`${e.stack}\n`);
}

function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

/** Builds the command line program; `exit` receives the code the process should end with. */
export function createProgram(io: CliIO, exit: (code: number) => void): Command {
  const program = new Command('dray');
  program
    .description('Daemonless container image builder and registry client')
    .version('0.1.0')
    .option('--root <dir>', 'data root (default: $DRAY_ROOT or $XDG_DATA_HOME/dray)')
    .option('--config <dir>', 'location of client config files (default: $DOCKER_CONFIG or ~/.docker)')
    .option(
      '--insecure-registry <host>',
      'registry host[:port] to reach over plain HTTP (repeatable)',
      collect,
    )
    .option('--max-concurrent-transfers <n>', 'parallel blob downloads/uploads (default 4)')
    .option('-D, --debug', 'print error causes and stacks')
    .showHelpAfterError()
    .exitOverride()
    .configureOutput({
      writeOut: (s) => io.stdout.write(s),
      writeErr: (s) => io.stderr.write(s),
    });
  const run: Run = async (fn) => {
    const flags = program.opts<GlobalFlags>();
    try {
      await fn(new CliContext(io, flags));
      exit(0);
    } catch (e) {
      reportError(io, e, Boolean(flags.debug));
      exit(exitCodeFor(e));
    }
  };
  for (const register of [
    registerPull,
    registerPush,
    registerImages,
    registerTag,
    registerInspect,
    registerPrune,
    registerLogin,
    registerMutate,
    registerAppend,
    registerArchive,
    registerHistory,
    registerBuild,
  ]) {
    register(program, run);
  }
  return program;
}

/** Runs the CLI with `argv` (without node and script). Resolves to the exit code. */
export async function main(argv: string[], io: CliIO): Promise<number> {
  let code = 0;
  const program = createProgram(io, (c) => {
    code = c;
  });
  try {
    await program.parseAsync(argv, { from: 'user' });
  } catch (e) {
    if (e instanceof CommanderError) return e.exitCode === 0 ? 0 : 2;
    throw e;
  }
  return code;
}
