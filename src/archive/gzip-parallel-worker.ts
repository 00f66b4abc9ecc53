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
    // One output chunk big enough for any block (deflate's worst case is a few bytes per
    // 16 KiB over the input), handed over whole with the input block, which goes back to the
    // pool for reuse: this thread keeps no garbage, so its memory stays flat.
    // At least 64 KiB: smaller buffers come from Node's shared pool, which must not be transferred.
    const out = deflateBlock(
      job,
      Math.max(64 * 1024, job.data.byteLength + (job.data.byteLength >> 6) + 1024),
    );
    const outAb = out.buffer as ArrayBuffer;
    const inAb = job.data.buffer as ArrayBuffer;
    parentPort?.postMessage(
      {
        id: job.id,
        data: new Uint8Array(outAb, out.byteOffset, out.byteLength),
        input: new Uint8Array(inAb, job.data.byteOffset, job.data.byteLength),
      },
      outAb === inAb ? [outAb] : [outAb, inAb],
    );
  } catch (err) {
    parentPort?.postMessage({ id: job.id, error: String(err) });
  }
});

export function deflateBlock(job: Omit<Job, 'id'>, chunkSize?: number): Buffer {
  return deflateRawSync(job.data, {
    ...(chunkSize !== undefined ? { chunkSize } : {}),
    level: job.level,
    ...(job.dict && job.dict.length > 0 ? { dictionary: job.dict } : {}),
    // A sync flush byte-aligns the block end without a final bit; only the last block finishes.
    finishFlush: job.last ? constants.Z_FINISH : constants.Z_SYNC_FLUSH,
  });
}
