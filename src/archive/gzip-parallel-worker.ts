/**
 * Worker side of the parallel gzip compressor: raw-deflates one block primed with the
 * previous 32 KiB as dictionary. The output depends only on (data, dictionary, level, last).
 */
import { parentPort } from 'node:worker_threads';
import { constants, deflateRawSync } from 'node:zlib';

interface Job {
  id: number;
  data: Uint8Array;
  dict: Uint8Array | undefined;
  level: number;
  last: boolean;
}

parentPort?.on('message', (job: Job) => {
  try {
    const out = deflateBlock(job);
    const ab = out.buffer.slice(out.byteOffset, out.byteOffset + out.byteLength) as ArrayBuffer;
    parentPort?.postMessage({ id: job.id, data: new Uint8Array(ab) }, [ab]);
  } catch (err) {
    parentPort?.postMessage({ id: job.id, error: String(err) });
  }
});

export function deflateBlock(job: Omit<Job, 'id'>): Buffer {
  return deflateRawSync(job.data, {
    level: job.level,
    ...(job.dict && job.dict.length > 0 ? { dictionary: job.dict } : {}),
    // A sync flush byte-aligns the block end without a final bit; only the last block finishes.
    finishFlush: job.last ? constants.Z_FINISH : constants.Z_SYNC_FLUSH,
  });
}
