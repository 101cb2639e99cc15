// Comparative benchmarks: aspect-cache against the caching libraries users would pick instead, on the memory
// hit path and the miss path of an async function with one string argument. Floors are measured in the same run.
//
//   npm run bench:peers                  full run (5 rounds), writes bench/RESULTS-peers.md
//   BENCH_QUICK=1 npm run bench:peers    one short round (< 1 min), indicative only; also writes the file (marked "quick")
//   node --import tsx bench/chart.ts     regenerates bench/peers-chart.svg from bench/peers-results.json (the run does it too)
//
// Environment: BENCH_QUICK=1, BENCH_ROUNDS=n, BENCH_NO_WRITE=1 (do not write the results files).
//
// Every peer wraps the same computation (`priceOf(id)`, counted), is warmed with the same 1,024 keys and is
// called with the same key sequence. Each hit scenario checks that the computation did not run while it was
// measured (a real hit), each miss scenario that it ran once per call (a real miss). Peer code is used through
// its public API only.
import { writeFileSync } from 'node:fs';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import { readFileSync } from 'node:fs';
import { LRUCache } from 'lru-cache';
import { measure } from 'mitata';
import pMemoize from 'p-memoize';
import { BentoCache, bentostore } from 'bentocache';
import { memoryDriver } from 'bentocache/drivers/memory';
import { Cacheable } from 'cacheable';
import { createCache as createCacheManager } from 'cache-manager';
import { createCache as createDedupeCache } from 'async-cache-dedupe';
import { Cacheable as TypeCacheable } from '@type-cacheable/core';
import { LRUCacheAdapter } from '@type-cacheable/lru-cache-adapter';
import { bindCachingService, Cache, CachingService, MemoryBackend } from '../src/index.js';
import { formatLoad, formatValue, libraryUnderTest, machineInfo, machineTable, packageVersions } from './report.js';
import { renderChart } from './chart.js';
import { startRedis } from './redis-server.js';
import { connectRedis, INVALIDATION_CONTENDERS, REDIS_CONTENDERS, REDIS_HOST } from './peers-redis.js';

const QUICK = process.env.BENCH_QUICK === '1';
const ROUNDS = Math.max(1, Number(process.env.BENCH_ROUNDS ?? (QUICK ? 1 : 5)) | 0);
/** mitata's minimum CPU time per scenario and round (ns). */
const HIT_CPU_NS = (QUICK ? 150 : 500) * 1e6;
const MISS_CPU_NS = (QUICK ? 100 : 250) * 1e6;

const gc = (globalThis as { gc?: () => void }).gc;
if (typeof gc !== 'function') console.warn('warning: run with node --expose-gc (npm run bench:peers does).');

// ───────────────────────────── fixtures ─────────────────────────────

const WARM = 1024;
const MASK = WARM - 1;
const ids = Array.from({ length: WARM }, (_, i) => `sku-${String(i).padStart(5, '0')}`);
let cursor = 0;
const nextId = (): string => ids[(cursor = (cursor + 1) & MASK)]!;
const priceOf = (id: string): number => id.length * 100 + id.charCodeAt(id.length - 1);

/** Counts how often the underlying computation ran, per peer, to prove hits are hits and misses are misses. */
const computed = new Map<string, number>();
function computation(name: string): (id: string) => Promise<number> {
  computed.set(name, 0);
  return async (id: string) => {
    computed.set(name, computed.get(name)! + 1);
    return priceOf(id);
  };
}
const BIG = 5_000_000;
const LONG_TTL_MS = 3_600_000;

/** One contender: `make` builds a fresh, empty instance and returns the call (id) → Promise<price>. */
interface Peer {
  readonly id: string;
  readonly label: string;
  readonly kind: 'floor' | 'subject' | 'peer';
  make(name: string): (id: string) => Promise<number>;
}

class AspectPrices {
  constructor(private readonly compute: (id: string) => Promise<number>) {}
  @Cache()
  async getPrice(id: string): Promise<number> {
    return this.compute(id);
  }
}

/**
 * @type-cacheable/core ships a legacy (experimentalDecorators) decorator; the benchmarks compile with TC39
 * decorators, so it is applied by hand exactly as TypeScript's legacy emit would: decorator(proto, key, descriptor).
 */
function typeCacheableClass(compute: (id: string) => Promise<number>, client: LRUCacheAdapter<{}>): new () => { getPrice(id: string): Promise<number> } {
  class TypeCacheablePrices {
    async getPrice(id: string): Promise<number> {
      return compute(id);
    }
  }
  const proto = TypeCacheablePrices.prototype;
  const decorate = TypeCacheable({ client, cacheKey: args => `price:${args[0] as string}` }) as unknown as (
    target: object,
    key: string,
    descriptor: PropertyDescriptor,
  ) => PropertyDescriptor;
  Object.defineProperty(proto, 'getPrice', decorate(proto, 'getPrice', Object.getOwnPropertyDescriptor(proto, 'getPrice')!));
  return TypeCacheablePrices;
}

