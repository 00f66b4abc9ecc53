import type { Command } from 'commander';
import { inspect } from '../../index.ts';
import { type CliContext, type Run, signalOf } from '../context.ts';

export interface InspectFlags {
  remote?: boolean;
  platform?: string;
}

export function inspectOptions(ctx: CliContext, flags: InspectFlags): Parameters<typeof inspect>[1] {
  return {
    root: ctx.env.root,
    registry: ctx.registry(),
    ...(flags.remote ? { remote: true } : {}),
    ...(flags.platform ? { platform: flags.platform } : {}),
    ...signalOf(ctx),
  };
}

export function registerInspect(program: Command, run: Run): void {
  program
    .command('inspect')
    .description("Show an image's manifest and config as JSON")
    .argument('<names...>', 'IMAGE')
    .option('--remote', 'read the image from its registry without pulling it')
    .option('--platform <platform>', 'which manifest of a multi-platform image (os/arch[/variant])')
    .action((names: string[], flags: InspectFlags) =>
      run(async (ctx) => {
        const out = [];
        for (const name of names) out.push(await inspect(name, inspectOptions(ctx, flags)));
        ctx.print(JSON.stringify(out, null, 4));
      }),
    );
}
