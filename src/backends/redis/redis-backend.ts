import type { Cluster, Redis } from 'ioredis';
import { CachingError, errors } from '../../errors.js';
import { checkKnownOptions, optionNames } from '../../options-check.js';
import { SuperJsonSerializer, type Serializer } from '../../serializers/serializer.js';
import { systemClock, type Clock } from '../../types.js';
import type {
  BackendEvent,
  CacheEntryInput,
  CacheHit,
  CacheLookup,
  CachingBackend,
  InvalidateOptions,
  InvalidationResult,
  BackendListener,
  StoreOutcome,
} from '../backend.js';
import { BackendListeners } from '../backend-listeners.js';
import { CircuitBreaker, type CircuitBreakerOptions, type CircuitState } from '../resilience/circuit-breaker.js';
import { CallGuard } from '../resilience/call-guard.js';
import { RetryQueue } from '../resilience/retry-queue.js';
import { allDataPattern, clearMarkerKey, decodeKey, encodeKey, entryKey, entryNameOf, leaseKey, markerKeys, partitionBase, partitionDataPattern, partitionOf, sequenceKey } from './key-schema.js';
import { entryFields, EXPIRY_FIELD, HIT_FIELD, unpackEntry, type StoredEntry } from './entry-codec.js';
import { ReadBatcher, type PartitionClock } from './read-batcher.js';
import { BEGIN_SCRIPT, CHECK_SCRIPT, CLEAR_MARK_SCRIPT, INVALIDATE_SCRIPT, LOOKUP_SCRIPT, SET_SCRIPT, TOUCH_SCRIPT, UNLOCK_SCRIPT } from './scripts.js';

/** Options of {@link RedisBackend}. */
export interface RedisBackendOptions {
  /** An ioredis client: `new Redis(…)` or `new Cluster(…)`. The backend never closes it. */
  client: Redis | Cluster;
  /** Prepended to every Redis key, before the schema version (`<keyPrefix>ac2:{p0}:v:…`). @default '' */
  keyPrefix?: string;
  /** Encodes values. @default new SuperJsonSerializer() */
  serializer?: Serializer;
  /** Larger encoded values are returned to their caller but not stored (`skip` with reason `too-large`). @default 4 MiB */
  maxPayloadBytes?: number;
  /** Every Redis call fails after this long (the cached method then runs without the cache). @default 1_000 */
  operationTimeoutMs?: number;
  /**
   * Timeout of an invalidation script: a large fan-out legitimately takes longer than a lookup. An invalidation
   * that times out is queued and retried (it is idempotent). @default 10_000
   */
  invalidationTimeoutMs?: number;
  /**
   * Number of partitions (hash tags). An entry, its dependency index and its markers share one partition, so
   * each store is one atomic script on one slot; invalidations run on every partition.
   * @default 1 on a standalone Redis, 16 on a Cluster
   */
  partitions?: number;
  /**
   * How long invalidation markers live, in ms. A computation that takes longer than this is not stored (its
   * token may predate markers that have expired). Markers are the only keys an invalidation leaves behind, for
   * this long. @default 120_000
   */
  markerTtlMs?: number;
  /** Circuit breaker settings. */
  circuitBreaker?: CircuitBreakerOptions;
  /**
   * How often an invalidation that could not reach Redis is retried, in ms. The retry has its own schedule,
   * independent of the circuit breaker (an open circuit never delays it), keeps one attempt in flight at a time,
   * and also runs at once when the client reconnects (its `ready` event): other processes read Redis again as
   * soon as it is back, so a queued invalidation must land by then. @default 250
   */
  retryDelayMs?: number;
  /** Local clock, used only to express expiry to the service (Redis measures all durations itself). @default Date.now */
  clock?: Clock;
  /**
   * Distributed single-flight: concurrent misses on one key in several processes run the method once. The
   * first takes a lease (in the same round trip as its lookup); the others poll for its value. A holder that
   * dies blocks the others only until its lease expires; a wait never exceeds the lease. `true` for defaults.
   * @default off
   */
  lock?: boolean | RedisLockOptions;
}

/** Options of {@link RedisBackendOptions.lock}. */
export interface RedisLockOptions {
  /** How long a computation may hold the lease, in ms (and the longest another process waits). @default 10_000 */
  leaseMs?: number;
  /** How often a waiting process looks for the value, in ms. @default 25 */
  pollMs?: number;
}

/** A write token: the partition's generation and the server time when the computation began, plus the local queue position. */
interface RedisToken {
  readonly backend: RedisBackend;
  readonly generation: string;
  readonly serverTime: number;
  readonly local: number;
  /** The lease this computation holds (distributed single-flight), released when it stores or abandons. */
  readonly lease?: { readonly key: string; readonly owner: string } | undefined;
}

