// Redis contenders for bench/peers.bench.ts: each one, given the port of the benchmark's own redis-server
// (bench/redis-server.ts), builds its client(s) and returns the call `id → Promise<price>` and a close function.
// Every contender gets its own connection(s), so no contender queues behind another one's traffic.
import { Redis } from 'ioredis';
import { BentoCache, bentostore } from 'bentocache';
import { redisDriver } from 'bentocache/drivers/redis';
import { createCache as createCacheManager } from 'cache-manager';
import { Keyv } from 'keyv';
import KeyvRedis from '@keyv/redis';
import { createCache as createDedupeCache } from 'async-cache-dedupe';
import { addDependency, bindCachingService, Cache, CachingService } from '../src/index.js';
import { RedisBackend } from '../src/redis.js';

export const REDIS_HOST = '127.0.0.1';
const LONG_TTL_MS = 3_600_000;

export interface RedisContender {
  readonly id: string;
  readonly label: string;
  readonly kind: 'floor' | 'subject' | 'peer';
  setup(port: number, compute: (id: string) => Promise<number>): Promise<{ call: (id: string) => Promise<number>; close: () => Promise<void> }>;
}

/** An ioredis connection that does not retry: if the server goes away the benchmark fails instead of waiting. */
export async function connectRedis(port: number): Promise<Redis> {
  const client = new Redis({ host: REDIS_HOST, port, lazyConnect: true, maxRetriesPerRequest: 1, retryStrategy: () => null });
  client.on('error', () => {});
  await client.connect();
  return client;
}

class RedisPrices {
  constructor(private readonly compute: (id: string) => Promise<number>) {}
  @Cache()
  async getPrice(id: string): Promise<number> {
    return this.compute(id);
  }
}

export const REDIS_CONTENDERS: readonly RedisContender[] = [
  {
    id: 'redis-floor',
    label: 'floor: raw ioredis GET (+ SET on miss)',
    kind: 'floor',
    async setup(port, compute) {
      const client = await connectRedis(port);
      return {
        call: async id => {
          const key = `raw:price:${id}`;
          const hit = await client.get(key);
          if (hit !== null) return Number(hit);
          const value = await compute(id);
          await client.set(key, String(value), 'PX', LONG_TTL_MS);
          return value;
        },
        close: async () => void client.disconnect(),
      };
    },
  },
  {
    id: 'aspect-cache',
    label: 'aspect-cache @Cache() (RedisBackend)',
    kind: 'subject',
    async setup(port, compute) {
      const client = await connectRedis(port);
      const service = new CachingService({ backend: new RedisBackend({ client, keyPrefix: 'ac:' }) });
      const prices = bindCachingService(new RedisPrices(compute), service);
      return {
        call: id => prices.getPrice(id),
        close: async () => {
          await service.dispose();
          client.disconnect();
        },
      };
    },
  },
  {
    id: 'bentocache',
    label: 'bentocache getOrSet (Redis L2 only, no L1, no bus)',
    kind: 'peer',
    async setup(port, compute) {
      const client = await connectRedis(port);
      const bento = new BentoCache({ default: 'redis', prefix: 'bento', stores: { redis: bentostore().useL2Layer(redisDriver({ connection: client })) } });
      return {
        call: id => bento.getOrSet({ key: `price:${id}`, factory: () => compute(id), ttl: LONG_TTL_MS }),
        close: async () => {
          await bento.disconnect().catch(() => {});
          client.disconnect();
        },
      };
    },
  },
  {
    id: 'cache-manager',
    label: 'cache-manager v7 wrap (Keyv + @keyv/redis)',
    kind: 'peer',
    async setup(port, compute) {
      const keyv = new Keyv({ store: new KeyvRedis(`redis://${REDIS_HOST}:${port}`), namespace: 'cm' });
      const cache = createCacheManager({ stores: [keyv], ttl: LONG_TTL_MS });
      await keyv.get('connect'); // open the connection before measuring
      return {
        call: id => cache.wrap(`price:${id}`, () => compute(id)),
        close: async () => void (await cache.disconnect().catch(() => {})),
      };
    },
  },
  {
    id: 'async-cache-dedupe',
    label: 'async-cache-dedupe define (Redis storage, ioredis)',
    kind: 'peer',
    async setup(port, compute) {
      const client = await connectRedis(port);
      const cache = createDedupeCache({ ttl: 3600, storage: { type: 'redis', options: { client: client as never } } }).define('price', (id: string) => compute(id));
      const price = (cache as unknown as { price: (id: string) => Promise<number> }).price;
      return { call: id => price(id), close: async () => void client.disconnect() };
    },
  },
];

