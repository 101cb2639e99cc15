// caching.transaction on Redis (SPEC §13), standalone and cluster: the hold is a marker in Redis, so a second
// service ("process") on the same prefix stores nothing depending on a held key; the hold ends with its lease
// when the scope never ends (its process died); after the scope resolves every process reads committed data.
import { AsyncLocalStorage } from 'node:async_hooks';
import { afterEach, expect, it } from 'vitest';
import { addDependency, bindCachingService, Cache, CachingService, InvalidateCache } from '../../src/index.js';
import { RedisBackend } from '../../src/redis.js';
import { deferred } from '../support/deferred.js';
import { purgePrefix } from './support/backend-support.js';
import { clusterClient, describeRedis, ready, standaloneClient, uniquePrefix, type RedisClient } from './support/redis.js';

/** Committed rows, and the rows a transaction staged (visible to its own code only). */
const committed = new Map<string, number>();
const staged = new AsyncLocalStorage<Map<string, number>>();
let reads = 0;

const cleanup: Array<() => Promise<unknown>> = [];

async function processOn(makeClient: () => RedisClient, prefix: string) {
  const client = makeClient();
  await ready(client);
  const caching = new CachingService({ backend: new RedisBackend({ client, keyPrefix: prefix }), telemetry: false });
  const sets: string[] = [];
  caching.on('set', e => sets.push(e.key));
  cleanup.push(async () => {
    await caching.dispose();
    await purgePrefix(client, prefix);
    client.disconnect();
  });
  class Catalogue {
    @Cache()
    async getPrice(id: string): Promise<number> {
      addDependency(`Price:${id}`);
      reads++;
      return staged.getStore()?.get(id) ?? committed.get(id)!;
    }

    @InvalidateCache('getPrice')
    async setPrice(id: string, price: number): Promise<void> {
      staged.getStore()!.set(id, price);
    }
  }
  return { caching, sets, catalogue: bindCachingService(new Catalogue(), caching) };
}

/** A transaction on `p` that writes corn = price, waits for `commit`, commits, then waits for `end`. */
function transaction(p: Awaited<ReturnType<typeof processOn>>, price: number, commit: Promise<void>, end: Promise<void>, leaseMs: number) {
  const written = deferred();
  const done = p.caching.transaction(
    async () => {
      const rows = new Map<string, number>();
      await staged.run(rows, async () => {
        await p.catalogue.setPrice('corn', price);
        written.resolve();
        await commit;
      });
      for (const [id, value] of rows) committed.set(id, value);
      await end;
    },
    { leaseMs },
  );
  return { done, written: written.promise };
}

for (const [label, makeClient] of [
  ['standalone', () => standaloneClient()],
  ['cluster', () => clusterClient()],
] as const) {
  describeRedis(`caching.transaction on Redis (${label})`, () => {
    afterEach(async () => {
      for (const step of cleanup.splice(0).reverse()) await step();
    });

    it('another process stores nothing depending on a held key, and reads committed data once the scope resolved', async () => {
      committed.set('corn', 1);
      const prefix = uniquePrefix(`tx-${label}`);
      const a = await processOn(makeClient, prefix);
      const b = await processOn(makeClient, prefix);
      expect(await b.catalogue.getPrice('corn')).toBe(1);
      const commit = deferred();
      const tx = transaction(a, 2, commit.promise, Promise.resolve(), 10_000);
      await tx.written;
      const before = reads;
      expect(await b.catalogue.getPrice('corn')).toBe(1); // removed at once: recomputed from the committed row
      expect(reads).toBe(before + 1);
      expect(b.sets.length).toBe(1); // the first call's only: the recomputation was not stored (held)
      commit.resolve();
      await tx.done;
      expect(await b.catalogue.getPrice('corn')).toBe(2);
      expect(await a.catalogue.getPrice('corn')).toBe(2);
      expect(b.sets.length).toBe(2);
    });

    it('ends the hold with its lease when the scope never ends (the process died after COMMIT)', async () => {
      committed.set('corn', 1);
      const prefix = uniquePrefix(`tx-dies-${label}`);
      const a = await processOn(makeClient, prefix);
      const b = await processOn(makeClient, prefix);
      expect(await b.catalogue.getPrice('corn')).toBe(1);
      const commit = deferred();
      const tx = transaction(a, 2, commit.promise, new Promise<void>(() => undefined), 400);
      void tx.done;
      await tx.written;
      expect(await b.catalogue.getPrice('corn')).toBe(1); // read before the commit: not stored
      commit.resolve();
      await new Promise(resolve => setTimeout(resolve, 20));
      expect(committed.get('corn')).toBe(2);
      expect(await b.catalogue.getPrice('corn')).toBe(2); // committed, still held: not stored
      expect(b.sets.length).toBe(1);
      await new Promise(resolve => setTimeout(resolve, 600)); // past the lease
      expect(await b.catalogue.getPrice('corn')).toBe(2);
      expect(b.sets.length).toBe(2); // caching resumed, with the committed row
      const before = reads;
      expect(await b.catalogue.getPrice('corn')).toBe(2);
      expect(reads).toBe(before);
    });
  });
}
