import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

// The import graph rules of STYLE.md §5, enforced as crane's depcheck does: folders reach
// each other only through their index.ts, lower pipeline stages never import higher ones,
// and the CLI sees only the package root.

const src = fileURLToPath(new URL('../src/', import.meta.url));

/** Pipeline order: a folder may import only folders before it (and src/errors.ts). */
const order = [
  'digest',
  'progress',
  'reference',
  'oci',
  'archive',
  'content',
  'image',
  'registry',
  'graph',
  'layout',
  'exporter',
  'snapshot',
  'executor',
  'solver',
  'cache',
  'frontend',
  'verbs',
  'cli',
];

async function sources(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...(await sources(p)));
    else if (
      e.name.endsWith('.ts') &&
      !e.name.endsWith('.test.ts') &&
      !['testsuite.ts', 'testing.ts', 'test-registry.ts'].includes(e.name) &&
      !p.includes(`${sep}testdata${sep}`)
    )
      out.push(p);
  }
  return out;
}

function folderOf(file: string): string {
  const rel = relative(src, file);
  return rel.includes(sep) ? rel.split(sep)[0]! : '';
}

test('imports follow the pipeline and go through index.ts', async () => {
  const problems: string[] = [];
  for (const file of await sources(src)) {
    const text = await readFile(file, 'utf8');
    const from = folderOf(file);
    for (const m of text.matchAll(/^(?:import|export)[^'"]*from\s+'(\.[^']+)'/gm)) {
      const target = resolve(dirname(file), m[1]!);
      const to = folderOf(target);
      const where = `${relative(src, file)} → ${relative(src, target)}`;
      if (to === from) continue;
      if (from === 'cli') {
        if (relative(src, target) !== 'index.ts')
          problems.push(`${where}: the CLI imports only src/index.ts`);
        continue;
      }
      if (to === '') {
        if (
          !['errors.ts', 'index.ts'].includes(relative(src, target)) ||
          (relative(src, target) === 'index.ts' && from !== '')
        )
          problems.push(`${where}: only src/errors.ts may be imported from the root`);
        continue;
      }
      if (!target.endsWith(`${sep}index.ts`))
        problems.push(`${where}: import another folder through its index.ts`);
      if (from !== '' && (!order.includes(from) || !order.includes(to)))
        problems.push(`${where}: add ${order.includes(from) ? to : from} to the pipeline order`);
      else if (from !== '' && order.indexOf(to) > order.indexOf(from))
        problems.push(`${where}: ${from} must not depend on ${to}`);
    }
  }
  assert.deepEqual(problems, []);
});
