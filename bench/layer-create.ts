/**
 * Layer creation for the `layer` benchmark, timed as a whole process like the CLI:
 * `node --max-semi-space-size=1 bench/layer-create.ts <tree> <out.tar.gz>` diffs <tree>
 * against an empty lower (`writeDiff({ kind: 'trees', upper })`), gzip level 6, writes the
 * blob to <out.tar.gz> and prints one JSON line: diffID, digest, sizes.
 */
import { createWriteStream } from 'node:fs';
import { writeDiff } from '../src/archive/diff.ts';
import { writeLayerTo } from '../src/archive/layer-writer.ts';

const [upper, out] = process.argv.slice(2);
if (upper === undefined || out === undefined) {
  process.stderr.write('usage: layer-create.ts <tree> <out.tar.gz>\n');
  process.exit(2);
}
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
