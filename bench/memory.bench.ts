// Memory-backend benchmarks of aspect-cache: hit, miss and invalidation costs against lru-cache floors.
//
//   npm run bench          full run (5 rounds, about 1-2 min), writes bench/RESULTS.md
//   npm run bench:quick    one round (< 1 min), indicative only; also writes bench/RESULTS.md (marked "quick")
//
// Environment: BENCH_QUICK=1 (one round, fewer invalidation samples), BENCH_ROUNDS=n (override the number of
// rounds), BENCH_VERBOSE=1 (print mitata's table every round, not only the first), BENCH_BREAKDOWN=1 (add
// informational micro-benchmarks of the pieces of the hit path), BENCH_NO_WRITE=1 (do not write RESULTS.md),
// BENCH_STRICT=1 (exit code 1 when a target is missed).
//
// Everything runs in one process so that the ratios compare like with like; see NOTES below for the method.
import { AsyncLocalStorage } from 'node:async_hooks';
import { fileURLToPath } from 'node:url';
import os from 'node:os';
import { LRUCache } from 'lru-cache';
import { bench, do_not_optimize, group, measure, run, summary } from 'mitata';
import { addDependency, bindCachingService, Cache, CachingService, MemoryBackend, readContext } from '../src/index.js';
import { currentContext } from '../src/context/caching-context.js';
import { descriptorOf } from '../src/decorators/method-descriptor.js';
import { decoratorMode } from './decorator-mode.js';
import { formatValue, machineInfo, packageVersions, writeResults, type ResultRow, type TargetCheck } from './report.js';

type Stats = Awaited<ReturnType<typeof measure>>;

const QUICK = process.env.BENCH_QUICK === '1';
const ROUNDS = Math.max(1, Number(process.env.BENCH_ROUNDS ?? (QUICK ? 1 : 5)) | 0);
const VERBOSE = process.env.BENCH_VERBOSE === '1';
const BREAKDOWN = process.env.BENCH_BREAKDOWN === '1';
/** Timed invalidation samples per size per round (after one untimed warm-up sample). */
const INVALIDATION_SAMPLES = QUICK ? 5 : 8;
const DEPENDENT_COUNTS = [1, 100, 10_000] as const;
const COLORS = Boolean(process.stdout.isTTY) && !process.env.NO_COLOR;

const gc = (globalThis as { gc?: () => void }).gc;
if (typeof gc !== 'function') {
  console.warn('warning: run with node --expose-gc (npm run bench does); without it mitata simulates GC with huge allocations.');
}

// ───────────────────────────── decorator mode check ─────────────────────────────


// ───────────────────────────── fixtures ─────────────────────────────

/** Number of warm entries; a power of two so the cursor wraps with a mask (same cost in every scenario). */
const WARM = 1024;
const MASK = WARM - 1;
const ids = Array.from({ length: WARM }, (_, i) => `sku-${String(i).padStart(5, '0')}`);
let cursor = 0;
function nextIndex(): number {
  return (cursor = (cursor + 1) & MASK);
}
function nextId(): string {
  return ids[nextIndex()]!;
}
const priceOf = (id: string): number => id.length * 100 + id.charCodeAt(id.length - 1);

/** The floor: a plain lru-cache, sized like MemoryBackend's default. */
const lru = new LRUCache<string, number>({ max: 100_000 });
for (const id of ids) lru.set(`price:${id}`, priceOf(id));

async function floorAsync(id: string): Promise<number | undefined> {
  return lru.get(`price:${id}`);
}

class PriceCatalogue {
  @Cache()
  async getPrice(id: string): Promise<number> {
    addDependency(`ProductPrice:${id}`);
    return priceOf(id);
  }

  @Cache()
  getName(id: string): string {
    addDependency(`ProductName:${id}`);
    return `Product ${id}`;
  }
}

/** A cached parent: `body` runs as its computation, so cached calls inside it see an open caching context. */
class Parent {
  @Cache({ ignoreArgs: [1] })
  async compute<T>(tag: string, body: () => Promise<T>): Promise<T> {
    return body();
  }
}

/** Entries that depend on one key, for the invalidation scenario. */
class Dependents {
  @Cache()
  value(dependency: string, i: number): number {
    addDependency(dependency);
    return i;
  }
}

