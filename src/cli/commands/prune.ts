import type { Command } from 'commander';
import { prune } from '../../index.ts';
import { type CliContext, type Run, signalOf } from '../context.ts';
import { humanSize } from '../format.ts';

export function pruneOptions(ctx: CliContext): Parameters<typeof prune>[0] {
  return { root: ctx.env.root, ...signalOf(ctx) };
}

export function registerPrune(program: Command, run: Run): void {
  program
    .command('prune')
    .description('Remove content no image references')
    .option('-f, --force', 'do not prompt for confirmation (dray never prompts; accepted for docker parity)')
    .action(() =>
      run(async (ctx) => {
        const r = await prune(pruneOptions(ctx));
        for (const d of r.deleted) ctx.print(`Deleted: ${d}`);
        ctx.print(`Total reclaimed space: ${humanSize(r.reclaimedBytes)}`);
      }),
    );
}
