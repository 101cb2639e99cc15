// LayeredBackend when Redis itself goes away (SPEC §8, layered + resilience): a dedicated redis-server that the
// test stops and restarts, under two layered "processes" (two backends on their own clients). While Redis is
// unreachable, calls still succeed (the method runs), L1 stops being trusted within the staleness bound (no
// heartbeat comes back), and an invalidation made meanwhile is pending and lands once Redis is back.
import { afterEach, beforeEach, expect, it } from 'vitest';
import { addDependency, bindCachingService, Cache, CachingService, LayeredBackend } from '../../src/index.js';
import { RedisBackend, RedisInvalidationBus } from '../../src/redis.js';
import { sleep, waitUntil } from './support/redis-process.js';
import { describeRedis, ready, standaloneClient, startDedicatedRedis, uniquePrefix, type DedicatedRedis } from './support/redis.js';
import type { Redis } from 'ioredis';

const HEARTBEAT_MS = 100;

class Prices {
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

interface Proc {
  readonly backend: LayeredBackend;
  readonly service: CachingService;
  readonly prices: Prices;
}

const services: CachingService[] = [];

describeRedis('LayeredBackend when Redis goes away', () => {
  let server: DedicatedRedis;
  const connect = (): Redis => standaloneClient({ port: server.port, retryStrategy: () => 50 });

  beforeEach(async () => {
    server = await startDedicatedRedis();
  });

  afterEach(async () => {
    await Promise.all(services.splice(0).map(s => s.dispose()));
  });

  function start(keyPrefix: string, channel: string, db: Map<string, number>): Proc {
    const client = connect();
    const backend = new LayeredBackend({
      l2: new RedisBackend({ client, keyPrefix, operationTimeoutMs: 200, circuitBreaker: { failureThreshold: 2, resetTimeoutMs: 300 } }),
      bus: new RedisInvalidationBus({ client, channel, heartbeatMs: HEARTBEAT_MS, publishTimeoutMs: 200 }),
    });
    const service = new CachingService({ backend, telemetry: false });
    service.on('error', () => undefined);
    services.push(service);
    return { backend, service, prices: new Prices(service, db) };
  }

  it('keeps answering while Redis is down, stops trusting L1 within the bound, and recovers with the pending invalidation landed', { timeout: 30_000 }, async () => {
    const keyPrefix = uniquePrefix('layered-outage');
    const channel = `${keyPrefix}bus`;
    const db = new Map([['corn', 1]]);
    const a = start(keyPrefix, channel, db);
    const b = start(keyPrefix, channel, db);
    await waitUntil(async () => a.backend.trusted && b.backend.trusted, 5_000, () => 'trust');
    expect(await a.prices.getPrice('corn')).toBe(1);
    expect(await b.prices.getPrice('corn')).toBe(1);
    expect(b.prices.runs).toBe(0); // from L2
    expect(await b.prices.getPrice('corn')).toBe(1); // from b's L1

    await server.stop();
    const stoppedAt = Date.now();
    await waitUntil(async () => !a.backend.trusted && !b.backend.trusted, 5_000, () => 'L1 losing trust', 5);
    const untrustedAfter = Date.now() - stoppedAt;
    // Trust ends once the subscription is reported lost, or two heartbeats after the last echo at the latest.
    expect(untrustedAfter).toBeLessThanOrEqual(2 * HEARTBEAT_MS + 300);

    // The data changes while Redis is down: every call runs the method (nothing is served from L1 or L2).
    db.set('corn', 2);
    const runs = a.prices.runs + b.prices.runs;
    expect(await a.prices.getPrice('corn')).toBe(2);
    expect(await b.prices.getPrice('corn')).toBe(2);
    expect(a.prices.runs + b.prices.runs).toBe(runs + 2);
    // An invalidation made now cannot land: it is pending, and queued.
    expect(await a.service.invalidate('Price:corn')).toEqual({ pending: true });
    expect(a.backend.pendingInvalidations).toBeGreaterThan(0);

    await server.start(); // empty (no persistence): the entries are gone anyway, the queue must still drain
    await waitUntil(async () => a.backend.pendingInvalidations === 0, 10_000, () => `${a.backend.pendingInvalidations} invalidations still queued`);
    await waitUntil(async () => a.backend.trusted && b.backend.trusted, 10_000, () => 'trust again');
    await sleep(400); // past the circuit breaker's reset: the L2 stores again
    db.set('corn', 3);
    expect(await a.prices.getPrice('corn')).toBe(3);
    expect(await b.prices.getPrice('corn')).toBe(3);
    console.log(`[layered-outage] L1 untrusted ${untrustedAfter} ms after Redis stopped (heartbeatMs ${HEARTBEAT_MS})`);
  });
});