const hitService = new CachingService();
const catalogue = bindCachingService(new PriceCatalogue(), hitService);
const parent = bindCachingService(new Parent(), hitService);

/** The miss scenario gets a fresh, large backend each round, so nothing is evicted while it is measured. */
const MISS_CAPACITY = 2_000_000;
let missService = newMissService();
let missCatalogue = bindCachingService(new PriceCatalogue(), missService);
let missSerial = 0;
function newMissService(): CachingService {
  return new CachingService({ backend: new MemoryBackend({ maxEntries: MISS_CAPACITY }) });
}

/** Vary-by: a service with a `tenant` context read from the application's AsyncLocalStorage. */
const tenantStore = new AsyncLocalStorage<string>();
const varyService = new CachingService({ contexts: { tenant: () => tenantStore.getStore() ?? null } });

class TenantCatalogue {
  /** Plain: no varyBy, nothing read (the cost of a service with contexts for methods that do not vary). */
  @Cache()
  async getName(id: string): Promise<string> {
    addDependency(`ProductName:${id}`);
    return `Product ${id}`;
  }

  @Cache({ varyBy: ['tenant'] })
  async getPrice(id: string): Promise<number> {
    addDependency(`ProductPrice:${id}`);
    return priceOf(id) + (readContext('tenant') === 'acme' ? 0 : 1);
  }

  /** No varyBy: varies by tenant through its child, found again through its variant record. */
  @Cache()
  async getOffer(id: string): Promise<number> {
    return (await this.getPrice(id)) * 2;
  }
}
const tenantCatalogue = bindCachingService(new TenantCatalogue(), varyService);

const invalidationService = new CachingService();
const dependents = bindCachingService(new Dependents(), invalidationService);

// ───────────────────────────── scenarios ─────────────────────────────

const S = {
  floorAsyncNoAls: 'async floor, before the first miss (no AsyncLocalStorage yet)',
  floorAsync: 'async floor: async fn → lru.get(`price:${id}`)',
  hitAsync: 'async @Cache hit (1 string arg)',
  floorSync: 'sync floor: lru.get(`price:${id}`)',
  hitSync: 'sync @Cache hit (1 string arg)',
  miss: 'async @Cache miss (fresh arg, value stored)',
  hitPlainRef: 'async @Cache hit (reference for the vary-by rows, same group)',
  hitContextsPlain: 'async @Cache hit, service with contexts, method without varyBy',
  hitVaryBy: "async @Cache({ varyBy: ['tenant'] }) hit",
  hitVariantParent: 'async @Cache hit on a parent that varies by tenant through its child (variant known)',
  hitAsyncRef: 'async @Cache hit (reference: mean of runs just before and after the next row)',
  hitInParent: 'async @Cache hit inside a cached parent computation',
  bdJson: 'JSON.stringify(id)',
  bdKeyFor: 'descriptor.keyFor(self, [id])',
  bdBackendPrebuilt: 'MemoryBackend.get(prebuilt key)',
  bdBackendFresh: 'MemoryBackend.get(freshly built key)',
  bdLruPrebuilt: 'lru.get(prebuilt key)',
  bdPromise: 'Promise.resolve(v), awaited',
  bdContext: 'currentContext() (AsyncLocalStorage.getStore)',
  bdRest: 'wrapper-like (...args) call forwarding',
} as const;
type ScenarioName = (typeof S)[keyof typeof S];

const perRound = new Map<ScenarioName, Stats[]>();
function record(name: ScenarioName, stats: Stats): void {
  let list = perRound.get(name);
  if (list === undefined) perRound.set(name, (list = []));
  list.push(stats);
}

/** Pieces of the sync hit path, measured on their own (BENCH_BREAKDOWN=1). */
const getNameDescriptor = descriptorOf(PriceCatalogue.prototype.getName)!;
const prebuiltNameKeys = ids.map(id => getNameDescriptor.keyFor(catalogue, [id]));
const prebuiltLruKeys = ids.map(id => `price:${id}`);
function forwardRest(this: unknown, ...args: unknown[]): unknown {
  return takesArray(this, args);
}
function takesArray(self: unknown, args: unknown[]): unknown {
  return self === undefined ? args[0] : args.length;
}

