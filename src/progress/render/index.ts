import type { ProgressWriter } from '../types.ts';
import { noProgress } from '../writer.ts';
import { createPlainRenderer, type RenderOptions } from './plain.ts';
import { createRawJsonRenderer } from './rawjson.ts';
import { createTtyRenderer } from './tty.ts';

/** The displays `--progress` chooses from (BuildKit's progressui modes). */
export type RendererKind = 'tty' | 'plain' | 'rawjson' | 'quiet';

/**
 * A writer that draws progress on `out`: 'tty' redraws in place, 'plain' writes lines for
 * logs, 'rawjson' one JSON event per line, 'quiet' nothing. Closing it draws the final state;
 * it never ends `out`. Only `cli` picks the kind (it alone knows whether `out` is a TTY).
 */
export function createRenderer(
  kind: RendererKind,
  out: NodeJS.WritableStream,
  o: RenderOptions = {},
): ProgressWriter {
  switch (kind) {
    case 'tty':
      return createTtyRenderer(out, o);
    case 'plain':
      return createPlainRenderer(out, o);
    case 'rawjson':
      return createRawJsonRenderer(out, o);
    case 'quiet':
      return { ...noProgress };
  }
}

export { barWidth, humanSize, progressText, shortId } from './format.ts';
export type { RenderOptions } from './plain.ts';
export { ansi } from './tty.ts';
export { createPlainRenderer, createRawJsonRenderer, createTtyRenderer };
