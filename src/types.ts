/** A source of time in milliseconds. Inject a fake one in tests (see `FakeClock` in `aspect-cache/testing`). */
export interface Clock {
  /** Current time in milliseconds on a monotonic-enough scale (default `Date.now()`). */
  now(): number;
}

/** The default clock: `Date.now()`. */
export const systemClock: Clock = { now: () => Date.now() };

/** A minimal logger; `console` fits. */
export interface Logger {
  debug?(message: string, data?: unknown): void;
  warn(message: string, data?: unknown): void;
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
  hit: { key: string };
  miss: { key: string };
  set: { key: string; dependencies: readonly string[]; expiresAt: number };
  /** `detail`, when the backend gives one, says why in words (e.g. which value could not be serialized). */
  skip: { key: string; reason: SkipReason; detail?: string };
  invalidate: { keys: readonly string[]; entries: readonly string[] };
  evict: { key: string; reason: 'evict' | 'expire' };
  error: { error: unknown; key?: string; operation: string };
  failsafe: { key: string; error: unknown };
  circuit: { state: 'open' | 'half-open' | 'closed'; backend: string };
  /**
   * A layered backend dropped its local cache (L1) because it may have missed an invalidation: its bus
   * subscription was lost (`disconnected`), it heard nothing of its own for two heartbeats (`silence`), a
   * sender's messages had a gap (`gap`), a sender went silent (`sender-silent`), or a foreign payload appeared.
   */
  resync: { reason: ResyncReason; backend: string };
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
