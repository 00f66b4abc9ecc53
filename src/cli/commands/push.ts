import type { Command } from 'commander';
import { push } from '../../index.ts';
import { type CliContext, type ProgressMode, type Run, signalOf } from '../context.ts';

export interface PushFlags {
  quiet?: boolean;
  progress: ProgressMode;
}

export function pushOptions(ctx: CliContext, _flags: PushFlags): Parameters<typeof push>[1] {
  return { root: ctx.env.root, registry: ctx.registry(), ...signalOf(ctx) };
}

export function registerPush(program: Command, run: Run): void {
  program
    .command('push')
    .description('Upload an image to a registry')
    .argument('<name>', 'NAME[:TAG]')
    .option('-q, --quiet', 'suppress verbose output')
    .option('--progress <mode>', 'progress output: auto, tty, plain, rawjson, quiet', 'auto')
    .action((name: string, flags: PushFlags) =>
      run(async (ctx) => {
        const progress = ctx.progress(flags.progress, flags.quiet);
        try {
          const result = await push(name, { ...pushOptions(ctx, flags), progress });
          progress.close();
          if (flags.quiet) ctx.print(`${result.name}@${result.descriptor.digest}`);
        } finally {
          progress.close();
        }
      }),
    );
}
