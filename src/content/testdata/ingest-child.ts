// A second process for content.test.ts. Usage:
//   node ingest-child.ts put <root> <seed> <size> <digest>
//   node ingest-child.ts partial <root> <ref> <seed> <size> <digest> <bytes>   (writes, says "ready", then hangs)

import type { Digest } from '../../digest/index.ts';
import { ContentStore } from '../store.ts';
import { generated } from './gen.ts';

const [mode, root, ...rest] = process.argv.slice(2);
const store = await ContentStore.open(root!, { lockStaleMs: 2000 });
if (mode === 'put') {
  const [seed, size, digest] = rest;
  process.stdout.write('start\n');
  await store.put({ digest: digest as Digest, size: Number(size) }, generated(Number(seed), Number(size)));
  process.stdout.write('ok\n');
} else if (mode === 'partial') {
  const [ref, seed, size, digest, bytes] = rest;
  const w = await store.ingest({ ref: ref!, expected: { digest: digest as Digest, size: Number(size) } });
  for await (const c of generated(Number(seed), Number(size), { to: Number(bytes) })) {
    if (!w.write(c)) await new Promise((r) => w.once('drain', r));
  }
  // Wait until every write reached the file before telling the parent to kill us.
  while (w.offset < Number(bytes)) await new Promise((r) => setTimeout(r, 5));
  process.stdout.write('ready\n');
  setInterval(() => {}, 1000);
}
