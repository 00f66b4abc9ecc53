import { writeFile } from 'node:fs/promises';
import type { Command } from 'commander';
import {
  type BuildOptions,
  build,
  DrayError,
  parseCacheExportSpec,
  parseCacheImportSpec,
  type SolveExport,
} from '../../index.ts';
import { type CliContext, type ProgressMode, type Run, signalOf } from '../context.ts';

export interface BuildFlags {
  file?: string;
  tag?: string[];
  buildArg?: string[];
  target?: string;
  platform?: string;
  cache?: boolean;
  pull?: boolean;
  label?: string[];
  secret?: string[];
  cacheFrom?: string[];
  cacheTo?: string[];
  network?: string;
  output?: string[];
  push?: boolean;
  load?: boolean;
  progress: ProgressMode;
  iidfile?: string;
  metadataFile?: string;
  quiet?: boolean;
}

function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

/** `a=b,c=d` as buildx reads `--output` and `--secret` (values may be quoted with "). */
export function parseCsvPairs(spec: string, flag: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const raw of spec.match(/("[^"]*"|[^,])+/g) ?? []) {
    // CSV fields as buildx reads them: a quoted field may hold commas (`"name=a,b"`).
    const part = raw.replace(/"/g, '');
    const i = part.indexOf('=');
    if (i <= 0)
      throw new DrayError(
        'DRAY_INVALID_ARGUMENT',
        `invalid ${flag} value ${JSON.stringify(spec)}: ${JSON.stringify(part)} is not key=value`,
      );
    out.set(part.slice(0, i).trim().toLowerCase(), part.slice(i + 1));
  }
  return out;
}

function keyValues(
  list: string[] | undefined,
  flag: string,
  env?: NodeJS.ProcessEnv,
): Record<string, string> {
  const out: Record<string, string> = {};
  for (const kv of list ?? []) {
    const i = kv.indexOf('=');
    if (i === 0)
      throw new DrayError('DRAY_INVALID_ARGUMENT', `invalid ${flag} ${JSON.stringify(kv)}`, {
        hint: 'use KEY=VALUE',
      });
    if (i < 0) {
      // docker: `--build-arg NAME` takes the value from the environment (and is left out when unset).
      const v = env?.[kv];
      if (env && v !== undefined) out[kv] = v;
      else if (!env)
        throw new DrayError('DRAY_INVALID_ARGUMENT', `invalid ${flag} ${JSON.stringify(kv)}`, {
          hint: 'use KEY=VALUE',
        });
      continue;
    }
    out[kv.slice(0, i)] = kv.slice(i + 1);
  }
  return out;
}

const bool = (v: string | undefined): boolean => v === undefined || v === '' || v === 'true' || v === '1';

/** `-o/--output` as buildx parses it: `type=…[,dest=…][,name=…][,push=true]…`, `-` (tar to stdout) or a directory. */
export function parseOutput(
  ctx: CliContext,
  spec: string,
): { export: SolveExport; compression?: 'gzip' | 'zstd' | 'none'; level?: number } {
  if (spec === '-') return { export: { type: 'tar', dest: { kind: 'stream', stream: stdoutFor(ctx) } } };
  if (!spec.includes('=')) return { export: { type: 'local', dest: spec } };
  const f = parseCsvPairs(spec, '--output');
  const type = f.get('type') ?? 'local';
  const dest = f.get('dest');
  const names = (f.get('name') ?? f.get('names') ?? '').split(/[,\s]+/).filter(Boolean);
  const compression = f.get('compression');
  if (compression !== undefined && !['gzip', 'zstd', 'uncompressed'].includes(compression))
    throw new DrayError('DRAY_INVALID_ARGUMENT', `invalid compression ${JSON.stringify(compression)}`, {
      hint: 'use gzip, zstd or uncompressed',
    });
  const levelText = f.get('compression-level');
  const level = levelText === undefined ? undefined : Number(levelText);
  if (level !== undefined && (!Number.isInteger(level) || level < 0 || level > 22))
    throw new DrayError('DRAY_INVALID_ARGUMENT', `invalid compression-level ${JSON.stringify(levelText)}`);
  const extra = {
    ...(compression
      ? { compression: compression === 'uncompressed' ? ('none' as const) : (compression as 'gzip' | 'zstd') }
      : {}),
    ...(level !== undefined ? { level } : {}),
  };
  const archiveDest = () =>
    dest === undefined || dest === '-'
      ? { kind: 'stream' as const, stream: stdoutFor(ctx) }
      : { kind: 'file' as const, path: dest };
  switch (type) {
    case 'image':
    case 'registry':
      return {
        export: { type: 'image', names, push: type === 'registry' || bool(f.get('push') ?? 'false') },
        ...extra,
      };
    case 'oci':
      return { export: { type: 'oci', dest: archiveDest(), ...(names.length ? { names } : {}) }, ...extra };
    case 'docker':
      return { export: { type: 'docker', dest: archiveDest(), names }, ...extra };
    case 'tar':
      return { export: { type: 'tar', dest: archiveDest() }, ...extra };
    case 'local':
      if (!dest) throw new DrayError('DRAY_INVALID_ARGUMENT', 'the local exporter needs dest=DIR');
      return { export: { type: 'local', dest }, ...extra };
    default:
      throw new DrayError('DRAY_INVALID_ARGUMENT', `unsupported output type ${JSON.stringify(type)}`, {
        hint: 'use image, registry, oci, docker, tar or local',
      });
  }
}

function stdoutFor(ctx: CliContext): NodeJS.WritableStream & import('node:stream').Writable {
  if (ctx.io.isTTY)
    throw new DrayError('DRAY_INVALID_ARGUMENT', 'refusing to write an archive to a terminal', {
      hint: 'redirect stdout or give dest=FILE',
    });
  return ctx.io.stdout;
}

/** `--secret id=x,src=FILE` / `id=x,env=VAR` (docker's `type=file|env` too). */
export function parseSecret(spec: string): [string, { file: string } | { env: string }] {
  const f = parseCsvPairs(spec, '--secret');
  const id = f.get('id');
  const src = f.get('src') ?? f.get('source');
  const env = f.get('env');
  const type = f.get('type');
  if (!id)
    throw new DrayError('DRAY_INVALID_ARGUMENT', `invalid --secret ${JSON.stringify(spec)}: id is required`);
  if (type === 'env' || (env && !src)) return [id, { env: env ?? src ?? id }];
  if (src) return [id, { file: src }];
  // buildx: with neither, the env var named like the id if set, else ~/.docker-style file is not guessed.
  return [id, { env: id }];
}

/** The verb's options from the flags (tested on their own). */
export function buildOptions(ctx: CliContext, context: string, flags: BuildFlags): BuildOptions {
  const network = flags.network ?? 'default';
  if (!['default', 'none', 'host'].includes(network))
    throw new DrayError('DRAY_INVALID_ARGUMENT', `network mode ${JSON.stringify(network)} not supported`, {
      hint: 'use default, none or host',
    });
  const outputs = (flags.output ?? []).map((o) => parseOutput(ctx, o));
  if (outputs.length > 1) throw new DrayError('DRAY_INVALID_ARGUMENT', 'only one --output is supported');
  const out = outputs[0];
  const secrets = Object.fromEntries((flags.secret ?? []).map(parseSecret));
  return {
    root: ctx.env.root,
    registry: ctx.registry(),
    context,
    ...(flags.file && flags.file !== '-' ? { file: flags.file } : {}),
    ...(flags.tag ? { tags: flags.tag } : {}),
    buildArgs: keyValues(flags.buildArg, '--build-arg', ctx.io.env),
    ...(flags.target ? { target: flags.target } : {}),
    ...(flags.platform ? { platform: flags.platform } : {}),
    ...(flags.cache === false ? { noCache: true } : {}),
    ...(flags.pull ? { pull: true } : {}),
    labels: keyValues(flags.label, '--label'),
    ...(Object.keys(secrets).length ? { secrets } : {}),
    ...(flags.cacheFrom?.length ? { cacheFrom: flags.cacheFrom.map(parseCacheImportSpec) } : {}),
    ...(flags.cacheTo?.length ? { cacheTo: flags.cacheTo.map(parseCacheExportSpec) } : {}),
    network: network as 'default' | 'none' | 'host',
    ...(out ? { output: out.export } : {}),
    ...(out?.compression ? { compression: out.compression } : {}),
    ...(out?.level !== undefined ? { compressionLevel: out.level } : {}),
    ...(flags.push ? { push: true } : {}),
    ...(flags.load ? { load: ctx.io.env.DOCKER_HOST ? { host: ctx.io.env.DOCKER_HOST } : {} } : {}),
    ...(ctx.io.env.SOURCE_DATE_EPOCH ? { sourceDateEpoch: Number(ctx.io.env.SOURCE_DATE_EPOCH) } : {}),
    ...signalOf(ctx),
  };
}

async function readStdin(ctx: CliContext): Promise<string> {
  let text = '';
  for await (const c of ctx.io.stdin) text += c.toString();
  return text;
}

export function registerBuild(program: Command, run: Run): void {
  program
    .command('build')
    .description('Build an image from a Dockerfile')
    .argument('[context]', 'PATH of the build context', '.')
    .option('-f, --file <path>', "name of the Dockerfile (default: 'PATH/Dockerfile'; '-' reads stdin)")
    .option('-t, --tag <name>', 'name and optionally a tag (format: "name:tag"), repeatable', collect)
    .option(
      '--build-arg <arg>',
      'set a build-time variable (KEY=VALUE, or KEY from the environment), repeatable',
      collect,
    )
    .option('--target <stage>', 'set the target build stage to build')
    .option('--platform <platform>', 'set the target platform for the build (the host platform only)')
    .option('--no-cache', 'do not use cache when building the image')
    .option('--pull', 'always attempt to pull all referenced images')
    .option('--label <label>', 'set metadata for an image (KEY=VALUE), repeatable', collect)
    .option(
      '--secret <spec>',
      'secret to expose to the build (id=mysecret[,src=/local/secret|env=VAR]), repeatable',
      collect,
    )
    .option(
      '--cache-from <spec>',
      'external cache source (type=registry,ref=R | type=local,src=DIR | an image reference), repeatable',
      collect,
    )
    .option(
      '--cache-to <spec>',
      'cache export destination (type=registry,ref=R | type=local,dest=DIR | type=inline; [,mode=min|max][,mounts=true]…), repeatable',
      collect,
    )
    .option('--network <mode>', 'networking mode for the RUN instructions during build (default, none, host)')
    .option(
      '-o, --output <spec>',
      'output destination (type=image|registry|oci|docker|tar|local[,dest=…][,name=…][,push=true][,compression=…])',
      collect,
    )
    .option('--push', 'shorthand for --output=type=registry')
    .option('--load', 'shorthand for --output=type=docker, sent to the Docker engine at DOCKER_HOST')
    .option('--progress <mode>', 'progress output: auto, tty, plain, rawjson, quiet', 'auto')
    .option('--iidfile <file>', 'write the image ID to the file')
    .option('--metadata-file <file>', 'write build result metadata to the file')
    .option('-q, --quiet', 'suppress the build output and print image ID on success')
    .action((context: string, flags: BuildFlags) =>
      run(async (ctx) => {
        const o = buildOptions(ctx, context, flags);
        if (flags.file === '-') o.dockerfileText = await readStdin(ctx);
        const progress = ctx.progress(flags.progress, flags.quiet, ctx.io.stderr);
        let r: Awaited<ReturnType<typeof build>>;
        try {
          r = await build({ ...o, progress });
        } finally {
          progress.close();
        }
        if (flags.iidfile) await writeFile(flags.iidfile, r.imageId);
        if (flags.metadataFile)
          await writeFile(
            flags.metadataFile,
            `${JSON.stringify(
              {
                'containerimage.config.digest': r.imageId,
                'containerimage.digest': r.descriptor.digest,
                'containerimage.descriptor': r.descriptor,
                ...(r.names.length ? { 'image.name': r.names.join(',') } : {}),
                'buildx.build.ref': r.buildId,
              },
              null,
              2,
            )}\n`,
          );
        if (flags.quiet) ctx.print(r.imageId);
      }),
    );
}
