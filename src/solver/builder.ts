import type { Platform } from '../oci/index.ts';
import type {
  Chown,
  CopyAction,
  ExecOp,
  ExecOpMount,
  FileAction,
  HttpSource,
  LocalSource,
  MkdirAction,
  MkfileAction,
  RmAction,
  SymlinkAction,
} from './ops.ts';
import { type Vertex, type VertexOptions, vertex } from './vertex.ts';

/**
 * A small builder that makes op graphs read like what they do (BuildKit's `llb.State`):
 *
 * ```ts
 * const ctx = local('context');
 * const app = image('docker.io/library/busybox:latest')
 *   .file([copy(ctx, '/', '/app/')], { name: 'COPY . /app/' })
 *   .run(['sh', '-c', 'make'], { cwd: '/app', name: 'RUN make' });
 * ```
 * A `State` is immutable; every method returns a new one. `scratch` is the empty filesystem.
 */
export class State {
  /** The vertex producing this state; undefined = scratch. */
  readonly vertex: Vertex | undefined;

  constructor(v?: Vertex) {
    this.vertex = v;
  }

  /** Runs a process with this state as `/`; the result is `/` after it. */
  run(args: readonly string[], o: RunStateOptions = {}): State {
    const inputs: Vertex[] = [];
    const indexOf = (s: State | undefined): number | undefined => {
      if (!s?.vertex) return undefined;
      const found = inputs.findIndex((x) => x.digest === s.vertex?.digest);
      if (found >= 0) return found;
      inputs.push(s.vertex);
      return inputs.length - 1;
    };
    const root = indexOf(this);
    const mounts: ExecOpMount[] = [
      { type: 'input', dest: '/', ...(root !== undefined ? { input: root } : {}) },
    ];
    for (const m of o.mounts ?? []) {
      if (m.type === 'input') {
        const i = indexOf(m.from);
        const { from: _from, ...rest } = m;
        mounts.push({ ...rest, ...(i !== undefined ? { input: i } : {}) });
      } else if (m.type === 'cache' && m.from) {
        const i = indexOf(m.from);
        const { from: _from, ...rest } = m;
        mounts.push({ ...rest, ...(i !== undefined ? { input: i } : {}) });
      } else if (m.type === 'cache') {
        const { from: _from, ...rest } = m;
        mounts.push(rest);
      } else mounts.push(m);
    }
    const op: ExecOp = {
      kind: 'exec',
      args: [...args],
      env: [...(o.env ?? [])],
      ...(o.cwd !== undefined ? { cwd: o.cwd } : {}),
      ...(o.user !== undefined ? { user: o.user } : {}),
      ...(o.network !== undefined ? { network: o.network } : {}),
      ...(o.hostname !== undefined ? { hostname: o.hostname } : {}),
      mounts,
    };
    return new State(vertex(op, inputs, o));
  }

  /** Applies file actions to this state (see {@link copy}, {@link mkdir}, {@link mkfile}, {@link rm}, {@link symlink}). */
  file(actions: readonly FileActionSpec[], o: VertexOptions = {}): State {
    const inputs: Vertex[] = [];
    const indexOf = (s: State): number => {
      if (!s.vertex) return -1;
      const found = inputs.findIndex((x) => x.digest === s.vertex?.digest);
      if (found >= 0) return found;
      inputs.push(s.vertex);
      return inputs.length - 1;
    };
    const base = this.vertex ? indexOf(this) : undefined;
    const out: FileAction[] = actions.map((a) => {
      if (a.action !== 'copy') return a;
      const { from, ...rest } = a;
      return { ...rest, input: indexOf(from) };
    });
    return new State(
      vertex({ kind: 'file', ...(base !== undefined ? { base } : {}), actions: out }, inputs, o),
    );
  }
}

export type RunMountSpec =
  | { type: 'input'; dest: string; from: State; selector?: string; readonly?: boolean }
  | Extract<ExecOpMount, { type: 'tmpfs' } | { type: 'secret' }>
  | (Omit<Extract<ExecOpMount, { type: 'cache' }>, 'input'> & { from?: State });

