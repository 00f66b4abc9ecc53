/**
 * dray's public API. The verbs (pull, push, images, tag, removeImage, inspect, prune, login,
 * logout) are what the CLI calls; the modules below them are exported for programs that
 * compose their own pipelines (copy an image between any two blob targets, read a
 * registry, keep a content store).
 */

export type {
  CacheConfig,
  CacheExportRecord,
  CacheExportSpec,
  CacheImportSpec,
  CacheMode,
} from './cache/index.ts';
export {
  exportCache,
  ImportedCache,
  importCache,
  parseCacheExportSpec,
  parseCacheImportSpec,
} from './cache/index.ts';
export type { ContentInfo, IngestWriter } from './content/index.ts';
export { ContentStore } from './content/index.ts';
export type { Digest, DigestAlgorithm } from './digest/index.ts';
export { Digester, digestOf, parseDigest, shortDigest, verifyBlob } from './digest/index.ts';
export type { DrayErrorCode } from './errors.ts';
export { DrayError, ErrorCodes, isDrayError } from './errors.ts';
export type { CopyGraphOptions, CopyGraphResult } from './graph/index.ts';
export { copyGraph } from './graph/index.ts';
export type { ConfigChanges, ImageParts, ImageRecord } from './image/index.ts';
export {
  emptyImageConfig,
  ImageStore,
  mutateImageConfig,
  normalizeLayersAndHistory,
  patchImageConfig,
  writeImage,
} from './image/index.ts';
export type {
  BlobSource,
  BlobTarget,
  ContainerConfig,
  Descriptor,
  HistoryEntry,
  ImageConfig,
  ImageIndex,
  ImageManifest,
  Platform,
  RefStore,
} from './oci/index.ts';
export {
  formatPlatform,
  hostPlatform,
  MediaTypes,
  normalizePlatform,
  parseDocument,
  parseImageConfig,
  parsePlatform,
  readDocument,
  selectManifest,
} from './oci/index.ts';
export type { ProgressEvent, ProgressKind, ProgressWriter, RunOptions } from './progress/index.ts';
export { collectProgress, createRenderer, noProgress, oneOff, step } from './progress/index.ts';
export type { Reference } from './reference/index.ts';
export {
  familiarMatch,
  familiarName,
  familiarString,
  normalizeReference,
  parseReference,
  referenceString,
  repositoryName,
} from './reference/index.ts';
export type { Auth, Authenticator, CredentialStore, RegistryClientOptions } from './registry/index.ts';
export {
  createAuthenticator,
  createCredentialStore,
  createRegistryClient,
  RegistryClient,
  RegistryError,
  Repository,
} from './registry/index.ts';
export type {
  BuildRecord,
  CacheSource,
  Chown,
  CopyAction,
  ExecOp,
  ExecOpMount,
  FileAction,
  FileOp,
  GraphDefinition,
  HttpSource,
  ImageResolver,
  ImageSource,
  ImportedLayer,
  LayerRef,
  LocalSource,
  Op,
  Result,
  Session,
  SolveOptions,
  SolveOutcome,
  SourceImage,
  Vertex,
  VertexRecord,
} from './solver/index.ts';
export {
  CacheRecords,
  copy,
  HistoryStore,
  http,
  image,
  local,
  marshalGraph,
  merge,
  mkdir,
  mkfile,
  rm,
  Solver,
  State,
  scratch,
  symlink,
  unmarshalGraph,
  vertex,
} from './solver/index.ts';
export * from './verbs/index.ts';
