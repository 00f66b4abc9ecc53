import type { TestContext } from 'node:test';
import { writeDiff, writeLayerTo } from '../../src/archive/index.ts';
import { ContentStore } from '../../src/content/index.ts';
import { emptyImageConfig, ImageStore, writeImage } from '../../src/image/index.ts';
import { type Descriptor, hostPlatform } from '../../src/oci/index.ts';
import { busyboxImageDir } from './docker-engine.ts';

/**
 * Stores a one-layer busybox image (from the host's busybox-static, no network) in the data
 * root `root` under `name`, as if it had been pulled: what build tests use as a base image.
 */
export async function storeBusyboxImage(
  t: Pick<TestContext, 'after'>,
  root: string,
  name = 'docker.io/library/busybox:latest',
  o: { extraFiles?: (dir: string) => Promise<void> } = {},
): Promise<{ name: string; descriptor: Descriptor; rootfs: string }> {
  const rootfs = await busyboxImageDir(t);
  await o.extraFiles?.(rootfs);
  const content = await ContentStore.open(root);
  const images = await ImageStore.open(root);
  const blob = await content.newBlob();
  const layer = await writeLayerTo(
    writeDiff({ kind: 'trees', upper: rootfs }, { compression: 'gzip' }),
    blob,
  );
  await blob.commit();
  const config = emptyImageConfig(hostPlatform());
  config.config = { Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'], Cmd: ['sh'] };
  config.rootfs = { type: 'layers', diff_ids: [layer.diffId] };
  config.history = [{ created: '2024-01-01T00:00:00Z', created_by: 'busybox-static rootfs' }];
  const descriptor = await writeImage(content, { config, layers: [layer.descriptor] });
  await images.tag(name, descriptor);
  return { name, descriptor, rootfs };
}
