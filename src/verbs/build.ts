import { readFile } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { type CacheExportSpec, type CacheImportSpec, parseCacheImportSpec } from '../cache/index.ts';
import { type Digest, digestOf } from '../digest/index.ts';
import { DrayError, throwIfAborted } from '../errors.ts';
import { dockerfileToGraph } from '../frontend/index.ts';
import { documentBytes } from '../image/index.ts';
import {
  type Descriptor,
  formatPlatform,
  type ImageConfig,
  normalizePlatform,
  type Platform,
  parsePlatform,
} from '../oci/index.ts';
import { oneOff, type RunOptions } from '../progress/index.ts';
import { normalizeReference, referenceString } from '../reference/index.ts';
import { readDockerignore, type Session } from '../solver/index.ts';
import { type OpenedImports, openCacheImports } from './cache.ts';
import { dockerLoadStream } from './docker-load.ts';
import { type Engine, type EngineOptions, openEngine } from './engine.ts';
import { type SolveExport, solve } from './solve.ts';

export interface BuildOptions extends RunOptions, Omit<EngineOptions, 'platform'> {
  /** The build context directory. */
  context: string;
  /** Path of the Dockerfile (default `<context>/Dockerfile`). */
  file?: string;
  /** The Dockerfile's text, instead of reading `file` (`-f -`). */
  dockerfileText?: string;
  /** Names for the image (`-t`). */
  tags?: string[];
  buildArgs?: Record<string, string>;
  target?: string;
  /** `os/arch[/variant]`; only the host's platform can be built for now. */
  platform?: string;
  noCache?: boolean;
  /** Always ask the registry for base images. */
  pull?: boolean;
  labels?: Record<string, string>;
  /** `--secret`: by id, a file or an environment variable. */
  secrets?: Record<string, { file: string } | { env: string }>;
  /** `--cache-from`: caches to import (see `parseCacheImportSpec`). */
  cacheFrom?: ReadonlyArray<CacheImportSpec | string>;
  /** `--cache-to`: caches to export (see `parseCacheExportSpec`). */
  cacheTo?: ReadonlyArray<CacheExportSpec | string>;
  /** Default network of RUN steps (`--network`). */
  network?: 'default' | 'none' | 'host';
  /** Where the image goes (`-o`); default: the image store, under `tags`. */
  output?: SolveExport;
  /** Push every tag after the build (`--push`). */
  push?: boolean;
  /** Hand the image to a Docker engine (`--load`): DOCKER_HOST, default the local socket. */
  load?: { host?: string };
  compression?: 'gzip' | 'zstd' | 'none';
  /** gzip 0–9, zstd 1–22. */
  compressionLevel?: number;
  sourceDateEpoch?: number;
}

export interface BuildResult {
  /** The image ID docker shows: the config's digest. */
  imageId: Digest;
  /** The manifest's descriptor. */
  descriptor: Descriptor;
  config: ImageConfig;
  /** Full names the image was stored (and pushed) under. */
  names: string[];
  /** The build's id in `dray history`. */
  buildId: string;
  /** Steps that ran / were cached. */
  steps: { ran: number; cached: number };
}

/**
 * Builds a Dockerfile as `docker build` does, on dray's engine: parse, convert to an op graph
 * (only the stages the target needs), solve with the persistent cache (every step that
 * misses says why, against the previous build of the same target), export. Does I/O.
 * Throws DRAY_DOCKERFILE (with the line), DRAY_EXEC_FAILED, DRAY_BUILD, DRAY_INVALID_ARGUMENT,
 * DRAY_ABORTED and the registry's errors.
 */
export async function build(o: BuildOptions): Promise<BuildResult> {
  throwIfAborted(o.signal, 'build');
  const context = resolve(o.context);
  const file = o.file ? resolve(o.file) : join(context, 'Dockerfile');
  const engineOptions: EngineOptions = {
    root: o.root,
    ...(o.registry ? { registry: o.registry } : {}),
    ...(o.snapshotter ? { snapshotter: o.snapshotter } : {}),
    ...(o.concurrency ? { concurrency: o.concurrency } : {}),
  };
  const engine = await openEngine(engineOptions);
  const platform = checkPlatform(o.platform, engine.platform);
  const ro: RunOptions = {
    ...(o.signal ? { signal: o.signal } : {}),
    ...(o.progress ? { progress: o.progress } : {}),
  };

  // Cache manifests are read while the Dockerfile is parsed and its base images resolved.
  const importing =
    o.cacheFrom?.length && !o.noCache
      ? openCacheImports(
          o.cacheFrom.map((s) => (typeof s === 'string' ? parseCacheImportSpec(s) : s)),
          engine,
          o.registry,
          ro,
        )
      : undefined;
  importing?.catch(() => {});
  try {
    return await buildWith(o, { engine, engineOptions, ro, context, file, platform, importing });
  } finally {
    await (await importing?.catch(() => undefined))?.dispose();
  }
}

interface BuildSetup {
  engine: Engine;
  engineOptions: EngineOptions;
  ro: RunOptions;
  context: string;
  file: string;
  platform: Platform;
  importing: Promise<OpenedImports> | undefined;
}

