import { snapshotterSuite } from './testsuite.ts';

// The copying fallback: no mounts, works anywhere.
snapshotterSuite('copy');