const PEERS: readonly Peer[] = [
  {
    id: 'floor-lru',
    label: 'floor: async fn → lru.get(`price:${id}`)',
    kind: 'floor',
    make(name) {
      const compute = computation(name);
      const lru = new LRUCache<string, number>({ max: BIG });
      // Not a memoizer on its own: the floor of a hit is a lookup; on a miss it computes and stores.
      return async id => {
        const key = `price:${id}`;
        const hit = lru.get(key);
        if (hit !== undefined) return hit;
        const value = await compute(id);
        lru.set(key, value);
        return value;
      };
    },
  },
  {
    id: 'floor-map',
    label: 'floor: hand-written async memoizer (Map + template key)',
    kind: 'floor',
    make(name) {
      const compute = computation(name);
      const map = new Map<string, Promise<number>>();
      return id => {
        const key = `price:${id}`;
        let promise = map.get(key);
        if (promise === undefined) {
          promise = compute(id);
          map.set(key, promise);
        }
        return promise;
      };
    },
  },
  {
    id: 'aspect-cache',
    label: 'aspect-cache @Cache() (MemoryBackend)',
    kind: 'subject',
    make(name) {
      const service = new CachingService({ backend: new MemoryBackend({ maxEntries: BIG }) });
      const prices = bindCachingService(new AspectPrices(computation(name)), service);
      return id => prices.getPrice(id);
    },
  },
  {
    id: 'p-memoize',
    label: 'p-memoize pMemoize(fn) (default Map cache)',
    kind: 'peer',
    make(name) {
      return pMemoize(computation(name));
    },
  },
  {
    id: 'bentocache',
    label: 'bentocache getOrSet (memory driver, L1 only)',
    kind: 'peer',
    make(name) {
      const compute = computation(name);
      const bento = new BentoCache({
        default: 'memory',
        stores: { memory: bentostore().useL1Layer(memoryDriver({ maxItems: BIG })) },
      });
      return id => bento.getOrSet({ key: `price:${id}`, factory: () => compute(id), ttl: LONG_TTL_MS });
    },
  },
  {
    id: 'cacheable-wrap',
    label: 'cacheable Cacheable#wrap(fn) (default in-memory primary)',
    kind: 'peer',
    make(name) {
      const cache = new Cacheable();
      return cache.wrap(computation(name), { ttl: LONG_TTL_MS, keyPrefix: 'price' });
    },
  },
  {
    id: 'cacheable-get',
    label: 'cacheable Cacheable#get, set on miss (hand-written wrapper)',
    kind: 'peer',
    make(name) {
      const compute = computation(name);
      const cache = new Cacheable();
      return async id => {
        const key = `price:${id}`;
        const hit = await cache.get<number>(key);
        if (hit !== undefined) return hit;
        const value = await compute(id);
        await cache.set(key, value, LONG_TTL_MS);
        return value;
      };
    },
  },
  {
    id: 'cache-manager',
    label: 'cache-manager v7 createCache().wrap (default Keyv memory)',
    kind: 'peer',
    make(name) {
      const compute = computation(name);
      const cache = createCacheManager({ ttl: LONG_TTL_MS });
      return id => cache.wrap(`price:${id}`, () => compute(id));
    },
  },
  {
    id: 'async-cache-dedupe',
    label: 'async-cache-dedupe createCache().define (memory storage)',
    kind: 'peer',
    make(name) {
      const compute = computation(name);
      const cache = createDedupeCache({ ttl: 3600, storage: { type: 'memory', options: { size: BIG } } }).define('price', (id: string) => compute(id));
      const price = (cache as unknown as { price: (id: string) => Promise<number> }).price;
      return id => price(id);
    },
  },
  {
    id: 'type-cacheable',
    label: '@type-cacheable/core @Cacheable (lru-cache adapter)',
    kind: 'peer',
    make(name) {
      const Prices = typeCacheableClass(computation(name), new LRUCacheAdapter(new LRUCache<string, {}>({ max: BIG }) as never));
      const prices = new Prices();
      return id => prices.getPrice(id);
    },
  },
];

// ───────────────────────────── measurement ─────────────────────────────

type Scenario = 'hit' | 'miss' | 'hitNoAls' | 'redisSeq' | 'redisC64' | 'inv1' | 'inv100' | 'inv10000';
/** The part of a measurement the report uses (mitata's stats, or the concurrent throughput samples). */
interface Summary {
  readonly p25: number;
  readonly p50: number;
  readonly p75: number;
}
interface Contender {
  readonly id: string;
  readonly label: string;
  readonly kind: 'floor' | 'subject' | 'peer';
}
const results = new Map<string, Summary[]>(); // `${scenario}:${id}` → one Summary per round
/** Extra per-contender facts shown in a table's last column (e.g. Redis commands per hit). */
const extras = new Map<string, string>();
function record(scenario: Scenario, contender: Contender, stats: Summary): void {
  const key = `${scenario}:${contender.id}`;
  const list = results.get(key) ?? [];
  list.push({ p25: stats.p25, p50: stats.p50, p75: stats.p75 });
  results.set(key, list);
}

