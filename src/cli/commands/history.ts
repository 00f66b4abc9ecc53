import type { Command } from 'commander';
import { DrayError, history, historyLogs, historyRecord, pruneHistory } from '../../index.ts';
import type { Run } from '../context.ts';
import { ago, table } from '../format.ts';

function seconds(ms: number | undefined): string {
  return ms === undefined ? '' : `${(ms / 1000).toFixed(1)}s`;
}

function duration(text: string): number {
  const m = /^(\d+(?:\.\d+)?)(s|m|h|d)$/.exec(text);
  if (!m)
    throw new DrayError('DRAY_INVALID_ARGUMENT', `invalid duration ${JSON.stringify(text)}`, {
      hint: 'use e.g. 48h, 7d',
    });
  return Number(m[1]) * { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[m[2] as 's' | 'm' | 'h' | 'd'];
}

function bytes(text: string): number {
  const m = /^(\d+(?:\.\d+)?)([kmg]?)b?$/i.exec(text);
  if (!m)
    throw new DrayError('DRAY_INVALID_ARGUMENT', `invalid size ${JSON.stringify(text)}`, {
      hint: 'use e.g. 500MB, 2GB',
    });
  return Math.round(
    Number(m[1]) *
      { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 }[(m[2] ?? '').toLowerCase() as '' | 'k' | 'm' | 'g'],
  );
}

export function registerHistory(program: Command, run: Run): void {
  const cmd = program
    .command('history')
    .description('List builds recorded in the build history')
    .option('-q, --quiet', 'only show build IDs')
    .action((o: { quiet?: boolean }) =>
      run(async (ctx) => {
        const builds = await history({ root: ctx.env.root });
        if (o.quiet) {
          for (const b of builds) ctx.print(b.id);
          return;
        }
        ctx.print(
          table(
            ['BUILD ID', 'NAME', 'STATUS', 'CREATED AT', 'DURATION', 'STEPS'],
            builds.map((b) => [
              b.id,
              b.name,
              b.status[0]?.toUpperCase() + b.status.slice(1),
              ago(new Date(b.started).toISOString()),
              seconds(b.duration),
              `${b.steps} (${b.cached} cached)`,
            ]),
          ).trimEnd(),
        );
      }),
    );
  cmd
    .command('logs')
    .description("Print a build's logs, whole (a step's, by number or name, or every step's)")
    .argument('<id>', 'BUILD ID (or a unique prefix)')
    .argument('[step]', 'step number (#N) or part of its name')
    .action((id: string, step: string | undefined) =>
      run(async (ctx) => {
        const logs = await historyLogs(id, step, { root: ctx.env.root });
        for await (const c of logs) ctx.io.stdout.write(c);
      }),
    );
  cmd
    .command('inspect')
    .description("Print a build's record: every step, its cache key inputs, timing and outcome (JSON)")
    .argument('<id>', 'BUILD ID (or a unique prefix)')
    .action((id: string) =>
      run(async (ctx) => {
        ctx.print(JSON.stringify(await historyRecord(id, { root: ctx.env.root }), null, 2));
      }),
    );
  cmd
    .command('prune')
    .description('Remove old builds from the history')
    .option('--keep-duration <d>', 'remove builds older than this (e.g. 48h, 7d)')
    .option('--keep-storage <size>', 'then remove the oldest until the history fits (e.g. 500MB)')
    .action((o: { keepDuration?: string; keepStorage?: string }) =>
      run(async (ctx) => {
        const r = await pruneHistory({
          root: ctx.env.root,
          ...(o.keepDuration ? { maxAgeMs: duration(o.keepDuration) } : {}),
          ...(o.keepStorage ? { maxBytes: bytes(o.keepStorage) } : {}),
        });
        ctx.print(`Removed ${r.removed} builds, ${r.bytes} bytes`);
      }),
    );
}
