import type { Digest } from '../digest/index.ts';
import type { Platform } from '../oci/index.ts';

/**
 * The op graph: what the frontend compiles to and the solver runs (BuildKit's LLB, as plain
 * JSON). A vertex is an op plus its inputs; its digest is the digest of its canonical JSON
 * with inputs replaced by their digests, so equal graphs have equal digests in any process.
 * Nothing here knows about Dockerfiles.
 */

/** Where a source op's files come from. */
export type Source = ImageSource | LocalSource | HttpSource;

/** An image's root filesystem (and config, for the frontend) from a registry or the image store. */
export interface ImageSource {
  type: 'image';
  /** A normalised reference (`docker.io/library/busybox:latest`, may carry a digest). */
  ref: string;
  platform?: Platform;
  /** `default`: the image store first, then the registry; `pull`: always ask the registry; `local`: the image store only. */
  resolveMode?: 'default' | 'pull' | 'local';
}

/** A directory the client shares through the session (the build context). */
export interface LocalSource {
  type: 'local';
  /** The session's name for the directory (`context`, `dockerfile`). */
  name: string;
  /** .dockerignore-style patterns: only matching paths are included (default all). */
  include?: readonly string[];
  /** .dockerignore-style patterns (with `!` re-includes) of paths to leave out. */
  exclude?: readonly string[];
}

/** One file downloaded over HTTP(S). */
export interface HttpSource {
  type: 'http';
  url: string;
  /** Required digest of the body; a mismatch fails the step. */
  checksum?: Digest;
  /** File name in the result (default: from the URL path or Content-Disposition). */
  filename?: string;
  /** Permission bits of the file (default 0o600, as BuildKit). */
  mode?: number;
  uid?: number;
  gid?: number;
}

export interface SourceOp {
  kind: 'source';
  source: Source;
}

/** A mount of a running exec step. Exactly one mount has `dest: '/'` and `input` set: the root whose changes are the step's result. */
export type ExecOpMount =
  | {
      type: 'input';
      dest: string;
      /** Index into the vertex's inputs; absent = scratch. */
      input?: number;
      /** Path inside the input to mount (default `/`). */
      selector?: string;
      /** Read-write mounts other than `/` see their changes discarded after the step. */
      readonly?: boolean;
    }
  | {
      type: 'cache';
      dest: string;
      /** The cache's id (default: `dest`). */
      id: string;
      sharing: 'shared' | 'private' | 'locked';
      /** Seed the cache from an input when it is first created. */
      input?: number;
      selector?: string;
      readonly?: boolean;
      mode?: number;
      uid?: number;
      gid?: number;
    }
  | { type: 'tmpfs'; dest: string; size?: number }
  | {
      type: 'secret';
      dest: string;
      id: string;
      optional?: boolean;
      mode?: number;
      uid?: number;
      gid?: number;
    };

export interface ExecOp {
  kind: 'exec';
  args: readonly string[];
  env: readonly string[];
  cwd?: string;
  user?: string;
  network?: 'none' | 'host';
  hostname?: string;
  mounts: readonly ExecOpMount[];
  /** Secrets exposed as environment variables (`RUN --mount=type=secret,env=NAME`; BuildKit's `SecretEnv`). */
  secretEnv?: ReadonlyArray<{ id: string; name: string; optional?: boolean }>;
}

/** Owner for created files: names are resolved in the destination's /etc/passwd and /etc/group. */
export interface Chown {
  user: string;
  group?: string;
}

export interface CopyAction {
  action: 'copy';
  /** Input index of the source tree. */
  input: number;
  /** Source path in that input (absolute, may hold wildcards when `allowWildcard`). */
  src: string;
  /** Destination path in the result. A trailing `/` means "into this directory". */
  dest: string;
  followSymlinks?: boolean;
  /** Copy a directory's contents rather than the directory itself (Dockerfile COPY does). */
  dirCopyContents?: boolean;
  /** Make missing parents of `dest`. */
  createDestPath?: boolean;
  allowWildcard?: boolean;
  /** A wildcard that matches nothing is not an error. */
  allowEmptyWildcard?: boolean;
  /** Patterns (under the source) to include / exclude, .dockerignore syntax. */
  include?: readonly string[];
  exclude?: readonly string[];
  /** Paths (absolute, under the source) that must exist even though `include` filters (COPY --parents; BuildKit's `RequiredPaths`). */
  requiredPaths?: readonly string[];
  chown?: Chown;
  /** Octal (`0755`) or symbolic (`u+x,g-w`) mode applied to everything copied. */
  chmod?: string;
  /** Epoch seconds for the mtime of every copied entry. */
  mtime?: number;
  /** Unpack a source archive (ADD of a local tar) instead of copying the file. */
  extractArchive?: boolean;
}

export interface MkdirAction {
  action: 'mkdir';
  path: string;
  mode: number;
  makeParents?: boolean;
  chown?: Chown;
  mtime?: number;
}

export interface MkfileAction {
  action: 'mkfile';
  path: string;
  mode: number;
  /** The file's content (UTF-8). */
  data: string;
  chown?: Chown;
  mtime?: number;
}

export interface RmAction {
  action: 'rm';
  path: string;
  allowNotFound?: boolean;
  allowWildcard?: boolean;
}

export interface SymlinkAction {
  action: 'symlink';
  /** The link's target, stored as is. */
  target: string;
  /** Where the link is made. */
  path: string;
  chown?: Chown;
  mtime?: number;
}

export type FileAction = CopyAction | MkdirAction | MkfileAction | RmAction | SymlinkAction;

/** File actions, applied in order onto input 0 (absent = scratch). */
export interface FileOp {
  kind: 'file';
  /** Input index of the tree the actions change; absent = scratch. */
  base?: number;
  actions: readonly FileAction[];
}

/** Stacks its inputs' layers in order, without copying (COPY --link). */
export interface MergeOp {
  kind: 'merge';
}

export type Op = SourceOp | ExecOp | FileOp | MergeOp;
