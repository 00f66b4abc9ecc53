#!/usr/bin/env -S node --max-semi-space-size=1 --expose-gc
// (The flag: blobs stream through as many 64 KiB buffers; a small young generation makes V8
// collect them sooner, which keeps peak memory flat — about 120 MB instead of 175 MB for a
// 250 MB pull — at no measurable cost in time. It must be given at start-up. --expose-gc is
// for the memory governor, see memory-governor.js.)
// The dray command. Sources run as TypeScript through Node's type stripping (Node >= 22.18).
import module from 'node:module';

// Cache compiled (and type-stripped) modules in the OS temp dir: halves start-up time and
// memory after the first run. Failure to cache is harmless.
module.enableCompileCache?.();
const { startMemoryGovernor } = await import('./memory-governor.js');
startMemoryGovernor();
const { main } = await import(await entry());

/**
 * The bundle in dist/ (scripts/bundle.ts) when it was built from exactly these sources, else
 * the sources themselves: loading ~300 modules and stripping their types costs ~0.25 s of
 * every run; the bundle is three files of plain JavaScript.
 */
async function entry() {
  const { existsSync } = await import('node:fs');
  // An installed package ships the bundle only (Node strips no types inside node_modules).
  if (!existsSync(new URL('../src/cli/main.ts', import.meta.url))) return '../dist/main.mjs';
  if (process.env.DRAY_FROM_SOURCE !== '1') {
    const { readFileSync } = await import('node:fs');
    const { fileURLToPath } = await import('node:url');
    const repo = fileURLToPath(new URL('..', import.meta.url));
    let stamp;
    try {
      stamp = readFileSync(new URL('../dist/stamp', import.meta.url), 'utf8');
    } catch {}
    if (stamp !== undefined) {
      const { stampMatches } = await import('./source-stamp.js');
      if (stampMatches(repo, stamp)) return '../dist/main.mjs';
    }
  }
  return '../src/cli/main.ts';
}

const controller = new AbortController();
let interrupted = 0;
process.on('SIGINT', () => {
  // First Ctrl-C cancels cleanly (partial ingests stay resumable); a second one exits now.
  if (++interrupted > 1) process.exit(130);
  controller.abort();
});
process.on('SIGTERM', () => controller.abort());

const code = await main(process.argv.slice(2), {
  stdout: process.stdout,
  stderr: process.stderr,
  stdin: process.stdin,
  env: process.env,
  isTTY: Boolean(process.stdout.isTTY),
  stdinIsTTY: Boolean(process.stdin.isTTY),
  signal: controller.signal,
});
process.exitCode = code;
