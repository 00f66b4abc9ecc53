import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { isCI } from '../../test/harness/tools.ts';
import { createSnapshotter } from './index.ts';
import { snapshotterSuite } from './testsuite.ts';

// Real overlayfs mounts: needs root. Off CI, a machine without overlayfs skips loudly; under
// CI=true it fails.
snapshotterSuite('overlay');

test('auto picks overlay where a real overlay mount works', async (t) => {
  const root = await mkdtemp(join(tmpdir(), 'dray-snap-auto-'));
  t.after(() => rm(root, { recursive: true, force: true }));
  const s = await createSnapshotter(root, {});
  if (s.kind !== 'overlay' && !isCI()) {
    const why = await createSnapshotter(root, { kind: 'overlay' }).catch((e: Error) => e.message);
    process.stderr.write(`# SKIP ${t.fullName}: ${String(why)}\n`);
    return t.skip(String(why));
  }
  assert.equal(s.kind, 'overlay');
});
