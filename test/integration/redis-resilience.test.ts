// RedisBackend when Redis fails (SPEC §8, resilience): a dedicated redis-server that each test stops, restarts
// or pauses. A failing or slow Redis never fails a cached call; an outage costs no latency once the circuit
// breaker has opened; an invalidation that could not reach Redis is retried, and until it lands the entries it
// affects are not served by this process.
import { afterEach, beforeEach, expect, it } from 'vitest';
import { addDependency, bindCachingService, Cache, CachingService, errors, type CacheEventMap } from '../../src/index.js';
import { RedisBackend, type RedisBackendOptions } from '../../src/redis.js';
import { sleep, waitUntil } from './support/redis-process.js';
import { commandCount, describeRedis, ready, resetCommandStats, standaloneClient, startDedicatedRedis, uniquePrefix, type DedicatedRedis } from './support/redis.js';
import type { Redis } from 'ioredis';

/** Short enough for tests, long enough for a loaded CI machine to answer a healthy Redis in time. */
const OPERATION_TIMEOUT_MS = 200;
const RESET_TIMEOUT_MS = 500;
const FAILING: Partial<RedisBackendOptions> = {
  operationTimeoutMs: OPERATION_TIMEOUT_MS,
  circuitBreaker: { failureThreshold: 2, resetTimeoutMs: RESET_TIMEOUT_MS },
};

interface Process {
  readonly backend: RedisBackend;
  readonly service: CachingService;
  readonly errors: Array<CacheEventMap['error']>;
  readonly circuit: Array<CacheEventMap['circuit']['state']>;
  readonly skips: Array<CacheEventMap['skip']>;
}

const services: CachingService[] = [];

function startProcess(client: Redis, keyPrefix: string, options: Partial<RedisBackendOptions> = {}): Process {
  const backend = new RedisBackend({ client, keyPrefix, ...FAILING, ...options });
  const service = new CachingService({ backend, telemetry: false });
  const process: Process = { backend, service, errors: [], circuit: [], skips: [] };
  service.on('error', e => process.errors.push(e));
  service.on('circuit', e => process.circuit.push(e.state));
  service.on('skip', e => process.skips.push(e));
  services.push(service);
  return process;
}

class PriceList {
  runs = 0;
  constructor(
    service: CachingService,
    readonly db: Map<string, number>,
  ) {
    bindCachingService(this, service);
  }

  @Cache()
  async getPrice(id: string): Promise<number> {
    this.runs++;
    addDependency(`Price:${id}`);
    return this.db.get(id) ?? 0;
  }
}

const priceKey = (id: string) => `PriceList.getPrice(${JSON.stringify(id)})`;

/** Runs `call` and returns its result with how long it took (ms). */
async function timed<T>(call: () => Promise<T>): Promise<{ value: T; ms: number }> {
  const startedAt = performance.now();
  const value = await call();
  return { value, ms: performance.now() - startedAt };
}

const codeOf = (error: unknown): unknown => (error as { code?: unknown } | null)?.code;

/** A server that keeps its data across a crash and a restart (as a persisted or failed-over Redis would). */
const PERSISTENT = ['--appendonly', 'yes', '--appendfsync', 'always'];

