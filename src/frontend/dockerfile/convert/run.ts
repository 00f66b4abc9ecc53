/**
 * RUN → an exec op (dockerfile2llb `dispatchRun`, `dispatchRunMounts`, `dispatchSecret`):
 * shell or exec form, heredocs (a lone `<<EOF` runs its body; one starting with `#!` runs
 * as a script mounted at /dev/pipes/), `--mount` types bind/cache/tmpfs/secret, `--network`,
 * the step's env (image ENV, ARGs, proxy build args), cwd and user, and the history line
 * `RUN |N A=1 /bin/sh -c … # buildkit`.
 */
import { DrayError } from '../../../errors.ts';
import { type ExecOp, mkfile, type RunMountSpec, State, scratch, vertex } from '../../../solver/index.ts';
import type { ArgDefinition, RunCommand } from '../instructions/index.ts';
import { chompHeredocContent, parseHeredoc } from '../parser/index.ts';
import type { EnvGetter } from '../shell/index.ts';
import { type EnvList, overlayEnv } from './env-list.ts';
import type { ImageModel } from './image.ts';
import {
  type BuildState,
  type CommandEntry,
  commitToHistory,
  type DispatchContext,
  type DispatchState,
  nameLexer,
  prefixCommand,
  processCmdEnv,
  vertexMeta,
} from './state.ts';
import { basePath, cleanPath, goList, joinPath, summarizeHeredoc, uppercaseCmd } from './support.ts';

/** The default shell of shell-form commands (dockerfile2llb `defaultShell`). */
export function defaultShell(os: string): string[] {
  return os === 'windows' ? ['cmd', '/S', '/C'] : ['/bin/sh', '-c'];
}

/** Prefixes the image's SHELL (or the default) to a shell-form command (upstream `withShell`). */
export function withShell(img: ImageModel, args: readonly string[]): string[] {
  const shell =
    img.config.Shell && img.config.Shell.length > 0 ? [...img.config.Shell] : defaultShell(img.os);
  return [...shell, args.join(' ')];
}

/** The history text of a RUN: `|N K=V … args` when the stage has ARGs (upstream `runCommandString`). */
export function runCommandString(
  args: readonly string[],
  buildArgs: readonly ArgDefinition[],
  env: EnvGetter,
): string {
  const tmp: string[] = [];
  const idx = new Map<string, number>();
  for (const arg of buildArgs) {
    const v = env.get(arg.key) ?? arg.value ?? '';
    const i = idx.get(arg.key);
    if (i !== undefined) tmp[i] = `${arg.key}=${v}`;
    else {
      idx.set(arg.key, tmp.length);
      tmp.push(`${arg.key}=${v}`);
    }
  }
  const prefix = tmp.length > 0 ? [`|${tmp.length}`, ...tmp] : [];
  return [...prefix, ...args].join(' ');
}

function mustParseHeredoc(src: string) {
  try {
    return parseHeredoc(src);
  } catch {
    return undefined;
  }
}

interface SecretEnv {
  id: string;
  name: string;
  optional?: boolean;
}

interface MountPlan {
  mounts: RunMountSpec[];
  secrets: RunMountSpec[];
  secretEnv: SecretEnv[];
}

function dispatchRunMounts(
  d: DispatchState,
  c: RunCommand,
  entry: CommandEntry,
  ctx: DispatchContext,
): MountPlan {
  const mounts: RunMountSpec[] = [];
  const secretMounts: RunMountSpec[] = [];
  const secretEnv: SecretEnv[] = [];
  c.mounts.forEach((mount, i) => {
    const from = mount.from === '' && mount.type === 'cache' ? 'scratch' : mount.from;
    let st: State = ctx.buildContext;
    if (from !== '') {
      const src = entry.sources[i];
      if (!src?.dispatched)
        throw new Error(
          `cannot mount from stage "${from}" to "${mount.target}", stage needs to be defined before current command`,
        );
      st = src.st.fs;
    }
    if (mount.type === 'secret') {
      let id = mount.source !== '' ? mount.source : mount.cacheId;
      if (id === '') {
        if (mount.target === '') throw new Error('one of source, target required');
        id = basePath(mount.target);
      }
      let dest: string | undefined = mount.target !== '' ? mount.target : undefined;
      if (mount.env === undefined) dest ??= `/run/secrets/${basePath(id)}`;
      const fileInfo = mount.uid !== undefined || mount.gid !== undefined || mount.mode !== undefined;
      if (dest !== undefined)
        secretMounts.push({
          type: 'secret',
          dest,
          id,
          ...(mount.required ? {} : { optional: true }),
          ...(fileInfo ? { mode: mount.mode ?? 0o400, uid: mount.uid ?? 0, gid: mount.gid ?? 0 } : {}),
        });
      if (mount.env !== undefined)
        secretEnv.push({ id, name: mount.env, ...(mount.required ? {} : { optional: true }) });
      return;
    }
    if (mount.type === 'ssh')
      throw new DrayError('DRAY_DOCKERFILE', 'RUN --mount=type=ssh is not supported by dray yet', {
        hint: 'copy a deploy key with a secret mount instead, or build with docker',
      });
    let target = mount.target;
    if (!cleanPath(target).startsWith('/')) target = joinPath('/', d.st.dir, target);
    if (target === '/') throw new Error(`invalid mount target "${target}"`);
    const source = joinPath('/', mount.source);
    const selector = source !== '/' ? { selector: source } : {};
    if (mount.type === 'tmpfs') {
      mounts.push({ type: 'tmpfs', dest: target, ...(mount.sizeLimit > 0 ? { size: mount.sizeLimit } : {}) });
      return;
    }
    if (mount.type === 'cache') {
      const id = `${ctx.cacheIdNamespace}/${mount.cacheId !== '' ? mount.cacheId : cleanPath(mount.target)}`;
      // Upstream seeds the cache from a mkdir with these owners and mode when no source
      // path is given; the cache mount's own mode/uid/gid say the same thing here.
      const owner =
        source === '/'
          ? {
              ...(mount.mode !== undefined ? { mode: mount.mode } : {}),
              ...(mount.uid !== undefined ? { uid: mount.uid } : {}),
              ...(mount.gid !== undefined ? { gid: mount.gid } : {}),
            }
          : {};
      mounts.push({
        type: 'cache',
        dest: target,
        id,
        sharing: mount.cacheSharing === '' ? 'shared' : mount.cacheSharing,
        ...(st.vertex ? { from: st } : {}),
        ...selector,
        ...(mount.readOnly ? { readonly: true } : {}),
        ...owner,
      });
      return;
    }
    // A read-write bind mount's changes are discarded after the step (BuildKit ForceNoOutput).
    mounts.push({ type: 'input', dest: target, from: st, ...selector, readonly: mount.readOnly });
  });
  return { mounts, secrets: secretMounts, secretEnv };
}

