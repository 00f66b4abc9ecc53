// The README quick start, with no network. It builds three images with `dray build`:
// examples/hello (FROM scratch), a busybox base from the host's static busybox, and
// examples/app on that base (RUN steps in runc); rebuilds the app (all CACHED), changes a
// file and rebuilds (dray says why the steps reran), shows `dray history`; then publishes
// the app to a throwaway local registry and pulls it back.
import { spawnSync } from 'node:child_process';
import { copyFile, cp, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startRegistry } from '../test/harness/registry.ts';

const cleanups: Array<() => unknown> = [];
const t = { after: (fn: () => unknown) => void cleanups.push(fn) };
const work = await mkdtemp(join(tmpdir(), 'dray-demo-'));
cleanups.push(() => rm(work, { recursive: true, force: true }));
const examples = join(import.meta.dirname, '..', 'examples');

function dray(...args: string[]): void {
  console.log(`\n$ dray ${args.join(' ')}`);
  const r = spawnSync(process.execPath, [join(import.meta.dirname, '..', 'bin', 'dray.js'), ...args], {
    stdio: 'inherit',
    env: { ...process.env, DRAY_ROOT: join(work, 'root'), DOCKER_CONFIG: join(work, 'docker-config') },
  });
  if (r.status !== 0) throw new Error(`dray ${args[0]} exited with ${r.status}`);
}

try {
  dray('build', '--progress=plain', '-t', 'hello', join(examples, 'hello'));
  const base = join(work, 'busybox');
  await cp(join(examples, 'busybox'), base, { recursive: true });
  await copyFile('/bin/busybox', join(base, 'busybox'));
  dray('build', '--progress=plain', '-t', 'local/busybox', base);
  const app = join(work, 'app');
  await cp(join(examples, 'app'), app, { recursive: true });
  dray('build', '--progress=plain', '-t', 'demo/app', app);
  dray('build', '--progress=plain', '-t', 'demo/app', app);
  await writeFile(join(app, 'todo.txt'), 'alpha\nbeta\n');
  dray('build', '--progress=plain', '-t', 'demo/app', app);
  dray('history');
  dray('images');
  const registry = await startRegistry(t);
  const ref = `${registry.host}/demo/app:latest`;
  dray('tag', 'demo/app', ref);
  dray('push', ref);
  dray('rmi', ref);
  dray('pull', ref);
} finally {
  for (const fn of cleanups.reverse()) await fn();
}
