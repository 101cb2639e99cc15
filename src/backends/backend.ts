import type { Clock, MaybePromise, ResyncReason } from '../types.js';

/**
 * A stored entry as a backend returns it on a hit. Backends may return the same object on every hit:
 * callers must not mutate it.
 */
export interface CacheHit {
  /** Always `true`: tells a hit from a {@link CacheMiss}. */
  readonly hit: true;
  /** The cached value (already resolved for async methods). */
  readonly value: unknown;
  /** True if the method returned a promise: a hit must then be returned as a promise too. */
  readonly async: boolean;
  /** The keys this entry depends on (dependencies and child method keys, transitively). */
  readonly dependencies: readonly string[];
  /**
   * When the entry expires, absolute ms on the backend's clock; `Infinity` if never. Never later than the
   * expiry it was stored with; a backend whose clock is on another machine may report it slightly earlier.
   */
  readonly expiresAt: number;
  /**
   * The entry's sliding window in ms, when it has one (each hit extends it). A layered backend keeps such
   * entries out of its local cache, since a local hit would not extend the shared entry. Absent or 0: none.
   */
  readonly sliding?: number;
  /**
   * When the entry should be recomputed in the background (eager refresh), absolute ms on the backend's clock,
   * as it was stored ({@link CacheEntryInput.refreshAt}); absent when it was stored without one. A backend whose
   * clock is on another machine may report it slightly shifted, like `expiresAt`.
   */
  readonly refreshAt?: number | undefined;
}

/** A miss; `token` must be passed to `set` (or `abandon`) so the backend can refuse a stale write. */
export interface CacheMiss {
  /** Always `false`: tells a miss from a {@link CacheHit}. */
  readonly hit: false;
  /** Opaque marker of when the computation started (a sequence number, a Redis generation…). */
  readonly token: unknown;
  /**
   * The expired entry, when it was stored with `staleFor` and is still within that window: fail-safe may
   * serve it if recomputing fails. Never an invalidated entry.
   */
  readonly stale?: CacheHit | undefined;
}

/** What `get` answers. */
export type CacheLookup = CacheHit | CacheMiss;

/** What `set` stores. */
export interface CacheEntryInput {
  /** The value to store (already resolved for async methods). */
  readonly value: unknown;
  /** True if the method returned a promise; returned as {@link CacheHit.async} on hits. */
  readonly async: boolean;
  /**
   * The keys the entry depends on (dependencies and child method keys, transitively). The list is **closed**:
   * when it names the key of another entry (a child call), it also names that entry's dependencies — what the
   * service always passes, since a child hands its key and its dependencies up to its caller. A backend may
   * rely on it: invalidating a key must remove every entry whose list names it, and refuse every store whose
   * list names it, without following the chain through the dependents' own keys (RedisBackend does so; the
   * memory backend follows chains anyway).
   */
  readonly dependencies: readonly string[];
  /** Absolute expiry in ms on the backend's clock; `Infinity` for none. */
  readonly expiresAt: number;
  /** Sliding expiration window in ms (each hit pushes the expiry to `now + sliding`, capped by `expiresAt`); 0 for none. */
  readonly sliding: number;
  /**
   * Keep the entry this many ms after it expires, and return it as `stale` on a miss during that time
   * (fail-safe). 0 or absent: remove it at expiry.
   */
  readonly staleFor?: number;
  /**
   * When a hit should start refreshing the entry in the background (the service's `eagerRefresh`), absolute ms
   * on the backend's clock, before `expiresAt`; absent for none. Backends store it opaquely and return it on
   * every hit ({@link CacheHit.refreshAt}); it does not change when the entry expires.
   */
  readonly refreshAt?: number | undefined;
}

/**
 * What `set` did: `stored`, or why not — `stale` (the key or a dependency was invalidated after the token
 * was issued), `too-large` (over the backend's size limit), `not-serializable`, `backend-error` — or a
 * {@link StoreRefusal} that also says why in words (the `skip` event's `detail`).
 * `stored`, `too-large` and `not-serializable` also certify that neither the key nor a dependency was
 * invalidated since the token was issued (a backend checks that first): the service then hands the value to
 * callers that joined the computation. After `stale` or `backend-error` they compute on their own.
 */
export type StoreOutcome = 'stored' | 'stale' | 'too-large' | 'not-serializable' | 'backend-error' | StoreRefusal;

/** A refused store with an explanation, e.g. `{ reason: 'not-serializable', detail: 'an instance of Foo at .items[0] …' }`. */
export interface StoreRefusal {
  /** The outcome, as the plain {@link StoreOutcome} strings name it. */
  readonly reason: 'stale' | 'too-large' | 'not-serializable' | 'backend-error';
  /** Why, in words; the service passes it on as the `skip` event's `detail`. */
  readonly detail: string;
}

/** Options of {@link CachingBackend.invalidate}. */
export interface InvalidateOptions {
  /**
   * Keep the entries whose keys are listed (used by `refreshCall` after replacing an entry), but still
   * remove their dependents and still refuse in-flight writes that depend on them.
   */
  readonly preserveRoots?: boolean;
  /**
   * Also *hold* the listed keys for this many ms: until the hold ends (or a `release` of the keys), every store
   * (and `check`) whose key or dependencies include one of them is refused, whenever its token was issued —
   * across processes on a shared backend. Used by `CachingService.transaction`: the data behind the keys is
   * being changed by a database transaction that has not committed yet. A later invalidation without
   * `release` keeps the hold.
   */
  readonly holdMs?: number;
  /** End the holds on the listed keys (after invalidating them again, as any invalidation does). */
  readonly release?: boolean;
}

