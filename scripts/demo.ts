// The README quick start, with no network: starts a throwaway Distribution registry on
// loopback, publishes a tiny image to it (busybox plus a greeting, written in-process and
// pushed with skopeo), then runs the dray CLI against it: pull, images, inspect, tag, push.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeOciLayout } from '../test/harness/oci-fixture.ts';
import { startRegistry } from '../test/harness/registry.ts';

const cleanups: Array<() => unknown> = [];
const t = { after: (fn: () => unknown) => void cleanups.push(fn) };
const work = await mkdtemp(join(tmpdir(), 'dray-demo-'));
cleanups.push(() => rm(work, { recursive: true, force: true }));

function dray(...args: string[]): void {
  console.log(`\n$ dray ${args.join(' ')}`);
  const r = spawnSync(process.execPath, [join(import.meta.dirname, '..', 'bin', 'dray.js'), ...args], {
    stdio: 'inherit',
    env: { ...process.env, DRAY_ROOT: join(work, 'root'), DOCKER_CONFIG: join(work, 'docker-config') },
  });
  if (r.status !== 0) throw new Error(`dray ${args[0]} exited with ${r.status}`);
}

try {
  const registry = await startRegistry(t);
  const files: Record<string, string | Buffer> = { 'hello.txt': 'Hello from dray!\n' };
  if (existsSync('/bin/busybox')) files['bin/busybox'] = readFileSync('/bin/busybox');
  const layout = await writeOciLayout(join(work, 'layout'), [files], {
    config: { config: { Cmd: ['/bin/busybox', 'cat', '/hello.txt'] } },
  });
  const ref = `${registry.host}/demo/hello:latest`;
  const copy = spawnSync('skopeo', [
    'copy',
    '-q',
    '--dest-tls-verify=false',
    `oci:${layout.ref}`,
    `docker://${ref}`,
  ]);
  if (copy.status !== 0) throw new Error(`skopeo copy failed: ${copy.stderr}`);
  console.log(`published ${ref} to a local registry`);
  dray('pull', ref);
  dray('images');
  dray('inspect', ref);
  dray('tag', ref, `${registry.host}/demo/copy:1.0`);
  dray('push', `${registry.host}/demo/copy:1.0`);
} finally {
  for (const fn of cleanups.reverse()) await fn();
}
