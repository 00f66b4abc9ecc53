import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  bkBytes,
  fitWidth,
  formatG,
  goDurationSeconds,
  humanSize,
  logSeconds,
  progressText,
  shortId,
} from './format.ts';

test('humanSize matches docker go-units HumanSize (4 significant digits, decimal units)', () => {
  const table: Array<[number, string]> = [
    [0, '0B'],
    [1, '1B'],
    [999, '999B'],
    [1000, '1kB'],
    [1024, '1.024kB'],
    [12345, '12.35kB'],
    [999_999, '1000kB'],
    [1_000_000, '1MB'],
    [12_345_678, '12.35MB'],
    [50_000_000, '50MB'],
    [2_746_000_000, '2.746GB'],
    [1e12, '1TB'],
  ];
  for (const [n, want] of table) assert.equal(humanSize(n), want, `humanSize(${n})`);
});

test('humanSize with precision 3 (docker images)', () => {
  const table: Array<[number, string]> = [
    [0, '0B'],
    [999, '999B'],
    [1000, '1kB'],
    [12_345_678, '12.3MB'],
    [999_500, '1e+03kB'], // Go's %.3g switches to an exponent here, and so do we
  ];
  for (const [n, want] of table) assert.equal(humanSize(n, 3), want, `humanSize(${n}, 3)`);
});

test('formatG follows Go %g', () => {
  assert.equal(formatG(0.5, 4), '0.5');
  assert.equal(formatG(100, 4), '100');
  assert.equal(formatG(1.23456, 4), '1.235');
  assert.equal(formatG(12345, 3), '1.23e+04');
});

const bar = (steps: number) => `[${'='.repeat(steps)}>${' '.repeat(50 - steps)}] `;

test('progress bar at 0%, 50%, 100%, and unknown total', () => {
  assert.equal(progressText({ current: 0, total: 50_000_000 }), `${bar(0)}      0B/50MB`);
  assert.equal(progressText({ current: 25_000_000, total: 50_000_000 }), `${bar(25)}    25MB/50MB`);
  assert.equal(progressText({ current: 50_000_000, total: 50_000_000 }), `${bar(50)}    50MB/50MB`);
  assert.equal(progressText({ current: 12_345_678 }), ' 12.35MB');
  assert.equal(progressText({}), '');
  assert.equal(bar(0).length, 54);
});

test('progress bar details: 2 % steps, overshoot, narrow terminals, time left', () => {
  assert.equal(progressText({ current: 12_345_678, total: 50_000_000 }), `${bar(12)} 12.35MB/50MB`);
  assert.equal(progressText({ current: 3, total: 100 }), `${bar(1)}      3B/100B`);
  assert.equal(progressText({ current: 120, total: 100 }), `${bar(50)}    120B`);
  assert.equal(progressText({ current: 10, total: 100, columns: 80 }), '     10B/100B');
  // 10 of 100 bytes in 2 s: 18 s left; not shown in 50 columns or less, nor when done.
  const t = { started: 1_000_000, now: 1_002_000 };
  assert.equal(progressText({ current: 10, total: 100, ...t }), `${bar(5)}     10B/100B 18s`);
  assert.equal(progressText({ current: 1, total: 100, ...t, columns: 80 }), '      1B/100B 3m18s');
  assert.equal(progressText({ current: 1, total: 100, ...t, columns: 50 }), '      1B/100B');
  assert.equal(progressText({ current: 100, total: 100, ...t }), `${bar(50)}    100B/100B`);
});

test('goDurationSeconds prints as Go Duration', () => {
  assert.equal(goDurationSeconds(0), '0s');
  assert.equal(goDurationSeconds(59.9), '59s');
  assert.equal(goDurationSeconds(90), '1m30s');
  assert.equal(goDurationSeconds(7205), '2h0m5s');
});

test('shortId shows 12 hex digits of a digest', () => {
  assert.equal(shortId(`sha256:a3ed95caeb02${'f'.repeat(52)}`), 'a3ed95caeb02');
  assert.equal(shortId('send tarball'), 'send tarball');
});

test('BuildKit byte counts and log seconds', () => {
  assert.equal(bkBytes(37), '37B');
  assert.equal(bkBytes(1_050_000), '1.05MB');
  assert.equal(bkBytes(8_390), '8.39kB');
  assert.equal(bkBytes(2_000), '2kB');
  assert.equal(logSeconds(312), '0.312');
  assert.equal(logSeconds(12_345), '12.35');
  assert.equal(logSeconds(123_456), '123.5');
});

test('fitWidth counts wide characters as two columns', () => {
  assert.equal(fitWidth('abcdef', 4), 'abcd');
  assert.equal(fitWidth('日本語', 5), '日本');
  assert.equal(fitWidth('ab', 10), 'ab');
});
