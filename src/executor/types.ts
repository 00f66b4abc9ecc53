/**
 * Running one process in a prepared root filesystem, as BuildKit's runc worker does: the
 * engine hands over a mounted rootfs, the command and its mounts; the executor generates the
 * OCI runtime spec, runs it and reports the exit status. It knows nothing of snapshots,
 * caches or Dockerfiles.
 */

/** An extra mount inside the container. */
export interface ExecMount {
  /**
   * Absolute path inside the container. When missing, runc creates it in the rootfs (a file
   * for a file source, else a directory); such stubs are removed after the run if still empty,
   * as BuildKit does, so they do not end up in the layer.
   */
  destination: string;
  /** `bind`: a host path; `tmpfs`: an empty in-memory filesystem. */
  type: 'bind' | 'tmpfs';
  /** Host path (bind mounts): a directory or a file. */
  source?: string;
  readonly?: boolean;
  /** tmpfs size in bytes (default: the kernel's, half the RAM). */
  size?: number;
}

export interface ExecRequest {
  /** Host path of the mounted, writable root filesystem. */
  rootfs: string;
  /** argv; args[0] is looked up in the PATH of `env` as a shell would. */
  args: readonly string[];
  /** `KEY=value` entries. PATH gets docker's default when absent; HOME comes from the user's passwd entry (else `/`). */
  env: readonly string[];
  /** Working directory inside the container, default `/`; created when missing (owned by the user, as BuildKit does). */
  cwd?: string;
  /**
   * `user`, `uid`, `user:group`, `uid:gid` (names resolved in the rootfs's /etc/passwd and
   * /etc/group; numbers need not exist there). Default root. Supplementary groups come from
   * /etc/group as docker sets them.
   */
  user?: string;
  /** Default `buildkitsandbox`, BuildKit's fixed name (the classic builder used the container id). Also in /etc/hosts. */
  hostname?: string;
  /** `none`: a network namespace with only loopback; `host`: the host's network. Default none. */
  network?: 'none' | 'host';
  mounts?: readonly ExecMount[];
  /** Log output as it comes; stream 1 = stdout, 2 = stderr. */
  output?: (stream: 1 | 2, chunk: Buffer) => void;
  /** Kills the process (and its container) and rejects with DRAY_ABORTED. */
  signal?: AbortSignal;
}

export interface ExecResult {
  /** The process's exit status; 128 + signal number when killed by a signal. */
  exitCode: number;
}

export interface Executor {
  /** Runs to completion. A non-zero exit is a result, not an error; failing to start is an error. */
  run(req: ExecRequest): Promise<ExecResult>;
}

export interface RuncExecutorOptions {
  /**
   * Directory for runc's state (`<root>/runc`) and the per-run bundles (`<root>/bundles/<id>`)
   * (`<data root>/executor`); created when missing. Every run removes its container and bundle.
   */
  root: string;
  /** The runc binary (default `runc` on PATH). */
  runc?: string;
}

/** A user as the container sees it. */
export interface ResolvedUser {
  uid: number;
  gid: number;
  /** Supplementary groups: every /etc/group entry listing the user's name (docker's rule). */
  additionalGids: number[];
  /** From /etc/passwd; `/` when the user has no entry. */
  home: string;
}
