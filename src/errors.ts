/**
 * dray's one error type. Every failure a caller can act on is a `DrayError` with a stable
 * `code` (switch on it), a docker-worded `message` ("what failed: why", naming the ref,
 * digest or path) and an optional `hint` that says what to do. `cause` is always kept.
 * Messages and hints never contain credentials, tokens or signed URL queries.
 */

/** Stable error codes. Documented in docs/errors.md; never renamed, only added. */
export const ErrorCodes = [
  'DRAY_INVALID_ARGUMENT',
  'DRAY_INVALID_REFERENCE',
  'DRAY_INVALID_DIGEST',
  'DRAY_INVALID_PLATFORM',
  'DRAY_INVALID_MANIFEST',
  'DRAY_UNSUPPORTED_MEDIA_TYPE',
  'DRAY_DOCUMENT_TOO_LARGE',
  'DRAY_INVALID_ARCHIVE',
  'DRAY_UNSAFE_ARCHIVE',
  'DRAY_DIGEST_MISMATCH',
  'DRAY_SIZE_MISMATCH',
  'DRAY_NOT_FOUND',
  'DRAY_BLOB_UNKNOWN',
  'DRAY_MANIFEST_UNKNOWN',
  'DRAY_PLATFORM_NOT_FOUND',
  'DRAY_PULL_DENIED',
  'DRAY_PUSH_DENIED',
  'DRAY_UNAUTHORIZED',
  'DRAY_TOO_MANY_REQUESTS',
  'DRAY_REGISTRY_ERROR',
  'DRAY_REGISTRY_UNREACHABLE',
  'DRAY_INSECURE_REGISTRY',
  'DRAY_CREDENTIALS',
  'DRAY_CONFIG',
  'DRAY_STORE',
  'DRAY_STORE_LOCKED',
  'DRAY_NO_SPACE',
  'DRAY_DOCKERFILE',
  'DRAY_BUILD',
  'DRAY_EXEC_FAILED',
  'DRAY_RUNTIME',
  'DRAY_SNAPSHOT',
  'DRAY_ABORTED',
  'DRAY_INTERNAL',
] as const;

export type DrayErrorCode = (typeof ErrorCodes)[number];

export interface DrayErrorOptions extends ErrorOptions {
  hint?: string;
}

const brand = Symbol.for('dray.error');

export class DrayError extends Error {
  readonly code: DrayErrorCode;
  readonly hint?: string;

  constructor(code: DrayErrorCode, message: string, o?: DrayErrorOptions) {
    super(message, o?.cause === undefined ? undefined : { cause: o.cause });
    this.name = 'DrayError';
    this.code = code;
    if (o?.hint !== undefined) this.hint = o.hint;
    Object.defineProperty(this, brand, { value: true });
  }

  /** `instanceof` that also works across two copies of this module (undici's brand trick). */
  static override [Symbol.hasInstance](x: unknown): boolean {
    return typeof x === 'object' && x !== null && brand in x;
  }

  toJSON(): { name: string; code: DrayErrorCode; message: string; hint?: string } {
    return {
      name: this.name,
      code: this.code,
      message: this.message,
      ...(this.hint ? { hint: this.hint } : {}),
    };
  }
}

/** True when `e` is a DrayError, optionally with one of the given codes. */
export function isDrayError(e: unknown, ...codes: DrayErrorCode[]): e is DrayError {
  return e instanceof DrayError && (codes.length === 0 || codes.includes(e.code));
}

/** The error to throw when a signal fired: keeps `signal.reason` as the cause. */
export function abortError(signal: AbortSignal | undefined, what = 'operation'): DrayError {
  const reason: unknown = signal?.reason;
  if (reason instanceof DrayError) return reason;
  return new DrayError('DRAY_ABORTED', `${what} aborted`, { cause: reason });
}

/** Throws a DRAY_ABORTED error when the signal has already fired. */
export function throwIfAborted(signal: AbortSignal | undefined, what?: string): void {
  if (signal?.aborted) throw abortError(signal, what);
}