/** Hit instances live for the whole run: built and warmed once. */
const hitCalls = new Map<string, (id: string) => Promise<number>>();

async function fillAndWarm(id: string, name: string, call: (id: string) => Promise<number>, warmCalls: number): Promise<void> {
  for (const key of ids) {
    const value = await call(key);
    if (value !== priceOf(key)) throw new Error(`bench bug: ${id} returned ${value} for ${key}`);
  }
  if (computed.get(name) !== WARM) throw new Error(`bench bug: ${id} computed ${computed.get(name)} times while filling ${WARM} keys`);
  // JIT warm-up on the hit path.
  for (let i = 0; i < warmCalls; i++) await call(nextId());
  if (computed.get(name) !== WARM) throw new Error(`bench bug: ${id} did not hit during warm-up (${computed.get(name)} computations)`);
}

async function warmHits(peers: readonly Peer[]): Promise<void> {
  for (const peer of peers) {
    const name = `hit:${peer.id}`;
    const call = peer.make(name);
    hitCalls.set(peer.id, call);
    await fillAndWarm(peer.id, name, call, 50_000);
  }
}

async function measureHit(peer: Peer, scenario: 'hit' | 'hitNoAls' = 'hit'): Promise<void> {
  const call = hitCalls.get(peer.id)!;
  const name = `hit:${peer.id}`;
  const before = computed.get(name)!;
  const stats = await measure(() => call(nextId()), { min_cpu_time: HIT_CPU_NS });
  if (computed.get(name) !== before) throw new Error(`bench bug: ${peer.id} missed during the hit scenario`);
  record(scenario, peer, stats);
}

let missSerial = 0;
async function measureMiss(peer: Peer, round: number): Promise<void> {
  const name = `miss:${peer.id}:${round}`;
  const call = peer.make(name);
  // A short JIT warm-up on a fresh instance of the same peer, then measure on a clean one.
  for (let i = 0; i < 2_000; i++) await call(`warm-${missSerial++}`);
  const fresh = peer.make(name);
  computed.set(name, 0);
  let calls = 0;
  gc?.();
  const stats = await measure(
    () => {
      calls++;
      return fresh(`new-${missSerial++}`);
    },
    { min_cpu_time: MISS_CPU_NS },
  );
  const ran = computed.get(name)!;
  if (ran !== calls) throw new Error(`bench bug: ${peer.id} computed ${ran} times for ${calls} fresh keys`);
  computed.delete(name);
  record('miss', peer, stats);
}

// ───────────────────────────── Redis ─────────────────────────────

const REDIS = process.env.BENCH_REDIS !== '0';
const CONCURRENCY = 64;
const REDIS_SEQ_CPU_NS = (QUICK ? 150 : 400) * 1e6;
const REDIS_C64_OPS = QUICK ? 5_000 : 20_000;
const REDIS_C64_SAMPLES = 3;
const COUNTED_HITS = 1_000;
const TAG_SIZES = [1, 100, 10_000] as const;
type TagSize = (typeof TAG_SIZES)[number];
const INVALIDATION_SAMPLES: Record<TagSize, number> = QUICK ? { 1: 5, 100: 3, 10_000: 1 } : { 1: 15, 100: 8, 10_000: 3 };
/** Entries re-read after each invalidation to prove they were invalidated (they must recompute). */
const INVALIDATION_CHECKS = 20;
let redisServerDescription = '';

function infoField(info: string, field: string): string | undefined {
  return new RegExp(`^${field}:(.*)$`, 'm').exec(info)?.[1]?.trim();
}

/** Runs `fn(0…n-1)` with at most `concurrency` calls in flight. */
async function pool(n: number, concurrency: number, fn: (i: number) => Promise<unknown>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < n) await fn(next++);
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, n) }, worker));
}

