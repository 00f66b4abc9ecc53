// bin/memory-governor.js: with the governor, 400 MB of 1 MiB buffers dropped one after another
// never pile up past its limit plus a few in flight; without it (the control), V8 lets ~64 MB
// or more pile up. Run in child processes, since the governor needs --expose-gc.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const governor = fileURLToPath(new URL('../../bin/memory-governor.js', import.meta.url));

/** Peak external memory (MB) while 400 MiB of buffers are made and dropped, ~1 MiB a millisecond. */
function peakExternalMb(withGovernor: boolean): number {
  const script = `
    import { getHeapStatistics } from 'node:v8';
    const { startMemoryGovernor } = await import(${JSON.stringify(governor)});
    if (${withGovernor}) startMemoryGovernor();
    let peak = 0, keep = [];
    for (let i = 0; i < 400; i++) {
      keep.push(Buffer.allocUnsafeSlow(1 << 20).fill(i));
      if (keep.length > 4) keep.shift();
      peak = Math.max(peak, getHeapStatistics().external_memory);
      // about the pace of a fast stream: 1 MiB a millisecond
      await new Promise((r) => setTimeout(r, 1));
    }
    console.log(Math.round(peak / 2 ** 20));
  `;
  const out = execFileSync(process.execPath, ['--expose-gc', '--input-type=module', '-e', script], {
    encoding: 'utf8',
  });
  return Number(out.trim());
}

test('memory governor: dropped buffers never pile up past its limit', () => {
  const governed = peakExternalMb(true);
  const control = peakExternalMb(false);
  assert.ok(governed < 66, `with the governor: ${governed} MB`);
  assert.ok(control >= governed + 12, `without: ${control} MB, with: ${governed} MB`);
});
