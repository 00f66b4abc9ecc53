/**
 * Layer creation for the `layer` benchmark, timed as a whole process like the CLI:
 * `node --max-semi-space-size=1 --expose-gc bench/layer-create.ts <tree> <out.tar.gz>` diffs <tree>
 * against an empty lower (`writeDiff({ kind: 'trees', upper })`), gzip level 6, writes the
 * blob to <out.tar.gz> and prints one JSON line: diffID, digest, sizes.
 */
import { createWriteStream } from 'node:fs';
// @ts-expect-error: plain JS beside bin/dray.js, without type declarations
import { startMemoryGovernor } from '../bin/memory-governor.js';
import { writeDiff } from '../src/archive/diff.ts';
import { writeLayerTo } from '../src/archive/layer-writer.ts';

const [upper, out] = process.argv.slice(2);
if (upper === undefined || out === undefined) {
  process.stderr.write('usage: layer-create.ts <tree> <out.tar.gz>\n');
  process.exit(2);
}
// as bin/dray.js does (run with --expose-gc)
startMemoryGovernor();
const writer = writeDiff({ kind: 'trees', upper }, { compression: 'gzip', level: 6 });
const r = await writeLayerTo(writer, createWriteStream(out));
process.stdout.write(
  `${JSON.stringify({
    diffId: r.diffId,
    digest: r.descriptor.digest,
    size: r.descriptor.size,
    uncompressedSize: r.uncompressedSize,
  })}\n`,
);
