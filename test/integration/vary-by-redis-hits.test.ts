// Vary-by on Redis (SPEC §11): a hit on a parent whose variant is known stays one round trip (one HGET), a
// variant record written by one process is used by another, and a call's variants share its partition.
import { AsyncLocalStorage } from 'node:async_hooks';
import { Cluster, type Redis } from 'ioredis';
import { afterEach, expect, it } from 'vitest';
import { bindCachingService, Cache, CachingService, readContext } from '../../src/index.js';
import { RedisBackend } from '../../src/redis.js';
import { clientCommandsDuring, keysByKind, partitionOf, purgePrefix } from './support/backend-support.js';
import { clusterClient, describeRedis, ready, standaloneClient, uniquePrefix, type RedisClient } from './support/redis.js';

const requests = new AsyncLocalStorage<string>();
const as = <T>(tenant: string, fn: () => T): T => requests.run(tenant, fn);

const cleanup: Array<() => Promise<unknown>> = [];
async function cleanUp(): Promise<void> {
  for (const step of cleanup.splice(0).reverse()) await step();
}

/** What the cache sent: MONITOR also shows the monitor connections' own set-up on the other nodes. */
const cacheTraffic = (commands: readonly string[]) => commands.filter(c => !['hello', 'info', 'monitor', 'echo', 'client'].includes(c));

interface Shop {
  readonly service: CachingService;
  readonly catalogue: { price(id: string): Promise<string>; page(): Promise<string> };
  readonly runs: Map<string, number>;
}

/** One "process": its own client, backend and service on a shared prefix. */
async function shop(makeClient: () => RedisClient, prefix: string): Promise<Shop> {
  const client = makeClient();
  await ready(client);
  const service = new CachingService({ backend: new RedisBackend({ client, keyPrefix: prefix }), contexts: { tenant: () => requests.getStore() ?? null }, telemetry: false });
  cleanup.push(async () => {
    await service.dispose();
    await purgePrefix(client, prefix);
    client.disconnect();
  });
  const runs = new Map<string, number>();
  const count = (name: string) => runs.set(name, (runs.get(name) ?? 0) + 1);
  class Catalogue {
    @Cache({ varyBy: ['tenant'] })
    async price(id: string): Promise<string> {
      count(`price:${id}`);
      return `${id} price for ${readContext('tenant') as string}`;
    }

    @Cache()
    async page(): Promise<string> {
      count('page');
      return `page of ${await this.price('corn')} and ${await this.price('wheat')}`;
    }
  }
  return { service, catalogue: bindCachingService(new Catalogue(), service), runs };
}

function nodesOf(client: RedisClient): Redis[] {
  return client instanceof Cluster ? client.nodes('master') : [client];
}

for (const [label, makeClient] of [
  ['standalone', () => standaloneClient()],
  ['cluster', () => clusterClient()],
] as const) {
  describeRedis(`vary-by on Redis (${label})`, () => {
    // Inside describeRedis: runs before it releases the clients.
    afterEach(cleanUp);

    it('serves a hit on a parent whose variant is known in one lookup, and a varyBy hit in one lookup (one LOOKUP script; a GET, TIME, HGET pipeline on a cluster)', async () => {
      const prefix = uniquePrefix(`vary-hits-${label}`);
      const a = await shop(makeClient, prefix);
      for (const tenant of ['acme', 'globex']) expect(await as(tenant, () => a.catalogue.page())).toBe(`page of corn price for ${tenant} and wheat price for ${tenant}`);
      const probe = makeClient();
      await ready(probe);
      cleanup.push(async () => probe.disconnect());
      let page = '';
      let price = '';
      const sent = await clientCommandsDuring(nodesOf(probe), async () => {
        page = await as('globex', () => a.catalogue.page());
      });
      expect(page).toBe('page of corn price for globex and wheat price for globex');
      const lookup = label === 'cluster' ? ['get', 'time', 'hget'] : ['evalsha'];
      expect(cacheTraffic(sent)).toEqual(lookup);
      const sentForChild = await clientCommandsDuring(nodesOf(probe), async () => {
        price = await as('acme', () => a.catalogue.price('corn'));
      });
      expect(price).toBe('corn price for acme');
      expect(cacheTraffic(sentForChild)).toEqual(lookup);
      expect(a.runs.get('page')).toBe(2);
    });

    it("uses another process's variant record: a parent computed for a tenant there is a hit here, another tenant's a miss", async () => {
      const prefix = uniquePrefix(`vary-share-${label}`);
      const a = await shop(makeClient, prefix);
      const b = await shop(makeClient, prefix);
      expect(await as('acme', () => a.catalogue.page())).toBe('page of corn price for acme and wheat price for acme');
      await new Promise(resolve => setTimeout(resolve, 50)); // the record is written in the background
      const hitsBefore = b.service.stats().hits;
      expect(await as('acme', () => b.catalogue.page())).toBe('page of corn price for acme and wheat price for acme');
      expect(b.service.stats().hits - hitsBefore).toBe(1);
      expect(b.runs.get('page')).toBeUndefined();
      expect(await as('globex', () => b.catalogue.page())).toBe('page of corn price for globex and wheat price for globex');
      expect(b.runs.get('page')).toBe(1);
      // And an invalidation in b removes a's variants as well.
      await b.service.invalidateCall(() => b.catalogue.price('corn'));
      expect(await as('acme', () => a.catalogue.page())).toBe('page of corn price for acme and wheat price for acme');
      expect(a.runs.get('page')).toBe(2);
    });

    it("keeps a call's variants and variant record in its partition", async () => {
      const prefix = uniquePrefix(`vary-partition-${label}`);
      const a = await shop(makeClient, prefix);
      for (const tenant of ['acme', 'globex', 'initech']) await as(tenant, () => a.catalogue.page());
      await new Promise(resolve => setTimeout(resolve, 50));
      const probe = makeClient();
      await ready(probe);
      cleanup.push(async () => probe.disconnect());
      const entries = (await keysByKind(probe, prefix)).v.filter(k => k.includes('page()'));
      // The three variants and the record.
      expect(entries.length).toBe(4);
      expect(new Set(entries.map(partitionOf)).size).toBe(1);
    });
  });
}
