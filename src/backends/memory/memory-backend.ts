import { LRUCache } from 'lru-cache';
import { CachingError, errors } from '../../errors.js';
import { checkKnownOptions, optionNames } from '../../options-check.js';
import { systemClock, type Clock } from '../../types.js';
import type {
  BackendListener,
  CacheEntryInput,
  CacheHit,
  CacheLookup,
  CachingBackend,
  InvalidateOptions,
  InvalidationResult,
  StoreOutcome,
} from '../backend.js';
import { BackendListeners } from '../backend-listeners.js';
import { entryOverhead, estimateSize } from './estimate-size.js';

/** Options of {@link MemoryBackend}. */
export interface MemoryBackendOptions {
  /**
   * Maximum number of entries; the least recently used entry is evicted beyond it.
   * @default 100_000 (when `maxBytes` is not set either)
   */
  maxEntries?: number;
  /**
   * Maximum total estimated size of the entries, in bytes: each entry counts its value (see `sizeOf`), its
   * key, its dependency keys and the dependency index entries they create, plus a fixed bookkeeping cost.
   * No limit by default.
   */
  maxBytes?: number;
  /**
   * Estimates a value's size in bytes for `maxBytes` (the key and dependencies are added by the backend).
   * @default a structural estimate (UTF-16 strings, 8-byte numbers, object overhead)
   */
  sizeOf?: (value: unknown) => number;
  /** Time source for expiry. @default Date.now */
  clock?: Clock;
  /**
   * How often expired entries are swept, in ms, so that neither they nor their index entries linger. The
   * timer is unref'd and only runs while entries with an expiry exist. 0 disables it (`purgeExpired()` can
   * still be called). @default 60_000
   */
  purgeIntervalMs?: number;
}

/** A stored entry; it is also the hit answer, so a hit allocates nothing. */
class MemoryRecord implements CacheHit {
  readonly hit = true as const;
  constructor(
    readonly value: unknown,
    readonly async: boolean,
    readonly dependencies: readonly string[],
    /** Effective expiry: `min(absoluteExpiresAt, lastAccess + sliding)`. */
    public expiresAt: number,
    readonly absoluteExpiresAt: number,
    readonly sliding: number,
    readonly size: number,
    /** Fail-safe window after expiry during which the entry is kept and offered as `stale`. */
    readonly staleFor: number,
    /** Issue order of the token it was stored with: a store with an older token never replaces it. */
    readonly order: number,
    /** When a hit should refresh it in the background (eager refresh); undefined for none. */
    readonly refreshAt: number | undefined,
  ) {}
}

/** Issued with a miss; `start` is the invalidation sequence number when the computation began. */
class WriteToken {
  /** In flight, then used (set or abandoned) or dropped (too old to track: its store is refused as stale). */
  state: 'live' | 'used' | 'dropped' = 'live';
  constructor(
    readonly backend: MemoryBackend,
    readonly start: number,
    /** Issue order among all tokens of the backend. */
    readonly order: number,
  ) {}
}

/**
 * Most invalidation log entries kept while computations are in flight. Beyond it the oldest entries are
 * replaced by a watermark: computations older than the dropped entries are refused as stale, which is
 * conservative (they are recomputed next time), and the log stays bounded even if one never settles.
 */
const MAX_LOG_ENTRIES = 20_000;
/** Most tokens tracked at once: the oldest beyond it is dropped (its store will be refused as stale). */
const MAX_IN_FLIGHT = 100_000;

/**
 * The in-process backend: entries in an lru-cache bounded by count and/or bytes, a dependency index kept in
 * step with the entries (eviction, expiry, overwrite and deletion all clean it), and an invalidation log
 * that refuses stale writes. It answers synchronously, so synchronous methods can be cached on it.
 *
 * The invalidation log and the tokens it tracks stay bounded even if a computation never settles: past
 * 20,000 logged keys the oldest are replaced by a watermark (computations older than it are refused as
 * stale), and past 100,000 unsettled tokens the oldest are dropped the same way (`invalidationLogSize`,
 * `inFlightCount`). Both refusals are conservative: such a value is returned, just not stored.
 *
 * Expired entries are never served as hits; they are removed when read and by a periodic sweep (entries
 * stored with a fail-safe `staleFor` window are kept until it ends and offered as `stale` on a miss).
 *
 * @example
 * const caching = new CachingService({ backend: new MemoryBackend({ maxEntries: 50_000 }) });
 */
