// Redis-backend benchmarks of aspect-cache: hit latency and throughput against raw ioredis GET, Redis
// commands per hit, invalidation cost, keys left behind (after expiry, and after invalidations), miss latency,
// and where the time of a hit goes. A hit is one HGET of the entry's packed `h` field (no script).
//
//   npm run bench:redis              full run (5 rounds, about 1.5 min), writes bench/RESULTS-redis.md
//   BENCH_QUICK=1 npm run bench:redis  one round, fewer samples (< 1 min), indicative only; also writes the file
//
// Environment: BENCH_QUICK=1, BENCH_ROUNDS=n (override the number of rounds), BENCH_NO_WRITE=1 (do not write
// RESULTS-redis.md), BENCH_STRICT=1 (exit code 1 when a target is missed).
//
// The benchmark starts its own redis-server on a free loopback port (temporary directory, no persistence) and
// stops it at the end, also on failure. It never connects to any other Redis: before it resets statistics or
// writes a key it checks that the server's process id is the one it spawned. Everything runs in one Node
// process against that one server, so ratios compare like with like; see NOTES below for the method.
import { fileURLToPath } from 'node:url';
import os from 'node:os';
import { Redis } from 'ioredis';
import { measure } from 'mitata';
import { addDependency, bindCachingService, Cache, CachingService } from '../src/index.js';
import { RedisBackend, SuperJsonSerializer } from '../src/redis.js';
import { descriptorOf } from '../src/decorators/method-descriptor.js';
import { decoratorMode } from './decorator-mode.js';
import { formatValue, machineInfo } from './report.js';
import { startRedis, type OwnRedis } from './redis-server.js';
import { gitRevision, redisPackageVersions, writeRedisResults, type RedisResultRow, type RedisTargetCheck } from './redis-report.js';

const QUICK = process.env.BENCH_QUICK === '1';
const ROUNDS = Math.max(1, Number(process.env.BENCH_ROUNDS ?? (QUICK ? 1 : 5)) | 0);
/** Concurrent callers in the throughput scenario. */
const CONCURRENCY = 64;
/** Sequential calls per layer per round (each timed on its own). */
const LATENCY_CALLS = QUICK ? 1_500 : 4_000;
/** Sequential misses per round. */
const MISS_CALLS = QUICK ? 500 : 1_500;
/** Operations per throughput sample, and samples per layer per round. */
const THROUGHPUT_OPS = QUICK ? 10_000 : 20_000;
const THROUGHPUT_SAMPLES = 3;
/** Calls whose Redis commands are counted (hits, raw GETs), and misses counted. */
const COUNTED_CALLS = 1_000;
const COUNTED_MISSES = 200;
const DEPENDENT_COUNTS = [1, 100, 10_000] as const;
type DependentCount = (typeof DEPENDENT_COUNTS)[number];
/** Timed invalidations per size per round (each after its own fill). */
const INVALIDATION_SAMPLES: Record<DependentCount, number> = QUICK ? { 1: 15, 100: 8, 10_000: 3 } : { 1: 20, 100: 10, 10_000: 3 };
/** Entries per residue fill, their TTL, and the margin waited past it. */
const RESIDUE_ENTRIES = 10_000;
/** Shared dependencies of the expiry-hygiene fill: entry i depends on `Category:${i % SHARED_GROUPS}` and `Catalogue`. */
const SHARED_GROUPS = 100;
const SHORT_TTL_MS = 2_000;
/** RedisBackend's documented default markerTtlMs (the backend does not expose it; checked against its doc). */
const DEFAULT_MARKER_TTL_MS = 120_000;
const SHORT_MARKER_TTL_MS = 1_000;
const EXPIRY_MARGIN_MS = 1_000;
/** Server-side cost measurements: sequential calls per variant. */
const SERVER_COST_CALLS = QUICK ? 1_500 : 3_000;
const COLORS = Boolean(process.stdout.isTTY) && !process.env.NO_COLOR;

const gc = (globalThis as { gc?: () => void }).gc;
if (typeof gc !== 'function') console.warn('warning: run with node --expose-gc (npm run bench:redis does).');

const HOST = '127.0.0.1';
const PREFIX = { hit: 'bench-hit:', miss: 'bench-miss:', invalidation: 'bench-inv:', expiry: 'bench-exp:', residue: 'bench-res:', raw: 'bench-raw:' } as const;


// ───────────────────────────── fixtures ─────────────────────────────

/** Warm entries; a power of two so indexes wrap with a mask. 64 consecutive indexes are always distinct keys. */
const WARM = 1024;
const MASK = WARM - 1;
const ids = Array.from({ length: WARM }, (_, i) => `sku-${String(i).padStart(5, '0')}`);
let cursor = 0;
const nextIndex = (): number => (cursor = (cursor + 1) & MASK);
const priceOf = (id: string): number => id.length * 100 + id.charCodeAt(id.length - 1);

class PriceCatalogue {
  @Cache()
  async getPrice(id: string): Promise<number> {
    addDependency(`ProductPrice:${id}`);
    return priceOf(id);
  }
}

/** Entries that depend on one key, for the invalidation timings (always invalidated, so the TTL never matters). */
class Dependents {
  @Cache({ ttl: 600_000 })
  async value(dependency: string, i: number): Promise<number> {
    addDependency(dependency);
    return i;
  }
}

/** Short-lived entries sharing dependencies, never invalidated: the expiry-hygiene check (residue a). */
class ShortLivedShared {
  @Cache({ ttl: SHORT_TTL_MS })
  async value(i: number): Promise<number> {
    addDependency(`Category:${i % SHARED_GROUPS}`);
    addDependency('Catalogue');
    return i;
  }
}

type ScriptCommand = (...args: Array<string | number>) => Promise<unknown>;

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

/** Runs `fn(0…n-1)` with at most `concurrency` calls in flight. */
async function pool(n: number, concurrency: number, fn: (i: number) => Promise<unknown>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < n) await fn(next++);
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, n) }, worker));
}

interface CommandStat {
  readonly calls: number;
  readonly usec: number;
}
/** `INFO commandstats` → command name → calls and total µs. */
function parseCommandstats(info: string): Map<string, CommandStat> {
  const stats = new Map<string, CommandStat>();
  for (const line of info.split(/\r?\n/)) {
    const match = /^cmdstat_([^:]+):calls=(\d+),usec=(\d+)/.exec(line);
    if (match) stats.set(match[1]!, { calls: Number(match[2]), usec: Number(match[3]) });
  }
  return stats;
}
/** Commands the benchmark's own admin connection sends around a counted section. */
const ADMIN_COMMANDS = new Set(['config|resetstat', 'info']);

function infoField(info: string, field: string): string | undefined {
  return new RegExp(`^${field}:(.*)$`, 'm').exec(info)?.[1]?.trim();
}

// ───────────────────────────── the run ─────────────────────────────

interface LayerDefinition {
  readonly name: string;
  readonly op: (index: number) => Promise<unknown>;
}

type Layer = 'rawGet' | 'rawGetAutoPipelined' | 'rawHmget' | 'backendGet' | 'hit';
const LATENCY_LAYERS: readonly Layer[] = ['rawGet', 'rawHmget', 'backendGet', 'hit'];
/** rawGetAutoPipelined is context, not the floor: ioredis batching its own commands, as RedisBackend batches lookups. */
const THROUGHPUT_LAYERS: readonly Layer[] = ['rawGet', 'rawGetAutoPipelined', 'rawHmget', 'backendGet', 'hit'];

interface ThroughputSample {
  readonly opsPerSecond: number;
  readonly nodeCpuUsPerOp: number;
  readonly redisCpuUsPerOp: number;
  readonly nodeBusy: number;
  readonly redisBusy: number;
}

interface CommandCount {
  readonly calls: number;
  /** Commands the calling connection sent (MONITOR), by name. */
  readonly fromClient: Map<string, number>;
  /** Commands run inside scripts (MONITOR source "lua"), by name. */
  readonly fromScripts: Map<string, number>;
  /** INFO commandstats after the calls (admin commands removed). */
  readonly commandstats: Map<string, CommandStat>;
}

interface Residue {
  readonly total: number;
  readonly byKind: Map<string, number>;
  readonly withoutExpiry: number;
  readonly maxTtlMs: number;
  /** MEMORY USAGE averaged over a sample of the keys, times their number. */
  readonly approxBytes: number;
}

