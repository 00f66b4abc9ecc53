/**
 * Dockerfile → op graph + image config, following BuildKit's dockerfile2llb step by step:
 * parse and group stages, expand global ARGs and FROM lines, resolve only the base images
 * the target needs (in parallel), run ONBUILD triggers, then dispatch every needed stage's
 * instructions in order, and finish the target's config (labels, platform).
 */
import type { Digest } from '../../../digest/index.ts';
import { DrayError } from '../../../errors.ts';
import type { HistoryEntry, ImageConfig, Platform } from '../../../oci/index.ts';
import { normalizePlatform, parsePlatform } from '../../../oci/index.ts';
import { normalizeReference, parseReference, referenceString, withDigest } from '../../../reference/index.ts';
import { image, local, type State, scratch } from '../../../solver/index.ts';
import {
  type ArgCommand,
  type Command,
  type Location,
  parseCommand,
  parseStages,
  type Stage,
} from '../instructions/index.ts';
import {
  dockerfileError,
  errorLocations,
  parseDockerfile,
  suggestName,
  withSuggestion,
} from '../parser/index.ts';
import { goQuote } from '../shell/gotext.ts';
import { emptyEnv, envsFromList, ShellLex } from '../shell/index.ts';
import { dispatchInstruction, dispatchWorkdir } from './dispatch.ts';
import { EnvList } from './env-list.ts';
import {
  cloneImage,
  defaultPathEnv,
  emptyImage,
  imageFromConfig,
  imagePlatform,
  imageToConfig,
  parseKeyValue,
} from './image.ts';
import { type DockerfileWarning, Linter, parseLintOptions } from './lint.ts';
import {
  type CommandEntry,
  type DispatchContext,
  type DispatchState,
  locatedError,
  newDispatchState,
  prefixCommand,
} from './state.ts';
import { defaultArgs, formatPlatformAll } from './support.ts';

/** What the build verb passes to {@link dockerfileToGraph}. */
export interface DockerfileToGraphOptions {
  /** The Dockerfile text (bytes are read as UTF-8). */
  dockerfile: string | Uint8Array;
  /** For messages; default `Dockerfile`. */
  dockerfileName?: string;
  /** `--build-arg` values (a name given without a value is resolved from the environment by the CLI). */
  buildArgs?: Readonly<Record<string, string>>;
  /** `--target`; default the last stage. */
  target?: string;
  targetPlatform: Platform;
  buildPlatform: Platform;
  /** `--label`: set on the final image config. */
  labels?: Readonly<Record<string, string>>;
  /** Rebuild RUN/COPY/ADD steps even when cached (BuildKit marks them ignore-cache). */
  noCache?: boolean;
  /** Resolve FROM images with the registry, not the local store first (`resolveMode: 'pull'`). */
  pull?: boolean;
  /** The session's name of the build context directory; default `context`. */
  contextName?: string;
  /** .dockerignore patterns of the context. */
  excludes?: readonly string[];
  /**
   * Network of RUN steps without `--network` (`RUN --network` overrides). dray's executor has
   * only `none` and `host`; `default` is `host`, which is what BuildKit's default network
   * amounts to without CNI (rootless buildkitd): steps can reach the network.
   */
  network?: 'default' | 'none' | 'host';
  /** A FROM image's metadata (BuildKit's ResolveImageConfig): normalised ref, manifest digest, config. */
  resolveImage(
    ref: string,
    o: { platform: Platform; pull: boolean; signal?: AbortSignal },
  ): Promise<{ ref: string; digest: string; config: ImageConfig }>;
  /** SOURCE_DATE_EPOCH in seconds; the same as `--build-arg SOURCE_DATE_EPOCH=…`. */
  sourceDateEpoch?: number;
  signal?: AbortSignal;
}

/** What {@link dockerfileToGraph} returns. */
export interface DockerfileGraph {
  /** The target stage's filesystem. */
  state: State;
  /** The final image config (no `created`, rootfs as inherited: the exporter fills them). */
  config: ImageConfig;
  /** The base image's history (for SOURCE_DATE_EPOCH handling); absent for `FROM scratch`. */
  baseHistory?: HistoryEntry[];
  warnings: DockerfileWarning[];
  /** The stages built (names, or indexes of unnamed stages), in Dockerfile order. */
  stages: string[];
  /** SOURCE_DATE_EPOCH in effect (from the option, a build arg or a global ARG default), seconds. */
  sourceDateEpoch?: number;
}

