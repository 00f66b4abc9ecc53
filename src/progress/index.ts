/**
 * progress: the event stream every long step reports through, the writers passed around in
 * `RunOptions.progress`, and the renderers `cli` draws it with.
 */

export {
  ansi,
  barWidth,
  createPlainRenderer,
  createRawJsonRenderer,
  createRenderer,
  createTtyRenderer,
  humanSize,
  progressText,
  type RendererKind,
  type RenderOptions,
  shortId,
} from './render/index.ts';
export type { ProgressEvent, ProgressKind, ProgressWriter, RunOptions } from './types.ts';
export {
  type CollectedProgress,
  collectProgress,
  type MergeProgressOptions,
  type MergingWriter,
  mergeEvent,
  mergeProgress,
  noProgress,
  type OneOffOptions,
  oneOff,
  prefixed,
  step,
  tee,
} from './writer.ts';