export class MemoryBackend implements CachingBackend {
  readonly name = 'memory';
  readonly isSync = true;
  readonly clock: Clock;

  readonly #listeners = new BackendListeners();
  readonly #lru: LRUCache<string, MemoryRecord>;
  /** Dependency key (or child entry key) → keys of the entries that recorded it. */
  readonly #index = new Map<string, Set<string>>();
  readonly #sizeOf: ((value: unknown) => number) | undefined;
  readonly #purgeIntervalMs: number;
  #purgeTimer: NodeJS.Timeout | undefined;
  #expiringEntries = 0;

  /** Incremented by each invalidation that happens while a computation is in flight. */
  #sequence = 0;
  /** Tokens issued so far (orders them, whatever the invalidations). */
  #issued = 0;
  /** Sequence number of the last `clear()`; tokens issued before it are stale. */
  #clearedAt = -1;
  /**
   * Tokens of computations in flight, in issue order (so the first live one has the smallest start). An
   * array with a head index rather than a Set: a Set whose oldest entries are deleted one by one makes
   * "find the first" cost O(deleted) in V8.
   */
  #inFlight: WriteToken[] = [];
  /** Position of the oldest token in `#inFlight` that may still be live (those before it are not). */
  #head = 0;
  /** Number of live tokens in `#inFlight` (the others were used or dropped and await compaction). */
  #live = 0;
  /**
   * Key → sequence number of its last invalidation; only kept while computations are in flight. Kept in
   * sequence order (a key invalidated again moves to the end), so the oldest entries are the first.
   */
  readonly #invalidatedAt = new Map<string, number>();
  /** Invalidations up to this sequence number were dropped from the log: tokens that started before it are stale. */
  #watermark = -1;
  /** Keys held by an invalidation with `holdMs` (a transaction not committed yet): key → end of the hold (clock ms). */
  readonly #holds = new Map<string, number>();
  #disposed = false;

