import {
  type DiffSource,
  diffEntries,
  type LayerEntry,
  type LayerWriter,
  type WriteDiffOptions,
  writeLayer,
} from '../archive/index.ts';
import type { Digest } from '../digest/index.ts';

/** What one layer diff wrote, by path (relative, '/'-separated, as in the tar). */
export interface DiffRecord {
  /** Entries written whole (files, directories, links, devices). */
  written: Set<string>;
  /** Paths deleted by a `.wh.<name>` whiteout. */
  whiteouts: Set<string>;
  /** Directories marked opaque (`.wh..wh..opq`). */
  opaque: Set<string>;
}

const OPAQUE = '.wh..wh..opq';
const WH = '.wh.';

async function* recording(entries: AsyncIterable<LayerEntry>, rec: DiffRecord): AsyncGenerator<LayerEntry> {
  for await (const e of entries) {
    const name = e.header.name;
    const cut = name.lastIndexOf('/');
    const base = name.slice(cut + 1);
    const parent = cut < 0 ? '' : name.slice(0, cut);
    if (base === OPAQUE) rec.opaque.add(parent);
    else if (base.startsWith(WH))
      rec.whiteouts.add(cut < 0 ? base.slice(WH.length) : `${parent}/${base.slice(WH.length)}`);
    else rec.written.add(name);
    yield e;
  }
}

/**
 * `writeDiff(source, o)` that also records which paths the layer holds, and reports the
 * diffID with that record once the layer has been written whole (`onDone` runs before the
 * caller's `close()` resolves). No I/O of its own.
 */
export function recordedDiff(
  source: DiffSource,
  o: WriteDiffOptions,
  onDone: (diffId: Digest, rec: DiffRecord) => void,
): LayerWriter {
  const rec: DiffRecord = { written: new Set(), whiteouts: new Set(), opaque: new Set() };
  const w = writeLayer(recording(diffEntries(source, o), rec), o);
  w.close().then(
    (r) => onDone(r.diffId, rec),
    () => {}, // the caller sees the error on its own close()
  );
  return w;
}