async function runRedis(): Promise<void> {
  const server = await startRedis();
  console.log(`started redis-server pid ${server.pid} on ${REDIS_HOST}:${server.port}`);
  const onSignal = (signal: NodeJS.Signals) => void server.stop().finally(() => process.exit(signal === 'SIGINT' ? 130 : 143));
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  const closers: (() => Promise<void>)[] = [];
  try {
    const admin = await connectRedis(server.port);
    closers.push(async () => void admin.disconnect());
    const info = await admin.info('server');
    if (Number(infoField(info, 'process_id')) !== server.pid) throw new Error(`refusing to continue: port ${server.port} is not the redis-server this benchmark started (pid ${server.pid}).`);
    redisServerDescription = `redis-server ${infoField(info, 'redis_version') ?? '?'} started by the benchmark (pid ${server.pid}, ${REDIS_HOST}:${server.port}, --save "" --appendonly no)`;
    const commandsProcessed = async () => Number(infoField(await admin.info('stats'), 'total_commands_processed'));

    const calls = new Map<string, (id: string) => Promise<number>>();
    for (const contender of REDIS_CONTENDERS) {
      const name = `redis:${contender.id}`;
      const { call, close } = await contender.setup(server.port, computation(name));
      closers.push(close);
      calls.set(contender.id, call);
      await fillAndWarm(contender.id, name, call, 5_000);
      // Redis commands per hit, counted by the server (the INFO call itself counts 1).
      const before = await commandsProcessed();
      for (let i = 0; i < COUNTED_HITS; i++) await call(nextId());
      const perHit = ((await commandsProcessed()) - before - 1) / COUNTED_HITS;
      extras.set(`redisSeq:${contender.id}`, `${perHit.toFixed(2)} commands/hit`);
    }
    for (let round = 1; round <= ROUNDS; round++) {
      const order = REDIS_CONTENDERS.map((_, i) => REDIS_CONTENDERS[(i + round - 1) % REDIS_CONTENDERS.length]!);
      for (const contender of order) {
        const call = calls.get(contender.id)!;
        const name = `redis:${contender.id}`;
        const before = computed.get(name)!;
        record('redisSeq', contender, await measure(() => call(nextId()), { min_cpu_time: REDIS_SEQ_CPU_NS }));
        const samples: number[] = [];
        for (let s = 0; s < REDIS_C64_SAMPLES; s++) {
          const t0 = process.hrtime.bigint();
          await pool(REDIS_C64_OPS, CONCURRENCY, () => call(nextId()));
          samples.push(Number(process.hrtime.bigint() - t0) / REDIS_C64_OPS);
        }
        record('redisC64', contender, { p25: quantile(samples, 0.25), p50: median(samples), p75: quantile(samples, 0.75) });
        if (computed.get(name) !== before) throw new Error(`bench bug: ${contender.id} missed during the Redis hit scenarios`);
      }
      const line = (s: Scenario) => REDIS_CONTENDERS.map(c => `${c.id} ${formatValue(results.get(`${s}:${c.id}`)!.at(-1)!.p50)}`).join(', ');
      console.log(`round ${round}/${ROUNDS} Redis sequential p50 ns: ${line('redisSeq')}`);
      console.log(`round ${round}/${ROUNDS} Redis ${CONCURRENCY} concurrent ns/op: ${line('redisC64')}`);
    }
    await runInvalidation(admin, server.port, closers);
  } finally {
    for (const close of closers.reverse()) await close().catch(() => {});
    await server.stop();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    console.log(`stopped redis-server pid ${server.pid}`);
  }
}

let tagSerial = 0;
const sleep = (ms: number) => new Promise<void>(resolve => setTimeout(resolve, ms));
/**
 * Invalidation by tag/dependency: for each contender (on its own logical database) and each N, fill N entries
 * carrying one tag through the contender's cached function (64 concurrent misses), then time only the
 * invalidation call; count the keys in that database after the fill and after the invalidation (DBSIZE), and
 * check that a sample of the entries recomputes afterwards.
 */
async function runInvalidation(admin: Awaited<ReturnType<typeof connectRedis>>, port: number, closers: (() => Promise<void>)[]): Promise<void> {
  const dbsize = async (db: number) => {
    await admin.select(db);
    const size = await admin.dbsize();
    await admin.select(0);
    return size;
  };
  const flush = async (db: number) => {
    await admin.select(db);
    await admin.flushdb();
    await admin.select(0);
  };
  for (const [index, contender] of INVALIDATION_CONTENDERS.entries()) {
    const db = index + 1;
    const name = `inv:${contender.id}`;
    const { call, invalidate, close } = await contender.setup(port, db, computation(name));
    closers.push(close);
    const sample = async (n: number): Promise<{ ns: number; keysFilled: number; keysLeft: number }> => {
      await flush(db);
      const tag = `Tag:${tagSerial++}`;
      computed.set(name, 0);
      await pool(n, CONCURRENCY, i => call(tag, i));
      if (computed.get(name) !== n) throw new Error(`bench bug: ${contender.id} computed ${computed.get(name)} times while filling ${n} entries`);
      const keysFilled = await dbsize(db);
      gc?.();
      await sleep(10); // let the GC's background threads finish: the machine has 2 cores, shared with redis-server
      const t0 = process.hrtime.bigint();
      await invalidate(tag);
      const ns = Number(process.hrtime.bigint() - t0);
      const keysLeft = await dbsize(db);
      const checks = Math.min(n, INVALIDATION_CHECKS);
      computed.set(name, 0);
      for (let c = 0; c < checks; c++) await call(tag, Math.floor((c * n) / checks));
      if (computed.get(name) !== checks) throw new Error(`bench bug: after invalidating, ${contender.id} recomputed ${computed.get(name)} of ${checks} entries`);
      return { ns, keysFilled, keysLeft };
    };
    await sample(100); // warm-up, not recorded
    for (const n of TAG_SIZES) {
      const samples: number[] = [];
      let last = { ns: 0, keysFilled: 0, keysLeft: 0 };
      for (let k = 0; k < INVALIDATION_SAMPLES[n]; k++) {
        last = await sample(n);
        samples.push(last.ns);
      }
      const scenario = `inv${n}` as Scenario;
      record(scenario, contender, { p25: quantile(samples, 0.25), p50: median(samples), p75: quantile(samples, 0.75) });
      extras.set(`${scenario}:${contender.id}`, `${last.keysFilled} → ${last.keysLeft}`);
    }
    await flush(db);
    console.log(`invalidation ${contender.id}: ${TAG_SIZES.map(n => `${n} → ${formatValue(results.get(`inv${n}:${contender.id}`)!.at(-1)!.p50 / 1e3)} µs`).join(', ')}`);
  }
}

