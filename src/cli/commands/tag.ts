import type { Command } from 'commander';
import { familiarString, normalizeReference, removeImage, tag } from '../../index.ts';
import { type CliContext, type Run, signalOf } from '../context.ts';

/** Options of `dray tag` (the store; the names are positional). */
export function tagOptions(ctx: CliContext): Parameters<typeof tag>[2] {
  return { root: ctx.env.root, ...signalOf(ctx) };
}

/** Options of `dray rmi`. */
export function rmiOptions(ctx: CliContext): Parameters<typeof removeImage>[1] {
  return { root: ctx.env.root, ...signalOf(ctx) };
}

export function registerTag(program: Command, run: Run): void {
  program
    .command('tag')
    .description('Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE')
    .argument('<source>', 'SOURCE_IMAGE[:TAG]')
    .argument('<target>', 'TARGET_IMAGE[:TAG]')
    .action((source: string, target: string) =>
      run(async (ctx) => {
        await tag(source, target, tagOptions(ctx));
      }),
    );
  program
    .command('rmi')
    .description('Remove one or more images')
    .argument('<names...>', 'IMAGE (a name, or an image ID)')
    .option('-f, --force', 'remove an image given by ID with all its names')
    .action((names: string[], opts: { force?: boolean }) =>
      run(async (ctx) => {
        for (const name of names) {
          const r = await removeImage(name, { ...rmiOptions(ctx), ...(opts.force ? { force: true } : {}) });
          for (const u of r.untagged) ctx.print(`Untagged: ${u.startsWith('sha256:') ? u : familiar(u)}`);
          for (const d of r.deleted) ctx.print(`Deleted: ${d}`);
        }
      }),
    );
}

/** A stored name as docker prints it (`busybox:latest`, `localhost:5000/app:1`). */
function familiar(name: string): string {
  return familiarString(normalizeReference(name));
}
