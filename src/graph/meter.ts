import { Transform, type TransformCallback } from 'node:stream';
import type { ProgressEvent, ProgressWriter } from '../progress/index.ts';

/**
 * A pass-through that reports bytes seen as `current` of `total`, at most every
 * `intervalMs` (renderers merge by id anyway; this only saves work on fast local copies).
 */
export function meter(
  w: ProgressWriter | undefined,
  base: ProgressEvent,
  o: { offset?: number; intervalMs?: number } = {},
): Transform {
  let current = o.offset ?? 0;
  let last = 0;
  const interval = o.intervalMs ?? 100;
  return new Transform({
    transform(chunk: Buffer, _enc, cb: TransformCallback) {
      current += chunk.byteLength;
      const now = Date.now();
      if (w && now - last >= interval) {
        last = now;
        w.write({ ...base, current });
      }
      cb(null, chunk);
    },
    flush(cb: TransformCallback) {
      w?.write({ ...base, current });
      cb();
    },
  });
}