function registerMainSuite(): void {
  group('async: floor vs hit', () => {
    summary(() => {
      bench(S.floorAsync, () => floorAsync(nextId())).baseline(true);
      bench(S.hitAsync, () => catalogue.getPrice(nextId()));
    });
  });
  group('sync: floor vs hit', () => {
    summary(() => {
      bench(S.floorSync, () => do_not_optimize(lru.get(`price:${nextId()}`))).baseline(true);
      bench(S.hitSync, () => do_not_optimize(catalogue.getName(nextId())));
    });
  });
  group('vary-by', () => {
    summary(() => {
      bench(S.hitPlainRef, () => catalogue.getPrice(nextId())).baseline(true);
      bench(S.hitContextsPlain, () => tenantCatalogue.getName(nextId()));
      bench(S.hitVaryBy, () => tenantCatalogue.getPrice(nextId()));
      bench(S.hitVariantParent, () => tenantCatalogue.getOffer(nextId()));
    });
  });
  group('miss', () => {
    bench(S.miss, () => missCatalogue.getPrice(`new-${missSerial++}`));
  });
  if (BREAKDOWN) {
    group('breakdown of the hit path (informational)', () => {
      bench(S.bdJson, () => do_not_optimize(JSON.stringify(nextId())));
      bench(S.bdKeyFor, () => do_not_optimize(getNameDescriptor.keyFor(catalogue, [nextId()])));
      bench(S.bdBackendPrebuilt, () => do_not_optimize(hitService.backend.get(prebuiltNameKeys[nextIndex()]!)));
      bench(S.bdBackendFresh, () => do_not_optimize(hitService.backend.get(`PriceCatalogue.getName(${JSON.stringify(nextId())})`)));
      bench(S.bdLruPrebuilt, () => do_not_optimize(lru.get(prebuiltLruKeys[nextIndex()]!)));
      bench(S.bdPromise, () => Promise.resolve(nextIndex()));
      bench(S.bdContext, () => do_not_optimize(currentContext()));
      bench(S.bdRest, () => do_not_optimize(forwardRest.call(undefined, nextId())));
    });
  }
}

/**
 * The hit inside a parent: a cached parent method, forced to miss by a fresh tag, runs the measurement loop
 * as its computation, so each child hit hands its key and dependency to the parent's open context. The plain
 * hit is measured right before and right after with the same settings (A-B-A), and the reference is the mean
 * of the two, so drift during the round cannot favour either side.
 */
async function measureHitInsideParent(round: number): Promise<void> {
  const hit = () => catalogue.getPrice(nextId());
  const before = await measure(hit);
  const missesBefore = hitService.stats().misses;
  const inside = await parent.compute(`round-${round}`, () => measure(() => catalogue.getPrice(nextId())));
  if (hitService.stats().misses - missesBefore !== 1) throw new Error('bench bug: the in-parent scenario missed on a child.');
  const after = await measure(hit);
  const mean = (k: 'p25' | 'p50' | 'p75' | 'avg') => (before[k] + after[k]) / 2;
  record(S.hitAsyncRef, { ...before, p25: mean('p25'), p50: mean('p50'), p75: mean('p75'), avg: mean('avg') });
  record(S.hitInParent, inside);
}

/** Checks, once, that the child hits measured inside the parent were recorded as the parent's dependencies. */
async function checkParentRecordedChildren(): Promise<void> {
  const id = ids[7]!;
  let entries: readonly string[] = [];
  const off = hitService.on('invalidate', event => (entries = event.entries));
  await hitService.invalidate(`ProductPrice:${id}`);
  off();
  if (!entries.some(key => key.startsWith('Parent.compute('))) {
    throw new Error(`bench bug: invalidating ProductPrice:${id} removed [${entries.join(', ')}], not the parent entry; the child hits did not run inside the parent's context.`);
  }
  await catalogue.getPrice(id); // re-warm
}

// ───────────────────────────── invalidation ─────────────────────────────

const invalidationSamples = new Map<number, number[]>(DEPENDENT_COUNTS.map(n => [n, []]));
let invalidationTag = 0;

/**
 * Fills `groups` × `n` entries (each group's entries depend on one key) through the cached method, then times
 * only `await invalidate(key)` for every group, back to back. Returns ns per invalidate call.
 */
