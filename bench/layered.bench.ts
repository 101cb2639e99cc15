// Layered-backend benchmarks of aspect-cache (memory L1 per process over a shared Redis L2, kept fresh by the
// Redis invalidation bus), side by side with bentocache's tiered cache (memory L1 + Redis L2 + Redis bus):
//   1. L1 hit of an async @Cache method, against the same method on a plain MemoryBackend;
//   2. L2 hit (an L1 that always misses), against the same method on a plain RedisBackend, sequential and with
//      64 concurrent callers;
//   3. invalidation propagation to a second process (bench/layered-child.ts) on loopback: from just before
//      invalidate() to the moment that process's L1 no longer serves the entry, and how long invalidate() takes;
//   4. the same scenarios with bentocache (getOrSet on a warm key; delete and deleteByTag observed in the other
//      process), as ratios aspect-cache / bentocache.
//
//   npm run bench:layered                full run (5 rounds, about 2 min), writes bench/RESULTS-layered.md
//   BENCH_QUICK=1 npm run bench:layered  one round, fewer samples (< 1 min), indicative only; also writes the file
//
// Environment: BENCH_QUICK=1, BENCH_ROUNDS=n (override the number of rounds), BENCH_NO_WRITE=1 (do not write
// RESULTS-layered.md), BENCH_STRICT=1 (exit code 1 when a target is missed), BENCH_CLOCK=wall (time the
// in-process measurements on the wall clock instead of this process's CPU time; see CLOCK).
//
// The benchmark starts its own redis-server on a free loopback port (bench/redis-server.ts) and never connects
// to any other Redis (both processes check the server's process id first). Every scenario verifies that it
// measured the path it names — see NOTES below — and stops with an error otherwise.
import { fork, type ChildProcess } from 'node:child_process';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import type { Redis } from 'ioredis';
import { measure } from 'mitata';
import { BentoCache, bentostore } from 'bentocache';
import { memoryDriver } from 'bentocache/drivers/memory';
import { redisBusDriver, redisDriver } from 'bentocache/drivers/redis';
import {
  bindCachingService,
  CachingService,
  LayeredBackend,
  MemoryBackend,
  type CacheEntryInput,
  type CacheLookup,
  type CachingBackend,
  type InvalidateOptions,
  type InvalidationResult,
  type StoreOutcome,
} from '../src/index.js';
import { RedisBackend, RedisInvalidationBus } from '../src/redis.js';
import { TestBusNetwork } from '../src/testing.js';
import { descriptorOf } from '../src/decorators/method-descriptor.js';
import { decoratorMode } from './decorator-mode.js';
import { formatValue, gitRevision, machineInfo } from './report.js';
import { startRedis, type OwnRedis } from './redis-server.js';
import {
  bentoTagKey,
  connectOwnRedis,
  countedFactory,
  dependencyOf,
  HOST,
  ids,
  LONG_TTL_MS,
  MASK,
  PriceCatalogue,
  priceOf,
  PROPAGATION,
  propagationBento,
  WARM,
  type FromChild,
  type PropagationKind,
  type ToChild,
} from './layered-fixtures.js';
import { layeredPackageVersions, writeLayeredResults, type ResultRow, type TargetCheck } from './layered-report.js';

const QUICK = process.env.BENCH_QUICK === '1';
const ROUNDS = Math.max(1, Number(process.env.BENCH_ROUNDS ?? (QUICK ? 1 : 5)) | 0);
/** mitata's minimum CPU time per L1-hit contender and round (ns). */
const HIT_CPU_NS = (QUICK ? 150 : 500) * 1e6;
/** Sequential L2 hits per contender per round (each timed on its own). */
const LATENCY_CALLS = QUICK ? 1_500 : 4_000;
/** Operations per throughput sample, and samples per contender per round. */
const THROUGHPUT_OPS = QUICK ? 10_000 : 20_000;
const THROUGHPUT_SAMPLES = 3;
const CONCURRENCY = 64;
/** Sequential calls whose Redis commands are counted, per L2 contender (once). */
const COUNTED_CALLS = 1_000;
/** Propagation samples per kind per round: quick 200 in one round, full 1,000 over five. */
const PROPAGATION_SAMPLES = 200;
/** Untimed propagation samples per kind before the first round. */
const PROPAGATION_WARMUP = 20;
/** A propagation sample fails if the other process has not reported the removal by then. */
const PROPAGATION_TIMEOUT_MS = 2_000;
/** IPC ping-pongs per round to relate the two processes' clocks. */
const CLOCK_PINGS = 50;
/**
 * The hit scenarios' heartbeat. A LayeredBackend trusts its L1 for two heartbeats after its last own echo, and
 * mitata's measuring loops do not let timers or sockets run (they await settled promises only) for up to about
 * a second; with the default 1 s heartbeat that could make L1 hits silently become L2 reads. 60 s keeps the
 * echo fresh; the run still checks afterwards that trust never lapsed and that Redis saw no reads.
 */
const HIT_HEARTBEAT_MS = 60_000;
/** Capacity of the L1 caches of the L1-hit scenario (MemoryBackend's default; bentocache's default is 1,000, less than the 1,024 warm keys). */
const BIG = 100_000;
const COLORS = Boolean(process.stdout.isTTY) && !process.env.NO_COLOR;
/**
 * mitata's clock for the in-process measurements (L1 hits, pieces). By default this process's CPU time
 * (process.cpuUsage, µs resolution, read once per batch of 4,096 calls): on a shared machine, time spent
 * descheduled while other work runs is not counted. BENCH_CLOCK=wall uses mitata's wall clock, like the other suites.
 */
const CLOCK: 'cpu' | 'wall' = process.env.BENCH_CLOCK === 'wall' ? 'wall' : 'cpu';
const cpuNowNs = (): number => {
  const usage = process.cpuUsage();
  return (usage.user + usage.system) * 1e3;
};
const MITATA_CLOCK = CLOCK === 'cpu' ? { now: cpuNowNs } : {};
const CLOCK_NAME = CLOCK === 'cpu' ? 'CPU time of this process (process.cpuUsage)' : 'wall clock (mitata default)';

const gc = (globalThis as { gc?: () => void }).gc;
if (typeof gc !== 'function') console.warn('warning: run with node --expose-gc (npm run bench:layered does).');

const PREFIX = { layeredL1: 'bench-lay-l1:', layeredL2: 'bench-lay-l2:', redis: 'bench-redis:' } as const;
const CHANNEL = { layeredL1: 'bench-layered:l1-hit', layeredL2: 'bench-layered:l2-hit' } as const;

let cursor = 0;
const nextIndex = (): number => (cursor = (cursor + 1) & MASK);

// ───────────────────────────── small helpers ─────────────────────────────

const sleep = (ms: number) => new Promise<void>(resolve => setTimeout(resolve, ms));

function quantile(values: readonly number[], q: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  const position = (sorted.length - 1) * q;
  const lower = Math.floor(position);
  const upper = Math.ceil(position);
  return sorted[lower]! + (sorted[upper]! - sorted[lower]!) * (position - lower);
}
const median = (values: readonly number[]) => quantile(values, 0.5);
const range = (values: readonly number[], digits = 2) => `${Math.min(...values).toFixed(digits)}–${Math.max(...values).toFixed(digits)}`;

async function pool(n: number, concurrency: number, fn: (i: number) => Promise<unknown>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < n) await fn(next++);
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, n) }, worker));
}

async function until(condition: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`bench: ${what} did not happen within ${timeoutMs} ms.`);
    await sleep(10);
  }
}

/** `INFO commandstats` → command name → calls. */
function parseCommandstats(info: string): Map<string, number> {
  const stats = new Map<string, number>();
  for (const line of info.split(/\r?\n/)) {
    const match = /^cmdstat_([^:]+):calls=(\d+)/.exec(line);
    if (match) stats.set(match[1]!, Number(match[2]));
  }
  return stats;
}
/** Commands that never read a cache entry: the admin connection's own, bus heartbeats, clock syncs. */
const NON_READS = new Set(['info', 'config|resetstat', 'publish', 'time', 'ping']);
const describeCommands = (stats: Map<string, number>) => [...stats].map(([name, calls]) => `${name} ${calls}`).join(', ') || 'none';

function infoField(info: string, field: string): string | undefined {
  return new RegExp(`^${field}:(.*)$`, 'm').exec(info)?.[1]?.trim();
}

const isThenable = <T>(value: T | PromiseLike<unknown>): value is PromiseLike<unknown> => typeof (value as { then?: unknown } | null)?.then === 'function';

/** Rotates a list by `by` (the order of contenders changes every round or sample). */
const rotate = <T>(list: readonly T[], by: number): T[] => list.map((_, i) => list[(((i + by) % list.length) + list.length) % list.length]!);

// ───────────────────────────── contenders ─────────────────────────────

/**
 * A MemoryBackend presented as an asynchronous backend, so that a service takes the path it takes for a
 * LayeredBackend or a RedisBackend. Its lookups answer at once, or (`promises`) with an already resolved promise,
 * as a RedisBackend whose reply is there. A wrapper rather than a changed `isSync` on a MemoryBackend instance:
 * another shape of MemoryBackend would make MemoryBackend's own code polymorphic and slow down every
 * MemoryBackend in the process, the baseline included.
 */
class AsyncDeclaredMemory implements CachingBackend {
  readonly name = 'async-declared memory';
  readonly isSync = false;
  readonly inner = new MemoryBackend();
  readonly clock = this.inner.clock;
  constructor(readonly promises = false) {}
  get(key: string): CacheLookup | Promise<CacheLookup> {
    return this.promises ? Promise.resolve(this.inner.get(key)) : this.inner.get(key);
  }
  begin(key: string): unknown {
    return this.inner.begin(key);
  }
  set(key: string, entry: CacheEntryInput, token: unknown): StoreOutcome {
    return this.inner.set(key, entry, token);
  }
  check(token: unknown, key: string, dependencies: readonly string[]): boolean {
    return this.inner.check(token, key, dependencies);
  }
  abandon(token: unknown): void {
    this.inner.abandon(token);
  }
  invalidate(keys: readonly string[], options?: InvalidateOptions): InvalidationResult {
    return this.inner.invalidate(keys, options);
  }
  clear(): void {
    this.inner.clear();
  }
  dispose(): void {
    this.inner.dispose();
  }
}

