/**
 * The conversion's per-stage state (dockerfile2llb's `dispatchState`) and what all
 * dispatchers share (`dispatchOpt`): the filesystem built so far with the metadata an LLB
 * state carries (env, working dir, user), the image config, the stage's ARGs, the progress
 * counters that make vertex names (`[builder 2/5] RUN make`), history and lint helpers.
 */

import type { HistoryEntry, Platform } from '../../../oci/index.ts';
import type { State } from '../../../solver/index.ts';
import type { ArgDefinition, Command, Location, Stage } from '../instructions/index.ts';
import { dockerfileError } from '../parser/index.ts';
import type { EnvGetter } from '../shell/index.ts';
import { ShellLex } from '../shell/index.ts';
import type { EnvList } from './env-list.ts';
import type { ImageModel } from './image.ts';
import type { Linter } from './lint.ts';

/** BuildKit writes this comment on every history entry it makes. */
export const historyComment = 'buildkit.dockerfile.v0';

/** A filesystem plus the metadata an `llb.State` carries for the next exec. */
export interface BuildState {
  fs: State;
  env: EnvList;
  /** The working directory ('' until set). */
  dir: string;
  /** '' until USER (or the base image) sets it. */
  user: string;
}

/** One command of a stage with the stages it reads from (COPY --from, RUN --mount from). */
export interface CommandEntry {
  command: Command;
  /** Per `--from` of COPY (one entry) or per `--mount` of RUN (one entry each). */
  sources: Array<DispatchState | undefined>;
  /** Came from a base stage's or base image's ONBUILD. */
  isOnBuild: boolean;
}

/** A stage being converted, or an image that COPY --from / RUN --mount from names. */
export interface DispatchState {
  stage: Stage;
  /** The name in vertex names: the AS name, `stage-N`, or '' for a lone stage. */
  stageName: string;
  /** Index among the Dockerfile's stages; undefined for images named by --from. */
  index: number | undefined;
  deps: Map<DispatchState, Command>;
  base: DispatchState | undefined;
  /** The base image's config as resolved (for SOURCE_DATE_EPOCH history handling). */
  baseImg: ImageModel | undefined;
  image: ImageModel;
  st: BuildState;
  platform: Platform | undefined;
  dispatched: boolean;
  resolved: boolean;
  onBuildInit: boolean;
  /** An image named by --from / --mount from=, not a stage of the Dockerfile. */
  unregistered: boolean;
  buildArgs: ArgDefinition[];
  commands: CommandEntry[];
  cmdIndex: number;
  cmdIsOnBuild: boolean;
  cmdTotal: number;
  ignoreCache: boolean;
  workdirSet: boolean;
  /** Where CMD / ENTRYPOINT / HEALTHCHECK were last set in this stage (the "used once" check). */
  cmdSet: Location | undefined;
  entrypointSet: Location | undefined;
  healthcheckSet: Location | undefined;
}

/** Creates the state for a stage or a --from image. */
export function newDispatchState(stage: Stage, image: ImageModel, st: BuildState): DispatchState {
  return {
    stage,
    stageName: stage.name,
    index: undefined,
    deps: new Map(),
    base: undefined,
    baseImg: undefined,
    image,
    st,
    platform: undefined,
    dispatched: false,
    resolved: false,
    onBuildInit: false,
    unregistered: false,
    buildArgs: [],
    commands: [],
    cmdIndex: 0,
    cmdIsOnBuild: false,
    cmdTotal: 0,
    ignoreCache: false,
    workdirSet: false,
    cmdSet: undefined,
    entrypointSet: undefined,
    healthcheckSet: undefined,
  };
}

/** What every dispatcher needs besides its stage. */
export interface DispatchContext {
  /** The instruction lexer (the Dockerfile's escape token). */
  shlex: ShellLex;
  globalArgs: EnvList;
  buildArgValues: Readonly<Record<string, string>>;
  /** The build context, shared by every COPY/ADD and bind mount. */
  buildContext: State;
  /** HTTP_PROXY & co. from build args, added to every RUN's environment. */
  proxyEnv: readonly string[];
  cacheIdNamespace: string;
  targetPlatform: Platform;
  /** The network of RUN steps without `--network`. */
  network: 'none' | 'host';
  epoch: number | undefined;
  /** RFC 3339 form of `epoch` for history entries. */
  epochTime: string | undefined;
  lint: Linter;
}

/** The vertex name prefix `[stage 2/5] ` (dockerfile2llb `prefixCommand`); counts the step. */
export function prefixCommand(d: DispatchState, str: string): string {
  if (d.cmdTotal === 0) return str;
  let out = '[';
  if (d.stageName !== '') out += `${d.stageName} `;
  d.cmdIndex++;
  const width = Math.trunc(1 + goLog10(d.cmdTotal));
  out += `${String(d.cmdIndex).padStart(width, ' ')}/${d.cmdTotal}] `;
  if (d.cmdIsOnBuild) out += 'ONBUILD ';
  return out + str;
}

// Go folds its constants 1/Ln2 and Ln2/Ln10 exactly before rounding to float64: these are
// those roundings (computing ln2/ln10 in float64 would be one ulp off and change the padding).
const invLn2 = Math.LOG2E;
const ln2OverLn10 = 0.3010299956639812;

/** Go's `math.Log10`: log2(x) · (Ln2/Ln10), log2 from Frexp, so the padding matches upstream's `%*d`. */
function goLog10(x: number): number {
  let exp = Math.floor(Math.log2(x)) + 1;
  let frac = x / 2 ** exp;
  // Frexp: frac in [0.5, 1).
  if (frac >= 1) {
    frac /= 2;
    exp++;
  } else if (frac < 0.5) {
    frac *= 2;
    exp--;
  }
  const log2 = frac === 0.5 ? exp - 1 : Math.log(frac) * invLn2 + exp;
  return log2 * ln2OverLn10;
}

/** Expands `cmd` for a vertex name; on an expansion error the text is kept (upstream `processCmdEnv`). */
export function processCmdEnv(lex: ShellLex, cmd: string, env: EnvGetter): string {
  try {
    return lex.processWord(cmd, env);
  } catch {
    return cmd;
  }
}

/** Appends a history entry as dockerfile2llb's `commitToHistory` does. */
export function commitToHistory(
  d: DispatchState,
  ctx: DispatchContext,
  msg: string,
  withLayer: boolean,
  buildkitSuffix: boolean,
): void {
  const entry: HistoryEntry = {
    ...(ctx.epochTime ? { created: ctx.epochTime } : {}),
    created_by: buildkitSuffix ? `${msg} # buildkit` : msg,
    comment: historyComment,
    ...(withLayer ? {} : { empty_layer: true }),
  };
  d.image.history.push(entry);
}

/** Vertex metadata the build history shows: the instruction, its line and stage. */
export function vertexMeta(d: DispatchState, code: string, loc: Location): Record<string, string> {
  const stage = d.stage.name !== '' ? d.stage.name : d.index !== undefined ? String(d.index) : '';
  return { instruction: code, line: String(loc.startLine), stage };
}

/** A DRAY_DOCKERFILE error at `loc` with a plain upstream message. */
export function locatedError(message: string, loc: Location, cause?: unknown) {
  return dockerfileError(message, loc.startLine, loc.endLine, cause === undefined ? {} : { cause });
}

/** A lexer for RUN names: quotes kept, unset variables left as written. */
export function nameLexer(shlex: ShellLex): ShellLex {
  return new ShellLex(shlex.escapeToken, { rawQuotes: true, skipUnsetEnv: true });
}
