// RedisBackend when Redis fails (SPEC §8, resilience): a dedicated redis-server that each test stops, restarts
// or pauses. A failing or slow Redis never fails a cached call; an outage costs no latency once the circuit
// breaker has opened; an invalidation that could not reach Redis is retried, and until it lands the entries it
// affects are not served by this process.
import { afterEach, beforeEach, expect, it } from 'vitest';
import { addDependency, bindCachingService, Cache, CachingService, errors, type CacheEventMap } from '../../src/index.js';
import { RedisBackend, type RedisBackendOptions } from '../../src/redis.js';
import { sleep, waitUntil } from './support/redis-process.js';
import { describeRedis, ready, standaloneClient, startDedicatedRedis, uniquePrefix, type DedicatedRedis } from './support/redis.js';
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

  it('queues an invalidation that could not reach Redis, does not serve the entries it affects meanwhile, and retries it until it lands', async () => {
    const prefix = uniquePrefix('pending');
    const clientA = connect();
    const clientB = connect();
    const raw = connect();
    await Promise.all([ready(clientA), ready(clientB), ready(raw)]);
    // A retry that comes well after Redis is back: the window in which only the queue protects this process.
    const a = startProcess(clientA, prefix, { retryDelayMs: 1_500 });
    const b = startProcess(clientB, prefix);
    const db = new Map([['corn', 1]]);
    const pricesA = new PriceList(a.service, db);
    const pricesB = new PriceList(b.service, db);
    expect(await pricesA.getPrice('corn')).toBe(1);
    const entryKey = a.backend.entryKey(priceKey('corn'));
    const indexKey = `${prefix}ac1:{p0}:i:Price:corn`;
    const saved = await Promise.all([entryKey, indexKey].map(async key => ({ key, dump: await raw.dumpBuffer(key), ttl: await raw.pttl(key) })));
    expect(saved.every(s => s.dump !== null)).toBe(true);

    await server.stop();
    db.set('corn', 2);
    await a.service.invalidate('Price:corn'); // resolves: the failure is absorbed, the invalidation queued
    expect(a.backend.pendingInvalidations).toBeGreaterThan(0);
    expect(a.errors.map(e => e.operation)).toContain('invalidate (queued for retry)');

    // Redis comes back before the retry, still holding the stale entry (as a persisted or failed-over Redis would).
    await server.start();
    await Promise.all([ready(clientA), ready(clientB), ready(raw)]);
    await Promise.all([clientA.ping(), clientB.ping()]); // commands queued while offline have run by now
    for (const { key, dump, ttl } of saved) await raw.restore(key, ttl > 0 ? ttl : 0, dump!, 'REPLACE');
    expect(a.backend.pendingInvalidations).toBeGreaterThan(0);

    // Another process, with nothing pending, still reads the stale entry from Redis…
    expect(await pricesB.getPrice('corn')).toBe(1);
    expect(pricesB.runs).toBe(0);
    // …this one does not serve it (it reads it from Redis, the circuit being closed): its invalidation has not landed yet.
    expect(a.backend.circuitState).toBe('closed');
    expect(await pricesA.getPrice('corn')).toBe(2);
    expect(await pricesA.getPrice('corn')).toBe(2);
    expect(pricesA.runs).toBeGreaterThanOrEqual(2); // (until the retry lands, it may recompute every time)

    // The retry lands: nothing pending, and the entry is gone from Redis for every process.
    await waitUntil(async () => a.backend.pendingInvalidations === 0, 10_000, () => `${a.backend.pendingInvalidations} invalidations still pending`);
    expect(await raw.exists(entryKey)).toBe(0);
    expect(await pricesB.getPrice('corn')).toBe(2);
    expect(pricesB.runs).toBe(1);
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
    expect(await raw.exists(`${prefix}ac1:{p0}:g:Price:corn`)).toBe(1);
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
