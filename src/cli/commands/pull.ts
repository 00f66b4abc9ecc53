import type { Command } from 'commander';
import { pull } from '../../index.ts';
import { type CliContext, type ProgressMode, type Run, signalOf } from '../context.ts';

export interface PullFlags {
  platform?: string;
  allTags?: boolean;
  quiet?: boolean;
  progress: ProgressMode;
}

/** The verb's options from the flags (tested on its own). */
export function pullOptions(ctx: CliContext, flags: PullFlags): Parameters<typeof pull>[1] {
  return {
    root: ctx.env.root,
    registry: ctx.registry(),
    ...(flags.platform ? { platform: flags.platform } : {}),
    ...(flags.allTags ? { allTags: true } : {}),
    ...signalOf(ctx),
  };
}

export function registerPull(program: Command, run: Run): void {
  program
    .command('pull')
    .description('Download an image from a registry')
    .argument('<name>', 'NAME[:TAG|@DIGEST]')
    .option('--platform <platform>', "platform of a multi-platform image (os/arch[/variant]), or 'all'")
    .option('-a, --all-tags', 'download all tagged images in the repository')
    .option('-q, --quiet', 'suppress verbose output')
    .option('--progress <mode>', 'progress output: auto, tty, plain, rawjson, quiet', 'auto')
    .action((name: string, flags: PullFlags) =>
      run(async (ctx) => {
        const progress = ctx.progress(flags.progress, flags.quiet);
        try {
          const results = await pull(name, { ...pullOptions(ctx, flags), progress });
          progress.close();
          if (flags.quiet) for (const r of results) ctx.print(r.name);
        } finally {
          progress.close();
        }
      }),
    );
}
