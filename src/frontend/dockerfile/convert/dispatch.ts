/**
 * One instruction of a stage → changes to its filesystem, environment and image config plus
 * one history entry (dockerfile2llb `dispatch` and the `dispatchX` functions for every
 * instruction but RUN and COPY/ADD, which have their own modules).
 */
import { mkdir } from '../../../solver/index.ts';
import type {
  ArgCommand,
  Command,
  EnvCommand,
  ExposeCommand,
  HealthcheckCommand,
  LabelCommand,
} from '../instructions/index.ts';
import { expandCommand } from '../instructions/index.ts';
import { suggestName } from '../parser/index.ts';
import { goQuote } from '../shell/gotext.ts';
import { type EnvGetter, ShellLex } from '../shell/index.ts';
import { dispatchCopy, parseChown } from './copy.ts';
import { PortSpecError, parsePort } from './expose.ts';
import { addEnv } from './image.ts';
import type { Linter } from './lint.ts';
import { dispatchRun, withShell } from './run.ts';
import {
  type CommandEntry,
  commitToHistory,
  type DispatchContext,
  type DispatchState,
  prefixCommand,
  processCmdEnv,
  vertexMeta,
} from './state.ts';
import {
  cleanPath,
  goHealthcheck,
  goList,
  goQuotedList,
  isValidSignal,
  normalizePath,
  uppercaseCmd,
} from './support.ts';

const nonEnvArgs = new Set(['BUILDKIT_SBOM_SCAN_CONTEXT', 'BUILDKIT_SBOM_SCAN_STAGE']);
const secretTokens =
  /(?:_|^)(?:apikey|auth|credential|credentials|key|password|pword|passwd|secret|token)(?:_|$)/i;
const secretAllow = /(?:_|^)(?:public|file|version)(?:_|$)/i;

// The heredoc bodies of COPY/ADD are expanded with a plain backslash lexer that keeps quotes.
const rawLexer = new ShellLex('\\', { skipProcessQuotes: true });

function lintSecretKey(lint: Linter, instruction: string, key: string, c: Command): void {
  if (secretTokens.test(key) && !secretAllow.test(key))
    lint.run(
      'SecretsUsedInArgOrEnv',
      `Do not use ARG or ENV instructions for sensitive data (${instruction} ${goQuote(key)})`,
      c.location,
    );
}

// UndefinedVar: variables a word used that are neither set nor a declared ARG.
function reportUnmatched(
  c: Command,
  d: DispatchState,
  env: EnvGetter,
  unmatched: ReadonlySet<string>,
  lint: Linter,
): void {
  const declared = new Set(d.buildArgs.map((a) => a.key));
  for (const v of unmatched) {
    if (declared.has(v) || nonEnvArgs.has(v)) continue;
    const s = suggestName(v, env.keys(), true);
    lint.run(
      'UndefinedVar',
      `Usage of undefined variable '$${v}'${s ? ` (did you mean $${s}?)` : ''}`,
      c.location,
    );
  }
}

function usedOnce(lint: Linter, c: Command, previous: DispatchState['cmdSet']): DispatchState['cmdSet'] {
  if (previous)
    lint.run(
      'MultipleInstructionsDisallowed',
      `Multiple ${c.name} instructions should not be used in the same stage because only the last one will be used`,
      previous,
    );
  return c.location;
}

/** Sets the working dir; with `commit` (a WORKDIR line) also creates it and writes history. */
export function dispatchWorkdir(
  d: DispatchState,
  c: { path: string; code?: string; location?: Command['location'] },
  commit: boolean,
  ctx: DispatchContext,
  lint?: Linter,
): void {
  if (commit) {
    if (!d.workdirSet && !c.path.startsWith('/') && c.location)
      lint?.run(
        'WorkdirRelativePath',
        `Relative workdir ${goQuote(c.path)} can have unexpected results if the base image changes`,
        c.location,
      );
    d.workdirSet = true;
  }
  const wd = normalizePath(d.image.config.WorkingDir, c.path, false);
  d.image.config.WorkingDir = wd;
  d.st = { ...d.st, dir: wd };
  if (!commit) return;
  let withLayer = false;
  if (wd !== '/') {
    const user = d.image.config.User;
    const name = prefixCommand(d, uppercaseCmd(processCmdEnv(ctx.shlex, c.code ?? '', d.st.env)));
    const fs = d.st.fs.file(
      [
        mkdir(cleanPath(wd), 0o755, {
          makeParents: true,
          ...(user !== '' ? { chown: parseChown(user) } : {}),
          ...(ctx.epoch !== undefined ? { mtime: ctx.epoch } : {}),
        }),
      ],
      { name, meta: vertexMeta(d, c.code ?? '', c.location ?? d.stage.location) },
    );
    d.st = { ...d.st, fs };
    withLayer = true;
  }
  commitToHistory(d, ctx, `WORKDIR ${wd}`, withLayer, false);
}