type ScriptName = 'aspectCacheLookup' | 'aspectCacheBegin' | 'aspectCacheTouch' | 'aspectCacheSet' | 'aspectCacheCheck' | 'aspectCacheInvalidate' | 'aspectCacheClearMark' | 'aspectCacheUnlock';

let instanceCounter = 0;

// Each list must name every field of its interface (`satisfies` fails the type check when one is added).
const REDIS_OPTION_NAMES = optionNames({
  client: 0, keyPrefix: 0, serializer: 0, maxPayloadBytes: 0, operationTimeoutMs: 0, invalidationTimeoutMs: 0,
  partitions: 0, markerTtlMs: 0, circuitBreaker: 0, retryDelayMs: 0, clock: 0, lock: 0,
} satisfies Record<keyof RedisBackendOptions, 0>);
const LOCK_OPTION_NAMES = optionNames({ leaseMs: 0, pollMs: 0 } satisfies Record<keyof RedisLockOptions, 0>);
const CIRCUIT_BREAKER_OPTION_NAMES = optionNames({ failureThreshold: 0, resetTimeoutMs: 0 } satisfies Record<keyof CircuitBreakerOptions, 0>);
type ScriptClient = Record<ScriptName, (...args: Array<string | number>) => Promise<unknown>>;

/**
 * A backend on Redis or Redis Cluster (ioredis). Values are serialized with superjson by default.
 *
 * - **A hit is one round trip**: one field of the entry hash holds the value, its dependencies and its expiry (a sliding entry
 *   is then extended by a script the caller does not wait for), read with the partition's generation and the
 *   server's clock, so a miss has its token in that round trip and its store is the second (with `lock`, the
 *   lease is one more). A tick's lookups share the round trip: the LOOKUP script on a standalone server, a
 *   pipeline on a cluster (see ReadBatcher).
 * - **Stores and invalidations are atomic per partition**: a store is one script on the entry's partition; an
 *   invalidation is one script per partition, run concurrently, computing the transitive closure on the server.
 * - **No stale write**, across processes, without trusting application clocks: invalidations write
 *   generation markers (server time based); a store is refused if a marker of its key or dependencies is newer
 *   than the token its miss returned.
 * - **No residue**: entries, index sets and markers all carry expiries; nothing needs a sweeper.
 * - **Resilience**: every call has a timeout; a circuit breaker stops calling a failing Redis and probes it
 *   again; an invalidation that fails is queued (`invalidate` then resolves `{ pending: true }`) and retried
 *   every `retryDelayMs` and at once on reconnect, independently of the breaker, and until it lands the
 *   entries it affects are not served by this process.
 *
 * - **Any string is a key or a dependency**: key names are encoded injectively (lone UTF-16 surrogates, which
 *   UTF-8 cannot carry, are escaped), so no two keys share an entry; scripts validate their inputs before
 *   their first write, and repair bookkeeping keys they find corrupt or of another type.
 *
 * Cluster layout: keys are `<prefix>ac2:{p<n>}:<kind>:<key>`; `{p<n>}` is the hash tag of partition n (see key-schema.ts).
 *
 * @example
 * import { Redis } from 'ioredis';
 * import { RedisBackend } from 'aspect-cache/redis';
 * const caching = new CachingService({ backend: new RedisBackend({ client: new Redis(process.env.REDIS_URL!), keyPrefix: 'shop:' }) });
 */
export class RedisBackend implements CachingBackend {
  readonly name = 'redis';
  readonly isSync = false;
  readonly clock: Clock;
  readonly #listeners = new BackendListeners();

  readonly #client: Redis | Cluster;
  readonly #isCluster: boolean;
  readonly #scripts: ScriptClient;
  readonly #prefix: string;
  readonly #serializer: Serializer;
  readonly #maxPayloadBytes: number;
  readonly #invalidationTimeoutMs: number;
  readonly #partitions: number;
  readonly #bases: string[];
  readonly #markerTtlMs: number;
  readonly #breaker: CircuitBreaker;
  /** Every Redis call goes through it: the timeout, and the breaker (the retry of invalidations bypasses it). */
  readonly #guard: CallGuard;
  readonly #leaseMs: number;
  readonly #pollMs: number;
  readonly #owner = `${process.pid}:${Date.now().toString(36)}:${++instanceCounter}:${Math.random().toString(36).slice(2)}`;
  #leases = 0;

  /** Invalidations not yet written to Redis, retried on their own schedule (see retryDelayMs). */
  readonly #pending: RetryQueue;
  /** Server time minus local time (ms, an upper bound), learned from script replies. */
  #offset = 0;
  /** Server time minus local time (ms, a lower bound): converts local deadlines to server ones, never later. */
  #offsetLow = 0;
  /** Sends the lookups (batched per tick and partition). */
  readonly #reads: ReadBatcher;

