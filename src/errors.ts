/**
 * Error codes raised by aspect-cache. Every {@link CachingError} carries one, so callers can branch on
 * `error.code` instead of parsing messages.
 */
export const errors = {
  /** A decorator was applied to something it does not support (a field, an accessor, a getter…). */
  E_DECORATOR_TARGET: 'E_DECORATOR_TARGET',
  /** An argument (or `this`) cannot be turned into a cache key. */
  E_UNKEYABLE: 'E_UNKEYABLE',
  /** An option has an invalid value or an invalid combination with another option. */
  E_INVALID_OPTION: 'E_INVALID_OPTION',
  /** `@InvalidateCache` cannot map the invalidating method's arguments to the target's parameters. */
  E_INVALIDATION_MAPPING: 'E_INVALIDATION_MAPPING',
  /** A cached method called itself (directly or through others) with the same key. */
  E_RECURSION: 'E_RECURSION',
  /** A synchronous method was cached on a backend that can only answer asynchronously. */
  E_SYNC_ON_ASYNC_BACKEND: 'E_SYNC_ON_ASYNC_BACKEND',
  /** `invalidateCall`/`refreshCall` was given a function that did not call a cached method. */
  E_NO_CACHED_CALL: 'E_NO_CACHED_CALL',
  /** A profile name was used that the service does not define. */
  E_UNKNOWN_PROFILE: 'E_UNKNOWN_PROFILE',
  /** The service or backend was used after `dispose()`. */
  E_DISPOSED: 'E_DISPOSED',
  /** A computation or backend operation exceeded its timeout. */
  E_TIMEOUT: 'E_TIMEOUT',
  /** A backend operation failed (the cause is attached). */
  E_BACKEND: 'E_BACKEND',
  /** A vary-by context is unknown, or its provider threw or returned an unkeyable value. */
  E_CONTEXT: 'E_CONTEXT',
  /** A feature needs an optional peer dependency that is not installed or cannot be loaded. */
  E_MISSING_PEER: 'E_MISSING_PEER',
} as const;

/** One of the {@link errors} codes. */
export type CachingErrorCode = (typeof errors)[keyof typeof errors];

/**
 * The one error type aspect-cache throws. Its message names the class, method, argument or option
 * involved and says how to fix it.
 */
export class CachingError extends Error {
  /** A stable code from {@link errors}. */
  readonly code: CachingErrorCode;

  constructor(code: CachingErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'CachingError';
    this.code = code;
  }
}