type L1Id = 'memory' | 'memoryAsync' | 'layered' | 'bento' | 'bentoRaw' | 'bentoTagged';
type L2Id = 'redis' | 'layered' | 'bento';

interface Contender {
  readonly name: string;
  readonly call: (index: number) => Promise<number>;
  /** How often the computation behind it ran (a hit must not move it). */
  readonly computations: () => number;
  /** aspect-cache only: the service's hit counter (a hit must move it once per call). */
  readonly hits?: () => number;
}

const L1_IDS: readonly L1Id[] = ['memory', 'memoryAsync', 'layered', 'bento', 'bentoRaw', 'bentoTagged'];
const ASPECT_L1 = L1_IDS.filter(id => !id.startsWith('bento'));
const BENTO_L1 = L1_IDS.filter(id => id.startsWith('bento'));
/**
 * Slices per round of aspect-cache's L1 contenders: each slice measures each of them once, for 1/L1_SLICES of
 * the round's time, and a round's ratio is the median of its slices' ratios. Short slices side by side are what
 * kept the ratio steady on a machine whose other work comes and goes within seconds.
 */
const L1_SLICES = QUICK ? 10 : 30;
const L2_IDS: readonly L2Id[] = ['redis', 'layered', 'bento'];
const KINDS: readonly PropagationKind[] = ['aspect-cache', 'bento-delete', 'bento-tag'];
const KIND_NAMES: Record<PropagationKind, string> = {
  'aspect-cache': 'aspect-cache: `await service.invalidate(dependency)` on a LayeredBackend',
  'bento-delete': 'bentocache: `await bento.delete({ key })`',
  'bento-tag': 'bentocache: `await bento.deleteByTag({ tags: [tag] })`',
};

/** An aspect-cache contender: a bound PriceCatalogue on its own service. */
function aspectContender(name: string, service: CachingService): Contender & { readonly catalogue: PriceCatalogue } {
  const catalogue = bindCachingService(new PriceCatalogue(), service);
  return { name, catalogue, call: i => catalogue.getPrice(ids[i]!), computations: () => catalogue.computed, hits: () => service.stats().hits };
}

/** A bentocache tiered store on its own connection: memory L1 (options given) + Redis L2 + Redis bus. */
function bentoTiered(client: Redis, store: string, l1: Parameters<typeof memoryDriver>[0]): BentoCache<Record<string, ReturnType<typeof bentostore>>> {
  const bento = new BentoCache({
    default: store,
    prefix: `bench-bento-${store}`,
    stores: { [store]: bentostore().useL1Layer(memoryDriver(l1)).useL2Layer(redisDriver({ connection: client })).useBus(redisBusDriver({ connection: client })) },
  });
  bento.use();
  return bento;
}

function bentoContender(name: string, bento: BentoCache<Record<string, ReturnType<typeof bentostore>>>, tagged = false): Contender {
  const factory = countedFactory();
  const call = tagged
    ? (i: number) => bento.getOrSet({ key: `tagged:${ids[i]!}`, factory: factory.compute(ids[i]!), ttl: LONG_TTL_MS, tags: [dependencyOf(ids[i]!)] })
    : (i: number) => bento.getOrSet({ key: `price:${ids[i]!}`, factory: factory.compute(ids[i]!), ttl: LONG_TTL_MS });
  return { name, call, computations: factory.runs };
}

/** Fills the 1,024 warm keys (each one computes once) and runs the hit path `jitCalls` times. */
async function fillAndWarm(id: string, c: Contender, jitCalls: number): Promise<void> {
  const before = c.computations();
  for (let i = 0; i < WARM; i++) {
    const value = await c.call(i);
    if (value !== priceOf(ids[i]!)) throw new Error(`bench bug: ${id} returned ${value} for ${ids[i]}.`);
  }
  if (c.computations() - before !== WARM) throw new Error(`bench bug: ${id} computed ${c.computations() - before} times while filling ${WARM} keys.`);
  for (let i = 0; i < jitCalls; i++) await c.call(nextIndex());
  if (c.computations() - before !== WARM) throw new Error(`bench bug: ${id} did not hit during warm-up.`);
}

// ───────────────────────────── the second process ─────────────────────────────

interface Received {
  readonly message: FromChild;
  /** process.hrtime.bigint() in this process when the message handler ran. */
  readonly at: bigint;
}

/** The IPC link to bench/layered-child.ts: requests, and waits for the answer of one type and sample. */
class ChildLink {
  readonly child: ChildProcess;
  readonly #waiters = new Map<string, { resolve: (r: Received) => void; reject: (e: Error) => void }>();
  #failure: Error | undefined;

  constructor(port: number, pid: number) {
    // Same Node flags as this process (tsx, the dist/ redirection, --expose-gc): it runs the same build.
    this.child = fork(fileURLToPath(new URL('./layered-child.ts', import.meta.url)), [String(port), String(pid)], { execArgv: process.execArgv, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    this.child.on('message', (raw: unknown) => {
      const at = process.hrtime.bigint();
      const message = raw as FromChild;
      if (message.type === 'failed') return this.#fail(new Error(`the second process failed: ${message.error}`));
      const key = message.type === 'ready' || message.type === 'stats' ? message.type : message.type === 'pong' ? `pong:${message.n}` : `${message.type}:${message.seq}`;
      const waiter = this.#waiters.get(key);
      if (waiter === undefined) return;
      this.#waiters.delete(key);
      waiter.resolve({ message, at });
    });
    this.child.on('exit', (code, signal) => this.#fail(new Error(`the second process exited (code ${code}, signal ${signal}).`)));
  }

  /** Waits for the message `key` (`type` or `type:seq`); register before sending what causes it. */
  wait(key: string, timeoutMs: number): Promise<Received> {
    if (this.#failure !== undefined) return Promise.reject(this.#failure);
    return new Promise<Received>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiters.delete(key);
        reject(new Error(`timeout: no '${key}' from the second process within ${timeoutMs} ms.`));
      }, timeoutMs);
      this.#waiters.set(key, {
        resolve: r => {
          clearTimeout(timer);
          resolve(r);
        },
        reject: e => {
          clearTimeout(timer);
          reject(e);
        },
      });
    });
  }

  send(message: ToChild): void {
    this.child.send(message);
  }

  async close(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const exited = new Promise<void>(resolve => this.child.once('exit', () => resolve()));
    this.#failure ??= new Error('closing');
    if (this.child.connected) this.child.send({ type: 'exit' } satisfies ToChild);
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 5_000);
    await exited;
    clearTimeout(timer);
  }

  #fail(error: Error): void {
    this.#failure ??= error;
    for (const waiter of this.#waiters.values()) waiter.reject(error);
    this.#waiters.clear();
  }
}

/**
 * How the child's process.hrtime relates to this one's: Cristian's method over IPC ping-pongs. The pong with the
 * shortest round trip bounds the offset within ± half of it. On Linux both clocks are CLOCK_MONOTONIC, one
 * clock for the whole machine, and the estimate comes out within that bound of 0: the child's timestamps are
 * then used as they are (offset 0); otherwise the estimate is subtracted.
 */
async function clockOffset(link: ChildLink): Promise<{ offsetNs: bigint; estimateNs: number; boundNs: number; medianRttNs: number }> {
  let best: { rtt: bigint; offset: bigint } | undefined;
  const rtts: number[] = [];
  for (let n = 0; n < CLOCK_PINGS; n++) {
    const answer = link.wait(`pong:${n}`, 1_000);
    const sentAt = process.hrtime.bigint();
    link.send({ type: 'ping', n });
    const { message, at } = await answer;
    if (message.type !== 'pong') throw new Error('bench bug: expected a pong.');
    const rtt = at - sentAt;
    rtts.push(Number(rtt));
    const offset = BigInt(message.now) - (sentAt + at) / 2n;
    if (best === undefined || rtt < best.rtt) best = { rtt, offset };
    await sleep(1);
  }
  const boundNs = Number(best!.rtt) / 2;
  const estimateNs = Number(best!.offset);
  return { offsetNs: Math.abs(estimateNs) <= boundNs ? 0n : best!.offset, estimateNs, boundNs, medianRttNs: median(rtts) };
}

// ───────────────────────────── the run ─────────────────────────────

interface ThroughputSample {
  readonly opsPerSecond: number;
  /** CPU time of this process per operation (process.cpuUsage), µs: less sensitive than wall time to other work on the machine. */
  readonly nodeCpuUsPerOp: number;
}

interface PropagationSample {
  /** From just before the invalidating call to the removal in the other process, on one clock (µs). */
  readonly oneWayUs: number;
  /** From just before the call until this process received the other's report (µs): an upper bound without any clock assumption. */
  readonly roundTripUs: number;
  /** How long the invalidating call took to resolve (µs). */
  readonly resolveUs: number;
  readonly round: number;
}

/** Set once the benchmark stops its server: connection errors are expected from then on. */
let stopping = false;

