import { blobTargetSuite } from '../content/testsuite.ts';
import { createRegistryClient } from './client.ts';
import { startTestRegistry } from './test-registry.ts';

// The shared BlobTarget/BlobSource conformance suite, run against a Repository on the
// in-process test registry (cf. containerd's ContentSuite run against every store).
blobTargetSuite('registry Repository', async () => {
  const reg = await startTestRegistry();
  const client = createRegistryClient({ retry: { attempts: 2, minDelayMs: 1, maxDelayMs: 2 } });
  return {
    target: client.repository({ domain: reg.host, path: 'suite/repo' }),
    cleanup: async () => {
      await client.close();
      await reg.close();
    },
  };
});

blobTargetSuite('registry Repository, chunked uploads', async () => {
  const reg = await startTestRegistry();
  const client = createRegistryClient({
    retry: { attempts: 2, minDelayMs: 1, maxDelayMs: 2 },
    chunkSizeBytes: 64 * 1024,
  });
  return {
    target: client.repository({ domain: reg.host, path: 'suite/repo' }),
    cleanup: async () => {
      await client.close();
      await reg.close();
    },
  };
});
