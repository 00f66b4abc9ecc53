import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs/promises';
import { dirname } from 'node:path';

/**
 * Writes `bytes` to `path` so that readers see the old file or the whole new one, and a crash
 * loses nothing committed: temp file in the same directory, fsync, rename. `sync: false`
 * skips the fsync for what is only diagnostics (build history): still never torn for
 * readers, but a crash may lose the newest version. Does I/O.
 */
export async function atomicWriteFile(
  path: string,
  bytes: Buffer | string,
  mode = 0o644,
  o: { sync?: boolean } = {},
): Promise<void> {
  await fs.mkdir(dirname(path), { recursive: true });
  const tmp = `${path}.tmp-${process.pid}-${randomBytes(6).toString('hex')}`;
  try {
    const fh = await fs.open(tmp, 'wx', mode);
    try {
      await fh.writeFile(bytes);
      if (o.sync !== false) await fh.sync();
    } finally {
      await fh.close();
    }
    await fs.rename(tmp, path);
  } catch (e) {
    await fs.rm(tmp, { force: true }).catch(() => {});
    throw e;
  }
}

/** Reads a JSON file; undefined when it does not exist or does not parse (a torn write of an older version). */
export async function readJsonFile<T>(path: string): Promise<T | undefined> {
  let text: string;
  try {
    text = await fs.readFile(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
  try {
    return JSON.parse(text) as T;
  } catch {
    return undefined;
  }
}
