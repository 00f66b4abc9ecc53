import type { Command } from 'commander';
import { DrayError, mutate } from '../../index.ts';
import { type CliContext, type Run, signalOf } from '../context.ts';

export interface MutateFlags {
  env?: string[];
  cmd?: string;
  entrypoint?: string;
  workdir?: string;
  user?: string;
  label?: string[];
  tag?: string;
}

/** `["a","b"]` (JSON, as in a Dockerfile's exec form) or `a,b` (crane's comma list). */
export function parseArgList(flag: string, v: string): string[] {
  if (v.trimStart().startsWith('[')) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(v);
    } catch {
      parsed = undefined;
    }
    if (!Array.isArray(parsed) || !parsed.every((x) => typeof x === 'string')) {
      throw new DrayError('DRAY_INVALID_ARGUMENT', `${flag}: not a JSON array of strings: ${v}`, {
        hint: `e.g. ${flag} '["/bin/sh","-c","echo hi"]' or ${flag} /bin/app,--flag`,
      });
    }
    return parsed;
  }
  return v === '' ? [] : v.split(',');
}

function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

export function mutateOptions(
  ctx: CliContext,
  flags: MutateFlags,
): { changes: Parameters<typeof mutate>[1]; options: Parameters<typeof mutate>[2] } {
  const labels: Record<string, string> = {};
  for (const l of flags.label ?? []) {
    const i = l.indexOf('=');
    if (i <= 0)
      throw new DrayError('DRAY_INVALID_ARGUMENT', `--label: expected KEY=VALUE, got ${JSON.stringify(l)}`);
    labels[l.slice(0, i)] = l.slice(i + 1);
  }
  for (const e of flags.env ?? []) {
    if (e.startsWith('=') || e === '')
      throw new DrayError('DRAY_INVALID_ARGUMENT', `--env: expected KEY=VALUE, got ${JSON.stringify(e)}`);
  }
  return {
    changes: {
      ...(flags.env ? { env: flags.env } : {}),
      ...(flags.cmd !== undefined ? { cmd: parseArgList('--cmd', flags.cmd) } : {}),
      ...(flags.entrypoint !== undefined
        ? { entrypoint: parseArgList('--entrypoint', flags.entrypoint) }
        : {}),
      ...(flags.workdir !== undefined ? { workdir: flags.workdir } : {}),
      ...(flags.user !== undefined ? { user: flags.user } : {}),
      ...(flags.label ? { labels } : {}),
    },
    options: { root: ctx.env.root, ...(flags.tag ? { tag: flags.tag } : {}), ...signalOf(ctx) },
  };
}

export function registerMutate(program: Command, run: Run): void {
  program
    .command('mutate')
    .description('Make a new image with a changed config (env, cmd, entrypoint, workdir, user, labels)')
    .argument('<image>', 'IMAGE')
    .option('--env <KEY=VALUE>', 'set an environment variable (repeatable)', collect)
    .option('--cmd <args>', 'new Cmd: JSON array or comma-separated list')
    .option(
      '--entrypoint <args>',
      'new Entrypoint: JSON array or comma-separated list (clears the inherited Cmd)',
    )
    .option('--workdir <dir>', 'new working directory')
    .option('--user <user>', 'new user')
    .option('--label <KEY=VALUE>', 'add a label (repeatable)', collect)
    .option('-t, --tag <name>', 'name of the new image (default: replace IMAGE)')
    .action((image: string, flags: MutateFlags) =>
      run(async (ctx) => {
        const { changes, options } = mutateOptions(ctx, flags);
        const r = await mutate(image, changes, options);
        ctx.print(r.descriptor.digest);
      }),
    );
}
