// Keeps a streaming command's memory flat. Every chunk of a blob that streams through leaves an
// ArrayBuffer behind, and V8 frees those only in a full collection, which it starts once about
// 64 MB of them have piled up, whatever else the heap holds. So a transfer of any size peaked
// at start-up + ~64 MB + what was in flight, and where in that range depended on when other
// allocations happened to trigger collections (a smaller start-up heap once raised an unpack's
// peak by 25 MB). This starts a collection once 32 MB have piled up: peaks stay under 150 MB.
// A full collection of dray's small heap takes ~10 ms; commands whose main thread waits on the
// network, the disk or worker threads (pull, push, save, layer creation) do not notice it, and
// an unpack or export of the 370 MB bench image pays ~0.1 s.
// Plain JS beside bin/dray.js: process policy of the executable, not of the library.
import { getHeapStatistics } from 'node:v8';

/**
 * Starts watching external memory every `intervalMs`; needs `--expose-gc` (bin/dray.js's
 * shebang gives it) and does nothing without. Returns a function that stops it. The timer
 * never keeps the process alive.
 */
export function startMemoryGovernor({ limitBytes = 32 << 20, intervalMs = 10 } = {}) {
  const gc = globalThis.gc;
  if (typeof gc !== 'function') return () => {};
  const external = () => getHeapStatistics().external_memory;
  let low = external();
  const timer = setInterval(() => {
    const now = external();
    if (now < low) low = now;
    else if (now - low > limitBytes) {
      gc();
      low = external();
    }
  }, intervalMs);
  timer.unref();
  return () => clearInterval(timer);
}
