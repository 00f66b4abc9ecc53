/**
 * snapshot: the layered filesystems build steps run in — overlayfs where the kernel allows
 * it, a copying fallback elsewhere — and the diff of a writable snapshot against its chain.
 * The conformance suite `snapshotterSuite` lives in `./testsuite.ts` and is imported by tests
 * directly, so the library never loads `node:test`.
 */

export { chainId } from './common.ts';
export { createSnapshotter } from './create.ts';
export type {
  ActiveSnapshot,
  LayerChain,
  OpenLayer,
  Snapshotter,
  SnapshotterKind,
  SnapshotterOptions,
  SnapshotView,
} from './types.ts';