// ───────────────────────────── statistics ─────────────────────────────

function quantile(values: readonly number[], q: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  const position = (sorted.length - 1) * q;
  const lower = Math.floor(position);
  const upper = Math.ceil(position);
  return sorted[lower]! + (sorted[upper]! - sorted[lower]!) * (position - lower);
}
const median = (values: readonly number[]) => quantile(values, 0.5);

interface ScenarioSpec {
  readonly key: Scenario;
  readonly title: string;
  readonly contenders: readonly Contender[];
  readonly floors: readonly { readonly id: string; readonly heading: string }[];
  readonly note?: string;
  /** Display unit of the table (values are stored in ns). */
  readonly unit?: 'µs';
  readonly extraHeading?: string;
}
const MEMORY_FLOORS = [
  { id: 'floor-lru', heading: '× lru floor' },
  { id: 'floor-map', heading: '× Map floor' },
] as const;
const SCENARIOS: readonly ScenarioSpec[] = [
  { key: 'hit', title: 'Memory hit: warm key, async function with one string argument', contenders: PEERS, floors: MEMORY_FLOORS },
  { key: 'miss', title: 'Memory miss: fresh key each call, computation runs, value stored', contenders: PEERS, floors: MEMORY_FLOORS },
  {
    key: 'redisSeq',
    title: 'Redis hit, sequential (one call in flight)',
    contenders: REDIS_CONTENDERS,
    floors: [{ id: 'redis-floor', heading: '× raw GET' }],
    extraHeading: 'Redis commands per hit (counted by the server)',
    note: 'ns per call (lower is better). "× raw GET" below 1 would mean faster than a bare GET; the issue\'s target is aspect-cache ≥ 0.8× raw ioredis in throughput terms, i.e. a latency ratio ≤ 1.25.',
  },
  {
    key: 'redisC64',
    title: `Redis hit, ${CONCURRENCY} concurrent callers (wall time per call)`,
    contenders: REDIS_CONTENDERS,
    floors: [{ id: 'redis-floor', heading: '× raw GET' }],
    note: `Wall-clock ns per call over ${REDIS_C64_OPS.toLocaleString('en-US')} calls with ${CONCURRENCY} in flight (${REDIS_C64_SAMPLES} samples per round; ops/s = 1e9 / value). Ratio ≤ 1.25 to raw GET means ≥ 0.8× its throughput.`,
  },
  ...TAG_SIZES.map(
    (n): ScenarioSpec => ({
      key: `inv${n}` as Scenario,
      title: `Invalidation of one tag/dependency carried by ${n.toLocaleString('en-US')} Redis entr${n === 1 ? 'y' : 'ies'}`,
      contenders: INVALIDATION_CONTENDERS,
      floors: [{ id: 'redis-floor', heading: '× DEL floor' }],
      unit: 'µs',
      extraHeading: 'keys in its Redis db: after fill → after invalidation',
      note: `Time of the invalidation call alone (µs; median of ${INVALIDATION_SAMPLES[n]} sample${INVALIDATION_SAMPLES[n] === 1 ? '' : 's'}, not per round). Keys left: DBSIZE of the contender's own logical database right after the call (a lazy invalidation leaves the entries, which are then rejected on read; every contender passed the check that ${Math.min(n, INVALIDATION_CHECKS)} of the entries recompute afterwards).`,
    }),
  ),
  {
    key: 'hitNoAls',
    title: 'Info: memory hit measured before aspect-cache\'s first miss (no AsyncLocalStorage in the process yet), one pass',
    contenders: PEERS,
    floors: MEMORY_FLOORS,
    note: 'Same contenders and floors, measured once before aspect-cache existed in the process: this is how the peers run in an application that has no AsyncLocalStorage. The × aspect-cache column here compares with aspect-cache\'s first-round hit (with its AsyncLocalStorage active), so it is not a same-conditions ratio; the floor ratios are.',
  },
];

export interface PeerRow {
  readonly scenario: Scenario;
  readonly id: string;
  readonly label: string;
  readonly kind: Contender['kind'];
  /** Median over rounds of each round's p50, ns/op. */
  readonly ns: number;
  readonly spread: string;
  /** Median over rounds of the per-round ratio of p50s, one per floor of the scenario. */
  readonly toFloors: readonly number[];
  readonly toAspect: number;
  readonly extra: string;
}

