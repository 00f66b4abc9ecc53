/**
 * content: the content-addressable blob store on disk (verified, atomic, resumable ingest;
 * safe under concurrent processes), and the cross-process locks other stores share.
 * The conformance suite `blobTargetSuite` lives in `./testsuite.ts` and is imported by tests
 * directly, so the library never loads `node:test`.
 */

export { type OpenBlobFileOptions, openBlobFile } from './blob-file.ts';
export type { IngestWriter } from './ingest.ts';
export type { FileLock, LockOptions } from './lock.ts';
export { acquireLock, DEFAULT_LOCK_STALE_MS, tryLock } from './lock.ts';
export { NewBlobWriter } from './new-blob.ts';
export type { BlobInfo, ContentInfo, ContentStoreOptions, IngestOptions } from './store.ts';
export { ContentStore } from './store.ts';