const emptyImageName = 'scratch';
const commonImageNames = ['alpine', 'busybox', 'centos', 'debian', 'golang', 'ubuntu', 'fedora'].flatMap(
  (n) => [n, `docker.io/library${n}`, `${n}:latest`, `docker.io/library${n}:latest`],
);

/** All states, in the order they were added, and the named ones (BuildKit's `dispatchStates`). */
class DispatchStates {
  readonly states: DispatchState[] = [];
  readonly #byName = new Map<string, DispatchState>();

  names(): string[] {
    return this.states.filter((s) => s.stageName !== '').map((s) => s.stageName);
  }

  add(ds: DispatchState): void {
    this.states.push(ds);
    const base = this.#byName.get(ds.stage.baseName);
    if (base) ds.base = base;
    if (ds.stage.name !== '') this.#byName.set(ds.stage.name.toLowerCase(), ds);
  }

  byName(name: string): DispatchState | undefined {
    return this.#byName.get(name.toLowerCase());
  }

  byIndex(index: number): DispatchState {
    const s = index >= 0 ? this.states[index] : undefined;
    if (!s) throw new Error(`invalid stage index ${index}`);
    return s;
  }
}

function newState(): DispatchState['st'] {
  return { fs: scratch, env: new EnvList(), dir: '', user: '' };
}

function stageStub(baseName: string, location: Location): Stage {
  return {
    kind: 'stage',
    name: '',
    commands: [],
    origCmd: '',
    baseName,
    platform: '',
    docComment: '',
    sourceCode: '',
    location,
    comments: [],
  };
}

function unregisteredState(baseName: string, location: Location): DispatchState {
  const ds = newDispatchState(
    stageStub(baseName, location),
    emptyImage({ architecture: '', os: '' }),
    newState(),
  );
  ds.unregistered = true;
  return ds;
}