async function timeInvalidation(n: number): Promise<number> {
  const groups = Math.max(1, Math.floor(1000 / n));
  const keys: string[] = [];
  for (let g = 0; g < groups; g++) {
    const key = `Group:${invalidationTag++}`;
    keys.push(key);
    for (let i = 0; i < n; i++) dependents.value(key, i);
  }
  gc?.();
  const before = invalidationService.stats().invalidatedEntries;
  const t0 = process.hrtime.bigint();
  for (let g = 0; g < groups; g++) await invalidationService.invalidate(keys[g]!);
  const t1 = process.hrtime.bigint();
  const removed = invalidationService.stats().invalidatedEntries - before;
  if (removed !== n * groups) throw new Error(`bench bug: invalidating ${groups} × ${n} dependents removed ${removed} entries.`);
  return Number(t1 - t0) / groups;
}

async function runInvalidationRound(): Promise<void> {
  for (const n of DEPENDENT_COUNTS) {
    await timeInvalidation(n); // warm-up, not recorded
    for (let s = 0; s < INVALIDATION_SAMPLES; s++) invalidationSamples.get(n)!.push(await timeInvalidation(n));
  }
}

// ───────────────────────────── warm-up ─────────────────────────────

async function warmUp(): Promise<void> {
  // Fill the cache (these misses create the library's AsyncLocalStorage, as in any application).
  for (const id of ids) {
    await catalogue.getPrice(id);
    catalogue.getName(id);
  }
  for (const id of ids) {
    await tenantCatalogue.getName(id);
    await tenantCatalogue.getOffer(id);
  }
  const filled = hitService.stats();
  if (filled.misses !== 2 * WARM || filled.hits !== 0) throw new Error(`bench bug: warm-up expected ${2 * WARM} misses, got ${JSON.stringify(filled)}`);
  // Run every path a while so the JIT has seen all of them (hits, misses, parent context) before any measurement.
  for (let i = 0; i < 100_000; i++) {
    await floorAsync(nextId());
    do_not_optimize(lru.get(`price:${nextId()}`));
    await catalogue.getPrice(nextId());
    do_not_optimize(catalogue.getName(nextId()));
    await tenantCatalogue.getName(nextId());
    await tenantCatalogue.getPrice(nextId());
    await tenantCatalogue.getOffer(nextId());
    if (i % 10 === 0) await missCatalogue.getPrice(`warm-${missSerial++}`);
  }
  await parent.compute('warm-up', async () => {
    for (let i = 0; i < 100_000; i++) await catalogue.getPrice(nextId());
  });
  await checkParentRecordedChildren();
  const hits = hitService.stats().hits;
  if (hits < 300_000) throw new Error(`bench bug: only ${hits} hits during warm-up.`);
}

// ───────────────────────────── statistics and output ─────────────────────────────

function quantile(values: readonly number[], q: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  const position = (sorted.length - 1) * q;
  const lower = Math.floor(position);
  const upper = Math.ceil(position);
  return sorted[lower]! + (sorted[upper]! - sorted[lower]!) * (position - lower);
}
const median = (values: readonly number[]) => quantile(values, 0.5);

/** Headline value (median of the rounds' p50) and spread of one mitata scenario. */
function summarize(name: ScenarioName): { value: number; spread: string } | undefined {
  const rounds = perRound.get(name);
  if (rounds === undefined || rounds.length === 0) return undefined;
  const p50s = rounds.map(s => s.p50);
  if (rounds.length === 1) {
    const s = rounds[0]!;
    return { value: s.p50, spread: `p25–p75 ${formatValue(s.p25)}–${formatValue(s.p75)}` };
  }
  return { value: median(p50s), spread: `${formatValue(Math.min(...p50s))}–${formatValue(Math.max(...p50s))} over ${rounds.length} rounds` };
}

/**
 * Per-round ratio of two scenarios' p50 (measured in the same round), summarized by the median. A scenario
 * measured once (before the rounds) is compared with the first round of the other.
 */