export interface RunStateOptions extends VertexOptions {
  env?: readonly string[];
  cwd?: string;
  user?: string;
  network?: 'none' | 'host';
  hostname?: string;
  mounts?: readonly RunMountSpec[];
}

/** A copy action whose source is a state; `input: -1` in the op means scratch. */
export type CopySpec = Omit<CopyAction, 'input'> & { from: State };
export type FileActionSpec = CopySpec | MkdirAction | MkfileAction | RmAction | SymlinkAction;

/** The empty filesystem. */
export const scratch: State = new State();

/** An image's filesystem. */
export function image(
  ref: string,
  o: VertexOptions & { platform?: Platform; resolveMode?: 'default' | 'pull' | 'local' } = {},
): State {
  const { platform, resolveMode, ...vo } = o;
  return new State(
    vertex(
      {
        kind: 'source',
        source: {
          type: 'image',
          ref,
          ...(platform ? { platform } : {}),
          ...(resolveMode ? { resolveMode } : {}),
        },
      },
      [],
      { name: vo.name ?? `FROM ${ref}`, ...vo },
    ),
  );
}

/** A directory shared by the session (the build context). */
export function local(name: string, o: VertexOptions & Omit<LocalSource, 'type' | 'name'> = {}): State {
  const { include, exclude, ...vo } = o;
  return new State(
    vertex(
      {
        kind: 'source',
        source: { type: 'local', name, ...(include ? { include } : {}), ...(exclude ? { exclude } : {}) },
      },
      [],
      { name: vo.name ?? `[internal] load ${name}`, ...vo },
    ),
  );
}

/** One file downloaded over HTTP(S). */
export function http(url: string, o: VertexOptions & Omit<HttpSource, 'type' | 'url'> = {}): State {
  const { checksum, filename, mode, uid, gid, ...vo } = o;
  const src: HttpSource = {
    type: 'http',
    url,
    ...(checksum ? { checksum } : {}),
    ...(filename ? { filename } : {}),
    ...(mode !== undefined ? { mode } : {}),
    ...(uid !== undefined ? { uid } : {}),
    ...(gid !== undefined ? { gid } : {}),
  };
  return new State(vertex({ kind: 'source', source: src }, [], { name: vo.name ?? `GET ${url}`, ...vo }));
}

/** Layers the states on top of each other, first at the bottom, without copying (COPY --link). */
export function merge(states: readonly State[], o: VertexOptions = {}): State {
  const inputs = states.flatMap((s) => (s.vertex ? [s.vertex] : []));
  if (inputs.length === 0) return scratch;
  if (inputs.length === 1) return states.find((s) => s.vertex) as State;
  return new State(vertex({ kind: 'merge' }, inputs, o));
}

/** Copies `src` of `from` to `dest`. */
export function copy(
  from: State,
  src: string,
  dest: string,
  o: Omit<CopySpec, 'from' | 'src' | 'dest' | 'action'> = {},
): CopySpec {
  return { action: 'copy', from, src, dest, ...o };
}

export function mkdir(
  path: string,
  mode: number,
  o: { makeParents?: boolean; chown?: Chown; mtime?: number } = {},
): MkdirAction {
  return { action: 'mkdir', path, mode, ...o };
}

export function mkfile(
  path: string,
  mode: number,
  data: string,
  o: { chown?: Chown; mtime?: number } = {},
): MkfileAction {
  return { action: 'mkfile', path, mode, data, ...o };
}

export function rm(path: string, o: { allowNotFound?: boolean; allowWildcard?: boolean } = {}): RmAction {
  return { action: 'rm', path, ...o };
}

export function symlink(
  target: string,
  path: string,
  o: { chown?: Chown; mtime?: number } = {},
): SymlinkAction {
  return { action: 'symlink', target, path, ...o };
}
