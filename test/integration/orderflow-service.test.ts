// samples/orderflow-service end to end: the launcher (main.ts) with 2 worker processes on a redis-server of this
// file's own (startDedicatedRedis) and a PostgreSQL schema of its own (created by the service's --reset, dropped
// after), the load generator with 5% writes, and the checker reading every acknowledged write back through the
// other process. Two deliberately broken setups prove the checker can fail. Without PostgreSQL or redis-server
// the file is skipped with the reason in its name — except in CI (CI=true), where that is a failure.
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchService, type RunningService } from '../../samples/orderflow-service/load/launch.js';
import { runLoad, type LoadReport } from '../../samples/orderflow-service/load/workload.js';
import type { CachingMode } from '../../samples/orderflow-service/config.js';
import { PG_URL, probePostgres } from './support/pg.js';
import { describeRedis, startDedicatedRedis, type DedicatedRedis } from './support/redis.js';

const probe = await probePostgres();
if (!probe.available && process.env.CI === 'true') throw new Error(`CI requires PostgreSQL: ${probe.reason}`);
if (!probe.available) console.warn(`\n⚠️  ORDERFLOW SERVICE TESTS SKIPPED: ${probe.reason}\n`);

const schema = `orderflow_test_${process.pid}_${randomBytes(3).toString('hex')}`;
const LOAD = { concurrency: 16, writeShare: 0.05, recheckAfterMs: 300, staleBoundMs: 50 } as const;