// ───────────────────────────── invalidation by tag / dependency ─────────────────────────────

/**
 * A contender of the invalidation scenario, on its own Redis logical database (so keys left behind can be
 * counted with DBSIZE): `call(tag, i)` computes-or-reads entry i carrying `tag`; `invalidate(tag)` drops all of them.
 */
export interface InvalidationContender {
  readonly id: string;
  readonly label: string;
  readonly kind: 'floor' | 'subject' | 'peer';
  setup(port: number, db: number, compute: (id: string) => Promise<number>): Promise<{
    call: (tag: string, i: number) => Promise<number>;
    invalidate: (tag: string) => Promise<unknown>;
    close: () => Promise<void>;
  }>;
}

async function connectDb(port: number, db: number): Promise<Redis> {
  const client = new Redis({ host: REDIS_HOST, port, db, lazyConnect: true, maxRetriesPerRequest: 1, retryStrategy: () => null });
  client.on('error', () => {});
  await client.connect();
  return client;
}

class TaggedValues {
  constructor(private readonly compute: (id: string) => Promise<number>) {}
  @Cache()
  async value(tag: string, i: number): Promise<number> {
    addDependency(tag);
    return this.compute(`${tag}|${i}`);
  }
}

export const INVALIDATION_CONTENDERS: readonly InvalidationContender[] = [
  {
    id: 'redis-floor',
    label: 'floor: raw ioredis DEL of the N keys (key list known)',
    kind: 'floor',
    async setup(port, db, compute) {
      const client = await connectDb(port, db);
      const keysOf = new Map<string, string[]>();
      return {
        call: async (tag, i) => {
          const key = `raw:${tag}:${i}`;
          const hit = await client.get(key);
          if (hit !== null) return Number(hit);
          const value = await compute(`${tag}|${i}`);
          await client.set(key, String(value), 'PX', LONG_TTL_MS);
          const list = keysOf.get(tag) ?? [];
          list.push(key);
          keysOf.set(tag, list);
          return value;
        },
        invalidate: async tag => {
          const keys = keysOf.get(tag) ?? [];
          keysOf.delete(tag);
          for (let i = 0; i < keys.length; i += 1_000) await client.del(...keys.slice(i, i + 1_000));
        },
        close: async () => void client.disconnect(),
      };
    },
  },
  {
    id: 'aspect-cache',
    label: 'aspect-cache service.invalidate(dependency) (RedisBackend)',
    kind: 'subject',
    async setup(port, db, compute) {
      const client = await connectDb(port, db);
      const service = new CachingService({ backend: new RedisBackend({ client, keyPrefix: 'ac:' }) });
      const values = bindCachingService(new TaggedValues(compute), service);
      return {
        call: (tag, i) => values.value(tag, i),
        invalidate: tag => service.invalidate(tag),
        close: async () => {
          await service.dispose();
          client.disconnect();
        },
      };
    },
  },
  {
    id: 'bentocache',
    label: 'bentocache deleteByTag (Redis L2 only)',
    kind: 'peer',
    async setup(port, db, compute) {
      const client = await connectDb(port, db);
      const bento = new BentoCache({ default: 'redis', prefix: 'bento', stores: { redis: bentostore().useL2Layer(redisDriver({ connection: client })) } });
      return {
        call: (tag, i) => bento.getOrSet({ key: `v:${tag}:${i}`, factory: () => compute(`${tag}|${i}`), ttl: LONG_TTL_MS, tags: [tag] }),
        invalidate: tag => bento.deleteByTag({ tags: [tag] }),
        close: async () => {
          await bento.disconnect().catch(() => {});
          client.disconnect();
        },
      };
    },
  },
  {
    id: 'async-cache-dedupe',
    label: 'async-cache-dedupe invalidateAll(reference) (Redis storage)',
    kind: 'peer',
    async setup(port, db, compute) {
      const client = await connectDb(port, db);
      const cache = createDedupeCache({ ttl: 3600, storage: { type: 'redis', options: { client: client as never, invalidation: true } } }).define(
        'value',
        { references: (arg: string) => [arg.slice(0, arg.indexOf('|'))] },
        (arg: string) => compute(arg),
      );
      const value = (cache as unknown as { value: (arg: string) => Promise<number> }).value;
      return {
        call: (tag, i) => value(`${tag}|${i}`),
        invalidate: tag => cache.invalidateAll([tag]),
        close: async () => void client.disconnect(),
      };
    },
  },
];