function dispatchEnv(d: DispatchState, c: EnvCommand, ctx: DispatchContext, lint: Linter): void {
  let msg = 'ENV';
  for (const e of c.env) {
    if (e.noDelim)
      lint.run(
        'LegacyKeyValueFormat',
        `"${c.name} key=value" should be used instead of legacy "${c.name} key value" format`,
        c.location,
      );
    lintSecretKey(lint, 'ENV', e.key, c);
    msg += ` ${e.key}=${e.value}`;
    d.st = { ...d.st, env: d.st.env.set(e.key, e.value) };
    d.image.config.Env = addEnv(d.image.config.Env, e.key, e.value);
  }
  commitToHistory(d, ctx, msg, false, false);
}

function dispatchLabel(d: DispatchState, c: LabelCommand, ctx: DispatchContext, lint: Linter): void {
  let msg = 'LABEL';
  const labels = { ...(d.image.config.Labels ?? {}) };
  for (const l of c.labels) {
    if (l.noDelim)
      lint.run(
        'LegacyKeyValueFormat',
        `"${c.name} key=value" should be used instead of legacy "${c.name} key value" format`,
        c.location,
      );
    labels[l.key] = l.value;
    msg += ` ${l.key}=${l.value}`;
  }
  d.image.config.Labels = labels;
  commitToHistory(d, ctx, msg, false, false);
}

function dispatchHealthcheck(
  d: DispatchState,
  c: HealthcheckCommand,
  ctx: DispatchContext,
  lint: Linter,
): void {
  d.healthcheckSet = usedOnce(lint, c, d.healthcheckSet);
  const h = c.health;
  d.image.config.Healthcheck = {
    Test: [...h.test],
    Interval: h.interval,
    Timeout: h.timeout,
    StartPeriod: h.startPeriod,
    StartInterval: h.startInterval,
    Retries: h.retries,
  };
  commitToHistory(d, ctx, `HEALTHCHECK ${goHealthcheck(h)}`, false, false);
}

function dispatchExpose(d: DispatchState, c: ExposeCommand, ctx: DispatchContext, lint: Linter): void {
  const ports: string[] = [];
  for (const p of c.ports) ports.push(...ctx.shlex.processWords(p, d.st.env));
  const keys: string[] = [];
  for (const raw of ports) {
    let parsed: ReturnType<typeof parsePort>;
    try {
      parsed = parsePort(raw);
    } catch (e) {
      if (e instanceof PortSpecError) throw new Error(e.message);
      throw e;
    }
    if (parsed.proto !== parsed.proto.toLowerCase())
      lint.run(
        'ExposeProtoCasing',
        `Defined protocol '${raw}' in EXPOSE instruction should be lowercase`,
        c.location,
      );
    if (parsed.hasHostPart)
      lint.run(
        'ExposeInvalidFormat',
        `EXPOSE instruction should not define an IP address or host-port mapping, found '${raw}'`,
        c.location,
      );
    keys.push(...parsed.ports);
  }
  const exposed = { ...(d.image.config.ExposedPorts ?? {}) };
  for (const k of keys) exposed[k] = {};
  d.image.config.ExposedPorts = exposed;
  commitToHistory(d, ctx, `EXPOSE ${goList(keys)}`, false, false);
}

function dispatchArg(d: DispatchState, c: ArgCommand, ctx: DispatchContext, lint: Linter): void {
  const parts: string[] = [];
  for (const def of c.args) {
    lintSecretKey(lint, 'ARG', def.key, c);
    const hasValue = Object.hasOwn(ctx.buildArgValues, def.key);
    const hasDefault = def.value !== undefined;
    let value = def.value;
    // A bare `ARG X` takes the global ARG of the same name.
    if (!hasDefault && !hasValue) {
      const g = ctx.globalArgs.get(def.key);
      if (g !== undefined) value = g;
    }
    if (hasValue) value = ctx.buildArgValues[def.key];
    else if (hasDefault) {
      const env = d.st.env;
      const r = ctx.shlex.processWordWithMatches(def.value!, env);
      reportUnmatched(c, d, env, r.unmatched, lint);
      value = r.result;
    }
    if (value !== undefined && !nonEnvArgs.has(def.key))
      d.st = { ...d.st, env: d.st.env.set(def.key, value) };
    d.buildArgs.push({ key: def.key, ...(value !== undefined ? { value } : {}), docComment: def.docComment });
    parts.push(value !== undefined ? `${def.key}=${value}` : def.key);
  }
  commitToHistory(d, ctx, `ARG ${parts.join(' ')}`, false, false);
}

/**
 * Applies one command to a stage: expands its words as BuildKit does, then dispatches it.
 * Throws plain `Error`s with upstream's message (the caller locates them) or DrayErrors.
 */