function ratioOf(scenario: Scenario, a: string, b: string): number {
  const x = results.get(`${scenario}:${a}`);
  // aspect-cache is not in the no-AsyncLocalStorage pass (its first miss creates the storage): compare with its
  // first-round hit instead, which is measured with the storage active (see the notes).
  const y = results.get(`${scenario}:${b}`) ?? (scenario === 'hitNoAls' ? results.get(`hit:${b}`)?.slice(0, 1) : undefined);
  if (x === undefined || y === undefined) return Number.NaN;
  return median(x.map((s, i) => s.p50 / y[Math.min(i, y.length - 1)]!.p50));
}

function buildRows(): PeerRow[] {
  const rows: PeerRow[] = [];
  for (const spec of SCENARIOS) {
    for (const contender of spec.contenders) {
      const rounds = results.get(`${spec.key}:${contender.id}`);
      if (rounds === undefined) continue;
      const d = spec.unit === 'µs' ? 1e3 : 1;
      const p50s = rounds.map(s => s.p50 / d);
      const spread = rounds.length === 1
        ? `p25–p75 ${formatValue(rounds[0]!.p25 / d)}–${formatValue(rounds[0]!.p75 / d)}`
        : `p50 ${formatValue(Math.min(...p50s))}–${formatValue(Math.max(...p50s))} over ${rounds.length} rounds`;
      rows.push({
        scenario: spec.key,
        id: contender.id,
        label: contender.label,
        kind: contender.kind,
        ns: median(rounds.map(r => r.p50)),
        spread,
        toFloors: spec.floors.map(f => ratioOf(spec.key, contender.id, f.id)),
        toAspect: ratioOf(spec.key, contender.id, 'aspect-cache'),
        extra: extras.get(`${spec.key}:${contender.id}`) ?? '',
      });
    }
  }
  return rows;
}

// ───────────────────────────── output ─────────────────────────────

const root = fileURLToPath(new URL('..', import.meta.url));
function peerVersions(): Record<string, string> {
  const version = (pkg: string): string => {
    try {
      return (JSON.parse(readFileSync(`${root}node_modules/${pkg}/package.json`, 'utf8')) as { version?: string }).version ?? '?';
    } catch {
      return 'not installed';
    }
  };
  const names = ['p-memoize', 'bentocache', 'cacheable', 'cache-manager', 'keyv', '@keyv/redis', 'async-cache-dedupe', '@type-cacheable/core', '@type-cacheable/lru-cache-adapter', 'ioredis'];
  return { ...packageVersions(), ...Object.fromEntries(names.map(n => [n, version(n)])) };
}

const NOTES = [
  `Same run, same process, same key sequence: ${WARM} warm string keys (\`sku-00000\`…) cycled in the same order for every contender. Every contender wraps the same counted async computation; a hit scenario fails if the computation ran while it was measured, a miss scenario fails unless it ran exactly once per call.`,
  'Values are mitata p50 per call (ns/op), each round; the table shows the median over rounds and the spread (min–max of the rounds\' p50, or p25–p75 for a single round). Ratios are computed per round between scenarios of that round and summarised by their median, so they are more stable than the absolute numbers. The order of the contenders rotates every round.',
  'Memory hit: one instance per contender is filled with the warm keys and run 50,000 times before any measurement (JIT warm-up); instances persist across rounds. Memory miss: each round builds a fresh, empty instance per contender (after a 2,000-call warm-up on a separate instance) with a capacity that never evicts; the heap grows during the measurement, so GC is included.',
  'Each contender uses its default configuration except for a long TTL and a capacity large enough that nothing is evicted. Defaults differ: p-memoize and the Map floor cache the promise (they also deduplicate concurrent calls); bentocache, cacheable, cache-manager and async-cache-dedupe add TTL bookkeeping, events/hooks, stampede protection or deduplication; async-cache-dedupe and @type-cacheable build keys by serialising arguments. None of them has aspect-cache\'s dependency tracking; this is a cost comparison of the hit and miss paths, not of features.',
  '@type-cacheable/core ships legacy (experimentalDecorators) decorators; it is applied by hand (decorator(prototype, name, descriptor)), which is what TypeScript\'s legacy emit does, with an explicit `cacheKey` of `price:${id}`.',
  'aspect-cache runs with TC39 decorators through tsx, on a `CachingService` with a `MemoryBackend` (or `RedisBackend`). aspect-cache creates an AsyncLocalStorage on its first miss; on Node 20 this makes every promise in the process slower, and in the main tables all contenders pay that (they are measured in the same process after it exists). Libraries that await more per call pay more, which can favour aspect-cache relative to how a peer runs in an application without it; the "Info" table measures every other contender once before aspect-cache\'s first miss, for that comparison.',
  'Redis: the benchmark starts its own redis-server (bench/redis-server.ts) on a free loopback port and checks its process id before writing; each contender has its own connection(s) (ioredis for the floor, aspect-cache, bentocache and async-cache-dedupe; node-redis inside @keyv/redis for cache-manager). bentocache runs with a Redis L2 only (no L1, no bus), so every hit goes to Redis. "commands/hit" is counted by the server (INFO total_commands_processed) over 1,000 sequential hits. The values are small integers; keys carry each library\'s own prefix.',
  'Not measured here: memory-backend invalidation against peers, Redis misses and Redis invalidation under concurrent load, memory footprint, TTL expiry, serialisation of non-trivial values, multi-process setups.',
  'The machine may be shared (2 cores here; redis-server shares them with Node in the Redis scenarios): compare the load averages, and prefer ratios to absolute numbers.',
];

