/** executor: runs one build step's process in a prepared rootfs through runc (OCI runtime spec, users, mounts, network). */

export { createRuncExecutor } from './runc.ts';
export type {
  ExecMount,
  ExecRequest,
  ExecResult,
  Executor,
  ResolvedUser,
  RuncExecutorOptions,
} from './types.ts';
export { resolveChown, resolveUser } from './user.ts';
