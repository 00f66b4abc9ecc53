/** image: the image store (names → root descriptors) in `<root>/images.json`. */
export type { ImageRecord, ImageStoreOptions } from './store.ts';
export { ImageStore } from './store.ts';
