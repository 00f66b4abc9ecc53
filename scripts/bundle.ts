// Bundles the CLI into dist/ (`npm run bundle`; setup.sh runs it): one ESM file for the
// program and one per worker thread, already stripped of types, so a `dray` run loads four
// files instead of ~300 type-stripped modules (start-up ~0.35 s → ~0.1 s). bin/dray.js uses
// the bundle only while dist/stamp matches the sources (see bin/source-stamp.js).
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { sourceStamp } from '../bin/source-stamp.js';

const repo = fileURLToPath(new URL('..', import.meta.url));
const dist = join(repo, 'dist');
const stamp = sourceStamp(repo);
await rm(dist, { recursive: true, force: true });
await mkdir(dist, { recursive: true });
await build({
  entryPoints: {
    main: join(repo, 'scripts/bundle-entry.js'),
    'fs-worker': join(repo, 'src/solver/file/fs-worker.ts'),
    'gzip-parallel-worker': join(repo, 'src/archive/gzip-parallel-worker.ts'),
    'apply-worker': join(repo, 'src/archive/apply-worker.ts'),
  },
  outdir: dist,
  outExtension: { '.js': '.mjs' },
  bundle: true,
  splitting: false,
  format: 'esm',
  platform: 'node',
  target: 'node22',
  // Native code stays in node_modules.
  external: ['zstd-napi'],
  // No comments and no indentation: a third less text for V8 to read on every start (~7 ms,
  // ~3 MB), and no non-Latin-1 character from a comment forcing the whole source into a
  // two-byte string. Names stay, so stack traces still name the functions.
  minifyWhitespace: true,
  legalComments: 'none',
  // Bundled CommonJS dependencies call require(); give them one.
  banner: {
    js: "import { createRequire as __drayRequire } from 'node:module'; const require = __drayRequire(import.meta.url);",
  },
  logLevel: 'warning',
});
// The library for an installed package (package.json "exports"): Node strips no types inside
// node_modules, so a published dray runs this, with its dependencies left to npm. Workers are
// the files above, found beside it. Declarations: `npm pack` runs tsc -p tsconfig.build.json.
await build({
  entryPoints: { index: join(repo, 'src/index.ts') },
  outdir: dist,
  outExtension: { '.js': '.mjs' },
  bundle: true,
  format: 'esm',
  platform: 'node',
  target: 'node22',
  packages: 'external',
  logLevel: 'warning',
});
await writeFile(join(dist, 'stamp'), stamp);
console.log(`bundled dray into ${dist}`);