function ratio(numerator: ScenarioName, denominator: ScenarioName): { value: number; range: string } | undefined {
  let a = perRound.get(numerator);
  let b = perRound.get(denominator);
  if (!a || !b || a.length === 0 || b.length === 0) return undefined;
  if (a.length === 1 || b.length === 1) [a, b] = [a.slice(0, 1), b.slice(0, 1)];
  if (a.length !== b.length) return undefined;
  const ratios = a.map((s, i) => s.p50 / b[i]!.p50);
  const range = ratios.length > 1 ? ` (rounds ${Math.min(...ratios).toFixed(2)}–${Math.max(...ratios).toFixed(2)})` : '';
  return { value: median(ratios), range };
}
const times = (r: { value: number } | undefined, of: string) => (r === undefined ? '' : `${r.value.toFixed(2)}× ${of}`);

function buildRows(): ResultRow[] {
  const rows: ResultRow[] = [];
  const add = (section: string, name: ScenarioName, ratioText = '') => {
    const s = summarize(name);
    if (s !== undefined) rows.push({ section, name, value: s.value, unit: 'ns/op', spread: s.spread, ratio: ratioText });
  };
  add('floor', S.floorAsync, '1.00× async floor');
  add('floor', S.floorSync, '1.00× sync floor');
  add('hit', S.hitAsync, times(ratio(S.hitAsync, S.floorAsync), 'async floor'));
  add('hit', S.hitSync, times(ratio(S.hitSync, S.floorSync), 'sync floor'));
  add('hit', S.hitAsyncRef, times(ratio(S.hitAsyncRef, S.floorAsync), 'async floor'));
  add('hit', S.hitInParent, [times(ratio(S.hitInParent, S.hitAsyncRef), 'plain async hit'), times(ratio(S.hitInParent, S.floorAsync), 'async floor')].join(', '));
  add('vary-by', S.hitPlainRef, times(ratio(S.hitPlainRef, S.floorAsync), 'async floor'));
  add('vary-by', S.hitContextsPlain, times(ratio(S.hitContextsPlain, S.hitPlainRef), 'plain hit'));
  add('vary-by', S.hitVaryBy, times(ratio(S.hitVaryBy, S.hitPlainRef), 'plain hit'));
  add('vary-by', S.hitVariantParent, times(ratio(S.hitVariantParent, S.hitPlainRef), 'plain hit'));
  add('miss', S.miss, times(ratio(S.miss, S.floorAsync), 'async floor'));
  add('info', S.floorAsyncNoAls, times(ratio(S.floorAsyncNoAls, S.floorAsync), 'async floor with AsyncLocalStorage active (round 1)'));
  for (const name of [S.bdJson, S.bdKeyFor, S.bdBackendPrebuilt, S.bdBackendFresh, S.bdLruPrebuilt, S.bdPromise, S.bdContext, S.bdRest]) add('breakdown', name);
  for (const n of DEPENDENT_COUNTS) {
    const samples = invalidationSamples.get(n)!;
    if (samples.length === 0) continue;
    const unit = n >= 1000 ? 'ms/op' : 'µs/op';
    const scale = unit === 'ms/op' ? 1e6 : 1e3;
    const values = samples.map(v => v / scale);
    const groups = Math.max(1, Math.floor(1000 / n));
    rows.push({
      section: 'invalidate',
      name: `${n.toLocaleString('en-US')} dependent${n === 1 ? '' : 's'}${groups > 1 ? ` (${groups} keys timed back to back)` : ''}`,
      value: median(values),
      unit,
      spread: `p25–p75 ${formatValue(quantile(values, 0.25))}–${formatValue(quantile(values, 0.75))}, max ${formatValue(Math.max(...values))} (${values.length} samples)`,
      ratio: `${formatValue(median(samples) / n)} ns per dependent`,
    });
  }
  return rows;
}

function buildTargets(): TargetCheck[] {
  const targets: TargetCheck[] = [];
  const check = (label: string, r: { value: number; range: string } | undefined, limit: number) => {
    if (r !== undefined) targets.push({ label, measured: `${r.value.toFixed(2)}×${r.range}`, pass: r.value <= limit });
  };
  check('async hit ≤ 2× async floor', ratio(S.hitAsync, S.floorAsync), 2);
  check('sync hit ≤ 4× bare lru.get', ratio(S.hitSync, S.floorSync), 4);
  check('hit inside a parent ≤ 1.5× plain async hit', ratio(S.hitInParent, S.hitAsyncRef), 1.5);
  check("varyBy: ['tenant'] hit ≤ 1.5× plain hit", ratio(S.hitVaryBy, S.hitPlainRef), 1.5);
  check('hit on a parent whose variant is known ≤ 2× plain hit', ratio(S.hitVariantParent, S.hitPlainRef), 2);
  const big = invalidationSamples.get(10_000)!;
  if (big.length > 0) {
    const ms = median(big) / 1e6;
    targets.push({
      label: 'invalidating 10,000 dependents < 20 ms',
      measured: `${ms.toFixed(2)} ms (median; max ${(Math.max(...big) / 1e6).toFixed(2)} ms)`,
      pass: ms < 20,
    });
  }
  return targets;
}