/** What an invalidation removed. */
export interface InvalidationResult {
  /** Keys of the entries removed, in removal order. */
  readonly removed: readonly string[];
  /**
   * True when the store could not be reached and the invalidation was queued for retry (it is never dropped,
   * and until it lands this backend does not serve the entries it affects). Absent or false: it landed.
   */
  readonly pending?: boolean;
}

/** Something a backend absorbed and wants reported: a failure it recovered from, a circuit breaker change. */
export type BackendEvent =
  /** A failure the backend absorbed (it answered a miss, or queued an invalidation for retry). */
  | {
      /** Tells the event kinds apart. */
      readonly type: 'error';
      /** What was thrown. */
      readonly error: unknown;
      /** The backend operation that failed, e.g. `get` or `invalidate`. */
      readonly operation: string;
    }
  /** The backend's circuit breaker changed state. */
  | {
      /** Tells the event kinds apart. */
      readonly type: 'circuit';
      /** The new state: `open` (calls fail fast), `half-open` (one probe goes through) or `closed`. */
      readonly state: 'open' | 'half-open' | 'closed';
    }
  /** A layered backend dropped its local cache because it may have missed an invalidation (see `LayeredBackend`). */
  | {
      /** Tells the event kinds apart. */
      readonly type: 'resync';
      /** Why the local cache was dropped. */
      readonly reason: ResyncReason;
    };

/** Why an entry left the backend on its own. */
export type RemovalReason = 'evict' | 'expire';

/** What {@link CachingBackend.subscribe} calls; both callbacks are optional. */
export interface BackendListener {
  /** An entry left on its own (not by `invalidate`, `set` or `clear`). */
  readonly onRemoval?: ((key: string, reason: RemovalReason) => void) | undefined;
  /** A failure the backend absorbed, or a circuit breaker change. */
  readonly onEvent?: ((event: BackendEvent) => void) | undefined;
}

/**
 * The contract every backend implements. The service never assumes more than this, so memory, Redis and
 * layered backends are interchangeable, and all pass the conformance suite in `aspect-cache/testing`.
 *
 * Semantics a backend must guarantee:
 * - `get` returns the value **with its dependencies and expiry** (a hit hands them to a parent).
 * - `set(key, entry, token)` does not store (returns `'stale'`) if `key` or any of `entry.dependencies` was
 *   invalidated after `token` was issued by the miss. This must hold across processes for shared backends.
 * - `invalidate(keys)` removes the entries with those keys and every entry that recorded one of them as a
 *   dependency (dependency lists are closed, see {@link CacheEntryInput.dependencies}, so that covers every
 *   dependent at any depth; a backend may also follow the removed entries' own keys, cycle-safe).
 * - Every method may answer synchronously or with a promise; `isSync` promises synchronous answers, which
 *   lets synchronous methods be cached.
 */
export interface CachingBackend {
  /** A short name for messages and events ("memory", "redis"…). */
  readonly name: string;
  /** True if every method answers synchronously (never a promise). */
  readonly isSync: boolean;
  /** The time base of `expiresAt`. */
  readonly clock: Clock;
  /** Looks a key up. */
  get(key: string): MaybePromise<CacheLookup>;
  /**
   * Issues a token without looking the key up (used by `refreshCall`, which recomputes even on a hit).
   * Every token must end in exactly one `set` or `abandon`.
   */
  begin(key: string): MaybePromise<unknown>;
  /** Stores an entry computed after the miss (or `begin`) that issued `token`; says why if it did not. */
  set(key: string, entry: CacheEntryInput, token: unknown): MaybePromise<StoreOutcome>;
  /** Releases a token whose computation will not be stored (it threw, or its result is not cached). */
  abandon(token: unknown): void;
  /**
   * True if neither `key` nor any of `dependencies` was invalidated (nor the backend cleared) since `token` was
   * issued — what `set` checks before it writes, without writing. The token stays valid (it still ends in
   * `set` or `abandon`). Must hold across processes for shared backends. Used to certify a value that is not
   * stored (so joiners may take it) and an expired value before fail-safe serves it. A backend without it
   * makes the service conservative: such values are never shared and fail-safe never serves.
   */
  check?(token: unknown, key: string, dependencies: readonly string[]): MaybePromise<boolean>;
  /** Removes entries with these keys and their dependents, transitively. */
  invalidate(keys: readonly string[], options?: InvalidateOptions): MaybePromise<InvalidationResult>;
  /** Removes every entry. */
  clear(): MaybePromise<void>;
  /** Releases resources (timers, connections the backend owns). */
  dispose(): MaybePromise<void>;
  /**
   * Adds a listener for what the backend reports on its own: entries leaving by eviction or expiry (`evict`
   * events), failures it absorbed and circuit breaker changes (`error`, `circuit` events). Any number of
   * listeners may be subscribed (a backend shared by several services reports to each); the returned function
   * unsubscribes. A backend that reports nothing may leave it out. A throwing listener never disturbs the
   * backend nor the other listeners.
   */
  subscribe?(listener: BackendListener): () => void;
}
