import { randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import type { Writable } from 'node:stream';
import { finished } from 'node:stream/promises';
import type { Destination } from './types.ts';

/**
 * Runs `write` against the destination's stream. A file is written to a temp file beside it
 * and renamed into place only when everything succeeded, so a failed export never leaves a
 * half-written archive under the requested name.
 */
export async function writeToDestination(
  dest: Destination,
  write: (out: Writable) => Promise<void>,
): Promise<void> {
  if (dest.kind === 'stream') {
    await write(dest.stream);
    return;
  }
  const tmp = join(dirname(dest.path), `.${basename(dest.path)}.${randomBytes(6).toString('hex')}.tmp`);
  const out = createWriteStream(tmp, { flags: 'wx', highWaterMark: 1 << 20 });
  try {
    await write(out);
    if (!out.writableEnded) out.end();
    await finished(out);
    await rename(tmp, dest.path);
  } catch (e) {
    out.destroy();
    await rm(tmp, { force: true });
    throw e;
  }
}