describe.skipIf(!probe.available)(`orderflow-service${probe.available ? '' : ` [skipped: ${probe.reason}]`}`, () => {
  describeRedis('2 processes, PostgreSQL, layered Redis cache', () => {
    let redis: DedicatedRedis;
    const running = new Set<RunningService>();

    beforeAll(async () => {
      redis = await startDedicatedRedis();
    });

    afterAll(async () => {
      await Promise.all([...running].map(service => service.stop()));
      const admin = new pg.Client({ connectionString: PG_URL });
      await admin.connect();
      await admin.query(`drop schema if exists ${schema} cascade`);
      await admin.end();
    });

    /** Launches the service on a freshly seeded schema; stopped by the caller (or afterAll). */
    async function launch(caching: CachingMode): Promise<RunningService> {
      const service = await launchService({ databaseUrl: PG_URL, redisUrl: `redis://${redis.host}:${redis.port}`, schema, caching, processes: 2, reset: true, poolSize: 4 });
      running.add(service);
      return service;
    }

    async function load(caching: CachingMode, warmupMs: number, durationMs: number, body?: (service: RunningService) => Promise<void>): Promise<LoadReport> {
      const service = await launch(caching);
      try {
        await body?.(service);
        const report = await runLoad({ targets: service.targets, warmupMs, durationMs, ...LOAD });
        const { check } = report;
        console.log(
          `[orderflow-service] caching ${caching}: ${report.requests} requests (${report.requestsPerSecond.toFixed(0)}/s, p99 ${report.p99Ms.toFixed(0)} ms), ` +
            `${report.sqlPerRequest.toFixed(2)} SQL/request, hit ratio ${report.hitRatio?.toFixed(3) ?? '—'}, failed ${report.failed}, ` +
            `${check.checked} writes checked, stale: ${check.staleWithinBound} within the bound, ${check.staleBeyondBound} beyond (${check.staleLater} on re-read)`,
        );
        return report;
      } finally {
        await service.stop();
        running.delete(service);
      }
    }

    let on: LoadReport;

    it('answers each endpoint with the expected JSON, then serves 5% writes with 0 failures and 0 stale reads beyond the bound', { timeout: 45_000 }, async () => {
      on = await load('on', 4_000, 4_000, async ({ targets: [a, b] }) => {
        const get = async (base: string, path: string, requester?: string) => {
          const response = await fetch(new URL(path, base), { headers: requester ? { 'x-requester': requester } : {} });
          return { status: response.status, body: (await response.json()) as any };
        };
        const send = async (base: string, method: string, path: string, body?: unknown) => {
          const response = await fetch(new URL(path, base), { method, headers: { 'content-type': 'application/json' }, ...(body === undefined ? {} : { body: JSON.stringify(body) }) });
          return { status: response.status, body: (await response.json()) as any };
        };
        const product = await get(a!, '/products/p0001');
        expect(product).toEqual({ status: 200, body: { id: 'p0001', category: expect.stringMatching(/^c\d\d$/), name: expect.any(String), priceCents: expect.any(Number), description: expect.any(String) } });
        const page = await get(b!, `/categories/${product.body.category}/products?page=1`);
        expect(page.status).toBe(200);
        expect(page.body).toMatchObject({ category: product.body.category, page: 1, hasMore: expect.any(Boolean) });
        expect(page.body.products.length).toBe(20);
        const summary = await get(a!, '/customers/u001/summary');
        expect(summary.body).toMatchObject({ customerId: 'u001', name: 'Customer 1', openOrders: expect.any(Number), openCents: expect.any(Number), spentCents: expect.any(Number) });
        const orderId: string = summary.body.orderIds[0];
        const asOwner = await get(b!, `/orders/${orderId}`, 'customer:u001');
        expect(asOwner.status).toBe(200);
        expect(asOwner.body).toMatchObject({ orderId, customerId: 'u001', status: expect.stringMatching(/^(placed|shipped|cancelled)$/), totalCents: expect.any(Number) });
        expect(asOwner.body.support).toBeUndefined();
        const asAdmin = await get(b!, `/orders/${orderId}`, 'admin');
        expect(asAdmin.body.support).toEqual({ customer: 'Customer 1 <u001@example.com>', paymentReference: expect.any(String), internalNote: expect.any(String) });
        // Another customer: 403, twice (errors are never cached, and the owner's cached view is never served).
        for (let i = 0; i < 2; i++) expect((await get(b!, `/orders/${orderId}`, 'customer:u002')).status).toBe(403);
        expect((await get(a!, '/products/nope')).status).toBe(404);
        expect((await get(a!, `/orders/${orderId}`)).status).toBe(400);

        // Writes: each one visible through the other process as soon as it is acknowledged.
        expect(await send(a!, 'PUT', '/products/p0001/price', { priceCents: 4242 })).toEqual({ status: 200, body: { productId: 'p0001', previousPriceCents: product.body.priceCents, priceCents: 4242 } });
        expect((await get(b!, '/products/p0001')).body.priceCents).toBe(4242);
        const placed = await send(b!, 'POST', '/orders', { customerId: 'u001', lines: [{ productId: 'p0001', quantity: 2 }] });
        expect(placed).toEqual({ status: 201, body: { orderId: expect.stringMatching(/^o\d{6}$/) } });
        const after = await get(a!, '/customers/u001/summary');
        expect(after.body.orderIds).toContain(placed.body.orderId);
        expect(after.body.openCents).toBe(summary.body.openCents + 2 * 4242);
        expect((await get(a!, `/orders/${placed.body.orderId}`, 'customer:u001')).body).toMatchObject({ status: 'placed', totalCents: 2 * 4242 });
        expect(await send(a!, 'POST', `/orders/${placed.body.orderId}/cancel`)).toEqual({ status: 200, body: { orderId: placed.body.orderId, status: 'cancelled' } });
        expect((await get(b!, `/orders/${placed.body.orderId}`, 'customer:u001')).body.status).toBe('cancelled');
        expect((await send(b!, 'POST', `/orders/${placed.body.orderId}/cancel`)).status).toBe(409);
        expect((await send(b!, 'PUT', '/products/p0001/price', { priceCents: -1 })).status).toBe(400);

        const stats = await get(a!, '/stats');
        expect(stats.body).toMatchObject({ pid: expect.any(Number), requests: expect.any(Number), sql: expect.any(Number), cache: { hits: expect.any(Number), misses: expect.any(Number) } });
        expect(stats.body.sql).toBeGreaterThan(0);
      });
      expect(on.failures).toEqual({});
      expect(on.failed).toBe(0);
      expect(on.check.checked).toBeGreaterThanOrEqual(20);
      expect(on.check.staleBeyondBound).toBe(0);
      expect(on.hitRatio).toBeGreaterThan(0);
    });

    it('with caching off (the same code, CACHING=off) sends more SQL statements per request', { timeout: 30_000 }, async () => {
      expect(on, 'the caching-on run').toBeDefined();
      const off = await load('off', 1_000, 3_000);
      expect(off.failed).toBe(0);
      expect(off.check.staleBeyondBound).toBe(0);
      expect(off.hitRatio).toBeNull();
      // A count, not a time: once warm, most reads with caching on send no SQL at all (about 0.6 against 6–10).
      expect(on.sqlPerRequest).toBeLessThan(off.sqlPerRequest);
    });

    it('the checker catches writes that invalidate nothing', { timeout: 30_000 }, async () => {
      const broken = await load('broken-skip-invalidation', 2_000, 3_000);
      expect(broken.check.checked).toBeGreaterThanOrEqual(5);
      expect(broken.check.staleLater).toBeGreaterThan(0);
      expect(broken.check.staleBeyondBound).toBeGreaterThan(0);
    });

    it('the checker catches processes that do not hear each other (a bus channel per process)', { timeout: 30_000 }, async () => {
      const broken = await load('broken-private-bus', 2_000, 3_000);
      expect(broken.check.checked).toBeGreaterThanOrEqual(5);
      expect(broken.check.staleBeyondBound).toBeGreaterThan(0);
    });
  });
});