// The message of any error (DrayError or not).
function messageOf(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

// Locates a plain or unlocated error at `loc`, keeping located Dockerfile errors as they are.
function located(e: unknown, loc: Location): unknown {
  if (e instanceof DrayError) {
    if (e.code !== 'DRAY_DOCKERFILE' || errorLocations(e)) return e;
    return locatedError(e.message, loc, e);
  }
  if (e instanceof Error) return locatedError(e.message, loc, e);
  return e;
}

function reachableStages(s: DispatchState, out = new Set<DispatchState>()): Set<DispatchState> {
  if (out.has(s)) return out;
  out.add(s);
  if (s.base) reachableStages(s.base, out);
  for (const d of s.deps.keys()) reachableStages(d, out);
  return out;
}

/** Go's `strconv.Atoi` (int64). */
function atoi(s: string): number | undefined {
  if (!/^[+-]?[0-9]+$/.test(s)) return undefined;
  const n = BigInt(s);
  if (n > 9223372036854775807n || n < -9223372036854775808n) return undefined;
  return Number(n);
}

/** Resolves the sources a command reads from: COPY --from and RUN --mount from= (upstream `toCommand`). */
function toCommand(ic: Command, all: DispatchStates, shlex: ShellLex): CommandEntry {
  const entry: CommandEntry = { command: ic, sources: [], isOnBuild: false };
  if (ic.kind === 'copy' && ic.from !== '') {
    const res = shlex.processWordWithMatches(ic.from, emptyEnv);
    if (res.result !== ic.from)
      throw locatedError(
        'variable expansion is not supported for --from, define a new stage with FROM using ARG from global scope as a workaround',
        ic.location,
      );
    const index = atoi(ic.from);
    let stn: DispatchState | undefined;
    if (index === undefined) stn = all.byName(ic.from) ?? unregisteredState(ic.from, ic.location);
    else {
      try {
        stn = all.byIndex(index);
      } catch (e) {
        throw located(e, ic.location);
      }
    }
    entry.sources = [stn];
  }
  if (ic.kind === 'run') {
    entry.sources = ic.mounts.map((m) => {
      const from = m.from === '' ? emptyImageName : m.from;
      return all.byName(from) ?? unregisteredState(from, ic.location);
    });
  }
  return entry;
}

// Which argument keys exist for the "undefined ARG in FROM" check.
function fromArgKeys(globalArgs: EnvList, metaArgs: readonly ArgCommand[]): string[] {
  const keys = new Set<string>();
  for (const c of metaArgs) for (const a of c.args) keys.add(a.key);
  for (const k of globalArgs.keys()) keys.add(k);
  return [...keys];
}

/**
 * The global ARGs (before the first FROM) on top of the predefined ones: a build arg wins,
 * else the default expanded against what is defined so far (upstream `buildMetaArgs`).
 */
function buildMetaArgs(
  args: EnvList,
  shlex: ShellLex,
  metaArgs: readonly ArgCommand[],
  buildArgs: Readonly<Record<string, string>>,
): EnvList {
  let out = args;
  for (const cmd of metaArgs) {
    for (const kp of cmd.args) {
      let value: string | undefined;
      if (Object.hasOwn(buildArgs, kp.key)) value = buildArgs[kp.key];
      else if (kp.value !== undefined) {
        try {
          value = shlex.processWord(kp.value, out);
        } catch (e) {
          throw located(e, cmd.location);
        }
      }
      if (value !== undefined) out = out.set(kp.key, value);
    }
  }
  return out;
}

// Go's time.Time JSON form of an epoch in seconds.
function epochTime(seconds: number): string {
  return new Date(seconds * 1000).toISOString().replace('.000Z', 'Z');
}

/**
 * SOURCE_DATE_EPOCH from the build args or a global ARG default (upstream
 * `getBuildArgValue` + `resolveSourceDateEpochValue`): a number of seconds; `context` (a
 * local context has no date) means none; other values would need a source's metadata.
 */
function resolveEpoch(
  buildArgs: Record<string, string>,
  globalArgs: EnvList,
  stages: readonly Stage[],
): { epoch: number | undefined; globalArgs: EnvList } {
  const key = 'SOURCE_DATE_EPOCH';
  let v: string | undefined;
  if (Object.hasOwn(buildArgs, key)) v = buildArgs[key];
  else {
    const g = globalArgs.get(key);
    if (g !== undefined && g !== '') v = g;
  }
  if (v === undefined) return { epoch: undefined, globalArgs };
  let epoch: number | undefined;
  if (v !== '') {
    if (/^[+-]?[0-9]+$/.test(v)) epoch = Number.parseInt(v, 10);
    else if (v !== 'context') {
      if (stages.some((s) => s.name.toLowerCase() === v!.toLowerCase()))
        throw new DrayError(
          'DRAY_DOCKERFILE',
          `SOURCE_DATE_EPOCH from stage ${v} is not supported by dray yet`,
          {
            hint: 'pass SOURCE_DATE_EPOCH as a number of seconds',
          },
        );
      throw new DrayError('DRAY_DOCKERFILE', `invalid SOURCE_DATE_EPOCH: ${v}`, {
        hint: 'SOURCE_DATE_EPOCH is a number of seconds since 1970',
      });
    }
  }
  const formatted = epoch === undefined ? '' : String(epoch);
  if (Object.hasOwn(buildArgs, key)) {
    if (formatted === '') delete buildArgs[key];
    else buildArgs[key] = formatted;
  }
  let g = globalArgs;
  if (g.has(key)) g = formatted === '' ? g.delete(key) : g.set(key, formatted);
  return { epoch, globalArgs: g };
}

/** HTTP_PROXY & co. from build args (any case), as the executor adds them to every RUN (upstream `proxyEnvFromBuildArgs`). */
function proxyEnvFromBuildArgs(args: Readonly<Record<string, string>>): string[] {
  const found: Record<string, string> = {};
  for (const k of Object.keys(args).sort()) {
    const lower = k.toLowerCase();
    if (['http_proxy', 'https_proxy', 'ftp_proxy', 'no_proxy', 'all_proxy'].includes(lower))
      found[lower] = args[k]!;
  }
  const out: string[] = [];
  for (const k of ['http_proxy', 'https_proxy', 'ftp_proxy', 'no_proxy', 'all_proxy']) {
    const v = found[k];
    if (v) out.push(`${k.toUpperCase()}=${v}`, `${k}=${v}`);
  }
  return out;
}

/**
 * Converts a Dockerfile into the op graph of its target stage and the image config BuildKit
 * would produce, with BuildKit's semantics (dockerfile2llb): only the stages the target
 * needs are converted and only their base images resolved. Does I/O only through
 * `resolveImage`. Throws DRAY_DOCKERFILE with BuildKit's wording and the Dockerfile lines
 * (read them with `errorLocations`), DRAY_BUILD when `--target` names no stage, the
 * resolver's errors for FROM images, DRAY_ABORTED.
 */
export async function dockerfileToGraph(o: DockerfileToGraphOptions): Promise<DockerfileGraph> {
  o.signal?.throwIfAborted();
  const dt = o.dockerfile;
  if (dt.length === 0) throw new DrayError('DRAY_DOCKERFILE', 'the Dockerfile cannot be empty');

  const parsed = parseDockerfile(dt);
  const warnings: DockerfileWarning[] = [];
  const lint = new Linter(parseLintOptions(parsed.directives.check ?? ''), warnings);
  for (const w of parsed.warnings)
    lint.run('NoEmptyContinuation', 'Empty continuation line', { startLine: w.line, endLine: w.line });

  const { stages, metaArgs } = parseStages(parsed.ast, (rule, message, loc, comments) =>
    lint.withComments(comments).run(rule, message, loc),
  );
  if (stages.length === 0) throw new DrayError('DRAY_DOCKERFILE', 'dockerfile contains no stages to build');
  validateStageNames(stages, lint);
  validateCommandCasing(stages, lint);

  const buildArgs: Record<string, string> = { ...(o.buildArgs ?? {}) };
  if (o.sourceDateEpoch !== undefined && !Object.hasOwn(buildArgs, 'SOURCE_DATE_EPOCH'))
    buildArgs.SOURCE_DATE_EPOCH = String(o.sourceDateEpoch);
  const targetPlatform = o.targetPlatform;
  const targetName = o.target ? o.target : stages[stages.length - 1]!.name;
  let globalArgs = defaultArgs(o.buildPlatform, targetPlatform, buildArgs, targetName);
  const shlex = new ShellLex(parsed.escapeToken);

  validateBaseImagesWithDefaultArgs(stages, shlex, globalArgs, metaArgs, lint);
  globalArgs = buildMetaArgs(globalArgs, shlex, metaArgs, buildArgs);
  const resolvedEpoch = resolveEpoch(buildArgs, globalArgs, stages);
  globalArgs = resolvedEpoch.globalArgs;
  const epoch = resolvedEpoch.epoch;

  const ctx: DispatchContext = {
    shlex,
    globalArgs,
    buildArgValues: buildArgs,
    buildContext: local(o.contextName ?? 'context', {
      name: '[internal] load build context',
      ...(o.excludes && o.excludes.length > 0 ? { exclude: [...o.excludes] } : {}),
    }),
    proxyEnv: proxyEnvFromBuildArgs(buildArgs),
    cacheIdNamespace: buildArgs.BUILDKIT_CACHE_MOUNT_NS ?? '',
    targetPlatform,
    network: o.network === 'none' ? 'none' : 'host',
    epoch,
    epochTime: epoch === undefined ? undefined : epochTime(epoch),
    lint,
  };

  const all = new DispatchStates();
  const argKeys = fromArgKeys(globalArgs, metaArgs);

  // Stages: expand FROM and --platform with the global ARGs (upstream `buildDispatchStates`).
  stages.forEach((st, i) => {
    const slint = lint.withComments(st.comments);
    let nameMatch: ReturnType<ShellLex['processWordWithMatches']>;
    try {
      nameMatch = shlex.processWordWithMatches(st.baseName, globalArgs);
    } catch (e) {
      throw located(e, st.location);
    }
    reportUnusedFromArgs(argKeys, nameMatch.unmatched, st.location, slint);
    if (nameMatch.result === '')
      throw locatedError(`base name (${st.baseName}) should not be blank`, st.location);
    const stage: Stage = { ...st, baseName: nameMatch.result };
    const ds = newDispatchState(stage, emptyImage(targetPlatform), newState());
    ds.index = i;
    if (st.platform !== '') {
      let platMatch: ReturnType<ShellLex['processWordWithMatches']>;
      try {
        platMatch = shlex.processWordWithMatches(st.platform, globalArgs);
      } catch (e) {
        throw locatedError(`failed to process arguments for platform : ${messageOf(e)}`, st.location, e);
      }
      reportUnusedFromArgs(argKeys, platMatch.unmatched, st.location, slint);
      reportRedundantTargetPlatform(st.platform, platMatch, st.location, globalArgs, slint);
      reportConstPlatformDisallowed(st.name, platMatch, st.location, slint);
      if (platMatch.result === '')
        throw locatedError(
          suggestAny(
            `empty platform value from expression ${st.platform}`,
            platMatch.unmatched,
            globalArgs.keys(),
          ),
          st.location,
        );
      let p: Platform;
      try {
        p = normalizePlatform(parsePlatform(platMatch.result));
      } catch (e) {
        throw locatedError(
          `failed to parse platform ${st.platform}: ${suggestAny(messageOf(e), platMatch.unmatched, globalArgs.keys())}`,
          st.location,
          e,
        );
      }
      ds.platform = p;
    }
    if (st.name === '') ds.stageName = `stage-${i}`;
    all.add(ds);
    let total = ds.stage.baseName !== emptyImageName && ds.base === undefined ? 1 : 0;
    for (const c of ds.stage.commands) if (['add', 'copy', 'run', 'workdir'].includes(c.kind)) total++;
    ds.cmdTotal = total;
    ds.ignoreCache = o.noCache ?? false;
  });

  // --target.
  let target: DispatchState;
  if (!o.target) target = all.states[all.states.length - 1]!;
  else {
    const found = all.byName(o.target);
    if (!found)
      throw new DrayError(
        'DRAY_BUILD',
        withSuggestion(`target stage ${goQuote(o.target)} could not be found`, o.target, all.names(), true),
        { hint: `name a stage of ${o.dockerfileName ?? 'Dockerfile'} (FROM … AS <name>)` },
      );
    target = found;
  }

  // Dependencies between stages (COPY --from, RUN --mount from=).
  for (const d of [...all.states]) {
    d.commands = d.stage.commands.map((c) => {
      const entry = toCommand(c, all, shlex);
      for (const src of entry.sources) {
        if (!src) continue;
        d.deps.set(src, c);
        if (src.unregistered) all.add(src);
      }
      return entry;
    });
  }
  validateCircularDependency(all.states);
  if (all.states.length === 1) all.states[0]!.stageName = '';

  // Base images of the stages the target needs, and ONBUILD triggers (which may add needs).
  const resolveCtx: ResolveContext = { o, all, ctx, lint };
  let allReachable: Set<DispatchState>;
  for (;;) {
    allReachable = await resolveReachableStages(resolveCtx, target);
    let newDeps = false;
    for (const d of all.states) {
      if (!allReachable.has(d)) continue;
      init(d);
      const onbuilds = [...(d.image.config.OnBuild ?? [])];
      if (d.base && !d.onBuildInit) {
        for (const c of d.base.commands)
          if (c.command.kind === 'onbuild') onbuilds.push(c.command.expression);
        d.onBuildInit = true;
      }
      if (onbuilds.length > 0) {
        try {
          if (initOnBuildTriggers(d, onbuilds, all, shlex)) newDeps = true;
        } catch (e) {
          const msg = messageOf(e);
          throw locatedError(msg, d.stage.location, e);
        }
        d.image.config.OnBuild = undefined;
      }
    }
    if (!newDeps) break;
  }

  // Dispatch every needed stage, in Dockerfile order.
  const built: string[] = [];
  for (const d of [...all.states]) {
    if (!allReachable.has(d) || d.dispatched) continue;
    init(d);
    d.dispatched = true;
    d.platform ??= targetPlatform;
    if (envsFromList(d.image.config.Env ?? []).get('PATH') === undefined && d.platform.os !== 'windows')
      d.image.config.Env = [...(d.image.config.Env ?? []), `PATH=${defaultPathEnv(d.platform.os)}`];
    for (const e of d.image.config.Env ?? []) {
      const [k, v] = parseKeyValue(e);
      d.st = { ...d.st, env: d.st.env.set(k, v) };
    }
    try {
      if (d.image.config.WorkingDir !== '')
        dispatchWorkdir(d, { path: d.image.config.WorkingDir }, false, ctx);
      if (d.image.config.User !== '') d.st = { ...d.st, user: d.image.config.User };
    } catch (e) {
      throw located(e, d.stage.location);
    }
    for (const entry of d.commands) {
      o.signal?.throwIfAborted();
      try {
        dispatchInstruction(d, entry, ctx);
      } catch (e) {
        throw located(e, entry.command.location);
      }
    }
    if (!d.unregistered && d.index !== undefined)
      built.push(d.stage.name !== '' ? d.stage.name : String(d.index));
  }

  // The final image config (upstream `finalizeResultImage`).
  const img = target.image;
  if (o.labels && Object.keys(o.labels).length > 0)
    img.config.Labels = { ...(img.config.Labels ?? {}), ...o.labels };
  const lintError = lint.error();
  if (lintError) throw lintError;
  const sameOsArch = targetPlatform.os === img.os && targetPlatform.architecture === img.architecture;
  img.os = targetPlatform.os;
  img.architecture = targetPlatform.architecture;
  if (targetPlatform.variant || !sameOsArch) img.variant = targetPlatform.variant ?? '';
  if (targetPlatform['os.version'] || !sameOsArch) img.osVersion = targetPlatform['os.version'] ?? '';
  if (targetPlatform['os.features']) img.osFeatures = [...targetPlatform['os.features']];
  const norm = normalizePlatform(imagePlatform(img));
  img.os = norm.os;
  img.architecture = norm.architecture;
  img.variant = norm.variant ?? '';
  img.osFeatures = norm['os.features'] ? [...norm['os.features']] : img.osFeatures;

  return {
    state: target.st.fs,
    config: imageToConfig(img),
    ...(target.baseImg ? { baseHistory: target.baseImg.history.map((h) => ({ ...h })) } : {}),
    warnings,
    stages: built,
    ...(epoch !== undefined ? { sourceDateEpoch: epoch } : {}),
  };
}

/** Inherits the base stage's filesystem, config and ARGs (upstream `dispatchState.init`). */
function init(d: DispatchState): void {
  const b = d.base;
  if (!b) return;
  d.st = { ...b.st };
  d.platform = b.platform;
  d.image = cloneImage(b.image);
  d.image.config.OnBuild = undefined; // triggers do not carry over from a base stage
  d.baseImg = b.baseImg ? cloneImage(b.baseImg) : undefined;
  d.workdirSet = b.workdirSet;
  d.buildArgs = [...d.buildArgs, ...b.buildArgs];
}

interface ResolveContext {
  o: DockerfileToGraphOptions;
  all: DispatchStates;
  ctx: DispatchContext;
  lint: Linter;
}

async function resolveReachableStages(r: ResolveContext, target: DispatchState): Promise<Set<DispatchState>> {
  const reachable = reachableStages(target);
  const work: Array<Promise<void>> = [];
  for (const d of [...r.all.states]) {
    const isReachable = reachable.has(d);
    if (d.base || d.dispatched || d.resolved) continue;
    d.resolved = isReachable;
    if (d.stage.baseName === emptyImageName) {
      d.st = { ...d.st, fs: scratch };
      d.image = emptyImage(r.ctx.targetPlatform);
      d.platform = r.ctx.targetPlatform;
      if (d.unregistered) d.dispatched = true;
      continue;
    }
    work.push(resolveBaseImage(r, d, isReachable));
  }
  const results = await Promise.allSettled(work);
  const failed = results.find((x): x is PromiseRejectedResult => x.status === 'rejected');
  if (failed) throw failed.reason;
  return reachable;
}

function errorWithCode(e: unknown, message: string): DrayError {
  if (e instanceof DrayError)
    return new DrayError(e.code, message, { cause: e, ...(e.hint ? { hint: e.hint } : {}) });
  return new DrayError('DRAY_BUILD', message, { cause: e });
}

async function resolveBaseImage(r: ResolveContext, d: DispatchState, reachable: boolean): Promise<void> {
  try {
    const origName = d.stage.baseName;
    let ref: ReturnType<typeof parseReference>;
    try {
      ref = parseReference(d.stage.baseName);
    } catch (e) {
      throw locatedError(
        `failed to parse stage name ${goQuote(d.stage.baseName)}: ${messageOf(e)}`,
        d.stage.location,
        e,
      );
    }
    const platform = d.platform ?? r.ctx.targetPlatform;
    d.stage = { ...d.stage, baseName: referenceString(normalizeReference(ref)) };
    let isScratch = false;
    if (reachable) {
      let res: Awaited<ReturnType<DockerfileToGraphOptions['resolveImage']>>;
      try {
        res = await r.o.resolveImage(d.stage.baseName, {
          platform,
          pull: r.o.pull ?? false,
          ...(r.o.signal ? { signal: r.o.signal } : {}),
        });
      } catch (e) {
        const options = [...r.all.names(), ...commonImageNames];
        throw errorWithCode(e, withSuggestion(`${origName}: ${messageOf(e)}`, origName, options, true));
      }
      let resolved = normalizeReference(ref);
      if (res.ref !== referenceString(resolved)) resolved = parseReference(res.ref);
      const img = imageFromConfig(res.config);
      d.baseImg = cloneImage(img);
      if (res.digest) resolved = withDigest(resolved, res.digest as Digest);
      d.stage = { ...d.stage, baseName: referenceString(resolved) };
      if (img.rootfs.diff_ids.length === 0) isScratch = img.history.every((h) => h.empty_layer);
      d.image = img;
    }
    if (isScratch) d.st = { ...d.st, fs: scratch };
    else {
      const name = prefixCommand(d, `FROM ${d.stage.baseName}`);
      d.st = {
        ...d.st,
        fs: image(d.stage.baseName, {
          platform,
          ...(r.o.pull ? { resolveMode: 'pull' as const } : {}),
          name,
          meta: {
            instruction: d.stage.sourceCode,
            line: String(d.stage.location.startLine),
            stage: d.stage.name !== '' ? d.stage.name : d.index !== undefined ? String(d.index) : '',
          },
        }),
      };
      if (reachable && (platform.os !== d.image.os || platform.architecture !== d.image.architecture)) {
        r.lint.run(
          'InvalidBaseImagePlatform',
          `Base image ${origName} was pulled with platform ${goQuote(formatPlatformAll(normalizePlatform(imagePlatform(d.image))))}, expected ${goQuote(formatPlatformAll(normalizePlatform(platform)))} for current build`,
          d.stage.location,
        );
      }
    }
    d.platform = platform;
  } finally {
    if (d.unregistered) d.dispatched = true;
  }
}

/** Turns ONBUILD triggers into the first commands of `d`; true when they read other stages. */
function initOnBuildTriggers(
  d: DispatchState,
  triggers: readonly string[],
  all: DispatchStates,
  shlex: ShellLex,
): boolean {
  let hasNewDeps = false;
  const commands: CommandEntry[] = [];
  for (const trigger of triggers) {
    const ast = parseDockerfile(trigger).ast;
    if (ast.children.length !== 1) throw new Error('onbuild trigger should be a single expression');
    const node = ast.children[0]!;
    node.startLine = d.stage.location.startLine;
    node.endLine = d.stage.location.endLine;
    const ic = parseCommand(node);
    const entry = toCommand(ic, all, shlex);
    entry.isOnBuild = true;
    if (entry.sources.length > 0) hasNewDeps = true;
    commands.push(entry);
    for (const src of entry.sources) {
      if (!src) continue;
      d.deps.set(src, ic);
      if (src.unregistered) all.add(src);
    }
  }
  d.commands = [...commands, ...d.commands];
  d.cmdTotal += commands.length;
  return hasNewDeps;
}

function validateCircularDependency(states: readonly DispatchState[]): void {
  const visited = new Set<DispatchState>();
  const path = new Set<DispatchState>();
  const visit = (state: DispatchState, current: Command[]): Command[] | undefined => {
    if (visited.has(state)) return undefined;
    visited.add(state);
    path.add(state);
    for (const [dep, c] of state.deps) {
      const next = [...current, c];
      if (path.has(dep)) return next;
      const found = visit(dep, next);
      if (found) return found;
    }
    path.delete(state);
    return undefined;
  };
  for (const state of states) {
    const cmds = visit(state, []);
    if (cmds) {
      const loc = cmds[cmds.length - 1]!.location;
      throw dockerfileError(
        `circular dependency detected on stage: ${state.stageName}`,
        loc.startLine,
        loc.endLine,
      );
    }
  }
}

function suggestAny(message: string, keys: ReadonlySet<string>, options: readonly string[]): string {
  for (const k of keys) {
    const m = suggestName(k, options, true);
    if (m !== undefined) return `${message} (did you mean ${m}?)`;
  }
  return message;
}

function reportUnusedFromArgs(
  argKeys: readonly string[],
  unmatched: ReadonlySet<string>,
  loc: Location,
  lint: Linter,
): void {
  for (const arg of unmatched) {
    if (argKeys.includes(arg)) continue;
    const s = suggestName(arg, argKeys, true);
    lint.run(
      'UndefinedArgInFrom',
      `FROM argument '${arg}' is not declared${s ? ` (did you mean ${s}?)` : ''}`,
      loc,
    );
  }
}

function reportRedundantTargetPlatform(
  platformVar: string,
  m: { result: string; matched: ReadonlySet<string>; unmatched: ReadonlySet<string> },
  loc: Location,
  env: EnvList,
  lint: Linter,
): void {
  if (m.matched.size === 1 && m.unmatched.size === 0 && m.matched.has('TARGETPLATFORM')) {
    if (m.result === env.get('TARGETPLATFORM'))
      lint.run(
        'RedundantTargetPlatform',
        `Setting platform to predefined ${platformVar} in FROM is redundant as this is the default behavior`,
        loc,
      );
  }
}

function reportConstPlatformDisallowed(
  stageName: string,
  m: { result: string; matched: ReadonlySet<string>; unmatched: ReadonlySet<string> },
  loc: Location,
  lint: Linter,
): void {
  if (m.matched.size > 0 || m.unmatched.size > 0) return;
  let p: Platform;
  try {
    p = parsePlatform(m.result);
  } catch {
    return;
  }
  if (stageName.includes(p.os) || stageName.includes(p.architecture)) return;
  lint.run(
    'FromPlatformFlagConstDisallowed',
    `FROM --platform flag should not use constant value ${goQuote(m.result)}`,
    loc,
  );
}

function validateStageNames(stages: readonly Stage[], lint: Linter): void {
  const seen = new Set<string>();
  for (const s of stages) {
    if (s.name === '') continue;
    const slint = lint.withComments(s.comments);
    if (s.name === 'context' || s.name === 'scratch')
      slint.run(
        'ReservedStageName',
        `Stage name should not use the same name as reserved stage ${goQuote(s.name)}`,
        s.location,
      );
    if (seen.has(s.name))
      slint.run(
        'DuplicateStageName',
        `Duplicate stage name ${goQuote(s.name)}, stage names should be unique`,
        s.location,
      );
    seen.add(s.name);
  }
}

function validateCommandCasing(stages: readonly Stage[], lint: Linter): void {
  const consistent = (s: string) => s === s.toLowerCase() || s === s.toUpperCase();
  let lower = 0;
  let upper = 0;
  const count = (name: string) => {
    if (!consistent(name)) return;
    if (name === name.toLowerCase()) lower++;
    else upper++;
  };
  for (const s of stages) {
    count(s.origCmd);
    for (const c of s.commands) count(c.name);
  }
  const majorityLower = lower > upper;
  const check = (name: string, loc: Location, comments: readonly string[]) => {
    let want = '';
    if (majorityLower && name.toLowerCase() !== name) want = 'lowercase';
    else if (!majorityLower && name.toUpperCase() !== name) want = 'uppercase';
    if (want)
      lint
        .withComments(comments)
        .run(
          'ConsistentInstructionCasing',
          `Command '${name}' should match the case of the command majority (${want})`,
          loc,
        );
  };
  for (const s of stages) {
    check(s.origCmd, s.location, s.comments);
    for (const c of s.commands) check(c.name, c.location, c.comments);
  }
}

function validateBaseImagesWithDefaultArgs(
  stages: readonly Stage[],
  shlex: ShellLex,
  env: EnvList,
  metaArgs: readonly ArgCommand[],
  lint: Linter,
): void {
  let args: EnvList;
  try {
    args = buildMetaArgs(env, shlex, metaArgs, {});
  } catch {
    return;
  }
  for (const st of stages) {
    let name: string;
    try {
      name = shlex.processWord(st.baseName, args);
    } catch {
      return;
    }
    try {
      parseReference(name);
    } catch {
      lint
        .withComments(st.comments)
        .run(
          'InvalidDefaultArgInFrom',
          `Default value for ARG ${st.baseName} results in empty or invalid base image name`,
          st.location,
        );
    }
  }
}
