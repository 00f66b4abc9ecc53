export type { BlobSource, BlobTarget, RefStore, ResumableWriter } from './blob.ts';
export { maxConfigBytes, maxManifestBytes, readDocument, readLimited } from './document.ts';
export type { MediaType } from './media-types.ts';
export {
  isDocumentType,
  isIndexType,
  isManifestType,
  isSchema1Type,
  MediaTypes,
  manifestAccept,
} from './media-types.ts';
export {
  formatPlatform,
  hostPlatform,
  isAttestationManifest,
  normalizePlatform,
  parsePlatform,
  platformMatches,
  selectManifest,
} from './platform.ts';
export type { OciLayoutHeader, ParsedDocument } from './schema.ts';
export {
  descriptorSchema,
  imageConfigSchema,
  imageIndexSchema,
  imageManifestSchema,
  ociLayoutHeaderSchema,
  parseDescriptor,
  parseDocument,
  parseImageConfig,
  parseIndex,
  parseManifest,
  parseOciLayoutHeader,
  platformSchema,
} from './schema.ts';
export type {
  ContainerConfig,
  Descriptor,
  HealthConfig,
  HistoryEntry,
  ImageConfig,
  ImageIndex,
  ImageManifest,
  Platform,
} from './types.ts';