export function dispatchInstruction(d: DispatchState, entry: CommandEntry, ctx: DispatchContext): void {
  const lint = ctx.lint.withComments(entry.command.comments);
  d.cmdIsOnBuild = entry.isOnBuild;
  const original = entry.command;
  let c = original;
  if (c.kind !== 'arg') {
    const env = d.st.env;
    c = expandCommand(
      c,
      (word) => {
        const r = ctx.shlex.processWordWithMatches(word, env);
        reportUnmatched(original, d, env, r.unmatched, lint);
        return r.result;
      },
      (word) => {
        const r = rawLexer.processWordWithMatches(word, env);
        reportUnmatched(original, d, env, r.unmatched, lint);
        return r.result;
      },
    );
  }

  switch (c.kind) {
    case 'maintainer':
      d.image.author = c.maintainer;
      commitToHistory(d, ctx, `MAINTAINER ${c.maintainer}`, false, false);
      return;
    case 'env':
      dispatchEnv(d, c, ctx, lint);
      return;
    case 'run':
      dispatchRun(d, c, entry, ctx);
      return;
    case 'workdir':
      dispatchWorkdir(d, c, true, ctx, lint);
      return;
    case 'add':
      dispatchCopy(
        d,
        {
          params: c,
          excludePatterns: c.excludePatterns,
          source: ctx.buildContext,
          isAdd: true,
          code: c.code,
          location: c.location,
          chown: c.chown,
          chmod: c.chmod,
          link: c.link,
          checksum: c.checksum,
          parents: false,
          unpack: c.unpack,
          keepGitDir: c.keepGitDir,
        },
        ctx,
      );
      return;
    case 'label':
      dispatchLabel(d, c, ctx, lint);
      return;
    case 'onbuild':
      d.image.config.OnBuild = [...(d.image.config.OnBuild ?? []), c.expression];
      return;
    case 'cmd': {
      d.cmdSet = usedOnce(lint, c, d.cmdSet);
      let args = c.cmdLine ?? [];
      if (c.prependShell) {
        if (!d.image.config.Shell || d.image.config.Shell.length === 0)
          lint.run(
            'JSONArgsRecommended',
            `JSON arguments recommended for ${c.name} to prevent unintended behavior related to OS signals`,
            c.location,
          );
        args = withShell(d.image, args);
      }
      d.image.config.Cmd = args;
      d.image.config.ArgsEscaped = true;
      commitToHistory(d, ctx, `CMD ${goQuotedList(args)}`, false, false);
      return;
    }
    case 'entrypoint': {
      d.entrypointSet = usedOnce(lint, c, d.entrypointSet);
      let args = c.cmdLine;
      if (c.prependShell) {
        if (!d.image.config.Shell || d.image.config.Shell.length === 0)
          lint.run(
            'JSONArgsRecommended',
            `JSON arguments recommended for ${c.name} to prevent unintended behavior related to OS signals`,
            c.location,
          );
        args = withShell(d.image, args ?? []);
      }
      d.image.config.Entrypoint = args;
      // An ENTRYPOINT drops the inherited CMD unless this stage set one.
      if (!d.cmdSet) d.image.config.Cmd = undefined;
      commitToHistory(d, ctx, `ENTRYPOINT ${goQuotedList(args)}`, false, false);
      return;
    }
    case 'healthcheck':
      dispatchHealthcheck(d, c, ctx, lint);
      return;
    case 'expose':
      dispatchExpose(d, c, ctx, lint);
      return;
    case 'user':
      d.st = { ...d.st, user: c.user };
      d.image.config.User = c.user;
      commitToHistory(d, ctx, `USER ${c.user}`, false, false);
      return;
    case 'volume': {
      const volumes = { ...(d.image.config.Volumes ?? {}) };
      for (const v of c.volumes) {
        if (v === '') throw new Error('VOLUME specified can not be an empty string');
        volumes[v] = {};
      }
      d.image.config.Volumes = volumes;
      commitToHistory(d, ctx, `VOLUME ${goList(c.volumes)}`, false, false);
      return;
    }
    case 'stopsignal':
      if (!isValidSignal(c.signal)) throw new Error(`invalid signal: ${c.signal}`);
      d.image.config.StopSignal = c.signal;
      commitToHistory(d, ctx, `STOPSIGNAL ${c.signal}`, false, false);
      return;
    case 'shell':
      d.image.config.Shell = [...c.shell];
      commitToHistory(d, ctx, `SHELL ${goList(c.shell)}`, false, false);
      return;
    case 'arg':
      dispatchArg(d, c, ctx, lint);
      return;
    case 'copy': {
      let source = ctx.buildContext;
      const src = entry.sources[0];
      if (src) {
        if (!src.dispatched)
          throw new Error(
            `cannot copy from stage ${goQuote(c.from)}, it needs to be defined before current stage ${goQuote(d.stageName)}`,
          );
        source = src.st.fs;
      }
      dispatchCopy(
        d,
        {
          params: c,
          excludePatterns: c.excludePatterns,
          source,
          isAdd: false,
          code: c.code,
          location: c.location,
          chown: c.chown,
          chmod: c.chmod,
          link: c.link,
          checksum: '',
          parents: c.parents,
          unpack: undefined,
          keepGitDir: undefined,
        },
        ctx,
      );
      return;
    }
  }
}
