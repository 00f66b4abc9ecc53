import { randomBytes } from 'node:crypto';
import { mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

/**
 * A lease marks "this process is writing content that no image references yet" (a pull in
 * flight). Garbage collection keeps every blob committed after the oldest live lease
 * started, so a prune running beside a pull never deletes what the pull just stored
 * (containerd solves the same race with leases in its metadata store).
 */
export interface Lease {
  release(): Promise<void>;
}

function leaseDir(root: string): string {
  return join(root, 'leases');
}

/** Takes a lease in the data root; release it when the work is referenced or abandoned. */
export async function acquireLease(root: string): Promise<Lease> {
  const dir = leaseDir(root);
  await mkdir(dir, { recursive: true });
  const name = `${process.pid}-${randomBytes(6).toString('hex')}.json`;
  const tmp = join(dir, `.${name}.tmp`);
  await writeFile(tmp, JSON.stringify({ pid: process.pid, started: Date.now() }));
  await rename(tmp, join(dir, name));
  return { release: () => rm(join(dir, name), { force: true }) };
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * The start time (epoch ms) of the oldest live lease, or undefined when none is held.
 * Leases of dead processes are removed on the way.
 */
export async function oldestLiveLease(root: string): Promise<number | undefined> {
  let names: string[];
  try {
    names = await readdir(leaseDir(root));
  } catch {
    return undefined;
  }
  let oldest: number | undefined;
  for (const name of names) {
    if (!name.endsWith('.json') || name.startsWith('.')) continue;
    const path = join(leaseDir(root), name);
    try {
      const { pid, started } = JSON.parse(await readFile(path, 'utf8')) as { pid: number; started: number };
      if (!isAlive(pid)) {
        await rm(path, { force: true });
        continue;
      }
      oldest = oldest === undefined ? started : Math.min(oldest, started);
    } catch {
      // A lease file that vanished or is unreadable protects nothing.
    }
  }
  return oldest;
}
