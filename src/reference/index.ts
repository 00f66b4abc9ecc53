/**
 * Image references `[domain/]path[:tag][@digest]`, parsed and normalised exactly as
 * github.com/distribution/reference does (the docker CLI, containerd and BuildKit share it).
 * Pure functions, no I/O. Every parse error is a `DrayError` with code
 * `DRAY_INVALID_REFERENCE` and distribution's message.
 */
export { familiarMatch, familiarMatcher } from './match.ts';
export type { Reference } from './reference.ts';
export {
  defaultDomain,
  defaultTag,
  familiarName,
  familiarString,
  isValidTag,
  legacyDefaultDomain,
  maxPathLength,
  normalizeReference,
  officialRepoPrefix,
  parseAnyReference,
  parseCanonicalReference,
  parseDockerRef,
  parseRawName,
  parseRawReference,
  parseReference,
  referenceString,
  repositoryName,
  withDigest,
  withTag,
} from './reference.ts';