function printTable(rows: readonly ResultRow[], targets: readonly TargetCheck[]): void {
  const label = (r: ResultRow) => `${r.section.padEnd(10)} ${r.name}`;
  const width = Math.max(...rows.map(r => label(r).length));
  console.log('');
  console.log(`${'scenario'.padEnd(width)}  ${'median'.padStart(14)}  spread / ratio`);
  console.log('-'.repeat(width + 60));
  for (const r of rows) {
    console.log(`${label(r).padEnd(width)}  ${`${formatValue(r.value)} ${r.unit}`.padStart(14)}  ${r.spread}${r.ratio ? `  →  ${r.ratio}` : ''}`);
  }
  console.log('');
  console.log('targets (from the issue):');
  for (const t of targets) console.log(`  [${t.pass ? 'PASS' : 'FAIL'}] ${t.label}: ${t.measured}`);
}

const NOTES = [
  'All scenarios run in one Node process. A round is: the mitata suite (async floor, async hit, sync floor, sync hit, miss), then the paired reference hit / hit-inside-parent measurement, then the invalidation samples. The full run has 5 rounds, the quick run 1.',
  'mitata times batches of calls and reports per-call times per batch; a round\'s value is the p50 of those batches. The headline is the median over rounds; the spread is the min–max of the round values (for a single round: p25–p75 within it). Ratios are computed per round between scenarios measured in that round, then the median is taken.',
  `The cache holds ${WARM.toLocaleString('en-US')} warm ids, cycled in order in every scenario (the cursor costs the same everywhere). Cached keys look like \`PriceCatalogue.getPrice("sku-00042")\`; floor keys \`price:sku-00042\`. The lru-cache floor has \`max: 100_000\`, like MemoryBackend's default. Cached methods add one string dependency when they compute. Instances are bound to their service (\`bindCachingService\`), as the DI integration does.`,
  'Why a cached hit can beat the floor: the floor builds its template-literal key on every call, and lru-cache must hash that fresh string. aspect-cache memoises the full key of single-argument calls (string or number argument, `this` not part of the key) per method, so a hit looks up the same key string object, whose hash V8 has cached. Calls with several arguments, objects, or a keyed `this` build their key each time; they are not in this table.',
  'Everything is measured with the library\'s AsyncLocalStorage active: the first cache miss creates it, so any application that has filled its cache has it. On Node 20 it makes every promise/await in the process slower, and the async floor pays that too; the "info" row shows the same async floor measured before the first miss, for reference.',
  'The JIT is warmed on every path (hits, misses, a parent context) before the first measurement, so the order of scenarios does not give any of them a cleaner type feedback.',
  'Hit inside a parent: a cached parent method (forced to miss by a fresh argument each round) runs the measurement loop as its own computation, so every child hit finds the parent\'s open caching context and hands it its key and dependency. This is the per-hit cost while a parent computes; the parent\'s one-off cost of storing the collected dependencies when it returns is not included. It is compared with a plain hit measured immediately before and after it with the same settings (the mean of the two). A check verifies the parent entry really recorded the children.',
  `Miss: every call has a fresh argument on a service whose MemoryBackend (new each round, capacity ${MISS_CAPACITY.toLocaleString('en-US')}) never evicts during the measurement; the method adds one dependency and the value is stored, so the heap grows while it runs (GC included).`,
  'Invalidation: each sample fills N entries that depend on one key through the real cached method (misses), runs a GC, then times only `await service.invalidate(key)` with process.hrtime.bigint; for N = 1 and 100 several keys are filled and their invalidations timed back to back and divided. The number of removed entries is verified. Values are medians of all samples.',
  "Vary-by: a service with one context (`tenant`, read from the application's AsyncLocalStorage, entered once for the whole run as a request middleware would) runs a method without varyBy, a method with `varyBy: ['tenant']`, and a parent without varyBy whose child varies by tenant (so the parent's entry is a variant, found through the service's memory of its variant record). Each is compared with the plain async hit on a service without contexts, measured in the same mitata group and round.",
  'The machine may be shared: compare the load averages above, and prefer ratios to absolute numbers.',
];