  constructor(options: MemoryBackendOptions = {}) {
    if (options === null || typeof options !== 'object') throw new CachingError(errors.E_INVALID_OPTION, 'MemoryBackend: options must be an object.');
    checkKnownOptions('MemoryBackend', options, MEMORY_OPTION_NAMES);
    const { maxEntries, maxBytes, sizeOf, clock = systemClock, purgeIntervalMs = 60_000 } = options;
    checkPositiveInteger('maxEntries', maxEntries);
    checkPositiveInteger('maxBytes', maxBytes);
    checkNonNegative('purgeIntervalMs', purgeIntervalMs);
    if (sizeOf !== undefined && typeof sizeOf !== 'function') {
      throw new CachingError(errors.E_INVALID_OPTION, 'MemoryBackend: option sizeOf must be a function (value) => bytes.');
    }
    this.clock = clock;
    this.#purgeIntervalMs = purgeIntervalMs;
    this.#sizeOf = maxBytes !== undefined ? (sizeOf ?? estimateSize) : undefined;
    this.#lru = new LRUCache<string, MemoryRecord>({
      max: maxEntries ?? (maxBytes === undefined ? 100_000 : undefined),
      ...(maxBytes !== undefined ? { maxSize: maxBytes, sizeCalculation: (record: MemoryRecord) => record.size } : {}),
      dispose: (record, key, reason) => this.#onDispose(record, key, reason),
    } as LRUCache.Options<string, MemoryRecord, unknown>);
  }

  /** Number of entries stored (expired ones not yet swept included). */
  get size(): number {
    return this.#lru.size;
  }

  /** Number of keys in the dependency index; never more than the dependencies of live entries. */
  get indexSize(): number {
    return this.#index.size;
  }

  get(key: string): CacheLookup {
    const record = this.#lru.get(key);
    if (record === undefined) return { hit: false, token: this.#issue() };
    if (record.expiresAt !== Infinity) {
      const now = this.clock.now();
      if (now >= record.expiresAt) {
        if (now < record.expiresAt + record.staleFor) return { hit: false, token: this.#issue(), stale: record };
        this.#lru.delete(key);
        this.#listeners.removal(key, 'expire');
        return { hit: false, token: this.#issue() };
      }
      if (record.sliding > 0) record.expiresAt = Math.min(record.absoluteExpiresAt, now + record.sliding);
    }
    return record;
  }

  /**
   * The stored entry of a key, expired or not, without touching its recency or its sliding expiry, and without
   * issuing a token (a layered backend inspects its L1 with it). Undefined if there is none.
   */
  peek(key: string): CacheHit | undefined {
    return this.#lru.peek(key);
  }

  /** Adds a listener for evictions and expiries (see {@link CachingBackend.subscribe}); returns its unsubscribe function. */
  subscribe(listener: BackendListener): () => void {
    return this.#listeners.subscribe(listener);
  }

  begin(_key: string): unknown {
    return this.#issue();
  }

  set(key: string, entry: CacheEntryInput, token: unknown): StoreOutcome {
    const released = this.#release(token);
    if (released === undefined) {
      throw new CachingError(errors.E_BACKEND, `MemoryBackend.set(${key}): the token was not issued by this backend or was already used.`);
    }
    const start = (token as WriteToken).start;
    const stale = released === 'dropped' || start < this.#clearedAt || start < this.#watermark || this.#wasInvalidatedSince(start, key, entry.dependencies) || (this.#holds.size > 0 && this.#held(key, entry.dependencies));
    if (this.#live === 0) this.#resetLog();
    if (stale) return 'stale';
    // A store never replaces an entry computed from a later token (an older computation that finishes last,
    // after a refreshCall stored a newer value, say).
    const current = this.#lru.peek(key);
    if (current !== undefined && current.order > (token as WriteToken).order) return 'stale';
    // maxBytes bounds what the entry really holds: its value, but also its key and dependency keys (and their index entries).
    const size = this.#sizeOf === undefined ? 0 : Math.max(1, Math.ceil(this.#sizeOf(entry.value))) + entryOverhead(key, entry.dependencies);
    if (this.#sizeOf !== undefined && size > this.#lru.maxSize) {
      this.#lru.delete(key); // the value it would have replaced is older than what was just computed
      return 'too-large';
    }

    const staleFor = entry.staleFor !== undefined && entry.staleFor > 0 ? entry.staleFor : 0;
    const now = entry.sliding > 0 || entry.expiresAt !== Infinity ? this.clock.now() : 0;
    if (entry.expiresAt + staleFor <= now) {
      // Already expired (a child expired meanwhile): storing it would only leave residue, but it replaces.
      this.#lru.delete(key);
      return 'stored';
    }
    const expiresAt = entry.sliding > 0 ? Math.min(entry.expiresAt, now + entry.sliding) : entry.expiresAt;
    const dependencies = entry.dependencies.length === 0 ? EMPTY : Object.freeze([...entry.dependencies]);
    const record = new MemoryRecord(entry.value, entry.async, dependencies, expiresAt, entry.expiresAt, entry.sliding, size, staleFor, (token as WriteToken).order, entry.refreshAt);
    this.#lru.set(key, record);
    for (const dependency of dependencies) {
      let dependents = this.#index.get(dependency);
      if (dependents === undefined) this.#index.set(dependency, (dependents = new Set()));
      dependents.add(key);
    }
    if (expiresAt !== Infinity) {
      this.#expiringEntries++;
      this.#schedulePurge();
    }
    return 'stored';
  }

  check(token: unknown, key: string, dependencies: readonly string[]): boolean {
    // Only a token still in flight keeps the log that can answer; any other is not certified.
    if (!(token instanceof WriteToken && token.backend === this && token.state === 'live')) return false;
    return !(token.start < this.#clearedAt || token.start < this.#watermark || this.#wasInvalidatedSince(token.start, key, dependencies) || (this.#holds.size > 0 && this.#held(key, dependencies)));
  }

  abandon(token: unknown): void {
    this.#release(token);
    if (this.#live === 0) this.#resetLog();
  }

  invalidate(keys: readonly string[], options?: InvalidateOptions): InvalidationResult {
    const preserveRoots = options?.preserveRoots === true;
    const visited = new Set<string>(keys);
    const queue = [...visited];
    const roots = queue.length;
    const removed: string[] = [];
    let now: number | undefined;
    // One worklist handles chains, cycles and fan-out: a removed entry's own key is a dependency of its parents.
    for (let i = 0; i < queue.length; i++) {
      const key = queue[i]!;
      if (!(preserveRoots && i < roots)) {
        const record = this.#lru.peek(key);
        if (record !== undefined) {
          this.#lru.delete(key);
          // An entry past its expiry (and fail-safe window) was already gone: it is cleaned up, not reported.
          if (record.expiresAt === Infinity || record.expiresAt + record.staleFor > (now ??= this.clock.now())) removed.push(key);
        }
      }
      const dependents = this.#index.get(key);
      if (dependents === undefined) continue;
      this.#index.delete(key);
      for (const dependent of dependents) {
        if (!visited.has(dependent)) {
          visited.add(dependent);
          queue.push(dependent);
        }
      }
    }
    if (this.#live > 0) this.#logInvalidation(queue);
    if (options?.release === true) for (const key of keys) this.#holds.delete(key);
    if (options?.holdMs !== undefined && options.holdMs > 0) {
      const until = this.clock.now() + options.holdMs;
      if (this.#holds.size >= 1000) for (const key of [...this.#holds.keys()]) this.#held(key, EMPTY); // drops ended holds
      for (const key of keys) if (!((this.#holds.get(key) ?? -Infinity) >= until)) this.#holds.set(key, until);
    }
    return { removed };
  }

  /** True if `key` or one of `dependencies` is held (see `InvalidateOptions.holdMs`); ended holds are dropped. */
  #held(key: string, dependencies: readonly string[]): boolean {
    const now = this.clock.now();
    for (const k of [key, ...dependencies]) {
      const until = this.#holds.get(k);
      if (until === undefined) continue;
      if (until > now) return true;
      this.#holds.delete(k);
    }
    return false;
  }

  clear(): void {
    this.#lru.clear();
    this.#index.clear();
    this.#expiringEntries = 0;
    this.#clearedAt = ++this.#sequence;
  }

  dispose(): void {
    this.#disposed = true;
    this.clear();
    if (this.#purgeTimer) clearInterval(this.#purgeTimer);
    this.#purgeTimer = undefined;
  }

  /** Removes expired entries now (and their index entries). Returns how many were removed. */
  purgeExpired(): number {
    const now = this.clock.now();
    const expired: string[] = [];
    for (const [key, record] of this.#lru.entries()) if (record.expiresAt + record.staleFor <= now) expired.push(key);
    for (const key of expired) {
      this.#lru.delete(key);
      this.#listeners.removal(key, 'expire');
    }
    return expired.length;
  }

  /** Number of tokens (computations in flight) tracked; bounded even when computations never settle. */
  get inFlightCount(): number {
    return this.#live;
  }

  /** Number of keys in the invalidation log kept for in-flight computations; bounded (see MAX_LOG_ENTRIES). */
  get invalidationLogSize(): number {
    return this.#invalidatedAt.size;
  }

  #issue(): WriteToken {
    if (this.#disposed) throw new CachingError(errors.E_DISPOSED, 'MemoryBackend: used after dispose().');
    const token = new WriteToken(this, this.#sequence, ++this.#issued);
    this.#inFlight.push(token);
    this.#live++;
    if (this.#live > MAX_IN_FLIGHT) {
      // A caller that never calls set/abandon must not pin memory forever: forget the oldest token; if it is
      // ever used, its store is refused as stale (conservative) and its abandon is a no-op.
      this.#oldest()!.state = 'dropped';
      this.#live--;
    }
    // Used tokens behind a live older one are compacted away once they outnumber the live ones (amortised O(1)).
    if (this.#inFlight.length - this.#head > 2 * MAX_IN_FLIGHT) this.#compact();
    return token;
  }

  /** Marks a token used; says whether it was live or dropped, undefined if it is foreign or already used. */
  #release(token: unknown): 'live' | 'dropped' | undefined {
    if (!(token instanceof WriteToken) || token.backend !== this || token.state === 'used') return undefined;
    const was = token.state;
    token.state = 'used';
    if (was === 'live' && --this.#live === 0) {
      this.#inFlight = [];
      this.#head = 0;
    }
    return was;
  }

  /** The oldest live token, skipping (for good) the used and dropped ones before it. */
  #oldest(): WriteToken | undefined {
    const queue = this.#inFlight;
    while (this.#head < queue.length && queue[this.#head]!.state !== 'live') this.#head++;
    if (this.#head > 1_024 && this.#head * 2 > queue.length) this.#compact();
    return this.#inFlight[this.#head];
  }

  #compact(): void {
    this.#inFlight = this.#inFlight.filter(token => token.state === 'live');
    this.#head = 0;
  }

  #wasInvalidatedSince(start: number, key: string, dependencies: readonly string[]): boolean {
    const log = this.#invalidatedAt;
    if (log.size === 0) return false;
    if ((log.get(key) ?? -1) > start) return true;
    for (const dependency of dependencies) if ((log.get(dependency) ?? -1) > start) return true;
    return false;
  }

  #resetLog(): void {
    if (this.#invalidatedAt.size > 0) this.#invalidatedAt.clear();
  }

  #logInvalidation(keys: readonly string[]): void {
    const sequence = ++this.#sequence;
    const log = this.#invalidatedAt;
    // Delete first so a re-invalidated key moves to the end: the map stays in sequence order.
    for (const key of keys) {
      log.delete(key);
      log.set(key, sequence);
    }
    if (log.size > MAX_LOG_ENTRIES) this.#trimLog();
  }

  /** Drops the oldest half of the log; amortised O(1) per logged key. */
  #trimLog(): void {
    const log = this.#invalidatedAt;
    // Entries no newer than the oldest in-flight computation's start can never make a write stale: drop freely.
    const oldestStart = this.#oldest()?.start ?? this.#sequence;
    const target = MAX_LOG_ENTRIES / 2;
    for (const [key, at] of log) {
      if (log.size <= target && at > oldestStart) break;
      if (at > oldestStart) this.#watermark = Math.max(this.#watermark, at);
      log.delete(key);
    }
    // Computations that started before the watermark can no longer store: stop tracking them, so that a
    // computation that never settles does not keep pinning the log (and refusing newer computations) forever.
    for (let token = this.#oldest(); token !== undefined && token.start < this.#watermark; token = this.#oldest()) {
      token.state = 'dropped';
      this.#live--;
    }
  }

  #onDispose(record: MemoryRecord, key: string, reason: LRUCache.DisposeReason): void {
    for (const dependency of record.dependencies) {
      const dependents = this.#index.get(dependency);
      if (dependents !== undefined && dependents.delete(key) && dependents.size === 0) this.#index.delete(dependency);
    }
    if (record.expiresAt !== Infinity) this.#expiringEntries--;
    if (reason === 'evict') this.#listeners.removal(key, 'evict');
  }

  #schedulePurge(): void {
    if (this.#purgeTimer !== undefined || this.#purgeIntervalMs === 0 || this.#disposed) return;
    this.#purgeTimer = setInterval(() => {
      this.purgeExpired();
      if (this.#expiringEntries <= 0 && this.#purgeTimer) {
        clearInterval(this.#purgeTimer);
        this.#purgeTimer = undefined;
      }
    }, this.#purgeIntervalMs);
    this.#purgeTimer.unref();
  }
}

const MEMORY_OPTION_NAMES = optionNames({ maxEntries: 0, maxBytes: 0, sizeOf: 0, clock: 0, purgeIntervalMs: 0 } satisfies Record<keyof MemoryBackendOptions, 0>);

const EMPTY: readonly string[] = Object.freeze([]);

function checkPositiveInteger(option: string, value: number | undefined): void {
  if (value !== undefined && !(Number.isSafeInteger(value) && value > 0)) {
    throw new CachingError(errors.E_INVALID_OPTION, `MemoryBackend: option ${option} must be a positive integer, got ${String(value)}.`);
  }
}

function checkNonNegative(option: string, value: number): void {
  if (!(typeof value === 'number' && value >= 0 && Number.isFinite(value))) {
    throw new CachingError(errors.E_INVALID_OPTION, `MemoryBackend: option ${option} must be a finite number ≥ 0, got ${String(value)}.`);
  }
}
