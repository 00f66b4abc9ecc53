export type { CopyGraphOptions, CopyGraphResult, TransferWords } from './copy.ts';
export { copyGraph } from './copy.ts';
export type { Handler } from './dispatch.ts';
export { dispatch, Limiter } from './dispatch.ts';
export { meter } from './meter.ts';
export { openResumable } from './resumable.ts';