async function main(): Promise<void> {
  const startedAt = new Date();
  const loadBefore = os.loadavg();
  revisionAtStart = gitRevision();
  const m = machineInfo();
  console.log(`aspect-cache Redis benchmarks — ${QUICK ? 'QUICK (indicative only)' : 'full'}, ${ROUNDS} round${ROUNDS === 1 ? '' : 's'}`);
  console.log(`${m.cpu}, ${m.cores} cores, ${m.memory}; Node ${m.node}; ${Object.entries(redisPackageVersions()).map(([k, v]) => `${k} ${v}`).join(', ')}`);
  console.log(`decorators compiled as ${decoratorMode}; load average ${loadBefore.map(x => x.toFixed(2)).join(' ')}`);
  if (decoratorMode.startsWith('legacy')) console.warn('warning: expected TC39 decorators (tsx picked up a tsconfig with experimentalDecorators).');

  const server = await startRedis();
  console.log(`started redis-server pid ${server.pid} on ${HOST}:${server.port} (dir ${server.dir})`);
  const onSignal = (signal: NodeJS.Signals) => {
    stopping = true;
    console.error(`\n${signal}: stopping the benchmark's redis-server`);
    void server.stop().finally(() => process.exit(signal === 'SIGINT' ? 130 : 143));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  const clients: Redis[] = [];
  try {
    await runAll(server, clients, startedAt, loadBefore);
  } finally {
    stopping = true;
    for (const c of clients) c.disconnect();
    await server.stop();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    console.log(`stopped redis-server pid ${server.pid}`);
  }
}

async function connect(server: OwnRedis, clients: Redis[], options: { protocol?: 2 | 3; enableAutoPipelining?: boolean } = {}): Promise<Redis> {
  // No reconnection: if the server goes away, calls fail and the benchmark stops instead of retrying.
  const client = new Redis({ host: HOST, port: server.port, lazyConnect: true, maxRetriesPerRequest: 1, retryStrategy: () => null, ...options });
  clients.push(client);
  client.on('error', (error: Error) => {
    if (!stopping) console.error(`ioredis connection error: ${error.message}`);
  });
  await client.connect();
  const info = await client.info('server');
  const pid = Number(infoField(info, 'process_id'));
  const port = Number(infoField(info, 'tcp_port'));
  if (pid !== server.pid || port !== server.port) {
    throw new Error(`refusing to continue: ${HOST}:${server.port} answered as pid ${pid} port ${port}, not the redis-server this benchmark started (pid ${server.pid}).`);
  }
  return client;
}

async function runAll(server: OwnRedis, clients: Redis[], startedAt: Date, loadBefore: number[]): Promise<void> {
  /** The connection every scenario uses: raw commands and aspect-cache share it. */
  const client = await connect(server, clients);
  /** The same, with ioredis auto-pipelining: only for the context row of the throughput table. */
  const autoPipelinedClient = await connect(server, clients, { enableAutoPipelining: true });
  /** Statistics, SCAN, MONITOR: never on the measured connection. */
  const admin = await connect(server, clients);
  const serverInfo = await admin.info('server');
  const clientInfo = String(await client.client('INFO'));
  const clientAddress = /\baddr=(\S+)/.exec(clientInfo)?.[1] ?? '?';
  const protocol = /\bresp=(\d)/.exec(clientInfo)?.[1] ?? '?';
  const serverDescription: Record<string, string> = {
    'redis-server': `${infoField(serverInfo, 'redis_version') ?? '?'} (pid ${server.pid}, ${HOST}:${server.port}, started by the benchmark, --save "" --appendonly no)`,
    'client protocol': `RESP${protocol} (ioredis default), one connection shared by every scenario`,
  };

  // ── services and backends ──
  const hitBackend = new RedisBackend({ client, keyPrefix: PREFIX.hit });
  const hitService = new CachingService({ backend: hitBackend });
  const catalogue = bindCachingService(new PriceCatalogue(), hitService);
  const missService = new CachingService({ backend: new RedisBackend({ client, keyPrefix: PREFIX.miss }) });
  const missCatalogue = bindCachingService(new PriceCatalogue(), missService);
  // Default options (markerTtlMs 120 s): the invalidation timings, and residue (b) afterwards.
  const invalidationService = new CachingService({ backend: new RedisBackend({ client, keyPrefix: PREFIX.invalidation }) });
  const dependents = bindCachingService(new Dependents(), invalidationService);
  // Default options, a prefix no invalidation ever touches: residue (a), expiry hygiene.
  const expiryService = new CachingService({ backend: new RedisBackend({ client, keyPrefix: PREFIX.expiry }) });
  const shortLivedShared = bindCachingService(new ShortLivedShared(), expiryService);
  // markerTtlMs 1 s: residue (b) once the markers have expired.
  const residueService = new CachingService({ backend: new RedisBackend({ client, keyPrefix: PREFIX.residue, markerTtlMs: SHORT_MARKER_TTL_MS }) });
  const dependentsQuickMarkers = bindCachingService(new Dependents(), residueService);
  /** The miss's token script, as RedisBackend defines it on the client (side measurement of its server cost). */
  const aspectCacheBegin: ScriptCommand = (client as unknown as { aspectCacheBegin: ScriptCommand }).aspectCacheBegin.bind(client);
  /** The standalone lookup script (a batch of hits in one command), as RedisBackend defines it. */
  const aspectCacheLookup: ScriptCommand = (client as unknown as { aspectCacheLookup: ScriptCommand }).aspectCacheLookup.bind(client);

  // Keys, built once, so every layer pays only what it adds.
  const descriptor = descriptorOf(PriceCatalogue.prototype.getPrice);
  if (descriptor === undefined) throw new Error('bench bug: no descriptor for PriceCatalogue.getPrice');
  const cacheKeys = ids.map(id => descriptor.keyFor(catalogue, [id]));
  const entryKeys = cacheKeys.map(key => hitBackend.entryKey(key));
  const rawKeys = ids.map(id => `${PREFIX.raw}price:${id}`);
  /** The partition's key base (`<prefix>ac2:{p0}:`), for the BEGIN script's keys. */
  const hitBase = entryKeys[0]!.slice(0, entryKeys[0]!.length - `v:${cacheKeys[0]!}`.length);

  const layers: Record<Layer, LayerDefinition> = {
    rawGet: { name: 'raw ioredis GET (floor)', op: i => client.get(rawKeys[i]!) },
    rawGetAutoPipelined: { name: 'raw ioredis GET on a client with enableAutoPipelining (context: ioredis batching its own commands)', op: i => autoPipelinedClient.get(rawKeys[i]!) },
    rawHmget: { name: 'raw HGET of the entry\'s h field (the command a hit sends, no library code)', op: i => client.hget(entryKeys[i]!, 'h') },
    backendGet: { name: 'RedisBackend.get(key) (no CachingService)', op: i => hitBackend.get(cacheKeys[i]!) },
    hit: { name: 'aspect-cache @Cache hit (async, 1 string arg)', op: i => catalogue.getPrice(ids[i]!) },
  };

  // ── warm-up ──
  await client.mset(...rawKeys.flatMap((key, i) => [key, String(priceOf(ids[i]!))]));
  for (const id of ids) await catalogue.getPrice(id);
  const filled = hitService.stats();
  if (filled.misses !== WARM || filled.sets !== WARM || filled.hits !== 0) throw new Error(`bench bug: warm-up expected ${WARM} stored misses, got ${JSON.stringify(filled)}`);
  // The raw HGET layer must read the very hash RedisBackend.get reads (and find a payload there).
  for (let i = 0; i < WARM; i++) {
    const lookup = await hitBackend.get(cacheKeys[i]!);
    if (!lookup.hit || lookup.value !== priceOf(ids[i]!)) throw new Error(`bench bug: RedisBackend.get(${cacheKeys[i]}) did not hit.`);
    const reply = await client.hget(entryKeys[i]!, 'h');
    if (typeof reply !== 'string' || reply.split('|')[1] !== '0') throw new Error(`bench bug: the raw HGET did not find a non-sliding entry at ${entryKeys[i]}: ${JSON.stringify(reply)}`);
  }
  const packedEntry = (await client.hget(entryKeys[0]!, 'h')) ?? '';
  const payload = packedEntry.slice(packedEntry.indexOf('\n') + 1);
  const dependenciesJson = (await client.hget(entryKeys[0]!, 'p')) ?? '';
  for (const layer of THROUGHPUT_LAYERS) {
    for (let i = 0; i < 2_000; i++) await layers[layer].op(nextIndex());
    await pool(5_000, CONCURRENCY, i => layers[layer].op(i & MASK));
  }
  for (let i = 0; i < 300; i++) await missCatalogue.getPrice(`warm-${i}`);
  await pool(300, CONCURRENCY, i => dependents.value('Warm-up', i));
  await invalidationService.invalidate('Warm-up');
  const warmInvalidatedAt = Date.now();
  const warmed = hitService.stats();
  if (warmed.misses !== WARM || warmed.joins !== 0) throw new Error(`bench bug: a hit scenario missed or joined during warm-up: ${JSON.stringify(warmed)}`);

  // ── per-round scenarios ──
  const latency = new Map<Layer | 'miss', number[][]>(); // per round, the per-call µs
  const throughput = new Map<Layer, ThroughputSample[][]>(); // per round, the samples
  type InvalidationSample = { wallMs: number; serverMs: number; commands: Map<string, number> };
  const invalidationSamples = new Map<DependentCount, InvalidationSample[]>(DEPENDENT_COUNTS.map(n => [n, []]));
  let invalidationTag = 0;
  /** Every invalidation under the invalidation prefix: when it finished and how many markers it wrote (key + dependents). */
  const markerLog: Array<{ at: number; markers: number }> = [{ at: warmInvalidatedAt, markers: 300 + 1 }];

  const redisCpuSeconds = async (): Promise<number> => {
    const info = await admin.info('cpu');
    const main = Number(infoField(info, 'used_cpu_user_main_thread')) + Number(infoField(info, 'used_cpu_sys_main_thread'));
    return Number.isFinite(main) ? main : Number(infoField(info, 'used_cpu_user')) + Number(infoField(info, 'used_cpu_sys'));
  };

  async function latencyRound(): Promise<void> {
    const samples = new Map(LATENCY_LAYERS.map(layer => [layer, new Array<number>(LATENCY_CALLS)]));
    for (let c = 0; c < LATENCY_CALLS; c++) {
      const index = nextIndex();
      // Rotate the order each call so no layer always follows the same one.
      for (let j = 0; j < LATENCY_LAYERS.length; j++) {
        const layer = LATENCY_LAYERS[(c + j) % LATENCY_LAYERS.length]!;
        const t0 = process.hrtime.bigint();
        await layers[layer].op(index);
        samples.get(layer)![c] = Number(process.hrtime.bigint() - t0) / 1e3;
      }
    }
    for (const [layer, values] of samples) push(latency, layer, values);
    const misses = new Array<number>(MISS_CALLS);
    const missesBefore = missService.stats().sets;
    for (let c = 0; c < MISS_CALLS; c++) {
      const t0 = process.hrtime.bigint();
      await missCatalogue.getPrice(`miss-${startedAt.getTime()}-${c}-${latency.get('rawGet')!.length}`);
      misses[c] = Number(process.hrtime.bigint() - t0) / 1e3;
    }
    if (missService.stats().sets - missesBefore !== MISS_CALLS) throw new Error('bench bug: not every miss was stored.');
    push(latency, 'miss', misses);
  }

  async function throughputSample(layer: Layer): Promise<ThroughputSample> {
    const op = layers[layer].op;
    const redisBefore = await redisCpuSeconds();
    const cpuBefore = process.cpuUsage();
    const t0 = process.hrtime.bigint();
    let issued = 0;
    const worker = async () => {
      while (issued < THROUGHPUT_OPS) await op(issued++ & MASK);
    };
    await Promise.all(Array.from({ length: CONCURRENCY }, worker));
    const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
    const cpu = process.cpuUsage(cpuBefore);
    const redisSeconds = (await redisCpuSeconds()) - redisBefore;
    const nodeCpuSeconds = (cpu.user + cpu.system) / 1e6;
    return {
      opsPerSecond: THROUGHPUT_OPS / seconds,
      nodeCpuUsPerOp: (nodeCpuSeconds * 1e6) / THROUGHPUT_OPS,
      redisCpuUsPerOp: (redisSeconds * 1e6) / THROUGHPUT_OPS,
      nodeBusy: nodeCpuSeconds / seconds,
      redisBusy: redisSeconds / seconds,
    };
  }

  async function throughputRound(): Promise<void> {
    const samples = new Map<Layer, ThroughputSample[]>(THROUGHPUT_LAYERS.map(layer => [layer, []]));
    const before = hitService.stats();
    for (let s = 0; s < THROUGHPUT_SAMPLES; s++) {
      for (let j = 0; j < THROUGHPUT_LAYERS.length; j++) {
        const layer = THROUGHPUT_LAYERS[(s + j) % THROUGHPUT_LAYERS.length]!;
        samples.get(layer)!.push(await throughputSample(layer));
      }
    }
    const after = hitService.stats();
    if (after.misses !== before.misses || after.joins !== before.joins) {
      throw new Error(`bench bug: the concurrent hit scenario missed (${after.misses - before.misses}) or joined a flight (${after.joins - before.joins}); every call must be its own Redis hit.`);
    }
    for (const [layer, list] of samples) push(throughput, layer, list);
  }

  /** Fills n entries that depend on one fresh key, then times only `await invalidate(key)`. */
  async function timeInvalidation(n: DependentCount): Promise<InvalidationSample> {
    const key = `Group:${invalidationTag++}`;
    const setsBefore = invalidationService.stats().sets;
    await pool(n, CONCURRENCY, i => dependents.value(key, i));
    const stored = invalidationService.stats().sets - setsBefore;
    if (stored !== n) throw new Error(`bench bug: filling ${n} dependents stored ${stored}.`);
    // A forced GC right before a sub-millisecond call slows that call down by itself (measured: about 2×, even
    // after a pause or a few PINGs): only the large fill, whose garbage could otherwise be collected during the
    // timed call, is followed by one.
    if (n >= 10_000) gc?.();
    await admin.config('RESETSTAT');
    const removedBefore = invalidationService.stats().invalidatedEntries;
    const t0 = process.hrtime.bigint();
    await invalidationService.invalidate(key);
    const wallMs = Number(process.hrtime.bigint() - t0) / 1e6;
    const removed = invalidationService.stats().invalidatedEntries - removedBefore;
    if (removed !== n) throw new Error(`bench bug: invalidating ${key} removed ${removed} of ${n} dependents.`);
    const stats = parseCommandstats(await admin.info('commandstats'));
    const serverUs = (stats.get('evalsha')?.usec ?? 0) + (stats.get('eval')?.usec ?? 0);
    markerLog.push({ at: Date.now(), markers: 1 }); // one marker: the invalidated key (dependents get none)
    const commands = new Map([...stats].filter(([name]) => !ADMIN_COMMANDS.has(name)).map(([name, stat]) => [name, stat.calls]));
    return { wallMs, serverMs: serverUs / 1e3, commands };
  }

  async function invalidationRound(round: number): Promise<void> {
    for (const n of DEPENDENT_COUNTS) {
      if (round === 1) await timeInvalidation(n); // warm-up, not recorded
      for (let s = 0; s < INVALIDATION_SAMPLES[n]; s++) invalidationSamples.get(n)!.push(await timeInvalidation(n));
    }
  }

  for (let round = 1; round <= ROUNDS; round++) {
    console.log(`\n── round ${round}/${ROUNDS} ── load average ${os.loadavg().map(x => x.toFixed(2)).join(' ')}`);
    await latencyRound();
    const p50 = (layer: Layer | 'miss') => median(latency.get(layer)!.at(-1)!);
    console.log(`sequential p50 (µs): ${LATENCY_LAYERS.map(l => `${l} ${p50(l).toFixed(1)}`).join(', ')}, miss ${p50('miss').toFixed(1)}`);
    await throughputRound();
    const ops = (layer: Layer) => median(throughput.get(layer)!.at(-1)!.map(s => s.opsPerSecond));
    console.log(`throughput, ${CONCURRENCY} callers (ops/s): ${THROUGHPUT_LAYERS.map(l => `${l} ${ops(l).toFixed(0)}`).join(', ')}`);
    await invalidationRound(round);
    console.log(`invalidate (ms, median so far): ${DEPENDENT_COUNTS.map(n => `${n} → ${median(invalidationSamples.get(n)!.map(s => s.wallMs)).toFixed(2)}`).join(', ')}`);
  }

  // ── commands per call (once) ──
  async function countCommands(calls: number, op: (i: number) => Promise<unknown>): Promise<CommandCount> {
    const monitor = await admin.monitor();
    clients.push(monitor);
    const fromClient = new Map<string, number>();
    const fromScripts = new Map<string, number>();
    let seen = 0;
    monitor.on('monitor', (_time: string, args: unknown[], source: string) => {
      const name = String(args[0]).toLowerCase();
      if (source === 'lua') fromScripts.set(name, (fromScripts.get(name) ?? 0) + 1);
      else if (source === clientAddress) {
        fromClient.set(name, (fromClient.get(name) ?? 0) + 1);
        seen++;
      }
    });
    await sleep(100);
    await admin.config('RESETSTAT');
    for (let i = 0; i < calls; i++) await op(i);
    const commandstats = parseCommandstats(await admin.info('commandstats'));
    for (const name of ADMIN_COMMANDS) commandstats.delete(name);
    // Let MONITOR's stream catch up (bounded), then one more short wait for stragglers.
    for (let k = 0; k < 100 && seen < calls; k++) await sleep(20);
    await sleep(100);
    monitor.disconnect();
    return { calls, fromClient, fromScripts, commandstats };
  }
  const hitsBefore = hitService.stats();
  const hitCommands = await countCommands(COUNTED_CALLS, i => catalogue.getPrice(ids[i & MASK]!));
  const hitsAfter = hitService.stats();
  if (hitsAfter.hits - hitsBefore.hits !== COUNTED_CALLS || hitsAfter.misses !== hitsBefore.misses) throw new Error('bench bug: the counted calls were not all hits.');
  const rawCommands = await countCommands(COUNTED_CALLS, i => client.get(rawKeys[i & MASK]!));
  const missCommands = await countCommands(COUNTED_MISSES, i => missCatalogue.getPrice(`counted-miss-${i}`));
  console.log(`\ncommands per hit: ${describeCount(hitCommands)}`);

  // ── server-side cost of the hit command and of the miss's token script, and with RESP2 (once) ──
  const resp2 = await connect(server, clients, { protocol: 2 });
  const emptySha = String(await client.script('LOAD', 'return 1'));
  const serverCost = new Map<string, { serverUs: number; wallUs: number; command: string }>();
  async function measureServerCost(label: string, command: string, op: (i: number) => Promise<unknown>): Promise<void> {
    for (let i = 0; i < 300; i++) await op(i & MASK);
    await admin.config('RESETSTAT');
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < SERVER_COST_CALLS; i++) await op(i & MASK);
    const wallUs = Number(process.hrtime.bigint() - t0) / 1e3 / SERVER_COST_CALLS;
    const stat = parseCommandstats(await admin.info('commandstats')).get(command);
    if (stat === undefined || stat.calls !== SERVER_COST_CALLS) throw new Error(`bench bug: ${label} ran ${stat?.calls ?? 0} ${command} commands, expected ${SERVER_COST_CALLS}.`);
    serverCost.set(label, { serverUs: stat.usec / stat.calls, wallUs, command });
  }
  const COST = {
    get: 'GET (RESP3)',
    hmget: 'HGET of the entry\'s h field (RESP3): what a hit reads',
    lookup: 'EVALSHA LOOKUP script, one entry (RESP3): a hit on its own (generation, TIME, HGET)',
    empty: 'EVALSHA `return 1` (RESP3): the cost of any script call',
    begin: 'EVALSHA BEGIN script, no lease (RESP3): the token a miss takes',
    getResp2: 'GET (RESP2)',
    hmgetResp2: 'HGET of the entry\'s h field (RESP2)',
  } as const;
  await measureServerCost(COST.get, 'get', i => client.get(rawKeys[i]!));
  await measureServerCost(COST.hmget, 'hget', i => client.hget(entryKeys[i]!, 'h'));
  await measureServerCost(COST.lookup, 'evalsha', i => aspectCacheLookup(2, `${hitBase}s`, entryKeys[i]!, 'h'));
  await measureServerCost(COST.empty, 'evalsha', () => client.evalsha(emptySha, 0));
  await measureServerCost(COST.begin, 'evalsha', i => aspectCacheBegin(3, `${hitBase}s`, `${hitBase}l:${cacheKeys[i]!}`, `${hitBase}v:${cacheKeys[i]!}`, 0, '', 120_000, '0'));
  await measureServerCost(COST.getResp2, 'get', i => resp2.get(rawKeys[i]!));
  await measureServerCost(COST.hmgetResp2, 'hget', i => resp2.hget(entryKeys[i]!, 'h'));

  // ── Node-side pieces of a hit (once, mitata, synchronous) ──
  const serializer = new SuperJsonSerializer();
  const micro = new Map<string, number>();
  const microBench = async (label: string, fn: () => unknown) => {
    const ns = (await measure(fn)).p50;
    micro.set(label, ns);
    return ns;
  };
  const superjsonNs = await microBench(`superjson deserialize of the hit payload ${payload}`, () => serializer.deserialize(payload));
  const jsonNs = await microBench('JSON.parse of the same payload', () => JSON.parse(payload));
  const dependenciesNs = await microBench(`JSON.parse of the dependency list ${dependenciesJson}`, () => JSON.parse(dependenciesJson));
  const timerNs = await microBench('setTimeout + clearTimeout (what each call paid before the shared deadline sweep; no longer on the hit path)', () => clearTimeout(setTimeout(noop, 1_000)));

  // ── the library's own JS per hit, with Redis replaced by a canned reply (once, mitata, async) ──
  // The fake client answers the LOOKUP script (a standalone batch: generation, TIME, then one field per lookup of
  // the tick) with the reply of a real hit (an already resolved promise); TIME for the backend's clock sync; the
  // other scripts are defined but a hit never calls one.
  const cannedReply = await client.hget(entryKeys[0]!, 'h');
  const cannedNow = Date.now();
  const fakeClient = {
    defineCommand(this: Record<string, unknown>, name: string): void {
      this[name] =
        name === 'aspectCacheLookup'
          ? (numKeys: number) => Promise.resolve([null, [String(Math.floor(cannedNow / 1000)), '0'], ...Array.from({ length: numKeys - 1 }, () => cannedReply)])
          : () => Promise.reject(new Error(`bench bug: the canned-reply backend called ${name} on a hit.`));
    },
    hget: (..._args: unknown[]) => Promise.resolve(cannedReply),
    time: () => Promise.resolve([String(Math.floor(cannedNow / 1000)), String((cannedNow % 1000) * 1000)]),
  };
  const fakeBackend = new RedisBackend({ client: fakeClient as unknown as Redis, keyPrefix: 'fake:' });
  const fakeService = new CachingService({ backend: fakeBackend });
  const fakeCatalogue = bindCachingService(new PriceCatalogue(), fakeService);
  const fakeKey = descriptor.keyFor(fakeCatalogue, [ids[0]!]);
  await sleep(10); // let the constructor's clock sync answer
  const fakeHit = await fakeBackend.get(fakeKey);
  if (!fakeHit.hit) throw new Error('bench bug: the canned reply is not a hit.');
  const fakeFloorNs = await microBench('canned reply: client.hget(…) returning a resolved promise, awaited (floor)', () => fakeClient.hget('k', 'h'));
  const fakeBackendNs = await microBench('canned reply: await RedisBackend.get(key)', () => fakeBackend.get(fakeKey));
  const fakeHitNs = await microBench('canned reply: await @Cache hit (CachingService + RedisBackend)', () => fakeCatalogue.getPrice(ids[0]!));
  if (fakeService.stats().misses !== 0) throw new Error('bench bug: the canned-reply service missed.');
  await fakeService.dispose();

  // ── keys left behind (once, at the end) ──
  // (b) default options: what the timed invalidations left under their prefix, a while after the last one.
  const invalidationResidue = await scanResidue(admin, PREFIX.invalidation);
  const scannedAt = Date.now();
  const sinceLastInvalidationS = (scannedAt - markerLog.at(-1)!.at) / 1000;
  const markersWritten = markerLog.reduce((a, x) => a + x.markers, 0);
  /** Markers written less than markerTtlMs before the scan (those still alive if every marker lives markerTtlMs). */
  const markersExpectedAlive = markerLog.filter(x => scannedAt - x.at < DEFAULT_MARKER_TTL_MS).reduce((a, x) => a + x.markers, 0);
  console.log(`\nresidue (b), default markerTtlMs: ${invalidationResidue.total} keys under ${PREFIX.invalidation}* (${kinds(invalidationResidue)}), longest PTTL ${invalidationResidue.maxTtlMs} ms, ${sinceLastInvalidationS.toFixed(0)} s after the last invalidation`);
  console.log('residue (a): filling short-lived entries that share dependencies and waiting past their TTL…');
  // (a) expiry hygiene: entries sharing dependencies expire; nothing is invalidated under this prefix.
  const expirySetsBefore = expiryService.stats().sets;
  await pool(RESIDUE_ENTRIES, CONCURRENCY, i => shortLivedShared.value(i));
  if (expiryService.stats().sets - expirySetsBefore !== RESIDUE_ENTRIES) throw new Error('bench bug: not every short-lived entry was stored.');
  const expiryFilledAt = Date.now();
  const expiryBefore = await scanResidue(admin, PREFIX.expiry);
  // (b) markerTtlMs 1 s: invalidate a group of long-lived dependents, count right away and after the markers' TTL.
  const residueSetsBefore = residueService.stats().sets;
  await pool(RESIDUE_ENTRIES, CONCURRENCY, i => dependentsQuickMarkers.value('Residue:invalidated', i));
  if (residueService.stats().sets - residueSetsBefore !== RESIDUE_ENTRIES) throw new Error('bench bug: not every dependent was stored.');
  const removedBefore = residueService.stats().invalidatedEntries;
  await residueService.invalidate('Residue:invalidated');
  const quickInvalidatedAt = Date.now();
  if (residueService.stats().invalidatedEntries - removedBefore !== RESIDUE_ENTRIES) throw new Error('bench bug: the residue invalidation did not remove every dependent.');
  const quickMarkersRightAfter = await scanResidue(admin, PREFIX.residue);
  await sleep(Math.max(0, expiryFilledAt + SHORT_TTL_MS + EXPIRY_MARGIN_MS - Date.now()));
  const expiryResidue = await scanResidue(admin, PREFIX.expiry);
  await sleep(Math.max(0, quickInvalidatedAt + SHORT_MARKER_TTL_MS + EXPIRY_MARGIN_MS - Date.now()));
  const quickMarkersAfterTtl = await scanResidue(admin, PREFIX.residue);
  console.log(`residue (a), no invalidation: ${expiryBefore.total} keys right after the fill, ${expiryResidue.total} after (${kinds(expiryResidue)})`);
  console.log(`residue (b), markerTtlMs ${SHORT_MARKER_TTL_MS}: ${quickMarkersRightAfter.total} keys right after the invalidation (${kinds(quickMarkersRightAfter)}, longest PTTL ${quickMarkersRightAfter.maxTtlMs} ms), ${quickMarkersAfterTtl.total} after markerTtlMs + ${EXPIRY_MARGIN_MS} ms`);

  for (const service of [hitService, missService, invalidationService, expiryService, residueService]) await service.dispose();

  // ───────────── rows, targets, findings ─────────────
  const rounds = (layer: Layer | 'miss') => latency.get(layer)!;
  const roundP50 = (layer: Layer | 'miss') => rounds(layer).map(values => median(values));
  const latencySpread = (layer: Layer | 'miss') => {
    const all = rounds(layer);
    const p99 = median(all.map(values => quantile(values, 0.99)));
    if (all.length === 1) return `p25–p75 ${formatValue(quantile(all[0]!, 0.25))}–${formatValue(quantile(all[0]!, 0.75))}, p99 ${formatValue(p99)} (${all[0]!.length} calls)`;
    return `${range(roundP50(layer), 1)} over ${all.length} rounds, p99 ${formatValue(p99)} (${all[0]!.length} calls/round)`;
  };
  const latencyRatio = (layer: Layer | 'miss', of: Layer) => {
    const a = roundP50(layer);
    const b = roundP50(of);
    const ratios = a.map((v, i) => v / b[i]!);
    return { value: median(ratios), range: ratios.length > 1 ? ` (rounds ${range(ratios)})` : '' };
  };
  const latencyRows: RedisResultRow[] = [];
  for (const layer of LATENCY_LAYERS) {
    const r = latencyRatio(layer, 'rawGet');
    latencyRows.push({ section: layer === 'rawGet' ? 'floor' : layer === 'hit' ? 'hit' : 'layer', name: layers[layer].name, value: median(roundP50(layer)), unit: 'µs/op', spread: latencySpread(layer), ratio: `${r.value.toFixed(2)}× raw GET${r.range}` });
  }
  {
    const r = latencyRatio('miss', 'rawGet');
    const h = latencyRatio('miss', 'hit');
    latencyRows.push({ section: 'miss', name: 'aspect-cache @Cache miss (fresh arg, value stored)', value: median(roundP50('miss')), unit: 'µs/op', spread: latencySpread('miss'), ratio: `${r.value.toFixed(2)}× raw GET, ${h.value.toFixed(2)}× hit` });
  }

  const allSamples = (layer: Layer) => throughput.get(layer)!.flat();
  const pairedRatios = (layer: Layer, floor: Layer = 'rawGet') => {
    const a = allSamples(layer);
    const b = allSamples(floor);
    return a.map((s, i) => s.opsPerSecond / b[i]!.opsPerSecond);
  };
  const throughputRows: RedisResultRow[] = THROUGHPUT_LAYERS.map(layer => {
    const samples = allSamples(layer);
    const ratios = pairedRatios(layer);
    const nodeUs = median(samples.map(s => s.nodeCpuUsPerOp));
    const redisUs = median(samples.map(s => s.redisCpuUsPerOp));
    return {
      section: layer === 'rawGet' ? 'floor' : layer === 'hit' ? 'hit' : layer === 'rawGetAutoPipelined' ? 'context' : 'layer',
      name: layers[layer].name,
      value: median(samples.map(s => s.opsPerSecond)),
      unit: 'ops/s',
      spread: `${range(samples.map(s => s.opsPerSecond), 0)} (${samples.length} samples)`,
      ratio: `${median(ratios).toFixed(2)}× raw GET${ratios.length > 1 ? ` (${range(ratios)})` : ''}; CPU per op: Node ${nodeUs.toFixed(1)} µs, Redis ${redisUs.toFixed(1)} µs; busy: Node ${(median(samples.map(s => s.nodeBusy)) * 100).toFixed(0)}%, Redis ${(median(samples.map(s => s.redisBusy)) * 100).toFixed(0)}%`,
    };
  });

  const perCall = (count: CommandCount, map: Map<string, number>) =>
    [...map].map(([name, n]) => `${name} ${(n / count.calls).toFixed(2)}`).join(', ') || 'none';
  const clientTotal = (count: CommandCount) => [...count.fromClient.values()].reduce((a, b) => a + b, 0);
  const statsTotal = (count: CommandCount) => [...count.commandstats.values()].reduce((a, s) => a + s.calls, 0);
  const commandRows: RedisResultRow[] = [
    ['raw ioredis GET (control of the method)', rawCommands],
    ['aspect-cache @Cache hit', hitCommands],
    ['aspect-cache @Cache miss (LOOKUP script with its token + SET store)', missCommands],
  ].map(([name, count]) => {
    const c = count as CommandCount;
    return {
      section: 'commands',
      name: `${name as string}, ${c.calls} sequential calls`,
      value: clientTotal(c) / c.calls,
      unit: 'sent/call',
      spread: `sent (MONITOR): ${perCall(c, c.fromClient)}`,
      ratio: `INFO commandstats: ${(statsTotal(c) / c.calls).toFixed(2)}/call = ${[...c.commandstats].map(([n, s]) => `${n} ${(s.calls / c.calls).toFixed(2)}`).join(', ')}${c.fromScripts.size > 0 ? ` (inside scripts: ${perCall(c, c.fromScripts)})` : ''}`,
    };
  });

  const invalidationRows: RedisResultRow[] = DEPENDENT_COUNTS.map(n => {
    const samples = invalidationSamples.get(n)!;
    const wall = samples.map(s => s.wallMs);
    const serverMs = median(samples.map(s => s.serverMs));
    return {
      section: 'invalidate',
      name: `${n.toLocaleString('en-US')} dependent${n === 1 ? '' : 's'}: await service.invalidate(key)`,
      value: median(wall),
      unit: 'ms',
      spread: `p25–p75 ${formatValue(quantile(wall, 0.25))}–${formatValue(quantile(wall, 0.75))}, max ${formatValue(Math.max(...wall))} (${wall.length} samples)`,
      ratio: `Redis busy in the script ${formatValue(serverMs)} ms (median, commandstats); ${formatValue((median(wall) * 1e3) / n)} µs per dependent`,
    };
  });

  const residueDetail = (residue: Residue) =>
    `without expiry: ${residue.withoutExpiry}; longest remaining TTL (PTTL) ${residue.maxTtlMs.toLocaleString('en-US')} ms${residue.total > 0 ? `; about ${(residue.approxBytes / 2 ** 20).toFixed(1)} MiB (MEMORY USAGE)` : ''}`;
  const residueRows: RedisResultRow[] = [
    {
      section: '(a) expiry',
      name: `no invalidation, default options: ${PREFIX.expiry}*, ${RESIDUE_ENTRIES.toLocaleString('en-US')} entries (ttl ${SHORT_TTL_MS} ms) sharing ${SHARED_GROUPS + 1} dependencies, ${SHORT_TTL_MS} + ${EXPIRY_MARGIN_MS} ms after the last store`,
      value: expiryResidue.total,
      unit: 'keys',
      spread: kinds(expiryResidue),
      ratio: `${residueDetail(expiryResidue)}; right after the fill: ${expiryBefore.total.toLocaleString('en-US')} keys (${kinds(expiryBefore)})`,
    },
    {
      section: '(b) markers',
      name: `after the timed invalidations, default markerTtlMs (${DEFAULT_MARKER_TTL_MS / 1000} s): ${PREFIX.invalidation}*, ${sinceLastInvalidationS.toFixed(0)} s after the last of ${markerLog.length} invalidations`,
      value: invalidationResidue.total,
      unit: 'keys',
      spread: kinds(invalidationResidue),
      ratio: `${residueDetail(invalidationResidue)}; ${markersWritten.toLocaleString('en-US')} markers written in all, ${markersExpectedAlive.toLocaleString('en-US')} of them less than ${DEFAULT_MARKER_TTL_MS / 1000} s before the scan`,
    },
    {
      section: '(b) markers',
      name: `markerTtlMs ${SHORT_MARKER_TTL_MS} ms: ${PREFIX.residue}*, right after invalidating ${RESIDUE_ENTRIES.toLocaleString('en-US')} dependents`,
      value: quickMarkersRightAfter.total,
      unit: 'keys',
      spread: kinds(quickMarkersRightAfter),
      ratio: residueDetail(quickMarkersRightAfter),
    },
    {
      section: '(b) markers',
      name: `markerTtlMs ${SHORT_MARKER_TTL_MS} ms: same prefix, ${SHORT_MARKER_TTL_MS} + ${EXPIRY_MARGIN_MS} ms after the invalidation`,
      value: quickMarkersAfterTtl.total,
      unit: 'keys',
      spread: kinds(quickMarkersAfterTtl),
      ratio: residueDetail(quickMarkersAfterTtl),
    },
  ];

  const sideRows: RedisResultRow[] = [];
  const getCost = serverCost.get(COST.get)!;
  for (const [label, cost] of serverCost) {
    sideRows.push({ section: 'Redis CPU', name: label, value: cost.serverUs, unit: 'µs/call', spread: `sequential wall ${formatValue(cost.wallUs)} µs/call (${SERVER_COST_CALLS} calls)`, ratio: `${(cost.serverUs / getCost.serverUs).toFixed(1)}× GET (commandstats usec/calls)` });
  }
  for (const [label, ns] of micro) sideRows.push({ section: 'Node CPU', name: label, value: ns, unit: 'ns', spread: 'mitata p50', ratio: '' });

  // Targets.
  const hitRatios = pairedRatios('hit');
  const hitRatio = median(hitRatios);
  const sentPerHit = clientTotal(hitCommands) / hitCommands.calls;
  // A hit is one command, the LOOKUP script (EVALSHA), which reads the partition's generation (GET), the server's
  // clock (TIME) and the entry's field (HGET) inside the server; a miss adds the SET script.
  const scriptsOnly = (counted: typeof hitCommands, perCall: number) => counted.fromClient.size === 1 && counted.fromClient.get('evalsha') === perCall * counted.calls;
  const onlyHmget = scriptsOnly(hitCommands, 1);
  const statsHmget = hitCommands.commandstats.get('hget')?.calls ?? 0;
  const bigWall = invalidationSamples.get(10_000)!.map(s => s.wallMs);
  const MARKER_KINDS = new Set(['g', 's', 'c']);
  const onlyMarkers = (residue: Residue) => [...residue.byKind.keys()].every(kind => MARKER_KINDS.has(kind));
  const markersBounded = (residue: Residue, ttlMs: number) => onlyMarkers(residue) && residue.withoutExpiry === 0 && residue.maxTtlMs <= ttlMs;
  const targets: RedisTargetCheck[] = [
    {
      label: `aspect-cache hit throughput ≥ 0.9× raw GET (${CONCURRENCY} concurrent callers)`,
      measured: `${hitRatio.toFixed(2)}× (median of ${hitRatios.length} paired samples, ${range(hitRatios)}); ${formatValue(median(allSamples('hit').map(s => s.opsPerSecond)))} vs ${formatValue(median(allSamples('rawGet').map(s => s.opsPerSecond)))} ops/s`,
      pass: hitRatio >= 0.9,
    },
    {
      label: 'a hit is one round trip: one LOOKUP script (GET, TIME and HGET inside the server)',
      measured: `${sentPerHit.toFixed(2)} sent (${perCall(hitCommands, hitCommands.fromClient)}; MONITOR); commandstats: ${statsTotal(hitCommands)} commands for ${hitCommands.calls} hits (${[...hitCommands.commandstats].map(([n, st]) => `${n} ${st.calls}`).join(', ') || 'none'})`,
      pass: onlyHmget && statsHmget === hitCommands.calls && statsTotal(hitCommands) === 4 * hitCommands.calls,
    },
    {
      label: 'a miss is at most 2 round trips: the LOOKUP script brings the token, then the SET script',
      measured: `${(clientTotal(missCommands) / missCommands.calls).toFixed(2)} commands sent per miss (${perCall(missCommands, missCommands.fromClient)}; MONITOR)`,
      pass: scriptsOnly(missCommands, 2),
    },
    {
      label: 'invalidating 10,000 dependents ≤ 20 ms',
      measured: `${median(bigWall).toFixed(1)} ms (median of ${bigWall.length}; max ${Math.max(...bigWall).toFixed(1)} ms)`,
      pass: median(bigWall) <= 20,
    },
    {
      label: '(a) keys left under the prefix after entries sharing dependencies expired, no invalidation = 0 (default options)',
      measured: `${expiryResidue.total} (${kinds(expiryResidue)}; ${expiryResidue.withoutExpiry} without expiry); ${expiryBefore.total.toLocaleString('en-US')} keys right after the fill`,
      pass: expiryResidue.total === 0,
    },
    {
      label: `(b) after invalidations only markers remain, each with PTTL ≤ markerTtlMs (documented behaviour, not an issue target)`,
      measured: `default ${DEFAULT_MARKER_TTL_MS / 1000} s: ${invalidationResidue.total.toLocaleString('en-US')} keys (${kinds(invalidationResidue)}), max PTTL ${invalidationResidue.maxTtlMs.toLocaleString('en-US')} ms, ${invalidationResidue.withoutExpiry} without expiry; markerTtlMs ${SHORT_MARKER_TTL_MS} ms: ${quickMarkersRightAfter.total.toLocaleString('en-US')} keys (${kinds(quickMarkersRightAfter)}), max PTTL ${quickMarkersRightAfter.maxTtlMs} ms`,
      pass: markersBounded(invalidationResidue, DEFAULT_MARKER_TTL_MS) && markersBounded(quickMarkersRightAfter, SHORT_MARKER_TTL_MS),
    },
    {
      label: `(b) keys left ${EXPIRY_MARGIN_MS} ms after markerTtlMs (${SHORT_MARKER_TTL_MS} ms) = 0`,
      measured: `${quickMarkersAfterTtl.total} (${kinds(quickMarkersAfterTtl)})`,
      pass: quickMarkersAfterTtl.total === 0,
    },
  ];

  // Findings: arithmetic on this run's numbers only.
  const med = (layer: Layer, f: (s: ThroughputSample) => number) => median(allSamples(layer).map(f));
  const node = (layer: Layer) => med(layer, s => s.nodeCpuUsPerOp);
  const redis = (layer: Layer) => med(layer, s => s.redisCpuUsPerOp);
  const lat = (layer: Layer | 'miss') => median(roundP50(layer));
  const empty = serverCost.get(COST.empty)!;
  const hmget = serverCost.get(COST.hmget)!;
  const lookupCost = serverCost.get(COST.lookup)!;
  const begin = serverCost.get(COST.begin)!;
  const hmgetResp2 = serverCost.get(COST.hmgetResp2)!;
  const findings = [
    `Sequential latency: a hit takes ${lat('hit').toFixed(1)} µs vs ${lat('rawGet').toFixed(1)} µs for a raw GET (+${(lat('hit') - lat('rawGet')).toFixed(1)} µs). Of the difference, the raw HGET of the entry (what the LOOKUP script reads) accounts for ${signed(lat('rawHmget') - lat('rawGet'))} µs, RedisBackend.get (the script, its generation and TIME) on top of it for ${signed(lat('backendGet') - lat('rawHmget'))} µs, and CachingService for ${signed(lat('hit') - lat('backendGet'))} µs.`,
    `Throughput with ${CONCURRENCY} callers: raw GET ${med('rawGet', s => s.opsPerSecond).toFixed(0)} ops/s, raw HGET of the entry ${med('rawHmget', s => s.opsPerSecond).toFixed(0)} ops/s (${median(pairedRatios('rawHmget')).toFixed(2)}× GET, no library code at all), RedisBackend.get ${med('backendGet', s => s.opsPerSecond).toFixed(0)} (${median(pairedRatios('backendGet')).toFixed(2)}×), @Cache hit ${med('hit', s => s.opsPerSecond).toFixed(0)} (${hitRatio.toFixed(2)}×). RedisBackend sends the lookups of one tick as one command (one LOOKUP script per partition), while the raw GET floor sends each command on its own; the raw GET of a client with ioredis auto-pipelining, which batches in the same way, reaches ${med('rawGetAutoPipelined', s => s.opsPerSecond).toFixed(0)} ops/s (${median(pairedRatios('rawGetAutoPipelined')).toFixed(2)}× GET), so against that batching floor a hit is ${median(pairedRatios('hit', 'rawGetAutoPipelined')).toFixed(2)}× (paired samples).`,
    `Redis CPU per operation under load: GET ${redis('rawGet').toFixed(1)} µs, raw HGET ${redis('rawHmget').toFixed(1)} µs, @Cache hit ${redis('hit').toFixed(1)} µs (${(redis('hit') / redis('rawGet')).toFixed(1)}× GET); the server alone would cap hits at about ${(1e6 / redis('hit')).toFixed(0)} ops/s and GETs at about ${(1e6 / redis('rawGet')).toFixed(0)} ops/s on one core. Redis was ${(med('rawGet', s => s.redisBusy) * 100).toFixed(0)}% busy during raw GETs and ${(med('hit', s => s.redisBusy) * 100).toFixed(0)}% during hits.`,
    `Node CPU per operation under load: raw GET ${node('rawGet').toFixed(1)} µs; raw HGET ${node('rawHmget').toFixed(1)} µs (${signed(node('rawHmget') - node('rawGet'))} µs: 2-argument command, one bulk reply); RedisBackend.get ${node('backendGet').toFixed(1)} µs (${signed(node('backendGet') - node('rawHmget'))} µs: one command, one reply, one deadline and one breaker outcome per batch instead of per lookup, minus superjson, dependency JSON, a promise and a result object per lookup); @Cache hit ${node('hit').toFixed(1)} µs (${signed(node('hit') - node('backendGet'))} µs: CachingService). Node was ${(med('hit', s => s.nodeBusy) * 100).toFixed(0)}% busy during hits.`,
    `Server-side cost of one call (commandstats, sequential): the LOOKUP script of a hit on its own ${lookupCost.serverUs.toFixed(1)} µs (in a batch its GET and TIME are shared), the HGET it runs ${hmget.serverUs.toFixed(1)} µs when sent alone (RESP2 client: ${hmgetResp2.serverUs.toFixed(1)} µs), vs GET ${getCost.serverUs.toFixed(1)} µs; the BEGIN script a miss adds ${begin.serverUs.toFixed(1)} µs (an empty script \`return 1\`: ${empty.serverUs.toFixed(1)} µs).`,
    `With Redis replaced by a canned reply (no network, no ioredis), the library's own JavaScript costs ${formatValue(fakeBackendNs - fakeFloorNs)} ns per hit in RedisBackend.get and ${formatValue(fakeHitNs - fakeBackendNs)} ns in CachingService (total ${formatValue(fakeHitNs)} ns including the awaited promise of the canned reply, ${formatValue(fakeFloorNs)} ns alone).`,
    `A miss sends ${(clientTotal(missCommands) / missCommands.calls).toFixed(2)} commands (${perCall(missCommands, missCommands.fromClient)}): the LOOKUP script (its GET and TIME bring the token with the miss) and the SET script; it takes ${lat('miss').toFixed(1)} µs sequentially (${(lat('miss') / lat('hit')).toFixed(2)}× a hit, ${(lat('miss') / lat('rawGet')).toFixed(2)}× a raw GET).`,
    `Invalidating 10,000 dependents: ${median(bigWall).toFixed(1)} ms end to end, of which the invalidation script kept Redis busy ${median(invalidationSamples.get(10_000)!.map(x => x.serverMs)).toFixed(1)} ms (${((median(invalidationSamples.get(10_000)!.map(x => x.serverMs)) * 1e3) / 10_000).toFixed(1)} µs per dependent; commands per dependent in the last sample, commandstats: ${[...invalidationSamples.get(10_000)!.at(-1)!.commands].filter(([name]) => name !== 'evalsha').map(([name, calls]) => `${name} ${(calls / 10_000).toFixed(2)}`).join(', ')}); every other client of that Redis waits meanwhile.`,
    `Keys left: (a) entries sharing dependencies that simply expire leave ${expiryResidue.total} keys (${expiryBefore.total.toLocaleString('en-US')} right after the fill). (b) Invalidations leave markers only: ${invalidationResidue.total.toLocaleString('en-US')} keys under the invalidation prefix (${kinds(invalidationResidue)}), about ${(invalidationResidue.approxBytes / 2 ** 20).toFixed(1)} MiB, longest PTTL ${(invalidationResidue.maxTtlMs / 1000).toFixed(1)} s ≤ ${DEFAULT_MARKER_TTL_MS / 1000} s, ${sinceLastInvalidationS.toFixed(0)} s after the last invalidation (${markersExpectedAlive.toLocaleString('en-US')} markers were written in the last ${DEFAULT_MARKER_TTL_MS / 1000} s before the scan); with markerTtlMs ${SHORT_MARKER_TTL_MS} ms, ${quickMarkersRightAfter.total.toLocaleString('en-US')} keys right after invalidating ${RESIDUE_ENTRIES.toLocaleString('en-US')} dependents, ${quickMarkersAfterTtl.total} once markerTtlMs has passed.`,
    `Node-side pieces (mitata p50): superjson deserialize ${formatValue(superjsonNs)} ns vs JSON.parse ${formatValue(jsonNs)} ns of the same payload; dependency-list JSON.parse ${formatValue(dependenciesNs)} ns; a setTimeout/clearTimeout pair ${formatValue(timerNs)} ns (no longer paid per call: one interval sweeps the deadlines).`,
  ];

  const notes = [
    `The benchmark spawns its own \`redis-server --port <free port> --bind ${HOST} --save "" --appendonly no\` in a temporary directory, checks its process id through INFO before using it, and stops it at the end (SIGTERM, also on failure or Ctrl-C). All scenarios use one ioredis connection (RESP${protocol}); statistics, SCAN and MONITOR use a second one.`,
    `Fixtures: ${WARM.toLocaleString('en-US')} warm entries of \`PriceCatalogue.getPrice(id)\` (an async @Cache method with one string argument, no TTL, one dependency, a number value; payload ${payload}) on \`new CachingService({ backend: new RedisBackend({ client, keyPrefix: '${PREFIX.hit}' }) })\`, and ${WARM.toLocaleString('en-US')} raw keys holding the number as a string. Ids are cycled in order, so the 64 calls in flight at any time are on 64 distinct keys: no call joins another's flight (checked), every call is its own Redis round trip. The entries are not sliding, so a hit sends no TOUCH script.`,
    `Layers: besides the floor and the @Cache hit, the tables show the command a hit sends, called directly through ioredis (\`client.hget(entryKey, 'h')\`, the entry key from \`RedisBackend.entryKey\`, checked to hold each warm entry), and \`RedisBackend.get(key)\` without the service; the difference between neighbouring rows is the cost of one layer.`,
    `Sequential latency: one call at a time, each call timed with process.hrtime.bigint; the layers are interleaved call by call (order rotated each call). A round's value is the p50 of its calls; the headline is the median of the rounds' p50, the spread the min–max of the round values (one round: p25–p75 of its calls); p99 is the median of the rounds' p99. The miss scenario (fresh argument each call, value stored: an HGET, a BEGIN script and a SET script) runs after the interleaved layers.`,
    `Throughput: ${CONCURRENCY} async callers each loop \`await op()\` until ${THROUGHPUT_OPS.toLocaleString('en-US')} operations have been issued in total; ops/s = operations / wall time. ${THROUGHPUT_SAMPLES} samples per layer per round, layers interleaved (order rotated per sample); the ratio to raw GET is computed per sample pair (same round, same sample index), then the median is taken. CPU per op: process.cpuUsage() of this Node process and INFO cpu (main thread) of redis-server over the sample; busy % = CPU time / wall time. Redis CPU per op under load includes reading and writing the sockets, so it is lower when more commands arrive per read (a faster client): identical server work can show different figures in different rows. With ${machineInfo().cores} cores shared by Node, redis-server and whatever else runs, two processes at 100% each use the whole machine.`,
    `Commands per call: MONITOR (on a separate connection) records every command with its source: the measured connection's address, or "lua" for commands run by scripts; "sent" counts the former. INFO commandstats is reset (CONFIG RESETSTAT) right before the calls and read right after; in Redis 7 it also counts commands that scripts run through redis.call, so for a miss the total there is larger than the number of round trips. The admin connection's CONFIG/INFO are removed from the commandstats figures.`,
    `Invalidation: each sample first fills N entries of \`Dependents.value(key, i)\` (async @Cache method, two arguments, one dependency \`key\`, ttl 600 s) through the cached method with ${CONCURRENCY} concurrent misses (stores verified), runs a GC (10,000 only: a forced GC right before a sub-millisecond call measurably slows that call), resets commandstats, then times only \`await service.invalidate(key)\`. The number of removed entries is verified. One untimed warm-up sample per size in round 1. "Redis busy in the script" is the EVALSHA time in commandstats: Redis serves nothing else meanwhile.`,
    `Keys left, counted with SCAN (which skips logically expired keys) and PTTL per key, by kind: v = entry, i = dependency index, g = invalidation marker, s = partition sequence, c = clear marker. (a) Expiry hygiene: a backend with default options on its own prefix (${PREFIX.expiry}), where nothing is ever invalidated, stores ${RESIDUE_ENTRIES.toLocaleString('en-US')} entries with ttl ${SHORT_TTL_MS} ms, entry i depending on \`Category:<i mod ${SHARED_GROUPS}>\` and \`Catalogue\` (so index sets are shared by many entries); the keys are counted right after the fill and ${EXPIRY_MARGIN_MS} ms past it. (b) Invalidation markers: after the other scenarios, the prefix of the timed invalidations (${PREFIX.invalidation}, default markerTtlMs ${DEFAULT_MARKER_TTL_MS / 1000} s, every entry there invalidated) is counted, with the longest PTTL; markers written more than markerTtlMs before the scan have expired, so the count depends on the run's length. Then a backend with markerTtlMs ${SHORT_MARKER_TTL_MS} ms (${PREFIX.residue}) stores ${RESIDUE_ENTRIES.toLocaleString('en-US')} dependents of one key (ttl 600 s), invalidates the key, counts right away and again ${EXPIRY_MARGIN_MS} ms after markerTtlMs.`,
    `Side measurements: "Redis CPU" rows are commandstats usec/calls over ${SERVER_COST_CALLS.toLocaleString('en-US')} sequential calls of each variant on the warm entries; the BEGIN row calls the script RedisBackend defines (\`aspectCacheBegin\`, no lease) on the hit prefix's partition; the RESP2 rows use a second connection with \`protocol: 2\`. "Node CPU" rows are mitata p50 of pieces of the hit path; the "canned reply" rows replace the ioredis client by an object whose \`hget\` returns the reply of a real hit as an already resolved promise, so they show the library's own JavaScript per hit (RedisBackend + CachingService) without network or ioredis.`,
    'The machine may be shared with other work: compare the load averages above, prefer ratios and CPU-per-op figures to absolute numbers, and rerun before drawing conclusions from small differences.',
  ];

  const tables = [
    { title: 'Sequential latency (one call at a time)', rows: latencyRows },
    { title: `Throughput (${CONCURRENCY} concurrent callers)`, rows: throughputRows },
    { title: 'Redis commands per call', rows: commandRows },
    { title: 'Invalidating a dependency', rows: invalidationRows },
    { title: 'Keys left behind: (a) after expiry without invalidation, (b) after invalidations', rows: residueRows },
    { title: 'Side measurements: pieces of a hit (and of a miss)', rows: sideRows },
  ];
  printTables(tables, targets, findings);

  if (process.env.BENCH_NO_WRITE !== '1') {
    const path = fileURLToPath(new URL('./RESULTS-redis.md', import.meta.url));
    writeRedisResults(path, {
      mode: QUICK ? 'quick' : 'full',
      rounds: ROUNDS,
      decoratorMode,
      startedAt,
      finishedAt: new Date(),
      loadBefore,
      loadAfter: os.loadavg(),
      revision: revisionAtStart,
      server: serverDescription,
      tables,
      targets,
      findings,
      notes,
    });
    console.log(`\nwrote ${path}`);
  }
  if (process.env.BENCH_STRICT === '1' && targets.some(t => !t.pass)) process.exitCode = 1;
}

