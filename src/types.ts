/** A source of time in milliseconds. Inject a fake one in tests (see `FakeClock` in `aspect-cache/testing`). */
export interface Clock {
  /** Current time in milliseconds on a monotonic-enough scale (default `Date.now()`). */
  now(): number;
}

/** The default clock: `Date.now()`. */
export const systemClock: Clock = { now: () => Date.now() };

/** A minimal logger; `console` fits. */
export interface Logger {
  /** Detailed tracing (optional): the service logs nothing at this level unless the logger has it. */
  debug?(message: string, data?: unknown): void;
  /** Something went wrong and was absorbed (a backend failure served from fail-safe, say); `data` has the details. */
  warn(message: string, data?: unknown): void;
  /** A failure that needs attention; `data` has the details (often the error itself). */
  error(message: string, data?: unknown): void;
}

/** A value or a promise of it. Backends that answer synchronously return plain values. */
export type MaybePromise<T> = T | Promise<T>;

/** Counters returned by `CachingService.stats()`. */
export interface CacheStats {
  /** Lookups answered from the cache. */
  hits: number;
  /** Lookups that ran the method (callers that joined a running computation are counted in `joins`). */
  misses: number;
  /** Callers that joined a computation already in flight for the same key (single-flight). */
  joins: number;
  /** Values stored. */
  sets: number;
  /** Values computed but not stored (stale after a concurrent invalidation, `undefined` not cached…). */
  skips: number;
  /** Calls to `invalidate`, `invalidateCall` and `@InvalidateCache` that reached the backends. */
  invalidations: number;
  /** Entries removed by invalidations. */
  invalidatedEntries: number;
  /** Errors reported through the `error` event (backend failures, throwing listeners…). */
  errors: number;
  /** Expired values served by fail-safe because recomputing them failed or exceeded the soft timeout. */
  failsafes: number;
}

/** The payload of each event emitted by `CachingService.on()`. */
export interface CacheEventMap {
  /** A call was served from the cache. */
  hit: {
    /** The entry key of the call. */
    key: string;
  };
  /** A call found no fresh entry and computes its value. */
  miss: {
    /** The entry key of the call. */
    key: string;
  };
  /** A computed value was stored. */
  set: {
    /** The entry key. */
    key: string;
    /** The keys the entry depends on (dependency keys and the entry keys of the cached calls it made). */
    dependencies: readonly string[];
    /** When the entry expires, in ms on the service's clock; `Infinity` for never. */
    expiresAt: number;
  };
  /** A computed value was returned but not stored; `reason` says why. */
  skip: {
    /** The entry key of the call. */
    key: string;
    /** Why the value was not stored. */
    reason: SkipReason;
    /** When the backend gives one, why in words (e.g. which value could not be serialized). */
    detail?: string;
  };
  /** An invalidation removed entries. */
  invalidate: {
    /** The keys that were invalidated (dependency keys or entry keys, as given). */
    keys: readonly string[];
    /** The entry keys that were removed, the dependents of `keys` included. */
    entries: readonly string[];
  };
  /** An entry left the cache on its own: evicted by a size bound, or expired. */
  evict: {
    /** The entry key. */
    key: string;
    /** `evict` (a size bound) or `expire` (its time was up). */
    reason: 'evict' | 'expire';
  };
  /** A failure the service absorbed (a backend call that failed or timed out, a throwing listener…). */
  error: {
    /** What was thrown. */
    error: unknown;
    /** The entry key concerned, when there is one. */
    key?: string;
    /** The operation that failed, e.g. `get`, `set` or `invalidate`. */
    operation: string;
  };
  /** A computation failed and fail-safe served the expired (stale) entry instead. */
  failsafe: {
    /** The entry key of the call. */
    key: string;
    /** The computation's error. */
    error: unknown;
  };
  /** A backend's circuit breaker changed state. */
  circuit: {
    /** The new state: `open` (calls fail fast), `half-open` (one probe goes through) or `closed` (healthy). */
    state: 'open' | 'half-open' | 'closed';
    /** The backend's name. */
    backend: string;
  };
  /**
   * A layered backend dropped its local cache (L1) because it may have missed an invalidation: its bus
   * subscription was lost (`disconnected`), it heard nothing of its own for two heartbeats (`silence`), a
   * sender's messages had a gap (`gap`), a sender went silent (`sender-silent`), or a foreign payload appeared.
   */
  resync: {
    /** Why the local cache was dropped. */
    reason: ResyncReason;
    /** The layered backend's name. */
    backend: string;
  };
}

/**
 * Why a layered backend dropped its local cache:
 * - `disconnected`: the bus reported its subscription lost;
 * - `silence`: the process heard nothing of its own on the bus for two heartbeats (a lost, stalled or
 *   lagging subscription, or publishes that fail);
 * - `gap`: a sender's sequence skipped a number (or an unknown sender was first heard mid-sequence);
 * - `sender-silent`: a known sender stopped heartbeating without saying goodbye (its last message may be lost);
 * - `foreign`: a payload on the channel was not a message of aspect-cache (it may have replaced one).
 */
export type ResyncReason = 'disconnected' | 'silence' | 'gap' | 'sender-silent' | 'foreign';

/** A cache event name. */
export type CacheEventName = keyof CacheEventMap;

/**
 * Why a computed value was not stored. `predicate`: the method's `shouldCache` option answered false for it (or
 * threw, or answered something other than a boolean — then an `error` event says why). `requested`: the
 * computation called `setCacheOptions({ skip: true })`. `first-call`: the first call of a method not declared `async` on an
 * asynchronous backend (it ran before a token could be taken, so its freshness cannot be proved). `context`:
 * the computation varies by a context (through a child, or `readContext`) whose value could not be read where
 * it is stored (no provider on this service, or the provider threw): the value is returned, never stored under
 * a key that would ignore the context.
 */
export type SkipReason = 'stale' | 'undefined' | 'disabled' | 'backend-error' | 'too-large' | 'not-serializable' | 'first-call' | 'context' | 'predicate' | 'requested';