const fmtRatio = (x: number) => (Number.isNaN(x) ? '–' : x < 0.1 ? x.toFixed(3) : x.toFixed(2));

function renderMarkdown(rows: readonly PeerRow[], meta: { startedAt: Date; finishedAt: Date; loadBefore: number[]; loadAfter: number[] }): string {
  const load = formatLoad;
  const lines: string[] = [];
  lines.push('# Benchmark results: aspect-cache vs peers');
  lines.push('');
  lines.push('<!-- Generated by bench/peers.bench.ts. Do not edit: rerun `npm run bench:peers`. -->');
  lines.push('');
  if (QUICK) lines.push('> **Quick run** (`BENCH_QUICK=1`, one short round): indicative only. Record results with `npm run bench:peers` on a quiet machine.\n');
  lines.push(`- Date: ${meta.startedAt.toISOString()} (${((meta.finishedAt.getTime() - meta.startedAt.getTime()) / 1000).toFixed(0)} s)`);
  lines.push(`- Mode: ${QUICK ? 'quick' : 'full'}, ${ROUNDS} round${ROUNDS === 1 ? '' : 's'}; ${libraryUnderTest()} (peers from their published packages in node_modules)`);
  lines.push(`- Load average (1/5/15 min) before: ${load(meta.loadBefore)}, after: ${load(meta.loadAfter)}`);
  if (redisServerDescription) lines.push(`- Redis: ${redisServerDescription}`);
  lines.push('- Chart: [peers-chart.svg](peers-chart.svg) (written by the run; `node --import tsx bench/chart.ts` redraws it from peers-results.json)');
  lines.push('');
  lines.push(...machineTable(peerVersions()));
  lines.push('');
  for (const spec of SCENARIOS) {
    const list = rows.filter(r => r.scenario === spec.key);
    if (list.length === 0) continue;
    const hasExtra = list.some(r => r.extra !== '');
    lines.push(`## ${spec.title}`);
    lines.push('');
    if (spec.note) lines.push(spec.note, '');
    const unit = spec.unit ?? 'ns';
    const d = unit === 'µs' ? 1e3 : 1;
    lines.push(`| contender | median ${unit}${unit === 'ns' ? '/op' : ''} | spread | ${spec.floors.map(f => f.heading).join(' | ')} | × aspect-cache |${hasExtra ? ` ${spec.extraHeading ?? ''} |` : ''}`);
    lines.push(`|---|---:|---|${spec.floors.map(() => '---:').join('|')}|---:|${hasExtra ? '---|' : ''}`);
    for (const r of [...list].sort((a, b) => a.ns - b.ns)) {
      const name = r.kind === 'subject' ? `**${r.label}**` : r.label;
      lines.push(`| ${name.replaceAll('|', '\\|')} | ${formatValue(r.ns / d)} | ${r.spread} | ${r.toFloors.map(fmtRatio).join(' | ')} | ${fmtRatio(r.toAspect)} |${hasExtra ? ` ${r.extra} |` : ''}`);
    }
    lines.push('');
    const aspect = list.find(r => r.id === 'aspect-cache');
    const peers = list.filter(r => r.kind === 'peer');
    const faster = peers.filter(r => r.toAspect < 1);
    if (aspect !== undefined && spec.key !== 'hitNoAls') {
      lines.push(faster.length === 0
        ? `aspect-cache is the fastest of the ${peers.length} peers measured in this scenario.`
        : `Faster than aspect-cache here: ${faster.map(r => `${r.id} (${r.toAspect.toFixed(2)}×)`).join(', ')}.`);
      lines.push('');
    }
  }
  lines.push('## Targets (from issue 4)');
  lines.push('');
  lines.push('| target | measured | |');
  lines.push('|---|---|---|');
  const row = (scenario: Scenario, id: string) => rows.find(r => r.scenario === scenario && r.id === id);
  const memoryPeers = rows.filter(r => r.scenario === 'hit' && r.kind === 'peer');
  const aspectHit = row('hit', 'aspect-cache');
  if (aspectHit !== undefined && memoryPeers.length > 0) {
    const closest = [...memoryPeers].sort((a, b) => a.toAspect - b.toAspect)[0]!;
    lines.push(`| aspect-cache's memory hit is the fastest of all peers measured | ${formatValue(aspectHit.ns)} ns/op; closest peer ${closest.id} at ${closest.toAspect.toFixed(2)}× aspect-cache's time | ${memoryPeers.every(r => r.toAspect > 1) ? 'pass' : '**FAIL**'} |`);
  }
  for (const [scenario, what] of [['redisSeq', 'sequential'], ['redisC64', `${CONCURRENCY} concurrent callers`]] as const) {
    const r = row(scenario, 'aspect-cache');
    if (r === undefined) continue;
    const throughput = 1 / r.toFloors[0]!;
    lines.push(`| Redis hit ≥ 0.8× raw ioredis GET (${what}) | ${throughput.toFixed(2)}× raw GET throughput (latency ratio ${r.toFloors[0]!.toFixed(2)}) | ${throughput >= 0.8 ? 'pass' : '**FAIL**'} |`);
  }
  lines.push('');
  lines.push('## How it is measured');
  lines.push('');
  for (const note of NOTES) lines.push(`- ${note}`);
  lines.push('');
  return lines.join('\n');
}

