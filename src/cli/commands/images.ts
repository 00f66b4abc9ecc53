import type { Command } from 'commander';
import { images, shortDigest } from '../../index.ts';
import { type Run, signalOf } from '../context.ts';
import { ago, humanSize, table } from '../format.ts';

export interface ImagesFlags {
  quiet?: boolean;
  format?: string;
  noTrunc?: boolean;
}

export function registerImages(program: Command, run: Run): void {
  program
    .command('images')
    .description('List images')
    .option('-q, --quiet', 'only show digests')
    .option('--no-trunc', "don't truncate output")
    .option('--format <format>', "'table' (default) or 'json'", 'table')
    .action((flags: ImagesFlags) =>
      run(async (ctx) => {
        const list = await images({ root: ctx.env.root, ...signalOf(ctx) });
        const digest = (d: string) => (flags.noTrunc ? d : shortDigest(d));
        if (flags.format === 'json') {
          for (const i of list) ctx.print(JSON.stringify(i));
          return;
        }
        if (flags.quiet) {
          for (const d of new Set(list.map((i) => digest(i.digest)))) ctx.print(d);
          return;
        }
        const now = Date.now();
        ctx.print(
          table(
            ['REPOSITORY', 'TAG', 'DIGEST', 'SIZE', 'CREATED'],
            list.map((i) => [i.repository, i.tag, digest(i.digest), humanSize(i.size), ago(i.created, now)]),
          ),
        );
      }),
    );
}
