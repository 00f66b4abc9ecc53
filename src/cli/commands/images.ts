import type { Command } from 'commander';
import { type ImageSummary, images, shortDigest } from '../../index.ts';
import { type CliContext, type Run, signalOf } from '../context.ts';
import { ago, humanSize, table } from '../format.ts';

export interface ImagesFlags {
  quiet?: boolean;
  format?: string;
  /** commander turns `--no-trunc` into `trunc: false` (default true). */
  trunc?: boolean;
}

export function imagesOptions(
  ctx: CliContext,
  _flags: ImagesFlags,
  reference?: string,
): Parameters<typeof images>[0] {
  return { root: ctx.env.root, ...signalOf(ctx), ...(reference !== undefined ? { reference } : {}) };
}

/** The lines `dray images` prints for `list` (table, `-q` digests or `--format json`). */
export function renderImages(list: ImageSummary[], flags: ImagesFlags, now = Date.now()): string[] {
  const digest = (d: string) => (flags.trunc === false ? d : shortDigest(d));
  if (flags.format === 'json') return list.map((i) => JSON.stringify(i));
  if (flags.quiet) return [...new Set(list.map((i) => digest(i.digest)))];
  return [
    table(
      ['REPOSITORY', 'TAG', 'DIGEST', 'SIZE', 'CREATED'],
      list.map((i) => [i.repository, i.tag, digest(i.digest), humanSize(i.size), ago(i.created, now)]),
    ),
  ];
}

export function registerImages(program: Command, run: Run): void {
  program
    .command('images')
    .description('List images')
    .argument('[reference]', 'only images matching REPOSITORY[:TAG] (shell patterns: *, ?, [...])')
    .option('-q, --quiet', 'only show digests')
    .option('--no-trunc', "don't truncate output")
    .option('--format <format>', "'table' (default) or 'json'", 'table')
    .action((reference: string | undefined, flags: ImagesFlags) =>
      run(async (ctx) => {
        const list = await images(imagesOptions(ctx, flags, reference));
        for (const line of renderImages(list, flags)) ctx.print(line);
      }),
    );
}
