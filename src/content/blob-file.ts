import { constants as fsc } from 'node:fs';
import * as fs from 'node:fs/promises';
import type { Readable } from 'node:stream';
import type { Digest } from '../digest/index.ts';
import { DrayError, throwIfAborted } from '../errors.ts';
import type { RunOptions } from '../progress/index.ts';
import { errnoCode } from './fs-errors.ts';

export interface OpenBlobFileOptions extends RunOptions {
  offset?: number;
  /** Where the blob was looked for, for the "blob unknown" message (e.g. `OCI layout /x`). */
  where?: string;
  /** Hint for a symlink or non-regular file found in place of the blob. */
  tamperedHint?: string;
  /** Wraps any other I/O error (store or layout wording). */
  wrap: (e: unknown, what: string) => DrayError;
}

/**
 * Opens the blob file `path` holding `d` for streaming from `offset`, refusing what a
 * tampered store could plant there: a symlink (O_NOFOLLOW) or anything not a regular file,
 * and a file whose size is not the descriptor's. Shared by the content store and the OCI
 * layout. The stream is not verified. Does I/O.
 * @throws DRAY_BLOB_UNKNOWN, DRAY_STORE, DRAY_SIZE_MISMATCH, DRAY_INVALID_ARGUMENT (offset), DRAY_ABORTED.
 */
export async function openBlobFile(
  path: string,
  d: { digest: Digest; size?: number },
  o: OpenBlobFileOptions,
): Promise<Readable> {
  throwIfAborted(o.signal, `reading blob ${d.digest}`);
  let fh: fs.FileHandle;
  try {
    fh = await fs.open(path, fsc.O_RDONLY | fsc.O_NOFOLLOW);
  } catch (e) {
    const code = errnoCode(e);
    if (code === 'ENOENT') {
      throw new DrayError(
        'DRAY_BLOB_UNKNOWN',
        `blob unknown: ${d.digest}${o.where ? ` is not in ${o.where}` : ''}`,
        {
          cause: e,
        },
      );
    }
    if (code === 'ELOOP') {
      throw new DrayError('DRAY_STORE', `refusing to read blob ${d.digest}: ${path} is a symlink`, {
        cause: e,
        ...(o.tamperedHint ? { hint: o.tamperedHint } : {}),
      });
    }
    throw o.wrap(e, `cannot open blob ${d.digest}`);
  }
  try {
    const st = await fh.stat();
    if (!st.isFile()) {
      throw new DrayError('DRAY_STORE', `refusing to read blob ${d.digest}: ${path} is not a regular file`, {
        ...(o.tamperedHint ? { hint: o.tamperedHint } : {}),
      });
    }
    if (d.size !== undefined && d.size !== st.size) {
      throw new DrayError(
        'DRAY_SIZE_MISMATCH',
        `blob ${d.digest}: stored size ${st.size} does not match the descriptor's ${d.size}`,
      );
    }
    const offset = o.offset ?? 0;
    if (!Number.isSafeInteger(offset) || offset < 0 || offset > st.size) {
      throw new DrayError(
        'DRAY_INVALID_ARGUMENT',
        `blob ${d.digest}: offset ${offset} outside 0..${st.size}`,
      );
    }
    return fh.createReadStream({
      start: offset,
      highWaterMark: 1 << 20, // large reads: fewer syscalls and buffers per blob
      autoClose: true,
      ...(o.signal ? { signal: o.signal } : {}),
    });
  } catch (e) {
    await fh.close();
    throw e;
  }
}
