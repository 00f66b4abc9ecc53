/**
 * solver/file: the file-operation engine behind FileOp (BuildKit's file backend and fsutil
 * copy) and the content checksums behind COPY cache keys (BuildKit's contenthash idea),
 * plus .dockerignore parsing and matching.
 */

export { type ApplyFileActionsOptions, applyFileActions } from './actions.ts';
export {
  type ChecksumManifest,
  type ChecksumOptions,
  changedPaths,
  checksumCopySources,
  checksumTree,
} from './checksum.ts';
export { ChecksumCache } from './checksum-cache.ts';
export { applyMode, type ModeSpec, parseMode } from './chmod.ts';
export { resolveChownInRoot } from './chown.ts';
export {
  cleanPath,
  createPathFilter,
  type FilterState,
  goMatch,
  type PathFilter,
  readDockerignore,
} from './patterns.ts';
export type { FileTree } from './tree.ts';
