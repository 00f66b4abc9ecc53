import assert from 'node:assert/strict';
import { test } from 'node:test';
import { digestOf } from '../digest/index.ts';
import type { HistoryEntry } from '../oci/index.ts';
import {
  emptyImageConfig,
  mutateImageConfig,
  normalizeLayersAndHistory,
  patchImageConfig,
} from './config.ts';

test('emptyImageConfig is what BuildKit starts FROM scratch with', () => {
  assert.deepEqual(emptyImageConfig({ os: 'linux', architecture: 'arm', variant: 'v7' }), {
    architecture: 'arm',
    os: 'linux',
    variant: 'v7',
    config: { Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'], WorkingDir: '/' },
    rootfs: { type: 'layers', diff_ids: [] },
  });
  assert.deepEqual(emptyImageConfig({ os: 'windows', architecture: 'amd64' }).config, { WorkingDir: '/' });
});

const t1 = '2024-01-01T00:00:00Z';
const t2 = '2024-02-01T00:00:00Z';
const t3 = '2024-03-01T00:00:00Z';

test('normalizeLayersAndHistory adds entries for extra layers', () => {
  const h = normalizeLayersAndHistory(
    [{ created: t1, created_by: 'base' }],
    [{ created: t1 }, { created: t2, description: 'COPY x' }],
  );
  assert.deepEqual(h, [
    { created: t1, created_by: 'base' },
    { created: t2, created_by: 'COPY x', comment: 'buildkit.exporter.image.v0' },
  ]);
});

test('normalizeLayersAndHistory marks surplus entries empty from the bottom up', () => {
  const h = normalizeLayersAndHistory(
    [
      { created: t1, created_by: 'a' },
      { created: t2, created_by: 'b' },
      { created: t3, created_by: 'c' },
    ],
    [{ created: t1 }],
  );
  assert.deepEqual(
    h.map((x) => [x.created_by, Boolean(x.empty_layer)]),
    [
      ['a', false],
      ['b', true],
      ['c', true],
    ],
  );
});

test('normalizeLayersAndHistory fills missing times from layers, then from the first new time', () => {
  const history: HistoryEntry[] = [
    { created: t1, created_by: 'base layer' },
    { created_by: 'ENV a=b', empty_layer: true },
    { created_by: 'RUN make' },
    { created_by: 'CMD x', empty_layer: true },
  ];
  const h = normalizeLayersAndHistory(history, [{ created: t1 }, { created: t3 }]);
  assert.deepEqual(
    h.map((x) => x.created),
    [t1, t3, t3, t3],
  );
});

test('patchImageConfig sets rootfs, clamps to SOURCE_DATE_EPOCH, keeps base history and unknown fields', () => {
  const base: HistoryEntry[] = [{ created: t3, created_by: 'base' }];
  const d = digestOf('layer');
  const out = patchImageConfig(
    { ...emptyImageConfig({ os: 'linux', architecture: 'amd64' }), created: t3, 'moby.extra': 1 },
    {
      diffIds: [d],
      history: [...base, { created: t3, created_by: 'RUN x' }],
      baseHistory: base,
      sourceDateEpoch: Date.parse(t2) / 1000,
    },
  );
  assert.deepEqual(out.rootfs, { type: 'layers', diff_ids: [d] });
  assert.deepEqual(
    out.history?.map((h) => h.created),
    [t3, t2],
  );
  assert.equal(out.created, t2);
  assert.equal(out['moby.extra'], 1);
  const noCreated = patchImageConfig(emptyImageConfig({ os: 'linux', architecture: 'amd64' }), {
    diffIds: [],
    history: [{ created: t1 }, { created: t2, empty_layer: true }],
  });
  assert.equal(noCreated.created, t2);
});

test('mutateImageConfig replaces env keys in place, and an entrypoint clears the inherited cmd', () => {
  const c = mutateImageConfig(
    {
      ...emptyImageConfig({ os: 'linux', architecture: 'amd64' }),
      config: { Env: ['A=1', 'B=2'], Cmd: ['sh'], Labels: { x: '1' } },
    },
    { env: ['B=3', 'C=4'], entrypoint: ['/bin/app'], user: '1000', workdir: '/app', labels: { y: '2' } },
  );
  assert.deepEqual(c.config, {
    Env: ['A=1', 'B=3', 'C=4'],
    Cmd: null,
    Entrypoint: ['/bin/app'],
    User: '1000',
    WorkingDir: '/app',
    Labels: { x: '1', y: '2' },
  });
  assert.deepEqual(mutateImageConfig(c, { cmd: ['--help'] }).config?.Cmd, ['--help']);
});
