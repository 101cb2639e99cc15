// The pg recipe of the README (SPEC §13) against a real PostgreSQL and Redis: two services ("processes", each
// with its own RedisBackend and pg pool) read prices through a cached method while writers update them inside
// `inTransaction` (BEGIN … COMMIT within caching.transaction). Every read that starts after a write was
// acknowledged must see it: 0 stale reads. Invalidating before COMMIT without the scope — the natural mistake —
// is caught by the same checker.
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addDependency, bindCachingService, Cache, CachingService } from '../../src/index.js';
import { RedisBackend } from '../../src/redis.js';
import { inTransaction, PG_URL, probePostgres } from './support/pg.js';
import { purgePrefix } from './support/backend-support.js';
import { describeRedis, ready, standaloneClient, uniquePrefix, type RedisClient } from './support/redis.js';

const probe = await probePostgres();
if (!probe.available && process.env.CI === 'true') throw new Error(`CI requires PostgreSQL: ${probe.reason}`);
if (!probe.available) console.warn(`\n⚠️  POSTGRESQL TESTS SKIPPED: ${probe.reason}\n`);

const schema = `aspect_cache_${process.pid}_${Math.random().toString(36).slice(2, 8)}`;
const IDS = ['corn', 'wheat', 'rice', 'oats'];

interface Node {
  readonly caching: CachingService;
  readonly pool: pg.Pool;
  readonly shop: { price(id: string): Promise<number> };
  readonly client: RedisClient;
}

