import type { Command } from 'commander';
import { append, DrayError } from '../../index.ts';
import { type CliContext, type Run, signalOf } from '../context.ts';

export interface AppendFlags {
  tag: string;
  compression?: 'gzip' | 'zstd';
}

export function appendOptions(ctx: CliContext, flags: AppendFlags): Parameters<typeof append>[2] {
  if (flags.compression !== undefined && flags.compression !== 'gzip' && flags.compression !== 'zstd') {
    throw new DrayError(
      'DRAY_INVALID_ARGUMENT',
      `invalid --compression: ${JSON.stringify(flags.compression)}`,
      {
        hint: 'use gzip or zstd',
      },
    );
  }
  return {
    root: ctx.env.root,
    tag: flags.tag,
    ...(flags.compression ? { compression: flags.compression } : {}),
    ...signalOf(ctx),
  };
}

export function registerAppend(program: Command, run: Run): void {
  program
    .command('append')
    .description('Make a new image from BASE (or scratch) plus tarballs as new layers')
    .argument('<base>', "base image, or 'scratch'")
    .argument('<layers...>', 'layer tarballs (plain, gzip or zstd)')
    .requiredOption('-t, --tag <name>', 'name of the new image')
    .option('--compression <c>', 'compression for plain tarballs: gzip (default) or zstd')
    .action((base: string, layers: string[], flags: AppendFlags) =>
      run(async (ctx) => {
        const r = await append(base, layers, appendOptions(ctx, flags));
        ctx.print(r.descriptor.digest);
      }),
    );
}