async function buildWith(o: BuildOptions, setup: BuildSetup): Promise<BuildResult> {
  const { engine, engineOptions, ro, context, file, platform, importing } = setup;
  const doneDef = oneOff(o.progress, `[internal] load build definition from ${basename(file)}`, {
    kind: 'vertex',
  });
  let text: string;
  try {
    text = o.dockerfileText ?? (await readFile(file, 'utf8'));
    doneDef(undefined);
  } catch (e) {
    doneDef(
      new DrayError(
        'DRAY_BUILD',
        `failed to read dockerfile: open ${basename(file)}: no such file or directory`,
        {
          cause: e,
          hint: 'pass the Dockerfile with -f, or run in a folder that has one',
        },
      ),
    );
    throw e;
  }
  const doneIgnore = oneOff(o.progress, '[internal] load .dockerignore', { kind: 'vertex' });
  const excludes = await dockerignore(context, file);
  doneIgnore(undefined);

  const graph = await dockerfileToGraph({
    dockerfile: text,
    dockerfileName: basename(file),
    ...(o.buildArgs ? { buildArgs: o.buildArgs } : {}),
    ...(o.target ? { target: o.target } : {}),
    targetPlatform: platform,
    buildPlatform: engine.platform,
    ...(o.labels ? { labels: o.labels } : {}),
    ...(o.noCache ? { noCache: true } : {}),
    ...(o.pull ? { pull: true } : {}),
    contextName: 'context',
    excludes,
    network: o.network ?? 'default',
    ...(o.sourceDateEpoch !== undefined ? { sourceDateEpoch: o.sourceDateEpoch } : {}),
    resolveImage: async (ref, r) => {
      const done = oneOff(o.progress, `[internal] load metadata for ${ref}`, { kind: 'vertex' });
      try {
        const img = await engine.resolver.resolve(
          { type: 'image', ref, resolveMode: r.pull ? 'pull' : 'default' },
          { platform: r.platform, ...(o.signal ? { signal: o.signal } : {}) },
        );
        done(undefined);
        return { ref: img.ref, digest: img.rootDigest ?? img.digest, config: img.config };
      } catch (e) {
        done(e as Error);
        throw e;
      }
    },
  });
  for (const w of graph.warnings)
    o.progress?.write({
      id: `warning:${w.line ?? ''}:${w.message}`,
      kind: 'message',
      message: `WARNING: ${w.message}${w.line !== undefined ? ` (line ${w.line})` : ''}`,
    });

  const meta = { context, dockerfile: file, target: o.target ?? '', name: basename(context) };
  const previous = await engine.solver.history.previous({
    context,
    dockerfile: file,
    target: o.target ?? '',
  });
  const session: Session = {
    dirs: { context },
    ...(o.secrets ? { secrets: o.secrets } : {}),
  };
  const names = o.tags ?? [];
  if (o.load && o.output)
    throw new DrayError('DRAY_INVALID_ARGUMENT', '--load and --output cannot be used together', {
      hint: '--load is --output type=docker sent to the Docker engine',
    });
  const loading = o.load ? dockerLoadStream(o.load.host) : undefined;
  loading?.done.catch(() => {}); // awaited below; a failed engine must not crash the process meanwhile
  const exporter: SolveExport = loading
    ? {
        type: 'docker',
        dest: { kind: 'stream', stream: loading.stream },
        names: names.map((n) => referenceString(normalizeReference(n))),
      }
    : (o.output ?? { type: 'image', names, ...(o.push ? { push: true } : {}) });
  if (exporter.type === 'image' && o.push) exporter.push = true;
  const r = await solve(graph.state, {
    ...engineOptions,
    ...ro,
    ...(o.noCache ? { noCache: true } : {}),
    ...(importing ? { cacheImports: (await importing).sources } : {}),
    ...(o.cacheTo?.length ? { cacheExports: o.cacheTo } : {}),
    ...(o.compression ? { compression: o.compression } : {}),
    ...(o.compressionLevel !== undefined ? { compressionLevel: o.compressionLevel } : {}),
    ...(graph.sourceDateEpoch !== undefined ? { sourceDateEpoch: graph.sourceDateEpoch } : {}),
    session,
    exporter,
    image: { config: graph.config, ...(graph.baseHistory ? { baseHistory: graph.baseHistory } : {}) },
    meta,
    ...(previous ? { previous } : {}),
  });
  if (loading) {
    loading.stream.end();
    const done = oneOff(o.progress, 'loading image into the Docker engine', { kind: 'vertex' });
    await loading.done.then(
      () => done(undefined),
      (e: Error) => done(e),
    );
  }
  if (!r.descriptor || !r.config) throw new DrayError('DRAY_INTERNAL', 'the build exported no image');
  let ran = 0;
  let cached = 0;
  for (const v of r.vertices.values()) {
    if (v.name === undefined) continue;
    if (v.cached === true) cached++;
    else if (v.cached === false) ran++;
  }
  return {
    imageId: digestOf(documentBytes(r.config)),
    descriptor: r.descriptor,
    config: r.config,
    names:
      exporter.type === 'image' || exporter.type === 'docker'
        ? (exporter.names ?? []).map((n) => referenceString(normalizeReference(n)))
        : [],
    buildId: r.buildId,
    steps: { ran, cached },
  };
}

function checkPlatform(requested: string | undefined, host: ReturnType<typeof parsePlatform>) {
  if (!requested) return host;
  const p = normalizePlatform(parsePlatform(requested));
  const h = normalizePlatform(host);
  if (p.os !== h.os || p.architecture !== h.architecture || (p.variant ?? '') !== (h.variant ?? ''))
    throw new DrayError(
      'DRAY_INVALID_ARGUMENT',
      `cannot build for ${formatPlatform(p)} on ${formatPlatform(h)}`,
      {
        hint: `dray builds for the host platform only (${formatPlatform(h)}); leave out --platform`,
      },
    );
  return h;
}

/** BuildKit's lookup: `<Dockerfile>.dockerignore` beside the Dockerfile wins over `<context>/.dockerignore`. */
async function dockerignore(context: string, dockerfile: string): Promise<string[]> {
  for (const p of [
    join(dirname(dockerfile), `${basename(dockerfile)}.dockerignore`),
    join(context, '.dockerignore'),
  ]) {
    try {
      return readDockerignore(await readFile(p, 'utf8'));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    }
  }
  return [];
}