describeRedis('RedisBackend when Redis fails', () => {
  let server: DedicatedRedis;
  /** A client that reconnects quickly once the server is back (the default back-off grows to 2 s). */
  const connect = (): Redis => standaloneClient({ port: server.port, retryStrategy: () => 50 });

  beforeEach(async () => {
    server = await startDedicatedRedis();
  });

  afterEach(async () => {
    await Promise.all(services.splice(0).map(s => s.dispose()));
  });

  it('returns the method result while Redis is down, opens the circuit (no added latency), and closes it again after a probe', async () => {
    const client = connect();
    const a = startProcess(client, uniquePrefix('circuit'));
    const db = new Map([['corn', 1]]);
    const prices = new PriceList(a.service, db);
    expect(await prices.getPrice('corn')).toBe(1);
    expect(await prices.getPrice('corn')).toBe(1);
    expect(prices.runs).toBe(1);

    await server.stop();
    db.set('corn', 2);

    // Each call fails to reach Redis (a timeout), runs the method and returns its result.
    const first = await timed(() => prices.getPrice('corn'));
    expect(first.value).toBe(2);
    expect(a.errors.length).toBeGreaterThanOrEqual(1);
    expect(a.backend.circuitState).toBe('closed');
    const second = await timed(() => prices.getPrice('corn'));
    expect(second.value).toBe(2);
    expect(prices.runs).toBe(3);
    // The threshold (2 consecutive failures) is reached: the circuit opens.
    expect(a.backend.circuitState).toBe('open');
    expect(a.circuit).toEqual(['open']);
    expect(a.errors.length).toBeGreaterThanOrEqual(2);

    // With the circuit open, Redis is not called: a call costs the method and nothing more.
    const open = await timed(() => prices.getPrice('corn'));
    expect(open.value).toBe(2);
    expect(open.ms).toBeLessThan(100);
    expect(prices.runs).toBe(4);
    expect(a.skips.every(s => s.reason === 'backend-error')).toBe(true);
    console.log(`[redis-resilience] calls with Redis down: ${first.ms.toFixed(0)} ms, ${second.ms.toFixed(0)} ms; with the circuit open: ${open.ms.toFixed(1)} ms`);

    // Redis is back and resetTimeoutMs has passed: one probe goes through, closes the circuit, and values are cached again.
    await server.start();
    await ready(client);
    await sleep(RESET_TIMEOUT_MS + 50);
    db.set('corn', 3);
    expect(await prices.getPrice('corn')).toBe(3); // the restarted server is empty: a miss, stored
    expect(a.circuit).toEqual(['open', 'half-open', 'closed']);
    expect(a.backend.circuitState).toBe('closed');
    expect(await prices.getPrice('corn')).toBe(3);
    expect(await prices.getPrice('corn')).toBe(3);
    expect(prices.runs).toBe(5);
  });

  it('queues an invalidation that could not reach Redis (CLIENT PAUSE WRITE), resolves { pending: true }, does not serve the entries it affects meanwhile, and lands once Redis answers', async () => {
    const prefix = uniquePrefix('pending');
    const clientA = connect();
    const clientB = connect();
    const pauser = connect();
    const raw = connect();
    await Promise.all([ready(clientA), ready(clientB), ready(pauser), ready(raw)]);
    const a = startProcess(clientA, prefix, { invalidationTimeoutMs: 300 });
    const b = startProcess(clientB, prefix);
    const db = new Map([['corn', 1]]);
    const pricesA = new PriceList(a.service, db);
    const pricesB = new PriceList(b.service, db);
    expect(await pricesA.getPrice('corn')).toBe(1);
    expect(await pricesB.getPrice('corn')).toBe(1);
    const entryKey = a.backend.entryKey(priceKey('corn'));

    // Reads still answer, scripts (every invalidation, every miss's token) wait: the state in which another
    // process keeps reading an entry that this one could not invalidate.
    const PAUSE_MS = 2_000;
    expect(await pauser.call('CLIENT', 'PAUSE', String(PAUSE_MS), 'WRITE')).toBe('OK');
    const pausedAt = performance.now();
    db.set('corn', 2);
    const invalidation = await a.service.invalidate('Price:corn'); // times out after invalidationTimeoutMs: queued
    expect(invalidation).toEqual({ pending: true });
    expect(a.backend.pendingInvalidations).toBe(1);
    expect(a.errors.map(e => e.operation)).toContain('invalidate (queued for retry)');

    // Another process, with nothing pending, still reads the stale entry from Redis…
    expect(await pricesB.getPrice('corn')).toBe(1);
    expect(pricesB.runs).toBe(0);
    // …this one does not serve it: its invalidation has not landed yet (the method runs).
    expect(await pricesA.getPrice('corn')).toBe(2);
    expect(pricesA.runs).toBe(2);
    expect(performance.now() - pausedAt).toBeLessThan(PAUSE_MS); // all of the above while Redis was paused
    expect(a.backend.pendingInvalidations).toBe(1);

    // The pause ends: the queue lands, and the entry is gone for every process.
    await waitUntil(async () => a.backend.pendingInvalidations === 0, 5_000, () => `${a.backend.pendingInvalidations} invalidations still pending`);
    expect(await raw.exists(entryKey)).toBe(0);
    expect(await pricesB.getPrice('corn')).toBe(2);
    expect(pricesB.runs).toBe(1);
    // Once it landed, an invalidation that reaches Redis is not pending.
    expect(await a.service.invalidate('Price:corn')).toEqual({ pending: false });
  });

  it('lands a queued invalidation within about a second of Redis being back, although the read circuit breaker stays open for 5 s', async () => {
    server = await startDedicatedRedis({ args: PERSISTENT });
    const prefix = uniquePrefix('pending-breaker');
    const client = connect();
    const raw = connect();
    await Promise.all([ready(client), ready(raw)]);
    const a = startProcess(client, prefix, { circuitBreaker: { failureThreshold: 2, resetTimeoutMs: 5_000 } });
    const db = new Map([['corn', 1]]);
    const prices = new PriceList(a.service, db);
    expect(await prices.getPrice('corn')).toBe(1);
    expect(await prices.getPrice('rice')).toBe(0); // never invalidated: shows that entries survive the restart
    const entryKey = a.backend.entryKey(priceKey('corn'));

    await server.kill(); // a crash: the entries survive in the append-only file
    await prices.getPrice('wheat');
    await prices.getPrice('wheat');
    expect(a.backend.circuitState).toBe('open');
    db.set('corn', 2);
    expect(await a.service.invalidate('Price:corn')).toEqual({ pending: true });
    await sleep(1_000); // retries fail meanwhile (the old back-off grew, the circuit re-opened on its probes)

    await server.start();
    const backAt = performance.now();
    // (the stale corn entry came back too, but the retry may already have removed it: it starts on reconnect)
    expect(await raw.exists(a.backend.entryKey(priceKey('rice')))).toBe(1);
    await waitUntil(async () => a.backend.pendingInvalidations === 0, 3_000, () => `${a.backend.pendingInvalidations} invalidations still pending ${(performance.now() - backAt).toFixed(0)} ms after Redis was back`);
    const landedMs = performance.now() - backAt;
    expect(landedMs).toBeLessThan(1_000);
    expect(await raw.exists(entryKey)).toBe(0);
    expect(a.backend.circuitState).not.toBe('closed'); // the breaker's own schedule is untouched
    console.log(`[redis-resilience] queued invalidation landed ${landedMs.toFixed(0)} ms after Redis was back (read circuit still ${a.backend.circuitState})`);
  });

  it('retries a queued invalidation at once when the client reconnects, without waiting for the next tick', async () => {
    server = await startDedicatedRedis({ args: PERSISTENT });
    const prefix = uniquePrefix('pending-reconnect');
    const client = connect();
    const raw = connect();
    await Promise.all([ready(client), ready(raw)]);
    const a = startProcess(client, prefix, { retryDelayMs: 20_000 }); // the schedule alone would take 20 s
    const db = new Map([['corn', 1]]);
    const prices = new PriceList(a.service, db);
    expect(await prices.getPrice('corn')).toBe(1);
    const entryKey = a.backend.entryKey(priceKey('corn'));

    await server.kill();
    await prices.getPrice('wheat');
    await prices.getPrice('wheat');
    expect(await a.service.invalidate('Price:corn')).toEqual({ pending: true });

    await server.start();
    const backAt = performance.now();
    await waitUntil(async () => a.backend.pendingInvalidations === 0, 5_000, () => `${a.backend.pendingInvalidations} invalidations still pending ${(performance.now() - backAt).toFixed(0)} ms after Redis was back`);
    // Far below the 20 s schedule: it ran on reconnect. (The bound leaves room for a loaded 2-core CI machine,
    // where the reconnect and the first script took 1,024 ms once.)
    expect(performance.now() - backAt).toBeLessThan(2_500);
    expect(await raw.exists(entryKey)).toBe(0);
  });

  it('keeps one retry in flight at a time: a Redis that does not answer gets one attempt, not one per tick', async () => {
    const client = connect();
    const pauser = connect();
    await Promise.all([ready(client), ready(pauser)]);
    const a = startProcess(client, uniquePrefix('pending-one'), { retryDelayMs: 20, invalidationTimeoutMs: 5_000 });
    const prices = new PriceList(a.service, new Map([['corn', 1]]));
    expect(await prices.getPrice('corn')).toBe(1);

    await resetCommandStats(pauser);
    const PAUSE_MS = 1_500;
    expect(await pauser.call('CLIENT', 'PAUSE', String(PAUSE_MS), 'WRITE')).toBe('OK');
    const pausedAt = performance.now();
    // Two misses whose token scripts time out open the circuit; the invalidation is then refused and queued.
    await prices.getPrice('wheat');
    await prices.getPrice('rice');
    expect(a.backend.circuitState).toBe('open');
    expect(await a.service.invalidate('Price:corn')).toEqual({ pending: true });
    await sleep(Math.max(0, pausedAt + PAUSE_MS - performance.now()) + 100);
    await waitUntil(async () => a.backend.pendingInvalidations === 0, 5_000, () => `${a.backend.pendingInvalidations} invalidations still pending`);
    await sleep(200); // nothing more is sent once it landed

    // The two token scripts, and the one retry attempt that waited out the pause (60 ticks of 20 ms passed).
    const scripts = await commandCount(pauser, 'evalsha');
    expect(scripts).toBeLessThanOrEqual(3);
    expect(scripts).toBeGreaterThanOrEqual(1);
  });

  it('rejects a retryDelayMs that is not a positive number', () => {
    const client = connect();
    for (const retryDelayMs of [0, -1, Number.NaN, Infinity, '250' as unknown as number]) {
      expect(() => new RedisBackend({ client, retryDelayMs })).toThrow(/RedisBackend: option retryDelayMs must be a positive number/);
    }
  });

  it('keeps an invalidation issued while the circuit is open, and applies it once Redis answers again', async () => {
    const prefix = uniquePrefix('pending-open');
    const client = connect();
    const raw = connect();
    await Promise.all([ready(client), ready(raw)]);
    const a = startProcess(client, prefix, { retryDelayMs: 100 });
    const db = new Map([['corn', 1]]);
    const prices = new PriceList(a.service, db);
    expect(await prices.getPrice('corn')).toBe(1);

    await server.stop();
    await prices.getPrice('wheat');
    await prices.getPrice('wheat');
    expect(a.backend.circuitState).toBe('open');
    db.set('corn', 2);
    const invalidation = await timed(() => a.service.invalidate('Price:corn'));
    expect(invalidation.ms).toBeLessThan(100); // refused at once by the open circuit
    expect(a.backend.pendingInvalidations).toBe(1);
    expect(await prices.getPrice('corn')).toBe(2); // not served: Redis is down anyway, the method runs

    await server.start(); // empty: the entry is gone, but the retry must still land (markers for other processes' writes)
    await ready(client);
    await waitUntil(async () => a.backend.pendingInvalidations === 0, 10_000, () => `${a.backend.pendingInvalidations} invalidations still pending`);
    expect(await raw.exists(`${prefix}ac2:{p0}:g:Price:corn`)).toBe(1);
    // The retry does not touch the read circuit: it closes after its own probe.
    await sleep(RESET_TIMEOUT_MS + 50);
    expect(await prices.getPrice('corn')).toBe(2);
    expect(await prices.getPrice('corn')).toBe(2);
    expect(a.backend.circuitState).toBe('closed');
  });

  it('times a batch of concurrent lookups out together when Redis is slow: every caller gets its method result, and the batch counts as one failed round trip', async () => {
    const client = connect();
    const a = startProcess(client, uniquePrefix('slow-batch'));
    const ids = Array.from({ length: 10 }, (_, i) => `item-${i}`);
    const db = new Map(ids.map((id, i) => [id, i]));
    const prices = new PriceList(a.service, db);
    for (const id of ids) await prices.getPrice(id);
    for (const id of ids) db.set(id, db.get(id)! + 100);

    const pauser = connect();
    await ready(pauser);
    const PAUSE_MS = 1_500;
    expect(await pauser.call('CLIENT', 'PAUSE', String(PAUSE_MS), 'ALL')).toBe('OK');
    const pausedAt = performance.now();

    const batch = await timed(() => Promise.all(ids.map(id => prices.getPrice(id))));
    expect(batch.value).toEqual(ids.map((_, i) => i + 100)); // Redis did not answer: every method ran
    expect(batch.ms).toBeGreaterThanOrEqual(OPERATION_TIMEOUT_MS - 20);
    expect(batch.ms).toBeLessThan(OPERATION_TIMEOUT_MS + 300);
    const timeouts = a.errors.filter(e => e.operation === 'get');
    expect(timeouts.map(e => e.key).sort()).toEqual(ids.map(priceKey).sort());
    expect(timeouts.every(e => codeOf(e.error) === errors.E_TIMEOUT)).toBe(true);
    // failureThreshold is 2 round trips: ten lookups in one round trip are one failure, so the circuit is closed…
    expect(a.backend.circuitState).toBe('closed');
    expect(a.circuit).toEqual([]);
    // …and one more failed round trip opens it.
    const single = await timed(() => prices.getPrice('item-0'));
    expect(single.value).toBe(100);
    expect(a.backend.circuitState).toBe('open');
    expect(a.circuit).toEqual(['open']);
    expect(performance.now() - pausedAt).toBeLessThan(PAUSE_MS);
  });

  it('times calls out after operationTimeoutMs when Redis is slow (CLIENT PAUSE) and still returns the method result', async () => {
    const client = connect();
    const a = startProcess(client, uniquePrefix('slow'));
    const db = new Map([['corn', 1]]);
    const prices = new PriceList(a.service, db);
    expect(await prices.getPrice('corn')).toBe(1);
    db.set('corn', 2);

    const pauser = connect();
    await ready(pauser);
    const PAUSE_MS = 1_500;
    expect(await pauser.call('CLIENT', 'PAUSE', String(PAUSE_MS), 'ALL')).toBe('OK');
    const pausedAt = performance.now();

    const first = await timed(() => prices.getPrice('corn'));
    expect(first.value).toBe(2); // Redis did not answer: the method ran
    expect(first.ms).toBeGreaterThanOrEqual(OPERATION_TIMEOUT_MS - 20);
    expect(first.ms).toBeLessThan(OPERATION_TIMEOUT_MS + 300);
    expect(codeOf(a.errors[0]?.error)).toBe(errors.E_TIMEOUT);

    const second = await timed(() => prices.getPrice('corn'));
    expect(second.value).toBe(2);
    expect(second.ms).toBeLessThan(OPERATION_TIMEOUT_MS + 300);
    expect(a.backend.circuitState).toBe('open');
    const third = await timed(() => prices.getPrice('corn'));
    expect(third.value).toBe(2);
    expect(third.ms).toBeLessThan(100);
    expect(performance.now() - pausedAt).toBeLessThan(PAUSE_MS); // all of it while Redis was still paused
    expect(prices.runs).toBe(4);
    console.log(`[redis-resilience] calls with Redis paused: ${first.ms.toFixed(0)} ms, ${second.ms.toFixed(0)} ms; circuit open: ${third.ms.toFixed(1)} ms`);

    // The pause ends and the circuit closes after its probe: the entry, never invalidated, is served again.
    await sleep(Math.max(0, pausedAt + PAUSE_MS - performance.now()) + RESET_TIMEOUT_MS);
    expect(await prices.getPrice('corn')).toBe(1);
    expect(prices.runs).toBe(4);
    expect(a.backend.circuitState).toBe('closed');
  });
});
