import { CachingError, errors } from '../../errors.js';
import { checkKnownOptions, optionNames } from '../../options-check.js';
import type { Clock, MaybePromise, ResyncReason } from '../../types.js';
import type {
  BackendEvent,
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
import type { InvalidationBus } from '../invalidation-bus.js';
import { MemoryBackend } from '../memory/memory-backend.js';
import { RetryQueue } from '../resilience/retry-queue.js';
import { BusProtocol } from './bus-protocol.js';

/** Options of {@link LayeredBackend}. */
export interface LayeredBackendOptions {
  /**
   * The local cache: a `MemoryBackend` of its own (size it with `maxEntries`/`maxBytes`). It must use the same
   * clock as `l2`.
   * @default new MemoryBackend({ clock: l2.clock })
   */
  l1?: MemoryBackend;
  /** The shared cache (a `RedisBackend`, or any backend): the authority on what is fresh across processes. */
  l2: CachingBackend;
  /** The channel on which processes tell each other what they invalidated (`RedisInvalidationBus`). */
  bus: InvalidationBus;
  /**
   * Caps how long an L1 copy lives, in ms (HybridCache's `LocalCacheExpiration`). An L1 copy never outlives
   * its L2 entry anyway; this bounds memory and how long a copy can be served if every safeguard failed.
   * @default no cap beyond the entry's own expiry
   */
  l1Ttl?: number;
  /** How often invalidations whose L2 write or publish failed are retried, in ms. @default 250 */
  retryDelayMs?: number;
}

/** A miss's token: one per layer (`l1` undefined when L1 was not trusted at the time). */
class LayeredToken {
  constructor(
    readonly owner: LayeredBackend,
    readonly l1: unknown,
    readonly l2: unknown,
    /** Issue number: an L1 copy served at or after it may have been used by this computation. */
    readonly seq: number,
  ) {}
}

/**
 * What an L1 entry holds as its value: the hit answered on later L1 hits (the entry's value, flag,
 * dependencies and *own* expiry, whatever `l1Ttl` does to the copy), and when it was last served.
 */
class L1Answer implements CacheHit {
  readonly hit = true as const;
  /** The issue number of the newest token when this copy was last served (see LayeredToken.seq). */
  servedAt = 0;
  constructor(
    readonly value: unknown,
    readonly async: boolean,
    readonly dependencies: readonly string[],
    readonly expiresAt: number,
    /** The entry's eager-refresh deadline, as L2 has it (not L1's cap). */
    readonly refreshAt: number | undefined,
  ) {}
}

/** Keys of served L1 copies that left L1 by eviction or expiry, remembered at most this many at once. */
const MAX_EVICTED_SERVED = 10_000;

const LAYERED_OPTION_NAMES = optionNames({ l1: 0, l2: 0, bus: 0, l1Ttl: 0, retryDelayMs: 0 } satisfies Record<keyof LayeredBackendOptions, 0>);

/**
 * A local memory cache (L1) over a shared backend (L2, usually Redis), kept fresh across processes by an
 * {@link InvalidationBus}. This is the backend for multi-process deployments: a hit on L1 costs no network
 * round trip, and every process still honours every invalidation.
 *
 * How it stays correct:
 * - **L1 holds only what L2 vouches for.** A computed value is copied into L1 only after L2 stored it (L2's
 *   stale-write check is the authority across processes). A value read from L2 is copied under an L1 token taken
 *   *before* the L2 read, so an invalidation heard meanwhile refuses the copy. An L1 copy expires no later than
 *   its L2 entry (and `l1Ttl`, when set). Sliding entries are not copied: each hit must extend them in L2.
 * - **What L2 cannot judge stays local.** A value computed from a copy this process served from L1 (which may be
 *   stale for the propagation delay) goes into L1 only, where the message on its way will remove it; a value
 *   whose dependency this process heard invalidated while it was computed is stored nowhere.
 * - **Invalidations reach every L1.** `invalidate` removes from the local L1, then from L2, then publishes the
 *   root keys; every other process removes them from its L1 transitively (each L1 has its own dependency
 *   index). If L2 or the publish fails, the invalidation is queued and retried (L2 first, then the publish —
 *   publishing before L2 landed would let other processes copy the old value again), never dropped; the
 *   result says `pending: true` meanwhile.
 * - **Bounded staleness when messages are lost.** A process serves from L1 only while it keeps hearing its own
 *   heartbeats on the bus (two `heartbeatMs` at most between them), and drops its L1 whenever it may have
 *   missed a message: the subscription was lost, a sender's sequence has a gap, a sender went silent, or a
 *   foreign payload appeared. So after an invalidation resolves elsewhere, an old L1 copy is served at most for
 *   the delivery delay (milliseconds on a LAN), and never longer than about two heartbeats even when messages
 *   are lost silently. While the bus or Redis is unreachable, L1 is not used: calls go to L2 (which fails fast
 *   behind its circuit breaker), so the method runs and its result is returned.
 *
 * It owns its parts: `dispose()` disposes `l1`, `l2` and the bus (the bus closes the connection it opened;
 * clients you passed stay yours). L1 evictions are not reported as `evict` events (the entry is still in L2);
 * L2's events are, and so are resyncs (`resync` event, with the reason).
 *
 * @example
 * const client = new Redis(process.env.REDIS_URL);
 * const backend = new LayeredBackend({
 *   l2: new RedisBackend({ client }),
 *   bus: new RedisInvalidationBus({ client }),
 * });
 * const caching = new CachingService({ backend });
 */
export class LayeredBackend implements CachingBackend {
  readonly name: string;
  readonly isSync = false;
  readonly clock: Clock;
  /** The local cache. */
  readonly l1: MemoryBackend;
  /** The shared cache. */
  readonly l2: CachingBackend;

  readonly #listeners = new BackendListeners();
  readonly #bus: InvalidationBus;
  readonly #protocol: BusProtocol;
  readonly #l1Ttl: number;
  readonly #unsubscribeL2: () => void;
  /** Invalidated keys L2 did not take yet; each lands in L2 first, then moves to #unpublished. */
  readonly #unlanded: RetryQueue;
  /** Invalidated keys that landed in L2 but whose publish failed. */
  readonly #unpublished: RetryQueue;
  /** A clear whose publish failed (one key: the queue only schedules the retry). */
  readonly #unpublishedClear: RetryQueue;
  #resyncs = 0;
  #disposed = false;
  /** Tokens issued so far (see LayeredToken.seq). */
  #issued = 0;
  /** Key → #issued when a served L1 copy of it was evicted or expired (see #servedSince). */
  readonly #evictedServed = new Map<string, number>();
  /** Tokens with a seq at or below this are treated as if every dependency had been served from L1. */
  #evictedWatermark = 0;
  readonly #unsubscribeL1: () => void;

  constructor(options: LayeredBackendOptions) {
    if (options === null || typeof options !== 'object') {
      throw new CachingError(errors.E_INVALID_OPTION, 'LayeredBackend: options must be an object { l2, bus, l1?, l1Ttl? }.');
    }
    checkKnownOptions('LayeredBackend', options, LAYERED_OPTION_NAMES);
    const { l2, bus, l1Ttl, retryDelayMs = 250 } = options;
    if (!isBackend(l2)) throw new CachingError(errors.E_INVALID_OPTION, 'LayeredBackend: option l2 must be a backend (e.g. new RedisBackend({ client })).');
    if (!isBus(bus)) {
      throw new CachingError(
        errors.E_INVALID_OPTION,
        'LayeredBackend: option bus must be an InvalidationBus (e.g. new RedisInvalidationBus({ client })); without one, other processes would keep serving what this one invalidated.',
      );
    }
    const l1 = options.l1 ?? new MemoryBackend({ clock: l2.clock });
    if (!(l1 instanceof MemoryBackend)) {
      throw new CachingError(errors.E_INVALID_OPTION, 'LayeredBackend: option l1 must be a MemoryBackend (e.g. new MemoryBackend({ maxEntries: 50_000 })).');
    }
    if (l1 === l2) throw new CachingError(errors.E_INVALID_OPTION, 'LayeredBackend: options l1 and l2 must be two different backends.');
    if (l1.clock !== l2.clock) {
      throw new CachingError(errors.E_INVALID_OPTION, `LayeredBackend: l1 (${l1.name}) and l2 (${l2.name}) must use the same clock (expiry times pass from one to the other); pass the same clock option to both.`);
    }
    if (l1Ttl !== undefined && !(typeof l1Ttl === 'number' && l1Ttl > 0)) {
      throw new CachingError(errors.E_INVALID_OPTION, `LayeredBackend: option l1Ttl must be a positive number of ms, got ${String(l1Ttl)}.`);
    }
    if (!(typeof retryDelayMs === 'number' && retryDelayMs > 0 && Number.isFinite(retryDelayMs))) {
      throw new CachingError(errors.E_INVALID_OPTION, `LayeredBackend: option retryDelayMs must be a positive number of ms, got ${String(retryDelayMs)}.`);
    }
    if (!(typeof bus.heartbeatMs === 'number' && bus.heartbeatMs > 0 && Number.isFinite(bus.heartbeatMs))) {
      throw new CachingError(errors.E_INVALID_OPTION, `LayeredBackend: the bus's heartbeatMs must be a positive number of ms, got ${String(bus.heartbeatMs)}.`);
    }
    this.l1 = l1;
    this.l2 = l2;
    this.#bus = bus;
    this.clock = l2.clock;
    this.name = `layered(${l1.name}+${l2.name})`;
    this.#l1Ttl = l1Ttl ?? Infinity;
    const onError = (operation: string) => (error: unknown) => this.#report({ type: 'error', error, operation });
    this.#unlanded = new RetryQueue({ delayMs: retryDelayMs, attempt: keys => this.#land(keys), onError: onError('invalidate (retry)') });
    this.#unpublished = new RetryQueue({ delayMs: retryDelayMs, attempt: keys => this.#protocol.publishInvalidate(keys), onError: onError('publish invalidation (retry)') });
    this.#unpublishedClear = new RetryQueue({ delayMs: retryDelayMs, attempt: () => this.#protocol.publishClear(), onError: onError('publish clear (retry)') });
    this.#unsubscribeL2 = l2.subscribe?.({ onEvent: event => this.#listeners.event(event) }) ?? noop;
    this.#unsubscribeL1 = l1.subscribe({ onRemoval: key => this.#leftL1(key) });
    this.#protocol = new BusProtocol(bus, this.clock, {
      invalidate: keys => this.l1.invalidate(keys),
      clear: () => this.l1.clear(),
      resync: reason => this.#resync(reason),
      error: (error, operation) => this.#report({ type: 'error', error, operation }),
    });
  }

  /** True while L1 may be served (see BusProtocol.trusted): the bus is live, and this process heard itself and every known sender within two heartbeats. */
  get trusted(): boolean {
    return this.#protocol.trusted(this.clock.now());
  }

  /** How many times L1 was dropped because a message may have been missed. */
  get resyncs(): number {
    return this.#resyncs;
  }

  /** Root keys whose invalidation (of L2, or its publish) is queued for retry. */
  get pendingInvalidations(): number {
    return this.#unlanded.size + this.#unpublished.size + this.#unpublishedClear.size;
  }

  /** This backend's instance id on the bus. */
  get instanceId(): string {
    return this.#protocol.id;
  }

  /** The longest an L1 copy is served after its invalidation when bus messages are lost silently: two heartbeats, in ms. */
  get stalenessBoundMs(): number {
    return this.#protocol.boundMs;
  }

  get(key: string): MaybePromise<CacheLookup> {
    if (this.#protocol.trusted(this.clock.now())) {
      const local = this.l1.get(key) as CacheLookup;
      if (local.hit) {
        // L1 holds the answer itself as its value (see #setLocal): its expiry is the entry's, not L1's cap.
        const answer = local.value as L1Answer;
        answer.servedAt = this.#issued;
        return answer;
      }
      // The L1 token is taken before the L2 read: an invalidation heard meanwhile refuses the copy.
      return this.#readThrough(key, local.token);
    }
    return this.#readThrough(key, undefined);
  }

  /**
   * An L1 miss: reads L2 and copies a hit into L1. One `then` on L2's promise rather than an async function: an
   * L2 hit is the path of every L1 miss, and each promise costs (more so with AsyncLocalStorage on Node 20).
   */
  #readThrough(key: string, l1Token: unknown): Promise<CacheLookup> {
    let answer: CacheLookup | Promise<CacheLookup>;
    try {
      answer = this.l2.get(key);
    } catch (error) {
      return this.#failedRead(l1Token, error);
    }
    return Promise.resolve(answer).then(
      shared => {
        if (!shared.hit) return { hit: false, token: new LayeredToken(this, l1Token, shared.token, ++this.#issued), stale: shared.stale };
        // L2 still holds what an invalidation queued here removes: not served until it landed.
        if (this.#affectedByQueued(key, shared.dependencies)) return this.#missInstead(key, l1Token);
        if (l1Token !== undefined) this.#copyToL1(key, shared, shared.sliding ?? 0, l1Token);
        return shared;
      },
      error => this.#failedRead(l1Token, error),
    );
  }

  #failedRead(l1Token: unknown, error: unknown): Promise<never> {
    if (l1Token !== undefined) this.l1.abandon(l1Token);
    return Promise.reject(error);
  }

  /** A miss (with a fresh L2 token) in place of an L2 hit that must not be served. */
  async #missInstead(key: string, l1Token: unknown): Promise<CacheLookup> {
    let token: unknown;
    try {
      token = await this.l2.begin(key);
    } catch (error) {
      return this.#failedRead(l1Token, error);
    }
    return { hit: false, token: new LayeredToken(this, l1Token, token, ++this.#issued) };
  }

  async begin(key: string): Promise<unknown> {
    const l1Token = this.#protocol.trusted(this.clock.now()) ? this.l1.begin(key) : undefined;
    try {
      const seq = ++this.#issued;
      return new LayeredToken(this, l1Token, await this.l2.begin(key), seq);
    } catch (error) {
      if (l1Token !== undefined) this.l1.abandon(l1Token);
      throw error;
    }
  }

  /**
   * Stores in L2, then copies into L1 what L2 stored. Two refusals L2 cannot make, because they depend on what
   * this process's L1 did while the value was computed:
   * - An invalidation of the key or a dependency reached L1 since the token (a message from another process, or
   *   a resync): the value may be built on data invalidated elsewhere, so it is stored nowhere (`stale`).
   * - A dependency was served from L1 since the token: that copy may be stale for the propagation delay (its
   *   invalidation may be on its way), which L2 cannot see. The value goes into L1 only, where that message
   *   will remove it; other processes compute their own.
   */
  async set(key: string, entry: CacheEntryInput, token: unknown): Promise<StoreOutcome> {
    const t = this.#own(token, key, 'set');
    if (t.l1 !== undefined && !this.l1.check(t.l1, key, entry.dependencies)) {
      this.abandon(t);
      return 'stale';
    }
    if (this.#servedSince(t.seq, entry.dependencies)) {
      this.l2.abandon(t.l2);
      return t.l1 !== undefined && this.#copyToL1(key, entry, entry.sliding, t.l1) ? 'stored' : 'stale';
    }
    let outcome: StoreOutcome;
    try {
      outcome = await this.l2.set(key, entry, t.l2);
    } catch (error) {
      if (t.l1 !== undefined) this.l1.abandon(t.l1);
      throw error;
    }
    if (t.l1 === undefined) return outcome;
    // Only what L2 accepted goes into L1.
    if (outcome === 'stored') this.#copyToL1(key, entry, entry.sliding, t.l1);
    else this.l1.abandon(t.l1);
    return outcome;
  }

  /** True if one of `dependencies` was served from L1 at or after token `seq` (so this computation may have used it). */
  #servedSince(seq: number, dependencies: readonly string[]): boolean {
    if (dependencies.length === 0) return false;
    if (seq <= this.#evictedWatermark) return true;
    for (const dependency of dependencies) {
      const copy = this.l1.peek(dependency);
      if (copy !== undefined && (copy.value as L1Answer).servedAt >= seq) return true;
      if ((this.#evictedServed.get(dependency) ?? 0) >= seq) return true;
    }
    return false;
  }

  /** An L1 copy was evicted or expired: if it was served, a computation in flight may still depend on it. */
  #leftL1(key: string): void {
    if (this.#evictedServed.size >= MAX_EVICTED_SERVED) {
      // Bounded: forget them all, and treat every token issued so far as having used a served copy.
      this.#evictedWatermark = this.#issued;
      this.#evictedServed.clear();
    }
    this.#evictedServed.set(key, this.#issued);
  }

  /**
   * Stores an L1 copy, under a token taken before the value was read or computed, and ends that token; says
   * whether it was stored. Not copied: sliding entries (each hit must extend them in L2), anything while L1 is
   * not trusted, and what a queued invalidation affects. The copy's value is the answer of later L1 hits —
   * value, flag, dependencies and the entry's own expiry — so it can expire sooner (`l1Ttl`) while a parent
   * still learns the real expiry. A refused copy also removes what L1 holds for the key: that may be an older
   * copy taken under a later token (a read-through that raced a `refreshCall`), which must not outlive the
   * refresh.
   */
  #copyToL1(key: string, hit: Pick<CacheHit, 'value' | 'async' | 'dependencies' | 'expiresAt' | 'refreshAt'>, sliding: number, l1Token: unknown): boolean {
    const now = this.clock.now();
    if (sliding > 0 || !this.#protocol.trusted(now) || this.#affectedByQueued(key, hit.dependencies)) {
      this.l1.abandon(l1Token);
      return false;
    }
    const answer = new L1Answer(hit.value, hit.async, hit.dependencies, hit.expiresAt, hit.refreshAt);
    // A replaced copy may have been served to a computation still in flight: keep its mark.
    const previous = this.l1.peek(key);
    if (previous !== undefined) answer.servedAt = (previous.value as L1Answer).servedAt;
    const entry: CacheEntryInput = { value: answer, async: hit.async, dependencies: hit.dependencies, expiresAt: Math.min(hit.expiresAt, now + this.#l1Ttl), sliding: 0 };
    let outcome: StoreOutcome;
    try {
      // Refused when the key or a dependency was invalidated (locally or by a message) since the L1 token.
      outcome = this.l1.set(key, entry, l1Token);
    } catch (error) {
      this.#report({ type: 'error', error, operation: 'copy into L1' });
      outcome = 'backend-error';
    }
    if (outcome === 'stored') return true;
    this.l1.invalidate([key]);
    return false;
  }

  async check(token: unknown, key: string, dependencies: readonly string[]): Promise<boolean> {
    if (!(token instanceof LayeredToken) || token.owner !== this || this.l2.check === undefined) return false;
    if (!(await this.l2.check(token.l2, key, dependencies))) return false;
    // L1 heard the bus: a message that reached it first is as good a refusal as L2's.
    return token.l1 === undefined || this.l1.check(token.l1, key, dependencies);
  }

  abandon(token: unknown): void {
    if (!(token instanceof LayeredToken) || token.owner !== this) return;
    if (token.l1 !== undefined) this.l1.abandon(token.l1);
    this.l2.abandon(token.l2);
  }

  /**
   * Invalidates in the local L1, then in L2, then tells every other process. Resolves `pending: true` when L2
   * or the publish failed: the invalidation is retried every `retryDelayMs` until both landed, never dropped.
   */
  async invalidate(keys: readonly string[], options?: InvalidateOptions): Promise<InvalidationResult> {
    if (keys.length === 0) return { removed: [] };
    // Local first: this process stops serving the old values at once. The entries removed are L2's, and those
    // only L1 held (values built on L1 copies stay local, see set).
    const local = this.l1.invalidate(keys, options).removed;
    let shared: InvalidationResult;
    try {
      shared = await this.l2.invalidate(keys, options);
    } catch (error) {
      this.#report({ type: 'error', error, operation: 'invalidate (queued for retry)' });
      shared = { removed: [], pending: true };
    }
    if (shared.pending === true) {
      this.#unlanded.add(keys);
      return { removed: union(shared.removed, local), pending: true };
    }
    const removed = shared.removed;
    // Again, now that L2 landed: a read-through that began after the first pass may have copied the old entry
    // from L2 meanwhile. And L1 holds only some of the entries, so its walk from the roots can miss an L1 copy
    // that depends on them only through an entry it does not hold: what L2 removed is removed from L1 too, here
    // and elsewhere. (Entries stored by the service list their dependencies transitively, so the roots alone
    // reach them; the removed keys cover entries built otherwise.)
    const again = this.l1.invalidate(keys, options).removed;
    if (removed.length > 0) this.l1.invalidate(removed);
    const all = union(removed, local, again);
    // Other processes remove the roots too, preserved or not: their copies predate this invalidation.
    if (!(await this.#publish(union(keys, removed)))) return { removed: all, pending: true };
    return { removed: all };
  }

  async clear(): Promise<void> {
    this.l1.clear();
    await this.l2.clear();
    this.l1.clear(); // a read-through may have copied an entry from L2 before it was cleared
    try {
      await this.#protocol.publishClear();
    } catch (error) {
      this.#report({ type: 'error', error, operation: 'publish clear (queued for retry)' });
      this.#unpublishedClear.add(['clear']);
    }
  }

  async dispose(): Promise<void> {
    if (this.#disposed) return;
    this.#disposed = true;
    // Queued invalidations get one last attempt before the parts are closed: L2 first (which queues their
    // publish), then the publishes.
    await this.#unlanded.dispose();
    await this.#unpublished.dispose();
    await this.#unpublishedClear.dispose();
    await this.#protocol.dispose();
    this.#unsubscribeL2();
    this.#unsubscribeL1();
    await Promise.all([this.l1.dispose(), this.l2.dispose(), this.#bus.dispose()]);
  }

  /** Adds a listener for L2's events, bus failures and resyncs (see {@link CachingBackend.subscribe}). */
  subscribe(listener: BackendListener): () => void {
    return this.#listeners.subscribe(listener);
  }

  // ───────────────────────────── internals ─────────────────────────────

  #own(token: unknown, key: string, method: string): LayeredToken {
    if (!(token instanceof LayeredToken) || token.owner !== this) {
      throw new CachingError(errors.E_BACKEND, `LayeredBackend.${method}(${key}): the token was not issued by this backend.`);
    }
    return token;
  }

  /** Publishes an invalidation; on failure queues it (publish only) and says false. */
  async #publish(keys: readonly string[]): Promise<boolean> {
    try {
      await this.#protocol.publishInvalidate(keys);
      return true;
    } catch (error) {
      this.#report({ type: 'error', error, operation: 'publish invalidation (queued for retry)' });
      this.#unpublished.add(keys);
      return false;
    }
  }

  /** One retry of keys L2 did not take: L2, then L1 again (as in invalidate), then the publish. */
  async #land(keys: readonly string[]): Promise<void> {
    const result = await this.l2.invalidate(keys);
    if (result.pending === true) throw new CachingError(errors.E_BACKEND, `LayeredBackend: ${this.l2.name} still cannot be reached; ${keys.length} invalidated keys stay queued.`);
    this.l1.invalidate(union(keys, result.removed));
    // Landed: from now on only the publish is left. Queued (not awaited), so a failing bus does not keep the
    // keys in this queue, where they would make this process refuse what L2 now serves correctly.
    this.#unpublished.add(union(keys, result.removed));
    this.#unpublished.retryNow();
  }

  /** True if the key or a dependency is queued for invalidation in L2 (L2 may still hold entries it removes). */
  #affectedByQueued(key: string, dependencies: readonly string[]): boolean {
    return this.#unlanded.affects(key, dependencies);
  }

  #resync(reason: ResyncReason): void {
    // Clearing also refuses every L1 copy in flight (their tokens predate it).
    this.l1.clear();
    this.#resyncs++;
    this.#report({ type: 'resync', reason });
  }

  #report(event: BackendEvent): void {
    this.#listeners.event(event);
  }
}

function noop(): void {}

function isBackend(value: unknown): value is CachingBackend {
  return value !== null && typeof value === 'object' && typeof (value as CachingBackend).get === 'function' && typeof (value as CachingBackend).set === 'function';
}

function isBus(value: unknown): value is InvalidationBus {
  return value !== null && typeof value === 'object' && typeof (value as InvalidationBus).publish === 'function' && typeof (value as InvalidationBus).subscribe === 'function';
}

/** The keys of every list, first occurrence first, each once; the first list itself when the others add nothing. */
function union(first: readonly string[], ...others: ReadonlyArray<readonly string[]>): readonly string[] {
  if (others.every(list => list.length === 0)) return first;
  const seen = new Set(first);
  const out = [...first];
  for (const list of others) {
    for (const key of list) {
      if (seen.has(key)) continue;
      seen.add(key);
      out.push(key);
    }
  }
  return out;
}