function printTable(rows: readonly PeerRow[]): void {
  for (const spec of SCENARIOS) {
    const list = rows.filter(x => x.scenario === spec.key).sort((a, b) => a.ns - b.ns);
    if (list.length === 0) continue;
    console.log(`\n${spec.title}`);
    for (const r of list) {
      const floors = spec.floors.map((f, i) => `${f.heading} ${fmtRatio(r.toFloors[i]!).padStart(6)}`).join('  ');
      const d = spec.unit === 'µs' ? 1e3 : 1;
      console.log(`  ${r.label.padEnd(62)} ${formatValue(r.ns / d).padStart(7)} ${spec.unit ?? 'ns'}/op  ${floors}  × aspect ${fmtRatio(r.toAspect).padStart(6)}   (${r.spread}) ${r.extra}`);
    }
  }
}

// ───────────────────────────── main ─────────────────────────────

async function main(): Promise<void> {
  const startedAt = new Date();
  const loadBefore = os.loadavg();
  const m = machineInfo();
  console.log(`aspect-cache vs peers — ${QUICK ? 'QUICK (indicative only)' : 'full'}, ${ROUNDS} round${ROUNDS === 1 ? '' : 's'}${REDIS ? '' : ', Redis skipped (BENCH_REDIS=0)'}`);
  console.log(`${m.cpu}, ${m.cores} cores; Node ${m.node}; load average ${loadBefore.map(x => x.toFixed(2)).join(' ')}`);
  console.log(Object.entries(peerVersions()).map(([k, v]) => `${k} ${v}`).join(', '));

  // Everyone but aspect-cache first, measured once before aspect-cache's first miss creates its AsyncLocalStorage.
  const others = PEERS.filter(p => p.id !== 'aspect-cache');
  await warmHits(others);
  for (const peer of others) await measureHit(peer, 'hitNoAls');
  await warmHits(PEERS.filter(p => p.id === 'aspect-cache'));

  for (let round = 1; round <= ROUNDS; round++) {
    // Rotate the order each round so no contender is always measured first or last.
    const order = PEERS.map((_, i) => PEERS[(i + round - 1) % PEERS.length]!);
    for (const peer of order) await measureHit(peer);
    for (const peer of order) await measureMiss(peer, round);
    gc?.();
    const line = (s: Scenario) => PEERS.map(p => `${p.id} ${formatValue(results.get(`${s}:${p.id}`)!.at(-1)!.p50)}`).join(', ');
    console.log(`round ${round}/${ROUNDS} hit p50 ns: ${line('hit')}`);
    console.log(`round ${round}/${ROUNDS} miss p50 ns: ${line('miss')}`);
  }
  if (REDIS) await runRedis();

  const rows = buildRows();
  printTable(rows);
  const finishedAt = new Date();
  const loadAfter = os.loadavg();
  console.log(`\nload average after: ${loadAfter.map(x => x.toFixed(2)).join(' ')}`);
  if (process.env.BENCH_NO_WRITE !== '1') {
    const md = fileURLToPath(new URL('./RESULTS-peers.md', import.meta.url));
    writeFileSync(md, renderMarkdown(rows, { startedAt, finishedAt, loadBefore, loadAfter }));
    const json = fileURLToPath(new URL('./peers-results.json', import.meta.url));
    const data = { date: startedAt.toISOString(), mode: QUICK ? 'quick' : 'full', rounds: ROUNDS, node: process.version, loadBefore, loadAfter, rows };
    writeFileSync(json, `${JSON.stringify(data, null, 2)}\n`);
    const svg = fileURLToPath(new URL('./peers-chart.svg', import.meta.url));
    writeFileSync(svg, renderChart(data));
    console.log(`wrote ${md}\nwrote ${json}\nwrote ${svg}`);
  }
}

await main();