async function main(): Promise<void> {
  const startedAt = new Date();
  const loadBefore = os.loadavg();
  const revision = gitRevision();
  const m = machineInfo();
  console.log(`aspect-cache layered benchmarks — ${QUICK ? 'QUICK (indicative only)' : 'full'}, ${ROUNDS} round${ROUNDS === 1 ? '' : 's'}`);
  console.log(`${m.cpu}, ${m.cores} cores, ${m.memory}; Node ${m.node}; ${Object.entries(layeredPackageVersions()).map(([k, v]) => `${k} ${v}`).join(', ')}`);
  console.log(`decorators compiled as ${decoratorMode}; load average ${loadBefore.map(x => x.toFixed(2)).join(' ')}`);
  if (decoratorMode.startsWith('legacy')) console.warn('warning: expected TC39 decorators (tsx picked up a tsconfig with experimentalDecorators).');

  const server = await startRedis();
  console.log(`started redis-server pid ${server.pid} on ${HOST}:${server.port} (dir ${server.dir})`);
  const clients: Redis[] = [];
  let link: ChildLink | undefined;
  const onSignal = (signal: NodeJS.Signals) => {
    stopping = true;
    console.error(`\n${signal}: stopping the second process and the benchmark's redis-server`);
    link?.child.kill('SIGKILL');
    void server.stop().finally(() => process.exit(signal === 'SIGINT' ? 130 : 143));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  const closers: Array<() => Promise<unknown>> = [];
  try {
    await runAll(server, clients, closers, l => (link = l), { startedAt, loadBefore, revision });
  } finally {
    stopping = true;
    await link?.close().catch(() => undefined);
    for (const close of closers.reverse()) await close().catch(() => undefined);
    for (const c of clients) c.disconnect();
    await server.stop();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    console.log(`stopped redis-server pid ${server.pid}`);
  }
}

async function runAll(
  server: OwnRedis,
  clients: Redis[],
  closers: Array<() => Promise<unknown>>,
  setLink: (link: ChildLink) => void,
  run: { startedAt: Date; loadBefore: number[]; revision: string },
): Promise<void> {
  const connect = async () => {
    const client = await connectOwnRedis(server.port, server.pid);
    client.on('error', (error: Error) => {
      if (!stopping) console.error(`ioredis connection error: ${error.message}`);
    });
    clients.push(client);
    return client;
  };
  /** Statistics only: never a measured connection. */
  const admin = await connect();
  const serverInfo = await admin.info('server');

  // ── 1. L1 hit: MemoryBackend vs LayeredBackend's L1 vs bentocache's L1 ──
  const memoryService = new CachingService({ backend: new MemoryBackend() });
  // Breakdown: a MemoryBackend presented as asynchronous, so the service takes the path it takes for a
  // LayeredBackend (whose L1 hits also answer without a promise) but without the layered backend's trust check.
  const asyncMemoryService = new CachingService({ backend: new AsyncDeclaredMemory() });
  const layeredL1Client = await connect();
  const layeredL1 = new LayeredBackend({
    l2: new RedisBackend({ client: layeredL1Client, keyPrefix: PREFIX.layeredL1 }),
    bus: new RedisInvalidationBus({ client: layeredL1Client, channel: CHANNEL.layeredL1, heartbeatMs: HIT_HEARTBEAT_MS }),
  });
  const layeredL1Service = new CachingService({ backend: layeredL1 });
  const bentoL1 = bentoTiered(await connect(), 'l1hit', { maxItems: BIG });
  const bentoL1Raw = bentoTiered(await connect(), 'l1raw', { maxItems: BIG, serialize: false });
  closers.push(() => memoryService.dispose(), () => asyncMemoryService.dispose(), () => layeredL1Service.dispose(), () => bentoL1.disconnect(), () => bentoL1Raw.disconnect());
  const memoryHit = aspectContender('aspect-cache @Cache hit, MemoryBackend (the baseline)', memoryService);
  const layeredHit = aspectContender(`aspect-cache @Cache L1 hit, LayeredBackend (default L1 = MemoryBackend, Redis L2, Redis bus with heartbeatMs ${HIT_HEARTBEAT_MS / 1000} s)`, layeredL1Service);
  const l1: Record<L1Id, Contender> = {
    memory: memoryHit,
    memoryAsync: aspectContender('breakdown: a MemoryBackend behind a wrapper declaring it asynchronous (isSync false): the service\'s path for an asynchronous backend, without the layered backend\'s trust check', asyncMemoryService),
    layered: layeredHit,
    bento: bentoContender(`bentocache getOrSet L1 hit, tiered store (memoryDriver({ maxItems: ${BIG.toLocaleString('en-US')} }) + Redis L2 + Redis bus; L1 entries serialised, the default)`, bentoL1),
    bentoRaw: bentoContender('bentocache getOrSet L1 hit, same store with memoryDriver({ serialize: false }) (no JSON.parse per hit)', bentoL1Raw),
    bentoTagged: bentoContender('bentocache getOrSet L1 hit of a tagged entry (tag `ProductPrice:<id>`, like aspect-cache\'s dependency; the tag is checked on each hit)', bentoL1, true),
  };

  // ── 2. L2 hit: RedisBackend vs LayeredBackend with an L1 that always misses vs bentocache ──
  const redisService = new CachingService({ backend: new RedisBackend({ client: await connect(), keyPrefix: PREFIX.redis }) });
  const layeredL2Client = await connect();
  /** One entry: the keys rotate over 1,024, so the next key is never the one L1 holds (see the notes). */
  const layeredL2L1 = new MemoryBackend({ maxEntries: 1 });
  const layeredL2 = new LayeredBackend({
    l1: layeredL2L1,
    l2: new RedisBackend({ client: layeredL2Client, keyPrefix: PREFIX.layeredL2 }),
    bus: new RedisInvalidationBus({ client: layeredL2Client, channel: CHANNEL.layeredL2, heartbeatMs: HIT_HEARTBEAT_MS }),
  });
  const layeredL2Service = new CachingService({ backend: layeredL2 });
  const bentoL2 = bentoTiered(await connect(), 'l2hit', { maxItems: 1 });
  closers.push(() => redisService.dispose(), () => layeredL2Service.dispose(), () => bentoL2.disconnect());
  const l2: Record<L2Id, Contender> = {
    redis: aspectContender('aspect-cache @Cache hit, RedisBackend (the baseline)', redisService),
    layered: aspectContender('aspect-cache @Cache L2 hit, LayeredBackend with l1 = new MemoryBackend({ maxEntries: 1 }): L1 miss, L2 read, copy into L1', layeredL2Service),
    bento: bentoContender('bentocache getOrSet L2 hit, tiered store with memoryDriver({ maxItems: 1 }): L1 miss, L2 GET, copy into L1', bentoL2),
  };

  /**
   * Each L2 contender walks the warm keys with its own cursor, never reset: its one-entry L1 holds the key of
   * one of its last calls (at most 64 in flight), and the next key is always another one. A shared
   * cursor would let a phase start on the key an L1 still holds (the run caught 1 such call in 128,000).
   */
  const l2Cursor: Record<L2Id, number> = { redis: 0, layered: 0, bento: 0 };
  const nextFor = (id: L2Id): number => (l2Cursor[id] = (l2Cursor[id] + 1) & MASK);

  await until(() => layeredL1.trusted && layeredL2.trusted, 'trust of the hit scenarios\' layered backends');
  const resyncsAtStart = { l1: layeredL1.resyncs, l2: layeredL2.resyncs };
  console.log('warming up (fill 1,024 keys per contender, then the hit paths)…');
  for (const id of L1_IDS) await fillAndWarm(`L1 ${id}`, l1[id], 50_000);
  for (const id of L2_IDS) {
    await fillAndWarm(`L2 ${id}`, l2[id], 3_000);
    await pool(5_000, CONCURRENCY, () => l2[id].call(nextFor(id)));
  }

  // Keys, built once, for the breakdown and the checks.
  const descriptor = descriptorOf(PriceCatalogue.prototype.getPrice);
  if (descriptor === undefined) throw new Error('bench bug: no descriptor for PriceCatalogue.getPrice');
  const cacheKeys = ids.map(id => descriptor.keyFor(memoryHit.catalogue, [id]));
  const probe = layeredL1.get(cacheKeys[0]!);
  if (isThenable(probe)) {
    await probe;
    throw new Error('bench bug: the layered backend did not answer a warm entry from L1.');
  }
  if (!probe.hit) throw new Error('bench bug: the layered L1 does not hold the warm entries.');

  // ── Redis commands per L2 hit (once) ──
  async function countCommands(id: L2Id): Promise<Map<string, number>> {
    await admin.config('RESETSTAT');
    for (let i = 0; i < COUNTED_CALLS; i++) await l2[id].call(nextFor(id));
    const stats = parseCommandstats(await admin.info('commandstats'));
    for (const name of NON_READS) stats.delete(name);
    return stats;
  }
  const commandsPerHit = new Map<L2Id, Map<string, number>>();
  for (const id of L2_IDS) commandsPerHit.set(id, await countCommands(id));

  // ── the second process and the propagation contenders ──
  const link = new ChildLink(server.port, server.pid);
  setLink(link);
  const ready = await link.wait('ready', 30_000);
  if (ready.message.type !== 'ready') throw new Error('bench bug: expected ready.');
  const propagationClient = await connect();
  const bentoPropagationClient = await connect();
  const propagationBentoParent = propagationBento(bentoPropagationClient);
  closers.push(() => propagationBentoParent.disconnect());
  /** aspect-cache's side of the propagation scenario, opened per round (its dispose says goodbye on the bus). */
  const openPropagationService = async () => {
    const backend = new LayeredBackend({
      l2: new RedisBackend({ client: propagationClient, keyPrefix: PROPAGATION.keyPrefix }),
      bus: new RedisInvalidationBus({ client: propagationClient, channel: PROPAGATION.channel }),
    });
    const service = new CachingService({ backend });
    await until(() => backend.trusted, 'trust of the propagation scenario\'s layered backend');
    return service;
  };

  let seq = 0;
  let propagationService: CachingService | undefined;
  let clock = { offsetNs: 0n, estimateNs: 0, boundNs: 0, medianRttNs: 0 };
  const clocks: Array<typeof clock> = [];

  const invalidateFor = (kind: PropagationKind, id: string): Promise<unknown> => {
    if (kind === 'aspect-cache') return propagationService!.invalidate(dependencyOf(id));
    if (kind === 'bento-delete') return propagationBentoParent.delete({ key: `price:${id}` });
    return propagationBentoParent.deleteByTag({ tags: [dependencyOf(id)] });
  };

  /** One sample: the child warms the entry into its L1, this process invalidates, the child reports the removal. */
  async function propagationSample(kind: PropagationKind, round: number, timeoutMs = PROPAGATION_TIMEOUT_MS): Promise<PropagationSample> {
    const n = ++seq;
    const id = `prop-${n}`;
    const warmed = link.wait(`warmed:${n}`, 5_000);
    link.send({ type: 'warm', seq: n, kind, id });
    const w = (await warmed).message;
    if (w.type === 'warmed' && w.error !== undefined) throw new Error(`bench: the second process could not warm ${kind} ${id}: ${w.error}`);
    // Let the other process go idle, as a process waiting for requests is.
    await sleep(1);
    const gone = link.wait(`gone:${n}`, timeoutMs);
    const verified = link.wait(`verified:${n}`, timeoutMs + 1_000);
    const removedBefore = kind === 'aspect-cache' ? propagationService!.stats().invalidatedEntries : 0;
    const t0 = process.hrtime.bigint();
    await invalidateFor(kind, id);
    const t1 = process.hrtime.bigint();
    const [g, v] = await Promise.allSettled([gone, verified]);
    if (g.status === 'rejected') throw new Error(`bench: ${kind} ${id}: ${(g.reason as Error).message}`);
    const goneMessage = g.value.message;
    if (goneMessage.type !== 'gone') throw new Error('bench bug: expected gone.');
    if (goneMessage.via === 'clear') throw new Error(`bench: ${kind} ${id}: the second process dropped its whole L1 (a resync or clear) instead of receiving the invalidation; not the path being measured.`);
    if (v.status === 'rejected') throw new Error(`bench: ${kind} ${id}: ${(v.reason as Error).message}`);
    if (v.value.message.type === 'verified' && v.value.message.error !== undefined) throw new Error(`bench: ${kind} ${id}: ${v.value.message.error}`);
    if (kind === 'aspect-cache' && propagationService!.stats().invalidatedEntries - removedBefore !== 1) {
      throw new Error(`bench: invalidating ${dependencyOf(id)} removed ${propagationService!.stats().invalidatedEntries - removedBefore} entries from L2, expected the one the second process stored.`);
    }
    return {
      oneWayUs: Number(BigInt(goneMessage.at) - clock.offsetNs - t0) / 1e3,
      roundTripUs: Number(g.value.at - t0) / 1e3,
      resolveUs: Number(t1 - t0) / 1e3,
      round,
    };
  }

  // bentocache subscribes in the background (no ready signal): wait until a delete is observed over there.
  propagationService = await openPropagationService();
  for (let attempt = 1; ; attempt++) {
    try {
      await propagationSample('bento-delete', 0, 300);
      break;
    } catch (error) {
      if (attempt >= 30) throw error;
    }
  }
  for (let i = 0; i < PROPAGATION_WARMUP; i++) for (const kind of KINDS) await propagationSample(kind, 0);
  await propagationService.dispose();
  propagationService = undefined;

  // ── rounds ──
  const l1Stats = new Map<L1Id, number[]>(L1_IDS.map(id => [id, []])); // per round: mitata p50 (ns)
  const l1P99 = new Map<L1Id, number[]>(L1_IDS.map(id => [id, []]));
  const l1PhaseCommands: Array<Map<string, number>> = [];
  /** Per round, for two aspect-cache L1 contenders `a/b`: the median over the round's slices of a's p50 over (minus) b's. */
  const l1SliceRatios = new Map<string, number[]>();
  const l1SliceDiffs = new Map<string, number[]>();
  const latency = new Map<L2Id, number[][]>(L2_IDS.map(id => [id, []])); // per round, the per-call µs
  const throughput = new Map<L2Id, ThroughputSample[][]>(L2_IDS.map(id => [id, []])); // per round, the samples
  const l2PhaseCommands: Array<Map<string, number>> = [];
  const propagation = new Map<PropagationKind, PropagationSample[]>(KINDS.map(kind => [kind, []]));
  let childStats: FromChild | undefined;

  /** One L1 round; round 0 is the untimed warm-up round (measured, checked, not recorded). */
  /** One mitata measurement of an L1 contender, with its checks: no computation, one service hit per call. */
  async function measureL1(id: L1Id, cpuNs: number, collect = true): Promise<{ p50: number; p99: number }> {
    const c = l1[id];
    const computed = c.computations();
    const hits = c.hits?.();
    let calls = 0;
    const stats = await measure(
      () => {
        calls++;
        return c.call(nextIndex());
      },
      // A slice does not start with a full collection (a round does, once): one per slice would dominate the run.
      { min_cpu_time: cpuNs, ...MITATA_CLOCK, ...(collect ? {} : { gc: false }) },
    );
    if (c.computations() !== computed) throw new Error(`bench: L1 ${id} computed during its hit measurement.`);
    if (hits !== undefined && c.hits!() - hits !== calls) throw new Error(`bench: L1 ${id}: ${c.hits!() - hits} hits for ${calls} calls.`);
    // Let timers and sockets run between two measuring loops (heartbeats, bus messages).
    await sleep(5);
    return { p50: stats.p50, p99: stats.p99 };
  }

  async function l1Round(round: number): Promise<void> {
    await admin.config('RESETSTAT');
    // The other scenarios ran the same service code with other backends since the last round: run each hit
    // path again, untimed, before measuring (inside the checked window: these must be L1 hits too).
    for (const id of L1_IDS) for (let i = 0; i < (id.startsWith('bento') ? 2_000 : 20_000); i++) await l1[id].call(nextIndex());
    const cpuNs = round === 0 ? HIT_CPU_NS / 4 : HIT_CPU_NS;
    // aspect-cache's contenders (the target compares them) in slices, each slice measuring each of them once in
    // a rotated order, so that all of them see the same moments of a busy machine; then bentocache's, once each.
    const slices = new Map<L1Id, Array<{ p50: number; p99: number }>>(ASPECT_L1.map(id => [id, []]));
    gc?.();
    for (let k = 0; k < L1_SLICES; k++) for (const id of rotate(ASPECT_L1, round + k)) slices.get(id)!.push(await measureL1(id, cpuNs / L1_SLICES, false));
    const results = new Map<L1Id, { p50: number; p99: number }>();
    for (const [id, list] of slices) results.set(id, { p50: median(list.map(x => x.p50)), p99: median(list.map(x => x.p99)) });
    if (round > 0) {
      for (const a of ASPECT_L1) {
        for (const b of ASPECT_L1) {
          if (a === b) continue;
          const pair = `${a}/${b}`;
          const ratios = slices.get(a)!.map((x, k) => x.p50 / slices.get(b)![k]!.p50);
          const diffs = slices.get(a)!.map((x, k) => x.p50 - slices.get(b)![k]!.p50);
          (l1SliceRatios.get(pair) ?? l1SliceRatios.set(pair, []).get(pair)!).push(median(ratios));
          (l1SliceDiffs.get(pair) ?? l1SliceDiffs.set(pair, []).get(pair)!).push(median(diffs));
        }
      }
    }
    for (const id of rotate(BENTO_L1, round)) results.set(id, await measureL1(id, cpuNs));
    for (const [id, r] of results) {
      if (round > 0) {
        l1Stats.get(id)!.push(r.p50);
        l1P99.get(id)!.push(r.p99);
      } else warmupP50.set(id, r.p50);
    }
    const commands = parseCommandstats(await admin.info('commandstats'));
    const reads = new Map([...commands].filter(([name]) => !NON_READS.has(name)));
    if (reads.size > 0) throw new Error(`bench: Redis served ${describeCommands(reads)} while L1 hits were measured: some "L1 hits" read L2.`);
    if (!layeredL1.trusted || layeredL1.resyncs !== resyncsAtStart.l1) {
      throw new Error(`bench: the L1-hit layered backend lost trust during the measurement (trusted ${layeredL1.trusted}, resyncs ${layeredL1.resyncs - resyncsAtStart.l1}); its hits may have gone to L2.`);
    }
    if (round > 0) l1PhaseCommands.push(commands);
  }

  async function l2Round(round: number): Promise<void> {
    await admin.config('RESETSTAT');
    const before = new Map(L2_IDS.map(id => [id, { computed: l2[id].computations(), hits: l2[id].hits?.() }]));
    const calls = new Map<L2Id, number>(L2_IDS.map(id => [id, 0]));
    const counted = (id: L2Id) => {
      const c = l2[id];
      return (i: number) => {
        calls.set(id, calls.get(id)! + 1);
        return c.call(i);
      };
    };
    const ops = new Map(L2_IDS.map(id => [id, counted(id)]));
    // Sequential: one call at a time, contenders interleaved call by call (order rotated each call).
    const samples = new Map(L2_IDS.map(id => [id, new Array<number>(LATENCY_CALLS)]));
    for (let c = 0; c < LATENCY_CALLS; c++) {
      for (let j = 0; j < L2_IDS.length; j++) {
        const id = L2_IDS[(c + j + round) % L2_IDS.length]!;
        const index = nextFor(id);
        const t0 = process.hrtime.bigint();
        await ops.get(id)!(index);
        samples.get(id)![c] = Number(process.hrtime.bigint() - t0) / 1e3;
      }
    }
    for (const [id, values] of samples) latency.get(id)!.push(values);
    // Throughput: 64 callers, samples interleaved (order rotated per sample).
    const roundSamples = new Map<L2Id, ThroughputSample[]>(L2_IDS.map(id => [id, []]));
    for (let s = 0; s < THROUGHPUT_SAMPLES; s++) {
      for (const id of rotate(L2_IDS, s + round)) {
        const op = ops.get(id)!;
        const cpuBefore = process.cpuUsage();
        const t0 = process.hrtime.bigint();
        let issued = 0;
        const worker = async () => {
          while (issued < THROUGHPUT_OPS) {
            issued++;
            await op(nextFor(id));
          }
        };
        await Promise.all(Array.from({ length: CONCURRENCY }, worker));
        const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
        const cpu = process.cpuUsage(cpuBefore);
        roundSamples.get(id)!.push({ opsPerSecond: THROUGHPUT_OPS / seconds, nodeCpuUsPerOp: (cpu.user + cpu.system) / THROUGHPUT_OPS });
      }
    }
    for (const [id, list] of roundSamples) throughput.get(id)!.push(list);
    // Checks: no computation; aspect-cache hits = calls; every layered call read L2 (HGETs = both aspect-cache contenders' calls).
    for (const id of L2_IDS) {
      const b = before.get(id)!;
      if (l2[id].computations() !== b.computed) throw new Error(`bench: L2 ${id} computed during its hit measurement.`);
      if (b.hits !== undefined && l2[id].hits!() - b.hits !== calls.get(id)) throw new Error(`bench: L2 ${id}: ${l2[id].hits!() - b.hits} hits for ${calls.get(id)} calls.`);
    }
    const commands = parseCommandstats(await admin.info('commandstats'));
    const hgets = commands.get('hget') ?? 0;
    const expectedHgets = calls.get('redis')! + calls.get('layered')!;
    if (hgets !== expectedHgets) throw new Error(`bench: ${hgets} HGETs for ${expectedHgets} aspect-cache calls: some layered "L2 hits" were served by L1.`);
    // Each LOOKUP script (a batch of aspect-cache lookups, the only script a hit phase runs) reads its partition's
    // generation with one GET inside Redis, which commandstats counts too.
    const gets = (commands.get('get') ?? 0) - (commands.get('evalsha') ?? 0) - (commands.get('eval') ?? 0);
    if (gets !== calls.get('bento')) throw new Error(`bench: ${gets} GETs for ${calls.get('bento')} bentocache calls: some bentocache "L2 hits" were served by its L1.`);
    if (!layeredL2.trusted || layeredL2.resyncs !== resyncsAtStart.l2) throw new Error('bench: the L2-hit layered backend lost trust: it read L2 without copying into L1, not the path being measured.');
    if (layeredL2L1.size !== 1) throw new Error(`bench: the L2-hit layered backend's L1 holds ${layeredL2L1.size} entries, expected 1 (the last copy).`);
    l2PhaseCommands.push(commands);
  }

  async function propagationRound(round: number): Promise<void> {
    propagationService = await openPropagationService();
    clock = await clockOffset(link);
    clocks.push(clock);
    for (let s = 0; s < PROPAGATION_SAMPLES; s++) {
      for (const kind of rotate(KINDS, s + round)) propagation.get(kind)!.push(await propagationSample(kind, round));
    }
    await propagationService.dispose();
    propagationService = undefined;
    const stats = link.wait('stats', 2_000);
    link.send({ type: 'stats' });
    childStats = (await stats).message;
  }

  // In trial runs the first measurements after the warm-ups were slow for every aspect-cache contender alike
  // (probably background work of the optimising compiler and the GC, which counts in this process's CPU time):
  // one round first, not recorded.
  const warmupP50 = new Map<L1Id, number>();
  await l1Round(0);
  console.log(`L1 warm-up round, not recorded (p50 ns): ${L1_IDS.map(id => `${id} ${formatValue(warmupP50.get(id)!)}`).join(', ')}`);
  for (let round = 1; round <= ROUNDS; round++) {
    console.log(`\n── round ${round}/${ROUNDS} ── load average ${os.loadavg().map(x => x.toFixed(2)).join(' ')}`);
    await l1Round(round);
    console.log(`L1 hit p50 (ns): ${L1_IDS.map(id => `${id} ${formatValue(l1Stats.get(id)!.at(-1)!)}`).join(', ')}`);
    await l2Round(round);
    console.log(`L2 hit sequential p50 (µs): ${L2_IDS.map(id => `${id} ${median(latency.get(id)!.at(-1)!).toFixed(1)}`).join(', ')}`);
    console.log(`L2 hit ${CONCURRENCY} callers (ops/s): ${L2_IDS.map(id => `${id} ${median(throughput.get(id)!.at(-1)!.map(s => s.opsPerSecond)).toFixed(0)}`).join(', ')}`);
    await propagationRound(round);
    const last = (kind: PropagationKind) => propagation.get(kind)!.filter(s => s.round === round).map(s => s.oneWayUs);
    console.log(`propagation p50/p99 (µs): ${KINDS.map(kind => `${kind} ${median(last(kind)).toFixed(0)}/${quantile(last(kind), 0.99).toFixed(0)}`).join(', ')}; clock offset estimate ${(clock.estimateNs / 1e3).toFixed(1)} ± ${(clock.boundNs / 1e3).toFixed(1)} µs`);
  }

  // ── breakdown of the L1 hit (once, mitata): where a layered L1 hit differs from a memory hit ──
  const memoryBackend = memoryService.backend as MemoryBackend;
  const micro = new Map<string, { ns: number; section: string }>();
  const microBench = async (label: string, fn: () => unknown, section = 'L1 hit pieces') => {
    const ns = (await measure(fn, { min_cpu_time: HIT_CPU_NS, ...MITATA_CLOCK })).p50;
    micro.set(label, { ns, section });
    await sleep(5);
    return ns;
  };
  /** Like microBench for functions compared with each other: side by side in slices, the median of each one's slice p50s. */
  const slicedBench = async (entries: ReadonlyArray<readonly [string, () => unknown]>, section: string): Promise<number[]> => {
    const slices = entries.map(() => [] as number[]);
    gc?.();
    for (let k = 0; k < L1_SLICES; k++) {
      for (const j of rotate(entries.map((_, i) => i), k)) {
        slices[j]!.push((await measure(entries[j]![1], { min_cpu_time: HIT_CPU_NS / L1_SLICES, ...MITATA_CLOCK, gc: false })).p50);
        await sleep(1);
      }
    }
    return entries.map(([label], j) => {
      const ns = median(slices[j]!);
      micro.set(label, { ns, section });
      return ns;
    });
  };
  const [memoryGetNs, layeredGetNs, trustedNs, dateNowNs] = (await slicedBench(
    [
      ['MemoryBackend.get(key) of a warm entry (what the memory hit asks its backend)', () => memoryBackend.get(cacheKeys[nextIndex()]!)],
      ['LayeredBackend.get(key) of a warm entry, answered by L1 (trust check + MemoryBackend.get)', () => layeredL1.get(cacheKeys[nextIndex()]!)],
      ['LayeredBackend.trusted (Date.now() and a comparison)', () => layeredL1.trusted],
      ['Date.now()', () => Date.now()],
    ],
    'L1 hit pieces',
  )) as [number, number, number, number];
  if (!layeredL1.trusted || layeredL1.resyncs !== resyncsAtStart.l1) throw new Error('bench: the L1-hit layered backend lost trust during the breakdown.');

  // ── the JavaScript of an L2 hit without Redis (once, mitata): L2 replaced by an asynchronous-declared
  // MemoryBackend, the bus by the in-process test bus, so only the layered backend's own work differs ──
  const standIn = () => new AsyncDeclaredMemory(true);
  const standInService = new CachingService({ backend: standIn() });
  const standInNetwork = new TestBusNetwork({ heartbeatMs: HIT_HEARTBEAT_MS });
  const standInL1 = new MemoryBackend({ maxEntries: 1 });
  const standInLayered = new LayeredBackend({ l1: standInL1, l2: standIn(), bus: standInNetwork.connect('bench') });
  const standInLayeredService = new CachingService({ backend: standInLayered });
  closers.push(() => standInService.dispose(), () => standInLayeredService.dispose());
  const standInPlain = aspectContender('stand-in', standInService);
  const standInViaLayered = aspectContender('stand-in layered', standInLayeredService);
  await until(() => standInLayered.trusted, 'trust of the stand-in layered backend');
  await fillAndWarm('stand-in L2', standInPlain, 20_000);
  await fillAndWarm('stand-in layered', standInViaLayered, 20_000);
  const standInComputed = standInViaLayered.computations() + standInPlain.computations();
  const standInPlainNs = await microBench('stand-in L2 (a MemoryBackend behind a wrapper answering with resolved promises), @Cache hit: what a RedisBackend hit costs besides Redis, ioredis and RedisBackend', () => standInPlain.call(nextIndex()), 'L2 hit, no Redis');
  const standInLayeredNs = await microBench('LayeredBackend over the same stand-in L2, L1 = MemoryBackend({ maxEntries: 1 }), test bus: L1 miss (token), L2 hit, copy into L1 (evicting)', () => standInViaLayered.call(nextIndex()), 'L2 hit, no Redis');
  // The L1 side of it alone: a miss's token and the copy of a hit into a full one-entry L1.
  const sideL1 = new MemoryBackend({ maxEntries: 1 });
  const copyEntry = { value: priceOf(ids[0]!), async: true, dependencies: [dependencyOf(ids[0]!)], expiresAt: Infinity, sliding: 0 };
  const l1SideNs = await microBench('MemoryBackend({ maxEntries: 1 }) alone: get of an absent key (a token), then set of a copy with one dependency (evicts the previous one)', () => {
    const key = cacheKeys[nextIndex()]!;
    const lookup = sideL1.get(key);
    if (!lookup.hit) sideL1.set(key, copyEntry, lookup.token);
  }, 'L2 hit, no Redis');
  if (sideL1.size !== 1) throw new Error('bench bug: the L1-side measurement did not store its copies.');
  if (standInViaLayered.computations() + standInPlain.computations() !== standInComputed || standInL1.size !== 1 || !standInLayered.trusted) throw new Error('bench bug: the stand-in L2 scenario did not measure L2 hits copied into L1.');

  // ── rows ──
  const med = (values: readonly number[]) => median(values);
  const perRound = (a: readonly number[], b: readonly number[]) => a.map((x, i) => x / b[i]!);
  const ratioText = (ratios: readonly number[], of: string) => `${med(ratios).toFixed(2)}×${of ? ` ${of}` : ''}${ratios.length > 1 ? ` (rounds ${range(ratios)})` : ''}`;
  const spreadOf = (values: readonly number[], extra = '') =>
    values.length > 1 ? `${range(values, 1)} over ${values.length} rounds${extra}` : `one round${extra}`;

  const l1Ns = (id: L1Id) => l1Stats.get(id)!;
  /** Per-round ratios of two L1 contenders: slice by slice for aspect-cache's, round values otherwise. */
  const l1Ratio = (a: L1Id, b: L1Id) => (a === b ? l1Ns(a).map(() => 1) : (l1SliceRatios.get(`${a}/${b}`) ?? perRound(l1Ns(a), l1Ns(b))));
  const l1Rows: ResultRow[] = L1_IDS.map(id => {
    const ratios = [ratioText(l1Ratio(id, 'memory'), 'MemoryBackend hit')];
    if (id === 'layered') ratios.push(ratioText(l1Ratio(id, 'memoryAsync'), 'the asynchronous-declared MemoryBackend hit'));
    if (id.startsWith('bento')) ratios.push(`aspect-cache layered / this: ${ratioText(perRound(l1Ns('layered'), l1Ns(id)), '')}`);
    return {
      section: id === 'memory' ? 'baseline' : id === 'memoryAsync' ? 'breakdown' : id === 'layered' ? 'aspect-cache' : 'bentocache',
      name: l1[id].name,
      value: med(l1Ns(id)),
      unit: 'ns/op',
      spread: spreadOf(l1Ns(id), `, p99 ${formatValue(med(l1P99.get(id)!))}`),
      ratio: ratios.join('; '),
    };
  });

  const roundP50 = (id: L2Id) => latency.get(id)!.map(values => median(values));
  const roundP99 = (id: L2Id) => latency.get(id)!.map(values => quantile(values, 0.99));
  const latencyRows: ResultRow[] = L2_IDS.map(id => {
    const ratios = [ratioText(perRound(roundP50(id), roundP50('redis')), 'RedisBackend hit')];
    if (id === 'bento') ratios.push(`aspect-cache layered / this: ${ratioText(perRound(roundP50('layered'), roundP50('bento')), '')}`);
    return {
      section: id === 'redis' ? 'baseline' : id === 'layered' ? 'aspect-cache' : 'bentocache',
      name: l2[id].name,
      value: med(roundP50(id)),
      unit: 'µs/op',
      spread: `${spreadOf(roundP50(id))}, p99 ${formatValue(med(roundP99(id)))} (${LATENCY_CALLS.toLocaleString('en-US')} calls/round)`,
      ratio: ratios.join('; '),
    };
  });

  const allSamples = (id: L2Id) => throughput.get(id)!.flat();
  const cpuPerOp = (id: L2Id) => med(allSamples(id).map(s => s.nodeCpuUsPerOp));
  /** Time per operation of `id` over that of `of`, per paired sample (same round, same index). */
  const pairedTimeRatios = (id: L2Id, of: L2Id) => throughput.get(id)!.flatMap((list, r) => list.map((s, i) => throughput.get(of)![r]![i]!.opsPerSecond / s.opsPerSecond));
  const throughputRows: ResultRow[] = L2_IDS.map(id => {
    const timeRatios = pairedTimeRatios(id, 'redis');
    const ratios = [`time per op ${med(timeRatios).toFixed(2)}× RedisBackend hit (${range(timeRatios)})`];
    if (id === 'bento') {
      const r = pairedTimeRatios('layered', 'bento');
      ratios.push(`aspect-cache layered / this (time per op): ${med(r).toFixed(2)}× (${range(r)})`);
    }
    const samples = allSamples(id).map(s => s.opsPerSecond);
    ratios.push(`Node CPU per op ${med(allSamples(id).map(s => s.nodeCpuUsPerOp)).toFixed(1)} µs`);
    return {
      section: id === 'redis' ? 'baseline' : id === 'layered' ? 'aspect-cache' : 'bentocache',
      name: l2[id].name,
      value: med(samples),
      unit: 'ops/s',
      spread: `${range(samples, 0)} (${samples.length} samples)`,
      ratio: ratios.join('; '),
    };
  });

  const commandRows: ResultRow[] = L2_IDS.map(id => {
    const stats = commandsPerHit.get(id)!;
    const total = [...stats.values()].reduce((a, b) => a + b, 0);
    return {
      section: 'commands',
      name: `${l2[id].name}, ${COUNTED_CALLS.toLocaleString('en-US')} sequential L2 hits`,
      value: total / COUNTED_CALLS,
      unit: 'commands/hit',
      spread: [...stats].map(([name, calls]) => `${name} ${(calls / COUNTED_CALLS).toFixed(2)}`).join(', ') || 'none',
      ratio: 'INFO commandstats (heartbeat PUBLISH and the admin connection\'s INFO/CONFIG excluded)',
    };
  });

  const oneWay = (kind: PropagationKind) => propagation.get(kind)!.map(s => s.oneWayUs);
  const roundTrip = (kind: PropagationKind) => propagation.get(kind)!.map(s => s.roundTripUs);
  const resolve = (kind: PropagationKind) => propagation.get(kind)!.map(s => s.resolveUs);
  const roundP50s = (kind: PropagationKind) => Array.from({ length: ROUNDS }, (_, r) => median(propagation.get(kind)!.filter(s => s.round === r + 1).map(s => s.oneWayUs)));
  const beforeResolve = (kind: PropagationKind) => propagation.get(kind)!.filter(s => s.oneWayUs < s.resolveUs).length / propagation.get(kind)!.length;
  const ms = (us: number) => `${(us / 1e3).toFixed(2)} ms`;
  const propagationRows: ResultRow[] = KINDS.flatMap(kind => {
    const values = oneWay(kind);
    const ratio = kind === 'aspect-cache' ? '' : `aspect-cache / this: p50 ${(median(oneWay('aspect-cache')) / median(values)).toFixed(2)}×, p99 ${(quantile(oneWay('aspect-cache'), 0.99) / quantile(values, 0.99)).toFixed(2)}×`;
    return [
      {
        section: 'propagation',
        name: `${KIND_NAMES[kind]} → the other process's L1 no longer serves the entry (one clock, see notes)`,
        value: median(values) / 1e3,
        unit: 'ms',
        spread: `p99 ${ms(quantile(values, 0.99))}, max ${ms(Math.max(...values))}; round p50s ${range(roundP50s(kind).map(v => v / 1e3))} ms (${values.length} samples)`,
        ratio: [`removed there before the call resolved here in ${(beforeResolve(kind) * 100).toFixed(0)}% of samples`, ratio].filter(Boolean).join('; '),
      },
      {
        section: 'round trip',
        name: `same, until this process received the other's report over IPC (an upper bound needing no clock assumption)`,
        value: median(roundTrip(kind)) / 1e3,
        unit: 'ms',
        spread: `p99 ${ms(quantile(roundTrip(kind), 0.99))}, max ${ms(Math.max(...roundTrip(kind)))}`,
        ratio: '',
      },
      {
        section: 'resolve',
        name: `the invalidating call itself: until \`await\` returned in the invalidating process`,
        value: median(resolve(kind)) / 1e3,
        unit: 'ms',
        spread: `p99 ${ms(quantile(resolve(kind), 0.99))}, max ${ms(Math.max(...resolve(kind)))}`,
        ratio: kind === 'aspect-cache' ? '' : `aspect-cache / this: p50 ${(median(resolve('aspect-cache')) / median(resolve(kind))).toFixed(2)}×`,
      },
    ];
  });

  const sideRows: ResultRow[] = [...micro].map(([label, { ns, section }]) => ({ section, name: label, value: ns, unit: 'ns', spread: section === 'L1 hit pieces' ? `median of ${L1_SLICES} side-by-side slices' mitata p50` : 'mitata p50', ratio: '' }));
  sideRows.push({
    section: 'clock',
    name: 'offset of the other process\'s process.hrtime from this one\'s (Cristian\'s method, best of 50 IPC ping-pongs per round)',
    value: median(clocks.map(c => c.estimateNs)) / 1e3,
    unit: 'µs',
    spread: `± ${formatValue(median(clocks.map(c => c.boundNs)) / 1e3)} µs (half the shortest round trip); per round ${clocks.map(c => `${(c.estimateNs / 1e3).toFixed(1)}±${(c.boundNs / 1e3).toFixed(1)}`).join(', ')}`,
    ratio: clocks.every(c => c.offsetNs === 0n) ? 'within the bound of 0 every round: one clock (CLOCK_MONOTONIC), timestamps compared as they are' : 'outside the bound in some round: the estimate was subtracted in that round',
  });
  sideRows.push({ section: 'clock', name: 'IPC round trip (ping-pong, median)', value: median(clocks.map(c => c.medianRttNs)) / 1e3, unit: 'µs', spread: `${clocks.length} × ${CLOCK_PINGS} pings`, ratio: '' });

  // aspect-cache / bentocache, scenario by scenario (time ratios: below 1, aspect-cache takes less time).
  const versusRows: ResultRow[] = [];
  const versus = (name: string, ratios: readonly number[], detail: string, spread?: string) =>
    versusRows.push({ section: 'ours / theirs', name, value: med(ratios), unit: '×', spread: spread ?? (ratios.length > 1 ? `${range(ratios)} (${ratios.length} ${ratios.length === ROUNDS ? 'rounds' : 'paired samples'})` : 'one round'), ratio: detail });
  versus('L1 hit: LayeredBackend vs bentocache tiered store (defaults)', perRound(l1Ns('layered'), l1Ns('bento')), `${formatValue(med(l1Ns('layered')))} vs ${formatValue(med(l1Ns('bento')))} ns`);
  versus('L1 hit: vs bentocache with an unserialised L1 (serialize: false)', perRound(l1Ns('layered'), l1Ns('bentoRaw')), `${formatValue(med(l1Ns('layered')))} vs ${formatValue(med(l1Ns('bentoRaw')))} ns`);
  versus('L1 hit: vs bentocache, tagged entry (aspect-cache entries always carry their dependency)', perRound(l1Ns('layered'), l1Ns('bentoTagged')), `${formatValue(med(l1Ns('layered')))} vs ${formatValue(med(l1Ns('bentoTagged')))} ns`);
  versus('L2 hit, sequential (p50)', perRound(roundP50('layered'), roundP50('bento')), `${med(roundP50('layered')).toFixed(1)} vs ${med(roundP50('bento')).toFixed(1)} µs`);
  versus(`L2 hit, ${CONCURRENCY} concurrent callers (time per op)`, pairedTimeRatios('layered', 'bento'), `${med(allSamples('layered').map(s => s.opsPerSecond)).toFixed(0)} vs ${med(allSamples('bento').map(s => s.opsPerSecond)).toFixed(0)} ops/s`);
  for (const kind of ['bento-delete', 'bento-tag'] as const) {
    const verb = kind === 'bento-delete' ? 'delete({ key })' : 'deleteByTag';
    const p50s = (k: PropagationKind) => roundP50s(k);
    versus(`propagation p50: invalidate(dependency) vs ${verb}`, perRound(p50s('aspect-cache'), p50s(kind)), `${ms(median(oneWay('aspect-cache')))} vs ${ms(median(oneWay(kind)))} (all samples)`);
    versus(`propagation p99: invalidate(dependency) vs ${verb}`, [quantile(oneWay('aspect-cache'), 0.99) / quantile(oneWay(kind), 0.99)], `${ms(quantile(oneWay('aspect-cache'), 0.99))} vs ${ms(quantile(oneWay(kind), 0.99))}`, `one value: p99 over all ${oneWay(kind).length} samples each`);
    versus(`invalidating call resolved (p50): invalidate(dependency) vs ${verb}`, [median(resolve('aspect-cache')) / median(resolve(kind))], `${ms(median(resolve('aspect-cache')))} vs ${ms(median(resolve(kind)))}`, `one value: p50 over all ${resolve(kind).length} samples each`);
  }

  // ── targets ──
  const l1Ratios = l1Ratio('layered', 'memory');
  const seqRatios = perRound(roundP50('layered'), roundP50('redis'));
  const c64Ratios = pairedTimeRatios('layered', 'redis');
  const ourP99 = quantile(oneWay('aspect-cache'), 0.99);
  const readsDuringL1 = l1PhaseCommands.reduce((sum, stats) => sum + [...stats].filter(([name]) => !NON_READS.has(name)).reduce((a, [, n]) => a + n, 0), 0);
  const publishesDuringL1 = l1PhaseCommands.reduce((sum, stats) => sum + (stats.get('publish') ?? 0), 0);
  const targets: TargetCheck[] = [
    {
      label: 'L1 hit ≤ 1.3× MemoryBackend hit (same method, same keys)',
      measured: `${med(l1Ratios).toFixed(2)}×${l1Ratios.length > 1 ? ` (rounds ${range(l1Ratios)})` : ''}; ${formatValue(med(l1Ns('layered')))} vs ${formatValue(med(l1Ns('memory')))} ns`,
      pass: med(l1Ratios) <= 1.3,
    },
    {
      label: 'L2 hit ≤ 1.2× RedisBackend hit, sequential (p50)',
      measured: `${med(seqRatios).toFixed(2)}×${seqRatios.length > 1 ? ` (rounds ${range(seqRatios)})` : ''}; ${med(roundP50('layered')).toFixed(1)} vs ${med(roundP50('redis')).toFixed(1)} µs`,
      pass: med(seqRatios) <= 1.2,
    },
    {
      label: `L2 hit ≤ 1.2× RedisBackend hit, ${CONCURRENCY} concurrent callers (time per op)`,
      measured: `${med(c64Ratios).toFixed(2)}× (median of ${c64Ratios.length} paired samples, ${range(c64Ratios)}); ${med(allSamples('layered').map(s => s.opsPerSecond)).toFixed(0)} vs ${med(allSamples('redis').map(s => s.opsPerSecond)).toFixed(0)} ops/s; Node CPU per op ${cpuPerOp('layered').toFixed(1)} vs ${cpuPerOp('redis').toFixed(1)} µs (${(cpuPerOp('layered') / cpuPerOp('redis')).toFixed(2)}×)`,
      pass: med(c64Ratios) <= 1.2,
    },
    {
      label: 'invalidation reaches the other process\'s L1: p99 ≤ 5 ms (goal)',
      measured: `p99 ${ms(ourP99)}, p50 ${ms(median(oneWay('aspect-cache')))} (${oneWay('aspect-cache').length} samples); invalidate() resolves in ${ms(median(resolve('aspect-cache')))} p50, ${ms(quantile(resolve('aspect-cache'), 0.99))} p99`,
      pass: ourP99 <= 5_000,
    },
    {
      label: 'check: the L1-hit scenarios measured L1 (no Redis read, layered backend trusted throughout, no resync)',
      measured: `Redis reads during the L1 measurements: ${readsDuringL1} (PUBLISH: ${publishesDuringL1}); resyncs ${layeredL1.resyncs - resyncsAtStart.l1}; trusted at the end: ${layeredL1.trusted}`,
      pass: readsDuringL1 === 0 && layeredL1.trusted && layeredL1.resyncs === resyncsAtStart.l1,
    },
    {
      label: 'check: the L2-hit scenarios measured L2 (one Redis read per call, L1 trusted and copying, no resync)',
      measured: `HGETs = aspect-cache calls and GETs = bentocache calls in every round; resyncs ${layeredL2.resyncs - resyncsAtStart.l2}; trusted at the end: ${layeredL2.trusted}`,
      pass: layeredL2.trusted && layeredL2.resyncs === resyncsAtStart.l2,
    },
  ];

  // ── findings: arithmetic on this run's numbers ──
  const layeredNs = med(l1Ns('layered'));
  const childResyncs = childStats?.type === 'stats' ? `${childStats.resyncs} (${childStats.resyncReasons.join(', ') || 'none'})` : 'unknown';
  const findings = [
    `L1 hit, side by side (medians of the slices): ${signed(med(l1SliceDiffs.get('layered/memory')!), 0)} ns per hit over a MemoryBackend hit, ${med(l1Ratios).toFixed(2)}×${l1Ns('layered').length > 1 ? ` (round values ${range(l1Ns('layered'), 0)} ns layered, ${range(l1Ns('memory'), 0)} ns memory: the machine's load moves both)` : ''}. Split by the asynchronous-declared MemoryBackend: the service's path for an asynchronous backend (in-flight map lookup, the test for a promise, and the wrapper's own call) ${signed(med(l1SliceDiffs.get('memoryAsync/memory')!), 0)} ns, the layered backend itself ${signed(med(l1SliceDiffs.get('layered/memoryAsync')!), 0)} ns. At the backend alone: LayeredBackend.get ${formatValue(layeredGetNs)} ns vs MemoryBackend.get ${formatValue(memoryGetNs)} ns (${signed(layeredGetNs - memoryGetNs, 0)} ns); its trust check alone (LayeredBackend.trusted) takes ${formatValue(trustedNs)} ns, nearly all of it one Date.now() (${formatValue(dateNowNs)} ns on this machine), on every hit.`,
    `L1 hit against bentocache: ${formatValue(layeredNs)} ns vs ${formatValue(med(l1Ns('bento')))} ns (default store), ${formatValue(med(l1Ns('bentoRaw')))} ns (L1 not serialised), ${formatValue(med(l1Ns('bentoTagged')))} ns (tagged entry): aspect-cache / bentocache ${med(perRound(l1Ns('layered'), l1Ns('bento'))).toFixed(3)}×, ${med(perRound(l1Ns('layered'), l1Ns('bentoRaw'))).toFixed(3)}×, ${med(perRound(l1Ns('layered'), l1Ns('bentoTagged'))).toFixed(3)}×.`,
    `L2 hit, sequential: ${med(roundP50('layered')).toFixed(1)} µs vs ${med(roundP50('redis')).toFixed(1)} µs for a RedisBackend hit (${med(seqRatios).toFixed(2)}×) and ${med(roundP50('bento')).toFixed(1)} µs for bentocache (aspect-cache / bentocache ${med(perRound(roundP50('layered'), roundP50('bento'))).toFixed(2)}×). With ${CONCURRENCY} callers: ${med(allSamples('layered').map(s => s.opsPerSecond)).toFixed(0)} vs ${med(allSamples('redis').map(s => s.opsPerSecond)).toFixed(0)} vs ${med(allSamples('bento').map(s => s.opsPerSecond)).toFixed(0)} ops/s (time per op ${med(c64Ratios).toFixed(2)}× RedisBackend, ${med(pairedTimeRatios('layered', 'bento')).toFixed(2)}× bentocache). Without Redis (stand-in L2, side measurements), the layered backend's own work on an L2 hit — the L1 miss and its token, the read through an async step, the copy into L1 with its eviction and index update — costs ${signed(standInLayeredNs - standInPlainNs, 0)} ns (${formatValue(standInLayeredNs)} vs ${formatValue(standInPlainNs)} ns), of which the L1 miss and the copy into a full L1 (MemoryBackend alone) are ${formatValue(l1SideNs)} ns; the rest is the layered backend's read-through (an async function awaiting L2: one more promise and turn per hit, and promises cost more while AsyncLocalStorage is active on Node 20), its trust checks and the copy's bookkeeping. Node CPU per operation under that load: RedisBackend ${cpuPerOp('redis').toFixed(1)} µs, layered ${cpuPerOp('layered').toFixed(1)} µs (${signed(cpuPerOp('layered') - cpuPerOp('redis'))} µs: the layered backend's own work, see the Redis-free rows), bentocache ${cpuPerOp('bento').toFixed(1)} µs; with Node near a full core, CPU per op decides the throughput. Both aspect-cache contenders send one HGET per hit.`,
    `Propagation: aspect-cache p50 ${ms(median(oneWay('aspect-cache')))}, p99 ${ms(ourP99)}; bentocache delete p50 ${ms(median(oneWay('bento-delete')))}, p99 ${ms(quantile(oneWay('bento-delete'), 0.99))}; deleteByTag p50 ${ms(median(oneWay('bento-tag')))}, p99 ${ms(quantile(oneWay('bento-tag'), 0.99))}. aspect-cache's invalidate() removes the dependents in L2 (one script) and only then publishes (so no process can copy the old value back from L2); it resolved in ${ms(median(resolve('aspect-cache')))} p50 vs ${ms(median(resolve('bento-delete')))} for bentocache's delete (UNLINK, then PUBLISH) and ${ms(median(resolve('bento-tag')))} for deleteByTag (SET of the tag's time, then PUBLISH).`,
    `The other process's resyncs during the whole run: ${childResyncs}; none can have hidden a sample (a clear during a sample fails the run).`,
  ];

  const notes = [
    `The benchmark spawns its own \`redis-server --port <free port> --bind ${HOST} --save "" --appendonly no\` (bench/redis-server.ts) and stops it at the end; both processes check its process id through INFO before using it. Every contender has its own ioredis connection(s): aspect-cache's RedisInvalidationBus opens one subscriber connection besides the client; bentocache's Redis bus opens two (publisher and subscriber, duplicated from the client). An admin connection reads INFO commandstats.`,
    `Fixture: \`PriceCatalogue.getPrice(id)\`, an async @Cache method with one string argument, one dependency \`ProductPrice:<id>\`, a number value and no TTL, bound to its service (\`bindCachingService\`); bentocache wraps the same counted computation with \`getOrSet({ key: 'price:<id>', factory, ttl: 1 h })\` (tagged variant: \`tags: ['ProductPrice:<id>']\`). ${WARM.toLocaleString('en-US')} warm keys, cycled in order: 64 consecutive calls are on 64 distinct keys. Each contender is filled (every key computed once) and its hit path run before measuring.`,
    `L1 hit: mitata (\`measure\`, min_cpu_time ${HIT_CPU_NS / 1e6} ms, clock: ${CLOCK_NAME}${CLOCK === 'cpu' ? ' — on a machine shared with other work, wall-clock batches include the time this process waits for a core, which swamped the ratio in trial runs; CPU time does not' : ''}) per contender per round, after an untimed pass over every hit path (the other scenarios run the same service code with other backends between rounds), and after one whole untimed round; aspect-cache's three contenders are measured in ${L1_SLICES} slices per round (each slice measures each of them once for 1/${L1_SLICES} of the time, order rotated), so that they share the same moments of a busy machine; a round's value is the median of its slices' mitata p50 (of batches), and a round's ratio between two of them the median of the slices' ratios (the round starts with one full GC; the slices do not, unlike mitata's default); bentocache's contenders are measured once per round each, order rotated; the headline the median over rounds, the spread their min–max, ratios per round, then the median. The layered backend's bus heartbeat is ${HIT_HEARTBEAT_MS / 1000} s here: it trusts its L1 only for two heartbeats after its last own echo, and mitata's loop does not let timers or sockets run while it measures. Checks after every round: the computation did not run, the service counted one hit per call, INFO commandstats (reset before the round) shows no command but heartbeat PUBLISHes and the admin's INFO/CONFIG (no Redis read at all), and the layered backend is still trusted with no resync.`,
    'Breakdown: a MemoryBackend behind a thin wrapper whose `isSync` is false (not a MemoryBackend with a changed `isSync`: a second shape of MemoryBackend would make its code polymorphic and slow down the baseline) is measured in the same L1 rounds; the service then takes its path for an asynchronous backend, as for a LayeredBackend (whose L1 also answers without a promise), so the gap to the plain MemoryBackend hit is the service\'s share and the gap from it to the layered hit the layered backend\'s share. The "L1 hit pieces" rows time the backends\' `get` alone on prebuilt keys. The "L2 hit, no Redis" rows replace the RedisBackend by the same kind of wrapped MemoryBackend, answering with an already resolved promise as a RedisBackend whose reply has arrived, and the bus by the in-process test bus (`aspect-cache/testing`), so they show the JavaScript a layered L2 hit adds to a plain one, without network, ioredis or Redis noise.',
    `L2 hit: the layered backend gets \`l1: new MemoryBackend({ maxEntries: 1 })\`. Its keys rotate over ${WARM.toLocaleString('en-US')}, so the key asked for is never the one L1 holds: every call is an L1 miss (which issues an L1 token), one HGET in Redis, and a copy of the hit into L1 that evicts the previous one — the full cost of an L2 hit in a process whose L1 is full. The other honest-looking options were rejected: invalidating L1 before each call adds an invalidation to every call, and an untrusted L1 skips the copy (cheaper than the real path). bentocache's store gets \`memoryDriver({ maxItems: 1 })\` for the same reason (L1 miss, GET, copy into L1). Checks per round: HGETs in Redis = calls of both aspect-cache contenders, GETs = bentocache calls, no computation, one service hit per call, the layered backend trusted (so it copied) and its L1 holding exactly the last copy.`,
    `L2 hit, sequential: one call at a time, each timed with process.hrtime.bigint, contenders interleaved call by call (order rotated each call), ${LATENCY_CALLS.toLocaleString('en-US')} calls per contender per round; headline = median of the rounds' p50. ${CONCURRENCY} callers: each loops \`await op()\` until ${THROUGHPUT_OPS.toLocaleString('en-US')} operations have been issued; ${THROUGHPUT_SAMPLES} samples per contender per round, interleaved; ratios per paired sample (same round and index), then the median.`,
    `Propagation: a second Node process (bench/layered-child.ts, forked with the same flags, so it also runs dist/) holds a LayeredBackend (default heartbeat 1 s; channel \`${PROPAGATION.channel}\`) and a bentocache tiered store (memory L1 + Redis L2 + Redis bus, same store name and prefix as this process's). Per sample: it reads a fresh entry twice (a miss that stores it in L2 and copies it into its L1, then an L1 hit), checks that its L1 holds it and answers; this process waits 1 ms, takes process.hrtime.bigint, and calls the invalidation (${KINDS.map(k => KIND_NAMES[k]).join('; ')}). The other process's L1 is instrumented (a MemoryBackend subclass overriding invalidate/clear, a bentocache MemoryDriver subclass overriding delete/set/clear): right after the removal, inside the handling of the bus message, it takes process.hrtime.bigint and reports it over IPC; then it reads the entry again and the sample fails unless that read recomputed it. For deleteByTag, bentocache leaves the entry and logically expires its L1 copy of the tag's invalidation time (the Set message for \`${bentoTagKey('<tag>')}\`); that rewrite is the moment measured: the next read goes to Redis for the tag and rejects the entry. ${PROPAGATION_SAMPLES} samples per library per round, libraries interleaved (order rotated per sample), ${PROPAGATION_WARMUP} untimed per library first.`,
    'One clock: process.hrtime.bigint is, on Linux, CLOCK_MONOTONIC — one clock for the whole machine, not per process. The run checks it each round with Cristian\'s method (IPC ping-pongs; the offset estimate of the fastest one, bounded by half its round trip; see "clock" below) and compares the two processes\' timestamps directly when the estimate is within that bound of 0 (it subtracts the estimate otherwise). The "round trip" rows need no clock assumption at all: they stop when this process received the report, so they overstate by one IPC hop.',
    'Semantics differ, and the numbers do not show it: aspect-cache\'s invalidate() resolves once L2 dropped the entries and the bus accepted the message (pending: true, retried, otherwise); every process serves L1 only while it hears its own heartbeats on the bus and drops its L1 on a sequence gap, a silent sender or a lost subscription, so a lost message costs at most two heartbeats of staleness. bentocache\'s bus is fire-and-forget pub/sub: a failed publish is queued and retried (every 2 s and on reconnect), but nothing detects a message lost in transit or a subscription that stopped delivering, and an L1 copy is then served until its TTL. aspect-cache copies an L2 hit into L1 only under a token taken before the read (an invalidation heard meanwhile refuses it); bentocache copies unconditionally. aspect-cache\'s invalidation follows dependencies (here one entry per dependency); bentocache\'s delete removes one key, and deleteByTag is lazy (entries stay in Redis; a tagged entry checks its tags on every hit, which is why the tagged L1 row is slower).',
    `Defaults: bentocache serialises L1 entries (JSON) unless \`serialize: false\`; its memory driver holds 1,000 items by default, less than the ${WARM.toLocaleString('en-US')} warm keys, so the L1-hit store gets maxItems ${BIG.toLocaleString('en-US')} (MemoryBackend's default capacity). Other options are defaults on both sides.`,
    `The machine has ${machineInfo().cores} cores shared by this process, the second process, redis-server and whatever else runs: compare the load averages above, prefer ratios to absolute numbers, and rerun before drawing conclusions from small differences.`,
  ];

  const tables = [
    { title: 'L1 hit (warm key, one process)', rows: l1Rows },
    { title: 'L2 hit, sequential (one call at a time)', rows: latencyRows },
    { title: `L2 hit, ${CONCURRENCY} concurrent callers`, rows: throughputRows },
    { title: 'Redis commands per L2 hit', rows: commandRows },
    { title: 'Invalidation propagation to another process (loopback)', rows: propagationRows },
    { title: 'aspect-cache / bentocache (time ratios: below 1, aspect-cache is faster)', rows: versusRows },
    { title: 'Side measurements', rows: sideRows },
  ];
  printTables(tables, targets, findings);

  const setup: Record<string, string> = {
    'redis-server': `${infoField(serverInfo, 'redis_version') ?? '?'} (pid ${server.pid}, ${HOST}:${server.port}, started by the benchmark, --save "" --appendonly no)`,
    'second process': `bench/layered-child.ts, forked with the same Node flags (${process.execArgv.join(' ')})`,
    'mitata clock': `${CLOCK_NAME}${CLOCK === 'cpu' ? '; BENCH_CLOCK=wall for the wall clock' : ''}`,
  };
  if (process.env.BENCH_NO_WRITE !== '1') {
    const path = fileURLToPath(new URL('./RESULTS-layered.md', import.meta.url));
    writeLayeredResults(path, {
      mode: QUICK ? 'quick' : 'full',
      rounds: ROUNDS,
      decoratorMode,
      startedAt: run.startedAt,
      finishedAt: new Date(),
      loadBefore: run.loadBefore,
      loadAfter: os.loadavg(),
      revision: run.revision,
      setup,
      tables,
      targets,
      findings,
      notes,
    });
    console.log(`\nwrote ${path}`);
  }
  if (process.env.BENCH_STRICT === '1' && targets.some(t => !t.pass)) process.exitCode = 1;
}

/** A difference with its sign (`+12`, `-4`). */
function signed(value: number, digits = 1): string {
  return `${value >= 0 ? '+' : ''}${value.toFixed(digits)}`;
}

function printTables(tables: ReadonlyArray<{ title: string; rows: readonly ResultRow[] }>, targets: readonly TargetCheck[], findings: readonly string[]): void {
  for (const table of tables) {
    console.log(`\n${COLORS ? '\x1b[1m' : ''}${table.title}${COLORS ? '\x1b[0m' : ''}`);
    for (const r of table.rows) {
      console.log(`  ${r.section.padEnd(12)} ${r.name}`);
      console.log(`  ${''.padEnd(12)} ${`${formatValue(r.value)} ${r.unit}`.padStart(16)}  ${r.spread}${r.ratio ? `  →  ${r.ratio}` : ''}`);
    }
  }
  console.log('\nfindings:');
  for (const f of findings) console.log(`  - ${f}`);
  console.log('\ntargets (from the issue):');
  for (const t of targets) console.log(`  [${t.pass ? 'PASS' : 'FAIL'}] ${t.label}: ${t.measured}`);
}

await main();
