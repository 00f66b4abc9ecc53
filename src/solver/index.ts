/**
 * solver: the op graph (source, exec, file, merge), its builder, and the solver that runs it
 * with persistent cache records and build history (BuildKit's LLB + solver).
 */
export {
  type CopySpec,
  copy,
  type FileActionSpec,
  http,
  image,
  local,
  merge,
  mkdir,
  mkfile,
  type RunMountSpec,
  type RunStateOptions,
  rm,
  State,
  scratch,
  symlink,
} from './builder.ts';
export { CacheMounts, type HeldCacheMount } from './cache-mounts.ts';
export { cleanPath, createPathFilter, type PathFilter, readDockerignore } from './file/index.ts';
export {
  type BuildRecord,
  BuildRecorder,
  type ChecksumFiles,
  type HistoryPruneOptions,
  HistoryStore,
  type VertexRecord,
} from './history.ts';
export type {
  Chown,
  CopyAction,
  ExecOp,
  ExecOpMount,
  FileAction,
  FileOp,
  HttpSource,
  ImageSource,
  LocalSource,
  MergeOp,
  MkdirAction,
  MkfileAction,
  Op,
  RmAction,
  Source,
  SourceOp,
  SymlinkAction,
} from './ops.ts';
export { type CacheRecord, CacheRecords } from './records.ts';
export { type SolveOptions, type SolveOutcome, Solver, type SolverOptions } from './solver.ts';
export type {
  CacheSource,
  ImageResolver,
  ImportedLayer,
  LayerRef,
  Result,
  Session,
  SourceImage,
} from './types.ts';
export {
  canonicalJson,
  type GraphDefinition,
  marshalGraph,
  topoSort,
  unmarshalGraph,
  type Vertex,
  type VertexOptions,
  vertex,
} from './vertex.ts';
export { changedFiles, explainMiss } from './why.ts';
