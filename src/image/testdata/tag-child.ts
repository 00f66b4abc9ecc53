// A second process for image.test.ts. Usage:
//   node tag-child.ts tag <root> <prefix> <count>   tags <prefix>-0 … <prefix>-<count-1>, prints "ok"
//   node tag-child.ts hold <root>                    takes the write lock, prints "ready", hangs
import type { Digest } from '../../digest/index.ts';
import { ImageStore } from '../store.ts';

const [mode, root, prefix, count] = process.argv.slice(2);
const store = await ImageStore.open(root!, { lockStaleMs: 2000 });
const target = {
  mediaType: 'application/vnd.oci.image.manifest.v1+json',
  digest: `sha256:${'ab'.repeat(32)}` as Digest,
  size: 123,
};
if (mode === 'tag') {
  process.stdout.write('start\n');
  for (let i = 0; i < Number(count); i++) await store.tag(`example.com/${prefix}:${i}`, target);
  process.stdout.write('ok\n');
} else if (mode === 'hold') {
  await store.update(async () => {
    process.stdout.write('ready\n');
    await new Promise(() => {});
  });
}
