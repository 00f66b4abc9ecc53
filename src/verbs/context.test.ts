import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import type { Digest } from '../digest/index.ts';
import { isDrayError } from '../errors.ts';
import { ImageStore } from '../image/index.ts';
import { MediaTypes } from '../oci/index.ts';
import { resolveLocalImage } from './context.ts';

const desc = (hex: string) => ({
  mediaType: MediaTypes.ociManifest,
  digest: `sha256:${hex.padEnd(64, '0')}` as Digest,
  size: 100,
});

test('resolveLocalImage: name first, then a unique ID prefix; shared prefixes are ambiguous', async (t) => {
  const root = await mkdtemp(join(tmpdir(), 'dray-resolve-'));
  t.after(() => rm(root, { recursive: true, force: true }));
  const images = await ImageStore.open(root);
  await images.tag('docker.io/library/a:1', desc('abcd1111'));
  await images.tag('docker.io/library/a:2', desc('abcd1111')); // same image under two names
  await images.tag('docker.io/library/b:1', desc('abcd2222'));
  await images.tag('docker.io/library/abcd1:latest', desc('ffff'));

  const byId = await resolveLocalImage(images, 'abcd2');
  assert.equal(byId.root.digest, desc('abcd2222').digest);
  assert.equal(byId.name, 'docker.io/library/b:1');
  // two names of one image are one match
  assert.equal((await resolveLocalImage(images, 'sha256:abcd11')).root.digest, desc('abcd1111').digest);
  // a name wins over an ID prefix
  assert.equal((await resolveLocalImage(images, 'abcd1')).root.digest, desc('ffff').digest);
  // the whole digest, bare (not a valid name) or with sha256:
  assert.equal(
    (await resolveLocalImage(images, desc('abcd2222').digest.slice(7))).name,
    'docker.io/library/b:1',
  );
  await assert.rejects(
    resolveLocalImage(images, 'abcd'),
    (e) => isDrayError(e, 'DRAY_INVALID_ARGUMENT') && /ambiguous/.test(String(e)),
  );
  await assert.rejects(resolveLocalImage(images, 'abc'), (e) => isDrayError(e, 'DRAY_NOT_FOUND')); // too short for an ID
  await assert.rejects(resolveLocalImage(images, 'eeee'), (e) => isDrayError(e, 'DRAY_NOT_FOUND'));
  await assert.rejects(resolveLocalImage(images, 'e'.repeat(64)), (e) => isDrayError(e, 'DRAY_NOT_FOUND'));
  await assert.rejects(resolveLocalImage(images, 'Bad Name'), (e) =>
    isDrayError(e, 'DRAY_INVALID_REFERENCE'),
  );
});
