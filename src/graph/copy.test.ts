import assert from 'node:assert/strict';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { test } from 'node:test';
import { OciLayout } from '../layout/index.ts';
import { makeImage, tempDir } from '../layout/testing.ts';
import type { BlobTarget, Descriptor } from '../oci/index.ts';
import type { RunOptions } from '../progress/index.ts';
import { copyGraph } from './copy.ts';

test('copyGraph tells the target a blob it found absent is absent, so the target does not ask twice', async (t) => {
  const dir = await tempDir(t);
  const img = await makeImage(join(dir, 'src'));
  const layout = await OciLayout.create(join(dir, 'dst'));
  const calls: string[] = [];
  const target: BlobTarget = {
    has: async (d: Descriptor, o?: RunOptions) => {
      calls.push(`has ${d.digest}`);
      return layout.has(d, o);
    },
    put: async (d: Descriptor, body: Readable, o?: RunOptions & { absent?: boolean }) => {
      calls.push(`put ${d.digest} absent=${o?.absent === true}`);
      return layout.put(d, body, o);
    },
  };
  const result = await copyGraph(img.store, target, img.manifest);
  assert.equal(result.copied.length, 3);
  for (const d of [img.config, ...img.layers]) {
    assert.deepEqual(
      calls.filter((c) => c.includes(d.digest)),
      [`has ${d.digest}`, `put ${d.digest} absent=true`],
    );
  }
  // Documents are put without the flag; a second copy finds everything and puts nothing.
  assert.ok(calls.includes(`put ${img.manifest.digest} absent=false`));
  calls.length = 0;
  await copyGraph(img.store, target, img.manifest);
  assert.deepEqual(
    calls.filter((c) => c.startsWith('put')),
    [],
  );
});
