import { DrayError } from '../errors.ts';

/** The errno code of a Node fs error, or undefined. */
export function errnoCode(e: unknown): string | undefined {
  return typeof e === 'object' && e !== null && 'code' in e && typeof e.code === 'string'
    ? e.code
    : undefined;
}

/**
 * Wraps a filesystem failure at the store boundary. A full disk (ENOSPC, EDQUOT) becomes
 * DRAY_NO_SPACE with a hint naming the store, since it is the one failure a user can fix
 * without reading the cause chain; everything else becomes DRAY_STORE. DrayErrors pass
 * through unchanged so the first, most precise wrap wins.
 */
export function storeError(e: unknown, what: string, root: string): DrayError {
  if (e instanceof DrayError) return e;
  const code = errnoCode(e);
  if (code === 'ENOSPC' || code === 'EDQUOT') {
    return new DrayError('DRAY_NO_SPACE', `${what}: no space left on device`, {
      cause: e,
      hint: `free space on the filesystem holding ${root}; interrupted ingests are kept and resume from their offset`,
    });
  }
  const message = e instanceof Error ? e.message : String(e);
  return new DrayError('DRAY_STORE', `${what}: ${message}`, { cause: e });
}