function byteOrder(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a), Buffer.from(b));
}

function execEnv(env: EnvList, proxyEnv: readonly string[]): string[] {
  return [...env.toArray(), ...proxyEnv];
}

/** Converts a RUN (already expanded: its mounts) into an exec op on the stage's filesystem. */
export function dispatchRun(
  d: DispatchState,
  c: RunCommand,
  entry: CommandEntry,
  ctx: DispatchContext,
): void {
  let customName = c.code;
  let args = c.cmdLine ?? [];
  const heredocMounts: RunMountSpec[] = [];
  if (c.files.length > 0) {
    if (args.length !== 1 || !c.prependShell)
      throw new Error(`parsing produced an invalid run command: ${goList(args)}`);
    const file = c.files[0]!;
    if (mustParseHeredoc(args[0]!)) {
      const data = file.chomp ? chompHeredocContent(file.data) : file.data;
      if (d.image.os !== 'windows' && data.startsWith('#!')) {
        // A script with a shebang: mounted read-only and run by path.
        const doc = scratch.file([mkfile(joinPath('/', file.name), 0o755, data)], {
          name: '[internal] preparing inline document',
        });
        heredocMounts.push({ type: 'input', dest: '/dev/pipes/', from: doc, readonly: true });
        args = [joinPath('/dev/pipes/', file.name)];
      } else {
        args = [data];
      }
      customName += ` (${summarizeHeredoc(file.data)})`;
    } else {
      // The shell reads the heredocs itself.
      let script = args[0]!;
      for (const f of c.files) script += `\n${f.data}${f.name}`;
      args = [script];
    }
  }
  if (c.prependShell) args = withShell(d.image, args);

  if (c.security === 'insecure')
    throw new DrayError('DRAY_DOCKERFILE', 'RUN --security=insecure is not supported by dray', {
      hint: 'remove --security=insecure',
    });
  if (c.devices.length > 0)
    throw new Error('device feature is only supported in Dockerfile frontend 1.14.0-labs or later');

  const plan = dispatchRunMounts(d, c, entry, ctx);
  const network = c.network === 'none' ? 'none' : c.network === 'host' ? 'host' : ctx.network;
  const env = d.st.env;
  const masked = new Map(plan.secretEnv.map((s) => [s.name, '****']));
  const name = prefixCommand(
    d,
    uppercaseCmd(processCmdEnv(nameLexer(ctx.shlex), customName, overlayEnv(env, masked))),
  );
  const before: BuildState = d.st;
  let fs = before.fs.run(args, {
    env: execEnv(env, ctx.proxyEnv),
    ...(before.dir !== '' ? { cwd: before.dir } : {}),
    ...(before.user !== '' ? { user: before.user } : {}),
    network,
    // LLB orders an exec's mounts by target, then its secrets.
    mounts: [
      ...[...heredocMounts, ...plan.mounts].sort((a, b) => byteOrder(a.dest, b.dest)),
      ...plan.secrets,
    ],
    name,
    meta: vertexMeta(d, c.code, c.location),
    ...(d.ignoreCache ? { noCache: true } : {}),
  });
  if (plan.secretEnv.length > 0 && fs.vertex) {
    // The builder has no secret-env option; the op carries it as an optional field.
    const v = fs.vertex;
    const op: ExecOp = { ...(v.op as ExecOp), secretEnv: plan.secretEnv };
    fs = new State(
      vertex(op, v.inputs, {
        ...(v.name !== undefined ? { name: v.name } : {}),
        ...(v.noCache ? { noCache: true } : {}),
        ...(v.meta ? { meta: { ...v.meta } } : {}),
      }),
    );
  }
  d.st = { ...before, fs };
  commitToHistory(d, ctx, `RUN ${runCommandString(args, d.buildArgs, env)}`, true, true);
}