// ───────────────────────────── main ─────────────────────────────

async function main(): Promise<void> {
  const startedAt = new Date();
  const loadBefore = os.loadavg();
  const m = machineInfo();
  const versions = packageVersions();
  console.log(`aspect-cache memory benchmarks — ${QUICK ? 'QUICK (indicative only)' : 'full'}, ${ROUNDS} round${ROUNDS === 1 ? '' : 's'}`);
  console.log(`${m.cpu}, ${m.cores} cores, ${m.memory}; Node ${m.node}; ${Object.entries(versions).map(([k, v]) => `${k} ${v}`).join(', ')}`);
  console.log(`decorators compiled as ${decoratorMode}; load average ${loadBefore.map(x => x.toFixed(2)).join(' ')}`);
  if (decoratorMode.startsWith('legacy')) console.warn('warning: expected TC39 decorators (tsx picked up a tsconfig with experimentalDecorators).');

  // Before anything misses: the async floor with no AsyncLocalStorage in the process.
  record(S.floorAsyncNoAls, await measure(() => floorAsync(nextId())));

  // Every call runs as a request of tenant 'acme' (as in an application whose middleware enters the store).
  tenantStore.enterWith('acme');
  await warmUp();

  for (let round = 1; round <= ROUNDS; round++) {
    console.log(`\n── round ${round}/${ROUNDS} ──`);
    if (round > 1) {
      missService = newMissService();
      missCatalogue = bindCachingService(new PriceCatalogue(), missService);
    }
    const hitMissesBefore = hitService.stats().misses;
    const varyMissesBefore = varyService.stats().misses;
    registerMainSuite();
    const print = round === 1 || VERBOSE;
    const { benchmarks } = await run({ throw: true, colors: COLORS, format: print ? 'mitata' : 'quiet' });
    for (const trial of benchmarks) {
      const stats = trial.runs[0]?.stats;
      if (stats === undefined) throw new Error(`no stats for ${trial.alias}`);
      record(trial.alias as ScenarioName, stats);
    }
    if (hitService.stats().misses !== hitMissesBefore) throw new Error('bench bug: a hit scenario missed.');
    if (varyService.stats().misses !== varyMissesBefore) throw new Error('bench bug: a vary-by hit scenario missed.');
    const missBackend = missService.backend as MemoryBackend;
    const { sets } = missService.stats();
    if (missBackend.size < sets) console.warn(`warning: the miss scenario evicted ${sets - missBackend.size} entries; raise MISS_CAPACITY.`);
    await missService.dispose();
    gc?.();

    await measureHitInsideParent(round);
    console.log(`hit inside parent: ${formatValue(perRound.get(S.hitInParent)!.at(-1)!.p50)} ns/op (plain hit around it: ${formatValue(perRound.get(S.hitAsyncRef)!.at(-1)!.p50)} ns/op)`);

    await runInvalidationRound();
    console.log(`invalidate: ${DEPENDENT_COUNTS.map(n => `${n} → ${formatValue(median(invalidationSamples.get(n)!.slice(-INVALIDATION_SAMPLES)) / 1e3)} µs`).join(', ')}`);
  }

  const rows = buildRows();
  const targets = buildTargets();
  printTable(rows, targets);

  if (process.env.BENCH_NO_WRITE !== '1') {
    const path = fileURLToPath(new URL('./RESULTS.md', import.meta.url));
    writeResults(path, {
      mode: QUICK ? 'quick' : 'full',
      rounds: ROUNDS,
      decoratorMode,
      startedAt,
      finishedAt: new Date(),
      loadBefore,
      loadAfter: os.loadavg(),
      rows,
      targets,
      notes: NOTES,
    });
    console.log(`\nwrote ${path}`);
  }
  if (process.env.BENCH_STRICT === '1' && targets.some(t => !t.pass)) process.exitCode = 1;
}

await main();
