/** image: the image store (names → root descriptors) in `<root>/images.json`. */

export type { ConfigChanges, LayerMeta, PatchImageConfigOptions } from './config.ts';
export {
  defaultPathEnv,
  emptyImageConfig,
  mutateImageConfig,
  normalizeLayersAndHistory,
  patchImageConfig,
} from './config.ts';
export type { ImageRecord, ImageStoreOptions } from './store.ts';
export { ImageStore } from './store.ts';
export type { ImageParts } from './write.ts';
export { documentBytes, writeImage } from './write.ts';
