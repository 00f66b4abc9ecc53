// docker's size, age and table formats.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ago, humanSize, table } from './format.ts';

test('humanSize: decimal units, 3 significant digits (docker units.HumanSize)', () => {
  const cases: Array<[number, string]> = [
    [0, '0B'],
    [999, '999B'],
    [1000, '1kB'],
    [1024, '1.02kB'],
    [12_345, '12.3kB'],
    [999_499, '999kB'],
    [1_000_000, '1MB'],
    [12_300_000, '12.3MB'],
    [50 * 1000 ** 2, '50MB'],
    [1.5 * 1000 ** 3, '1.5GB'],
    [2 * 1000 ** 4, '2TB'],
    [3 * 1000 ** 5, '3PB'],
    [4 * 1000 ** 6, '4000PB'],
  ];
  for (const [n, s] of cases) assert.equal(humanSize(n), s, String(n));
});

test('ago: docker HumanDuration + " ago"', () => {
  const now = Date.parse('2024-06-01T12:00:00Z');
  const at = (secondsBefore: number) => new Date(now - secondsBefore * 1000).toISOString();
  assert.equal(ago(undefined, now), 'N/A');
  assert.equal(ago('not a date', now), 'N/A');
  assert.equal(ago(at(0), now), 'Less than a second ago');
  assert.equal(ago(at(-30), now), 'Less than a second ago', 'future times clamp to now');
  assert.equal(ago(at(1), now), '1 second ago');
  assert.equal(ago(at(45), now), '45 seconds ago');
  assert.equal(ago(at(60), now), 'About a minute ago');
  assert.equal(ago(at(5 * 60), now), '5 minutes ago');
  assert.equal(ago(at(3600), now), 'About an hour ago');
  assert.equal(ago(at(5 * 3600), now), '5 hours ago');
  assert.equal(ago(at(3 * 86400), now), '3 days ago');
  assert.equal(ago(at(21 * 86400), now), '3 weeks ago');
  assert.equal(ago(at(90 * 86400), now), '3 months ago');
  assert.equal(ago(at(3 * 365 * 86400), now), '3 years ago');
  assert.equal(ago('1970-01-01T00:00:00Z', now), '54 years ago');
});

test('table: columns padded to the widest cell plus three spaces, no trailing blanks', () => {
  assert.equal(
    table(
      ['REPOSITORY', 'TAG', 'SIZE'],
      [
        ['busybox', 'latest', '2.15MB'],
        ['registry.example.com/team/app', '1', ''],
      ],
    ),
    [
      'REPOSITORY                      TAG      SIZE',
      'busybox                         latest   2.15MB',
      'registry.example.com/team/app   1',
    ].join('\n'),
  );
  assert.equal(table(['A', 'B'], []), 'A   B');
  assert.equal(table(['A', 'B'], [['x']]), 'A   B\nx');
});