describe.skipIf(!probe.available)(`pg transactions${probe.available ? '' : ` [skipped: ${probe.reason}]`}`, () => {
  let admin: pg.Client;

  beforeAll(async () => {
    admin = new pg.Client({ connectionString: PG_URL });
    await admin.connect();
    await admin.query(`create schema ${schema}`);
    await admin.query(`create table ${schema}.prices (id text primary key, price integer not null)`);
  });

  afterAll(async () => {
    await admin.query(`drop schema if exists ${schema} cascade`);
    await admin.end();
  });

  describeRedis('pg recipe on Redis (two services)', () => {
    const nodes: Node[] = [];

    async function node(prefix: string): Promise<Node> {
      const client = standaloneClient();
      await ready(client);
      const caching = new CachingService({ backend: new RedisBackend({ client, keyPrefix: prefix }), telemetry: false });
      const pool = new pg.Pool({ connectionString: PG_URL, max: 4 });
      class Shop {
        @Cache({ ttl: 60_000 })
        async price(id: string): Promise<number> {
          addDependency(`Price:${id}`);
          const { rows } = await pool.query<{ price: number }>(`select price from ${schema}.prices where id = $1`, [id]);
          return rows[0]!.price;
        }
      }
      const created = { caching, pool, shop: bindCachingService(new Shop(), caching), client };
      nodes.push(created);
      return created;
    }

    async function closeAll(prefix: string): Promise<void> {
      for (const n of nodes.splice(0)) {
        await n.caching.dispose();
        await n.pool.end();
        await purgePrefix(n.client, prefix);
      }
    }

    async function reset(): Promise<void> {
      await admin.query(`delete from ${schema}.prices`);
      for (const id of IDS) await admin.query(`insert into ${schema}.prices (id, price) values ($1, 0)`, [id]);
    }

    /**
     * Writers bump random prices while readers in both services read continuously. `write(node, id, price)`
     * performs one write and resolves when it is acknowledged. Returns the number of reads that started after a
     * write of their row was acknowledged and returned an older price.
     */
    async function run(write: (n: Node, id: string, price: number) => Promise<void>, writes: number): Promise<{ stale: number; reads: number }> {
      const [a, b] = nodes as [Node, Node];
      const acknowledged = new Map(IDS.map(id => [id, 0]));
      let stopped = false;
      let stale = 0;
      let reads = 0;
      const reader = async (n: Node) => {
        while (!stopped) {
          const id = IDS[Math.floor(Math.random() * IDS.length)]!;
          const floor = acknowledged.get(id)!;
          const price = await n.shop.price(id);
          reads++;
          if (price < floor) stale++;
        }
      };
      const readers = [reader(a), reader(a), reader(b), reader(b)];
      const next = new Map(IDS.map(id => [id, 0]));
      const writer = async (n: Node, count: number) => {
        for (let i = 0; i < count; i++) {
          const id = IDS[Math.floor(Math.random() * IDS.length)]!;
          const price = next.get(id)! + 1;
          next.set(id, price);
          await write(n, id, price);
          acknowledged.set(id, Math.max(acknowledged.get(id)!, price));
          // Every process, at once: the acknowledged write is visible.
          for (const m of nodes) {
            const seen = await m.shop.price(id);
            reads++;
            if (seen < price) stale++;
          }
        }
      };
      // Two writers, one per service; ids are shared, so their transactions race on the same rows.
      await Promise.all([writer(a, writes / 2), writer(b, writes / 2)]);
      stopped = true;
      await Promise.all(readers);
      return { stale, reads };
    }

    it('0 stale reads after each acknowledged commit with the inTransaction recipe', async () => {
      const prefix = uniquePrefix('pg-recipe');
      await reset();
      await node(prefix);
      await node(prefix);
      try {
        const result = await run(
          (n, id, price) =>
            inTransaction(n.pool, n.caching, async client => {
              // Row locks serialize the two writers; the price only goes up.
              await client.query(`update ${schema}.prices set price = greatest(price, $2) where id = $1`, [id, price]);
              await n.caching.invalidate(`Price:${id}`); // the natural place: inside, before COMMIT
              await new Promise(resolve => setTimeout(resolve, 2)); // more work before COMMIT: readers run meanwhile
            }),
          60,
        );
        console.log(`[pg-transaction] recipe: ${result.reads} reads, ${result.stale} stale`);
        expect(result.reads).toBeGreaterThan(100);
        expect(result.stale).toBe(0);
      } finally {
        await closeAll(prefix);
      }
    });

    it('the checker catches the natural mistake: invalidating before COMMIT without the scope', async () => {
      const prefix = uniquePrefix('pg-broken');
      await reset();
      const [a] = [await node(prefix), await node(prefix)];
      try {
        const client = await a.pool.connect();
        try {
          await client.query('BEGIN');
          await client.query(`update ${schema}.prices set price = 1 where id = 'corn'`);
          await a.caching.invalidate('Price:corn');
          // A reader between the invalidation and the commit reads the old row and caches it.
          expect(await nodes[1]!.shop.price('corn')).toBe(0);
          await client.query('COMMIT');
        } finally {
          client.release();
        }
        // Acknowledged, but the cache still serves the old price: what the scope prevents.
        expect(await nodes[1]!.shop.price('corn')).toBe(0);
        // The same sequence inside inTransaction serves the committed price.
        await inTransaction(a.pool, a.caching, async tx => {
          await tx.query(`update ${schema}.prices set price = 2 where id = 'corn'`);
          await a.caching.invalidate('Price:corn');
          // Inside the scope a cached call bypasses the cache: the committed row (1), not the stale entry (0).
          expect(await nodes[1]!.shop.price('corn')).toBe(1);
        });
        expect(await nodes[1]!.shop.price('corn')).toBe(2);
        expect(await a.shop.price('corn')).toBe(2);
      } finally {
        await closeAll(prefix);
      }
    });

    it('rolls back: the scope releases its holds and caching works normally', async () => {
      const prefix = uniquePrefix('pg-rollback');
      await reset();
      const a = await node(prefix);
      try {
        await expect(
          inTransaction(a.pool, a.caching, async tx => {
            await tx.query(`update ${schema}.prices set price = 5 where id = 'rice'`);
            await a.caching.invalidate('Price:rice');
            throw new Error('validation failed');
          }),
        ).rejects.toThrow('validation failed');
        expect(await a.shop.price('rice')).toBe(0);
        const hitsBefore = a.caching.stats().hits;
        expect(await a.shop.price('rice')).toBe(0);
        expect(a.caching.stats().hits).toBe(hitsBefore + 1);
      } finally {
        await closeAll(prefix);
      }
    });
  });
});
