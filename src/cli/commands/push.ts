import type { Command } from 'commander';
import { push, pushAllTags } from '../../index.ts';
import { type CliContext, type ProgressMode, type Run, signalOf } from '../context.ts';

export interface PushFlags {
  quiet?: boolean;
  allTags?: boolean;
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
    .option('-a, --all-tags', 'push every tag of the repository that exists locally')
    .option('-q, --quiet', 'suppress verbose output')
    .option('--progress <mode>', 'progress output: auto, tty, plain, rawjson, quiet', 'auto')
    .action((name: string, flags: PushFlags) =>
      run(async (ctx) => {
        const progress = ctx.progress(flags.progress, flags.quiet);
        try {
          const options = { ...pushOptions(ctx, flags), progress };
          const results = flags.allTags ? await pushAllTags(name, options) : [await push(name, options)];
          progress.close();
          if (flags.quiet) for (const r of results) ctx.print(`${r.name}@${r.descriptor.digest}`);
        } finally {
          progress.close();
        }
      }),
    );
}
