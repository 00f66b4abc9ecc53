import type { Writable } from 'node:stream';
import type { Command } from 'commander';
import {
  DrayError,
  exportImage,
  familiarString,
  load,
  normalizeReference,
  save,
  unpack,
} from '../../index.ts';
import { type CliContext, type Run, signalOf } from '../context.ts';

export interface SaveFlags {
  output?: string;
  format?: string;
  platform?: string;
}

/** stdout, unless it is a terminal (docker: "cowardly refusing to save to a terminal"). */
function stdoutFor(ctx: CliContext, what: string): Writable {
  if (ctx.io.isTTY) {
    throw new DrayError('DRAY_INVALID_ARGUMENT', `cowardly refusing to write ${what} to a terminal`, {
      hint: 'use the -o flag or redirect',
    });
  }
  return ctx.io.stdout;
}

export function saveOptions(ctx: CliContext, flags: SaveFlags): Parameters<typeof save>[1] {
  const format = flags.format ?? 'docker';
  if (format !== 'docker' && format !== 'oci') {
    throw new DrayError('DRAY_INVALID_ARGUMENT', `invalid --format: ${JSON.stringify(format)}`, {
      hint: 'use docker or oci',
    });
  }
  return {
    root: ctx.env.root,
    format,
    output: flags.output && flags.output !== '-' ? flags.output : stdoutFor(ctx, 'an archive'),
    ...(flags.platform ? { platform: flags.platform } : {}),
    ...signalOf(ctx),
  };
}

export interface LoadFlags {
  input?: string;
  quiet?: boolean;
  tag?: string;
}

export interface ExportFlags {
  output?: string;
  platform?: string;
}

export function registerArchive(program: Command, run: Run): void {
  program
    .command('save')
    .description('Save images to a tar archive (docker or OCI format), streamed to stdout by default')
    .argument('<images...>', 'IMAGE')
    .option('-o, --output <file>', 'write to a file instead of stdout')
    .option('--format <format>', 'docker (default; also an OCI layout) or oci')
    .option('--platform <platform>', 'for multi-platform images: which platform (os/arch[/variant])')
    .action((names: string[], flags: SaveFlags) =>
      run(async (ctx) => {
        await save(names, saveOptions(ctx, flags));
      }),
    );
  program
    .command('load')
    .description('Load images from a tar archive (docker save or OCI), from stdin by default')
    .option('-i, --input <file>', 'read from a file instead of stdin')
    .option('-q, --quiet', 'suppress the load output')
    .option('-t, --tag <name>', 'from a multi-image archive, load only the image with this name')
    .action((flags: LoadFlags) =>
      run(async (ctx) => {
        const r = await load(flags.input ?? ctx.io.stdin, {
          root: ctx.env.root,
          ...(flags.tag ? { tag: flags.tag } : {}),
          ...signalOf(ctx),
        });
        if (flags.quiet) return;
        for (const n of r.names) ctx.print(`Loaded image: ${familiarString(normalizeReference(n))}`);
        if (r.names.length === 0) for (const d of r.images) ctx.print(`Loaded image ID: ${d.digest}`);
      }),
    );
  program
    .command('export')
    .description("Write an image's root filesystem as one tar, streamed to stdout by default")
    .argument('<image>', 'IMAGE')
    .option('-o, --output <file>', 'write to a file instead of stdout (- for stdout)')
    .option('--platform <platform>', "for multi-platform images: os/arch[/variant], or 'all'")
    .action((image: string, flags: ExportFlags) =>
      run(async (ctx) => {
        await exportImage(image, {
          root: ctx.env.root,
          output: flags.output && flags.output !== '-' ? flags.output : stdoutFor(ctx, 'a tar'),
          ...(flags.platform ? { platform: flags.platform } : {}),
          ...signalOf(ctx),
        });
      }),
    );
  program
    .command('unpack')
    .description("Unpack an image's root filesystem into a directory")
    .argument('<image>', 'IMAGE')
    .argument('<dir>', 'destination directory')
    .option('--platform <platform>', "for multi-platform images: os/arch[/variant], or 'all'")
    .action((image: string, dir: string, flags: { platform?: string }) =>
      run(async (ctx) => {
        await unpack(image, dir, {
          root: ctx.env.root,
          ...(flags.platform ? { platform: flags.platform } : {}),
          ...signalOf(ctx),
        });
      }),
    );
}
