import type { ProgressWriter } from '../types.ts';
import type { RenderOptions } from './plain.ts';

/**
 * The renderer for machines (`--progress=rawjson`): each event as one JSON object per line,
 * unmerged and unthrottled so no update and no final state is lost, with `timestamp` (epoch
 * ms) added when the writer left it out. Only `out.write`; `out` is never ended.
 */
export function createRawJsonRenderer(out: NodeJS.WritableStream, o: RenderOptions = {}): ProgressWriter {
  const now = o.now ?? Date.now;
  let closed = false;
  return {
    write(e) {
      if (closed) return;
      out.write(`${JSON.stringify({ ...e, timestamp: e.timestamp ?? now() })}\n`);
    },
    close() {
      closed = true;
    },
  };
}
