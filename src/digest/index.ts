export type { Digest, DigestAlgorithm } from './digest.ts';
export {
  Digester,
  digestAlgorithm,
  digestHex,
  digestOf,
  isDigest,
  parseDigest,
  shortDigest,
} from './digest.ts';
export type { ExpectedContent } from './verify.ts';
export { verifyBlob } from './verify.ts';