  constructor(options: RedisBackendOptions) {
    const where = 'RedisBackend';
    if (options === null || typeof options !== 'object') throw new CachingError(errors.E_INVALID_OPTION, `${where}: options must be an object with a client.`);
    checkKnownOptions(where, options, REDIS_OPTION_NAMES);
    const { client, keyPrefix = '', serializer, maxPayloadBytes = 4 * 1024 * 1024, operationTimeoutMs = 1_000, invalidationTimeoutMs = 10_000, markerTtlMs = 120_000, retryDelayMs = 250, clock = systemClock } = options;
    if (client === null || typeof client !== 'object' || typeof (client as { defineCommand?: unknown }).defineCommand !== 'function') {
      throw new CachingError(errors.E_INVALID_OPTION, `${where}: option client must be an ioredis Redis or Cluster instance.`);
    }
    if (typeof keyPrefix !== 'string') throw new CachingError(errors.E_INVALID_OPTION, `${where}: option keyPrefix must be a string.`);
    if (/[{}]/.test(keyPrefix)) throw new CachingError(errors.E_INVALID_OPTION, `${where}: option keyPrefix must not contain { or }: they would change the cluster hash tag.`);
    positive(where, 'maxPayloadBytes', maxPayloadBytes);
    positive(where, 'operationTimeoutMs', operationTimeoutMs);
    positive(where, 'invalidationTimeoutMs', invalidationTimeoutMs);
    positive(where, 'markerTtlMs', markerTtlMs);
    positive(where, 'retryDelayMs', retryDelayMs);
    const isCluster = (client as { isCluster?: boolean }).isCluster === true;
    const partitions = options.partitions ?? (isCluster ? 16 : 1);
    if (!(Number.isSafeInteger(partitions) && partitions >= 1 && partitions <= 1024)) {
      throw new CachingError(errors.E_INVALID_OPTION, `${where}: option partitions must be an integer from 1 to 1024, got ${String(options.partitions)}.`);
    }
    this.#client = client;
    this.#isCluster = isCluster;
    this.#prefix = keyPrefix;
    this.#serializer = serializer ?? new SuperJsonSerializer();
    this.#maxPayloadBytes = maxPayloadBytes;
    this.#invalidationTimeoutMs = invalidationTimeoutMs;
    this.#partitions = partitions;
    this.#bases = Array.from({ length: partitions }, (_, i) => partitionBase(keyPrefix, i));
    this.#markerTtlMs = markerTtlMs;
    this.clock = clock;
    const lock = options.lock === true ? {} : options.lock === false || options.lock === undefined ? undefined : options.lock;
    if (lock !== undefined && (lock === null || typeof lock !== 'object')) throw new CachingError(errors.E_INVALID_OPTION, `${where}: option lock must be true, false or { leaseMs?, pollMs? }.`);
    if (lock !== undefined) checkKnownOptions(where, lock, LOCK_OPTION_NAMES, 'lock.');
    const circuitBreaker = options.circuitBreaker ?? {};
    if (circuitBreaker === null || typeof circuitBreaker !== 'object') throw new CachingError(errors.E_INVALID_OPTION, `${where}: option circuitBreaker must be an object { failureThreshold?, resetTimeoutMs? }.`);
    checkKnownOptions(where, circuitBreaker, CIRCUIT_BREAKER_OPTION_NAMES, 'circuitBreaker.');
    this.#leaseMs = lock === undefined ? 0 : (lock.leaseMs ?? 10_000);
    this.#pollMs = lock?.pollMs ?? 25;
    if (lock !== undefined) {
      positive(where, 'lock.leaseMs', this.#leaseMs);
      positive(where, 'lock.pollMs', this.#pollMs);
    }
    this.#breaker = new CircuitBreaker(circuitBreaker, { where, remote: 'Redis', clock, onChange: (state: CircuitState) => this.#report({ type: 'circuit', state }) });
    this.#guard = new CallGuard({ where, remote: 'Redis', timeoutMs: operationTimeoutMs, breaker: this.#breaker });
    this.#pending = new RetryQueue({
      delayMs: retryDelayMs,
      attempt: keys => this.#invalidateEverywhere(keys, false, true),
      // While the client is (re)connecting, a command would only wait in its offline queue: wait for the
      // 'ready' event (below), or the next tick, instead.
      isReady: () => {
        const status = (client as { status?: string }).status;
        return !(status === 'connecting' || status === 'connect' || status === 'reconnecting');
      },
      onError: error => this.#report({ type: 'error', error, operation: 'invalidate (retry)' }),
    });
    this.#reads = new ReadBatcher({
      client,
      isCluster,
      lookupScript: (...args) => this.#scripts.aspectCacheLookup(...args),
      partitions,
      timeoutMs: operationTimeoutMs,
      guard: this.#guard,
      breaker: this.#breaker,
      now: () => this.clock.now(),
      interpret: (base, key, packed, clock) => this.#lookup(base, key, packed, clock),
      foreign: (base, key, error) => this.#foreign(base, key, error),
    });
    const define = (client as unknown as { defineCommand(name: string, definition: { lua: string }): void }).defineCommand.bind(client);
    define('aspectCacheLookup', { lua: LOOKUP_SCRIPT });
    define('aspectCacheBegin', { lua: BEGIN_SCRIPT });
    define('aspectCacheTouch', { lua: TOUCH_SCRIPT });
    define('aspectCacheSet', { lua: SET_SCRIPT });
    define('aspectCacheInvalidate', { lua: INVALIDATE_SCRIPT });
    define('aspectCacheClearMark', { lua: CLEAR_MARK_SCRIPT });
    define('aspectCacheCheck', { lua: CHECK_SCRIPT });
    define('aspectCacheUnlock', { lua: UNLOCK_SCRIPT });
    this.#scripts = client as unknown as ScriptClient;
    // Redis is reachable again: queued invalidations go at once (other processes may already be reading it).
    // 'ready' follows every (re)connection, also on a Cluster, and also when the ready check is disabled.
    // A stand-in client without events (tests, benchmarks) simply gets no retry on reconnect.
    if (typeof (client as { on?: unknown }).on === 'function') client.on('ready', this.#onReady);
    void this.#syncClock();
  }

  readonly #onReady = (): void => {
    if (this.#pending.size > 0) this.#pending.retryNow();
  };

  /** The circuit breaker's state. */
  get circuitState(): CircuitState {
    return this.#breaker.state;
  }

  /** Number of keys whose invalidation is waiting to be written to Redis. */
  get pendingInvalidations(): number {
    return this.#pending.size;
  }

  /** The Redis key of an entry (for diagnostics and tests). */
  entryKey(key: string): string {
    return entryKey(this.#bases[partitionOf(key, this.#partitions)]!, encodeKey(key));
  }

  get(key: string): Promise<CacheLookup> {
    const partition = partitionOf(key, this.#partitions);
    return this.#reads.get(partition, this.#bases[partition]!, key);
  }

  /** An entry key holding another type (written by something else): reported, removed, and a miss (the store rebuilds it). */
  #foreign(base: string, key: string, error: unknown): Promise<CacheLookup> {
    this.#report({ type: 'error', error: new CachingError(errors.E_BACKEND, `RedisBackend: the entry ${key} holds a value of another type; it is treated as a miss and replaced.`, { cause: error }), operation: 'decode' });
    void this.#discard(key);
    return this.#miss(base, key, undefined);
  }

  /** What the `h` field of an entry (or its absence) means for a lookup. */
  #lookup(base: string, key: string, packed: string | null | undefined, clock?: PartitionClock): CacheLookup | Promise<CacheLookup> {
    if (packed === null || packed === undefined) return this.#miss(base, key, undefined, undefined, clock);
    const entry = this.#unpack(key, packed);
    if (entry === undefined) {
      void this.#discard(key);
      return this.#miss(base, key, undefined, undefined, clock);
    }
    if (this.#pending.size > 0 && this.#pending.affects(key, entry.hit.dependencies)) return this.#miss(base, key, undefined, undefined, clock);
    const { hit, cap, sliding, staleFor } = entry;
    // Redis expires the entry itself (at expiry + fail-safe window), so a present entry is fresh unless it
    // is in its fail-safe window.
    if (sliding > 0) {
      if (staleFor > 0) return this.#slidingWithFailSafe(base, key, hit, cap, sliding, packed, clock);
      return this.#touch(base, key, hit, sliding, cap, this.clock.now());
    }
    if (staleFor > 0 && cap !== 0 && this.clock.now() + this.#offset >= cap) return this.#miss(base, key, hit, packed, clock);
    return hit;
  }

  /**
   * A miss's token from the generation and time its lookup read just before the entry (see ReadBatcher): the
   * same value BEGIN computes, max(generation, server time in µs). An invalidation that ran after the lookup
   * wrote a higher generation (it was later on the same server clock, and its generation exceeds the one read);
   * one that ran between the reads had already removed what the entry read could find. Undefined if the replies
   * are not what Redis sends, or the generation is corrupt: the miss then takes its token with BEGIN, which
   * repairs it.
   */
  #clockToken(clock: PartitionClock): RedisToken | undefined {
    const { time } = clock;
    if (!Array.isArray(time) || time.length !== 2) return undefined;
    const seconds = Number(time[0]);
    const micros = Number(time[1]);
    if (!Number.isSafeInteger(seconds) || !Number.isSafeInteger(micros)) return undefined;
    const nowUs = seconds * 1_000_000 + micros;
    // A corrupt generation is repaired by BEGIN (ahead of the clock, past any marker written after it).
    if (clock.generation !== null && !(typeof clock.generation === 'string' && /^\d{1,17}$/.test(clock.generation))) return undefined;
    const raw = clock.generation === null ? 0 : Number(clock.generation);
    const serverTime = seconds * 1000 + Math.floor(micros / 1000);
    this.#observeServerTime(serverTime, clock.sentAt);
    return this.#token(String(Math.max(raw, nowUs)), serverTime);
  }

  /**
   * A miss. Without `lock`, and with the `clock` its lookup read, the token comes from that (no round trip), and a
   * `stale` copy was read after it. Otherwise it takes a token with BEGIN (and, with `lock`, a lease — or waits
   * for the holder's value); `packed` is the entry an expired `stale` copy came from: BEGIN reads the entry
   * again, and the copy is dropped unless it is still the one stored, so a copy invalidated between the lookup
   * and the token is never offered to fail-safe (the token would be newer than that invalidation's markers).
   */
  async #miss(base: string, key: string, stale: CacheHit | undefined, packed?: string, clock?: PartitionClock): Promise<CacheLookup> {
    // Without a lease to take, the lookup's own round trip brought the token (and a stale copy read after it).
    if (this.#leaseMs === 0 && clock !== undefined) {
      const token = this.#clockToken(clock);
      if (token !== undefined) return stale === undefined ? { hit: false, token } : { hit: false, token, stale };
    }
    const waitUntil = this.#leaseMs > 0 ? Date.now() + this.#leaseMs : 0;
    const name = encodeKey(key);
    for (;;) {
      const owner = this.#leaseMs > 0 ? `${this.#owner}:${++this.#leases}` : '';
      const sentAt = this.clock.now();
      const reply = (await this.#guard.call(() => this.#scripts.aspectCacheBegin(3, sequenceKey(base), leaseKey(base, name), entryKey(base, name), this.#leaseMs, owner, this.#markerTtlMs, stale === undefined ? '0' : '1'))) as [string, number, number, string | null];
      this.#observeServerTime(Number(reply[1]), sentAt);
      if (stale !== undefined && reply[3] !== packed) stale = undefined;
      if (reply[2] === 2) {
        // Stored since this caller looked (typically by the lease holder it was waiting for): read it.
        const hit = await this.#readStored(base, key, name);
        if (hit !== undefined) return hit;
      }
      // Another process is computing this key: wait for its value rather than compute it again, at most for
      // the lease (a dead holder's lease expires and the next lookup takes it over).
      if (reply[2] !== 1 && Date.now() < waitUntil) {
        await new Promise(resolve => setTimeout(resolve, this.#pollMs));
        const hit = await this.#readStored(base, key, name);
        if (hit !== undefined) return hit;
        continue;
      }
      const lease = reply[2] === 1 && this.#leaseMs > 0 ? { key: leaseKey(base, name), owner } : undefined;
      const token = this.#token(reply[0], Number(reply[1]), lease);
      return stale === undefined ? { hit: false, token } : { hit: false, token, stale };
    }
  }

  /**
   * Reads an entry another process has just stored (the lease holder's) as a hit, or undefined. Like any hit,
   * a sliding entry reports (and extends) its sliding window, so a parent never outlives it; an entry kept
   * past its expiry for fail-safe, or affected by a queued invalidation, is not a hit.
   */
  async #readStored(base: string, key: string, name: string): Promise<CacheHit | undefined> {
    const packed = await this.#guard.call(() => this.#client.hget(entryKey(base, name), HIT_FIELD));
    const entry = packed === null || packed === undefined ? undefined : this.#unpack(key, packed);
    if (entry === undefined || this.#pending.affects(key, entry.hit.dependencies)) return undefined;
    if (entry.staleFor > 0 && entry.cap !== 0 && this.clock.now() + this.#offset >= entry.cap) return undefined;
    return entry.sliding > 0 ? this.#touch(base, key, entry.hit, entry.sliding, entry.cap, this.clock.now()) : entry.hit;
  }

  /** Sliding entries with a fail-safe window need their moving expiry to tell fresh from stale. */
  async #slidingWithFailSafe(base: string, key: string, hit: CacheHit, cap: number, sliding: number, packed: string, clock?: PartitionClock): Promise<CacheLookup> {
    const expiry = Number(await this.#guard.call(() => this.#client.hget(entryKey(base, encodeKey(key)), EXPIRY_FIELD)));
    const localNow = this.clock.now();
    if (expiry !== 0 && localNow + this.#offset >= expiry) return this.#miss(base, key, { ...hit, expiresAt: expiry - this.#offset }, packed, clock);
    return this.#touch(base, key, hit, sliding, cap, localNow);
  }

  async begin(key: string): Promise<unknown> {
    const base = this.#bases[partitionOf(key, this.#partitions)]!;
    const sentAt = this.clock.now();
    const name = encodeKey(key);
    const reply = (await this.#guard.call(() => this.#scripts.aspectCacheBegin(3, sequenceKey(base), leaseKey(base, name), entryKey(base, name), 0, '', this.#markerTtlMs, '0'))) as [string, number, number];
    this.#observeServerTime(Number(reply[1]), sentAt);
    return this.#token(reply[0], Number(reply[1]));
  }

  /** A sliding hit: answered now, extended in Redis without waiting (the extension is idempotent). */
  #touch(base: string, key: string, entry: CacheHit, sliding: number, cap: number, localNow: number): CacheHit {
    const name = encodeKey(key);
    this.#guard.call(() => this.#scripts.aspectCacheTouch(1, entryKey(base, name), base, String(Math.floor(localNow + sliding + this.#offsetLow)))).then(
      serverNow => this.#observeServerTime(Number(serverNow), localNow),
      error => this.#report({ type: 'error', error, operation: 'extend a sliding entry' }),
    );
    const extended = localNow + sliding;
    const capLocal = cap > 0 ? cap - this.#offset : Infinity;
    return { ...entry, expiresAt: Math.min(extended, capLocal) };
  }

  async #syncClock(): Promise<void> {
    try {
      const sentAt = this.clock.now();
      const [seconds, micros] = await this.#guard.call(() => this.#client.time());
      this.#observeServerTime(Number(seconds) * 1000 + Math.floor(Number(micros) / 1000), sentAt);
    } catch {
      // Without it the offset stays 0 until a script reports the server time; only expiry conversion is affected.
    }
  }

  /**
   * Learns how far the server's clock is ahead of the local one. Measured against the time the request was
   * sent, it can only overestimate (by the latency, plus 1 ms for rounding), so expiries converted with it are
   * never later than the server's: a parent never outlives a child because of it. Used only to express
   * expiries locally, never to decide races.
   */
  #observeServerTime(serverNow: number, sentAt: number): void {
    this.#offset = serverNow - sentAt + 1;
    // The server read its clock before this reply arrived (and both clocks are floored to the ms).
    this.#offsetLow = serverNow - this.clock.now() - 1;
  }

  async set(key: string, entry: CacheEntryInput, token: unknown): Promise<StoreOutcome> {
    const t = this.#ownToken(token, key);
    const refuse = (outcome: StoreOutcome): StoreOutcome => {
      this.#release(t);
      return outcome;
    };
    if (this.#pending.size > 0 && this.#pending.queuedSince(t.local, key, entry.dependencies)) return refuse('stale');
    // 'not-serializable' and 'too-large' must also certify freshness (see StoreOutcome): checked first.
    const refuseUnstorable = async (outcome: StoreOutcome): Promise<StoreOutcome> => {
      let fresh: boolean;
      try {
        fresh = await this.check(t, key, entry.dependencies);
      } catch {
        return refuse('backend-error');
      }
      return refuse(fresh ? outcome : 'stale');
    };
    let payload: string;
    try {
      payload = this.#serializer.serialize(entry.value);
    } catch (error) {
      return refuseUnstorable({ reason: 'not-serializable', detail: error instanceof Error ? error.message : String(error) });
    }
    if (Buffer.byteLength(payload) > this.#maxPayloadBytes) return refuseUnstorable('too-large');
    const partition = partitionOf(key, this.#partitions);
    const base = this.#bases[partition]!;
    const dependencies = [...new Set(entry.dependencies)];
    // Key names are encoded (see encodeKey); a hit returns the dependencies as given (fields.depsJson, never
    // decoded by Lua), the index names are sent apart only when encoding changed one.
    const name = encodeKey(key);
    const names = dependencies.map(encodeKey);
    const keys = [entryKey(base, name), sequenceKey(base), clearMarkerKey(base), ...markerKeys(base, name, names)];
    // Absolute deadlines on the server's clock, converted with a lower bound of the offset (see #offsetLow).
    const ttl = entry.expiresAt === Infinity ? 'none' : String(Math.floor(entry.expiresAt + this.#offsetLow));
    const slideUntil = entry.sliding > 0 ? String(Math.floor(this.clock.now() + entry.sliding + this.#offsetLow)) : '';
    const refreshAt = entry.refreshAt !== undefined && Number.isFinite(entry.refreshAt) ? String(Math.floor(entry.refreshAt + this.#offsetLow)) : '';
    const fields = entryFields(entry, dependencies);
    const indexJson = JSON.stringify(names);
    const args = [t.generation, t.serverTime, this.#markerTtlMs, payload, fields.depsJson, ttl, fields.sliding, fields.staleFor, fields.async, base, '', dependencies.length, indexJson === fields.depsJson ? '' : indexJson, slideUntil, refreshAt];
    try {
      const outcome = (await this.#guard.call(() => this.#scripts.aspectCacheSet(keys.length, ...keys, ...args))) as StoreOutcome | 'corrupt-index';
      if (outcome !== 'corrupt-index') return outcome;
      await this.#wipePartition(partition);
      return 'stale';
    } finally {
      this.#release(t);
    }
  }

  /** One read-only script on the key's partition: would a store with this token be accepted now? */
  async check(token: unknown, key: string, dependencies: readonly string[]): Promise<boolean> {
    if (token === null || typeof token !== 'object' || (token as RedisToken).backend !== this) return false;
    const t = token as RedisToken;
    if (this.#pending.affects(key, dependencies)) return false;
    const base = this.#bases[partitionOf(key, this.#partitions)]!;
    const keys = [clearMarkerKey(base), ...markerKeys(base, encodeKey(key), [...new Set(dependencies)].map(encodeKey))];
    return Number(await this.#guard.call(() => this.#scripts.aspectCacheCheck(keys.length, ...keys, t.generation, t.serverTime, this.#markerTtlMs))) === 1;
  }

  abandon(token: unknown): void {
    // Only a computation's lease is held in Redis while it runs.
    if (token !== null && typeof token === 'object' && (token as RedisToken).backend === this) this.#release(token as RedisToken);
  }

  #release(token: RedisToken): void {
    if (token.lease === undefined) return;
    const { key, owner } = token.lease;
    this.#guard.call(() => this.#scripts.aspectCacheUnlock(1, key, owner)).catch(() => undefined); // the lease expires anyway
  }

  /**
   * Invalidates in every partition. If Redis cannot be reached (or the circuit is open), the invalidation is
   * queued and the result says `pending: true`: it is retried every `retryDelayMs` and on reconnect, never
   * dropped, and until it lands this process does not serve the entries it affects.
   */
  async invalidate(keys: readonly string[], options?: InvalidateOptions): Promise<InvalidationResult> {
    if (keys.length === 0) return { removed: [] };
    try {
      const removed = await this.#invalidateEverywhere(keys, options?.preserveRoots === true, false, options?.holdMs ?? 0, options?.release === true);
      return { removed };
    } catch (error) {
      // Never dropped: queued, retried, and meanwhile the affected entries are not served by this process.
      this.#pending.add(keys);
      this.#report({ type: 'error', error, operation: 'invalidate (queued for retry)' });
      // Refused by an open circuit, Redis may well be back already (the read breaker probes late): try now.
      if (this.#breaker.state !== 'closed') this.#pending.retryNow();
      return { removed: [], pending: true };
    }
  }

  async clear(): Promise<void> {
    await Promise.all(this.#bases.map(base => this.#guard.call(() => this.#scripts.aspectCacheClearMark(2, sequenceKey(base), clearMarkerKey(base), this.#markerTtlMs))));
    await this.#unlinkMatching(allDataPattern(this.#prefix));
  }

  async dispose(): Promise<void> {
    if (typeof (this.#client as { off?: unknown }).off === 'function') this.#client.off('ready', this.#onReady);
    // The deadline sweep stays: calls still in flight must time out (it stops by itself once none is left).
    // Queued invalidations get one last attempt (after the one in flight, if any); the client belongs to the
    // application and stays open.
    await this.#pending.dispose();
  }

  // ───────────────────────────── internals ─────────────────────────────

  /**
   * Runs the invalidation script on every partition, concurrently. `direct` (the retry of queued invalidations)
   * bypasses the circuit breaker and leaves its state alone: the retry has its own schedule, and an open circuit
   * must not keep other processes reading entries this one invalidated.
   *
   * Each partition marks the given keys and removes the entries that depend on them (dependency lists are
   * closed, so every dependent, whatever the depth, names a given key: see scripts.ts). One partition is one
   * atomic script. With several, the scripts run concurrently, and a computation in one partition could take
   * its token after that partition was marked, read a dependent in another partition whose script has not run
   * yet, and store a value built on it that passes the marker. So the first round *fences* the keys (a marker in
   * the future, like a transaction's hold: no store that depends on them is accepted in any partition meanwhile),
   * and a second round, once every partition has removed its dependents, lowers the fences to a new generation
   * (refusing the tokens taken before). A fence left by a failed second round ends by itself after
   * `invalidationTimeoutMs`; the invalidation is then queued and retried like any other.
   */
  async #invalidateEverywhere(keys: readonly string[], preserveRoots: boolean, direct: boolean, holdMs = 0, release = false): Promise<string[]> {
    // The removed entries, decoded, as lists without duplicates: a script's own list, and each bulk list (one
    // index's members). Lists may overlap (a root's own entry also in a bulk list, a second round): they are
    // merged through a Set only when there are several, the rare case (hashing 10,000 keys costs ~1.5 ms).
    const parts: string[][] = [];
    // Encoded key names (see encodeKey) on the wire; the removed entry keys are decoded back.
    const names = [...new Set(keys.map(encodeKey))];
    const protectedKeys = preserveRoots ? JSON.stringify(names) : '[]';
    const corrupt = new Set<number>();
    const hold = Math.ceil(holdMs);
    const fenced = this.#partitions > 1;
    // A hold already refuses every store until it is released: it needs no fence of its own.
    const fenceMs = fenced && hold === 0 ? this.#invalidationTimeoutMs : 0;
    let fences: string[] = [];
    for (let round = 0; round < (fenced ? 2 : 1); round++) {
      const run = (base: string, i: number) => () =>
        round === 0
          ? this.#scripts.aspectCacheInvalidate(1, sequenceKey(base), base, this.#markerTtlMs, protectedKeys, hold, release ? '1' : '0', fenceMs, '', ...names)
          : this.#scripts.aspectCacheInvalidate(1, sequenceKey(base), base, this.#markerTtlMs, protectedKeys, 0, '0', 0, fences[i] ?? '', ...names);
      const replies = await Promise.all(
        this.#bases.map((base, i) => (direct ? this.#guard.direct(run(base, i), this.#invalidationTimeoutMs) : this.#guard.call(run(base, i), this.#invalidationTimeoutMs))),
      );
      fences = replies.map((reply, i) => {
        const [removedHere, corruptIndex, fence, bulk] = reply as [string[], number, string, string[]];
        if (corruptIndex === 1) corrupt.add(i);
        const base = this.#bases[i]!;
        const decode = (entry: string) => decodeKey(entryNameOf(base, entry));
        if (removedHere.length > 0) parts.push(removedHere.map(decode));
        for (const json of bulk) parts.push((JSON.parse(json) as string[]).map(decode));
        return fence;
      });
    }
    for (const partition of corrupt) await this.#wipePartition(partition);
    if (parts.length <= 1) return parts[0] ?? [];
    return [...new Set(parts.flat())];
  }

  /**
   * Removes every entry and index of one partition, after a script found an index key of another type there
   * (deleted: the entries it recorded can no longer be found by invalidations, so none may stay). Writes in
   * flight in the partition are refused (clear marker). Entries are rebuilt by the next misses.
   */
  async #wipePartition(partition: number): Promise<void> {
    const base = this.#bases[partition]!;
    this.#report({ type: 'error', error: new CachingError(errors.E_BACKEND, `RedisBackend: a dependency index of another type was found in partition ${partition}; it was deleted, with every entry of the partition.`), operation: 'repair' });
    await this.#guard.call(() => this.#scripts.aspectCacheClearMark(2, sequenceKey(base), clearMarkerKey(base), this.#markerTtlMs));
    await this.#unlinkMatching(partitionDataPattern(base));
  }

  /** UNLINKs every key matching a glob pattern (SCAN; on a cluster, on every master). */
  async #unlinkMatching(pattern: string): Promise<void> {
    const nodes = this.#isCluster ? (this.#client as Cluster).nodes('master') : [this.#client as Redis];
    await Promise.all(
      nodes.map(async node => {
        let cursor = '0';
        do {
          const [next, found] = await node.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
          cursor = next;
          if (found.length > 0) await Promise.all(found.map(k => node.unlink(k)));
        } while (cursor !== '0');
      }),
    );
  }

  #token(generation: string, serverTime: number, lease?: RedisToken['lease']): RedisToken {
    return { backend: this, generation, serverTime, local: this.#pending.sequence, lease };
  }

  #ownToken(token: unknown, key: string): RedisToken {
    if (token === null || typeof token !== 'object' || (token as RedisToken).backend !== this) {
      throw new CachingError(errors.E_BACKEND, `RedisBackend.set(${key}): the token was not issued by this backend.`);
    }
    return token as RedisToken;
  }

  /** Decodes the `h` field (see entry-codec.ts); a corrupt or foreign one is reported and undefined (a miss). */
  #unpack(key: string, packed: string): StoredEntry | undefined {
    try {
      return unpackEntry(packed, this.#serializer, this.#offset);
    } catch (error) {
      // Corrupt or foreign payloads are misses (and are removed), never crashes.
      this.#report({ type: 'error', error: new CachingError(errors.E_BACKEND, `RedisBackend: the entry ${key} could not be decoded; it is treated as a miss and removed.`, { cause: error }), operation: 'decode' });
      return undefined;
    }
  }

  async #discard(key: string): Promise<void> {
    try {
      await this.#guard.call(() => this.#client.unlink(this.entryKey(key)));
    } catch {
      // best effort: the entry expires anyway, and a later store replaces it
    }
  }

  /** Adds a listener for absorbed failures and circuit changes (see {@link CachingBackend.subscribe}); returns its unsubscribe function. */
  subscribe(listener: BackendListener): () => void {
    return this.#listeners.subscribe(listener);
  }

  /** Hands an event to every subscriber (a backend shared by several services reports to each); a throwing one never interrupts the backend's own work. */
  #report(event: BackendEvent): void {
    this.#listeners.event(event);
  }

}

function positive(where: string, option: string, value: unknown): void {
  if (!(typeof value === 'number' && value > 0 && Number.isFinite(value))) {
    throw new CachingError(errors.E_INVALID_OPTION, `${where}: option ${option} must be a positive number, got ${String(value)}.`);
  }
}