function noop(): void {}

/** A difference with its sign (`+1.2`, `-0.4`). */
function signed(value: number, digits = 1): string {
  return `${value >= 0 ? '+' : ''}${value.toFixed(digits)}`;
}

/** Set once the benchmark stops its server: connection errors are expected from then on. */
let stopping = false;

/** The revision whose src/ this process loaded (src/ may change while the benchmark runs). */
let revisionAtStart = 'unknown';

function push<K, V>(map: Map<K, V[]>, key: K, value: V): void {
  let list = map.get(key);
  if (list === undefined) map.set(key, (list = []));
  list.push(value);
}

function describeCount(count: CommandCount): string {
  const sent = [...count.fromClient].map(([name, n]) => `${name} ${(n / count.calls).toFixed(2)}`).join(', ');
  const inside = [...count.fromScripts].map(([name, n]) => `${name} ${(n / count.calls).toFixed(2)}`).join(', ');
  return `sent ${sent || 'none'}; inside scripts ${inside || 'none'}`;
}

function kinds(residue: Residue): string {
  if (residue.total === 0) return 'none';
  return [...residue.byKind].map(([kind, n]) => `${kind}: ${n.toLocaleString('en-US')}`).join(', ');
}

/** Counts the keys under a prefix with SCAN (bounded), by kind, with their remaining TTL. */
async function scanResidue(admin: Redis, prefix: string): Promise<Residue> {
  const keys = new Set<string>();
  let cursorValue = '0';
  let iterations = 0;
  do {
    const [next, found] = await admin.scan(cursorValue, 'MATCH', `${prefix}*`, 'COUNT', 1000);
    for (const key of found) keys.add(key);
    cursorValue = next;
    if (++iterations > 1_000_000) throw new Error('bench bug: SCAN did not finish.');
  } while (cursorValue !== '0');
  const byKind = new Map<string, number>();
  const list = [...keys];
  let withoutExpiry = 0;
  let maxTtlMs = 0;
  const kindPattern = new RegExp(`^${prefix.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}ac2:\\{p\\d+\\}:([a-z])`);
  for (let i = 0; i < list.length; i += 1000) {
    const chunk = list.slice(i, i + 1000);
    const pipeline = admin.pipeline();
    for (const key of chunk) pipeline.pttl(key);
    const replies = (await pipeline.exec()) ?? [];
    chunk.forEach((key, j) => {
      const kind = kindPattern.exec(key)?.[1] ?? 'other';
      byKind.set(kind, (byKind.get(kind) ?? 0) + 1);
      const ttl = Number(replies[j]?.[1]);
      if (ttl === -1) withoutExpiry++;
      else if (ttl > maxTtlMs) maxTtlMs = ttl;
    });
  }
  let approxBytes = 0;
  if (list.length > 0) {
    const sample = list.slice(0, 200);
    const pipeline = admin.pipeline();
    for (const key of sample) pipeline.memory('USAGE', key);
    const sizes = ((await pipeline.exec()) ?? []).map(([, bytes]) => Number(bytes)).filter(Number.isFinite);
    if (sizes.length > 0) approxBytes = (sizes.reduce((a, b) => a + b, 0) / sizes.length) * list.length;
  }
  return { total: keys.size, byKind, withoutExpiry, maxTtlMs, approxBytes };
}

function printTables(
  tables: ReadonlyArray<{ title: string; rows: readonly RedisResultRow[] }>,
  targets: readonly RedisTargetCheck[],
  findings: readonly string[],
): void {
  for (const table of tables) {
    console.log(`\n${COLORS ? '\x1b[1m' : ''}${table.title}${COLORS ? '\x1b[0m' : ''}`);
    for (const r of table.rows) {
      console.log(`  ${r.section.padEnd(10)} ${r.name}`);
      console.log(`  ${''.padEnd(10)} ${`${formatValue(r.value)} ${r.unit}`.padStart(16)}  ${r.spread}${r.ratio ? `  →  ${r.ratio}` : ''}`);
    }
  }
  console.log('\nwhere the time goes:');
  for (const f of findings) console.log(`  - ${f}`);
  console.log('\ntargets (from the issue):');
  for (const t of targets) console.log(`  [${t.pass ? 'PASS' : 'FAIL'}] ${t.label}: ${t.measured}`);
}

await main();
