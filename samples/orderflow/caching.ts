// The caching service of OrderFlow: memory by default; when REDIS_URL is set, a layered backend — this
// process's memory (L1) over Redis (L2), with invalidations broadcast to every process on a Redis channel —
// and cache warming.
import { CachingService, LayeredBackend } from 'aspect-cache';
import { RedisBackend, RedisInvalidationBus } from 'aspect-cache/redis';
import { Redis } from 'ioredis';
import SuperJSON from 'superjson';
import { Product } from './domain.js';
import type { CatalogueQueries } from './queries.js';

export interface ShopCache {
  readonly caching: CachingService;
  /** Where the entries live, for the console. */
  readonly description: string;
  /** Disposes the service (and, on Redis, removes this run's entries and closes the client). */
  close(): Promise<void>;
}

/** Events invalidate entries; the TTL only bounds how long an entry could outlive a lost event. */
const defaults = { ttl: 15 * 60_000 };

export async function createCaching(redisUrl = process.env.REDIS_URL): Promise<ShopCache> {
  if (!redisUrl) {
    const caching = new CachingService({ defaults });
    return { caching, description: 'memory backend', close: () => caching.dispose() };
  }
  // Values stored in Redis are serialized with superjson: register the classes that cached methods return,
  // so that getProduct() hits give Product instances back (with getCacheKey() and the cascade).
  SuperJSON.registerClass(Product, { identifier: 'orderflow.Product' });
  const client = new Redis(redisUrl, { lazyConnect: true });
  let lastError: unknown;
  client.on('error', error => (lastError = error)); // failures surface through the connect below and the cache's own error reports
  try {
    await client.connect();
  } catch (error) {
    client.disconnect();
    const cause = lastError ?? error;
    throw new Error(`Cannot connect to Redis at ${new URL(redisUrl).host}: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
  }
  // A prefix of its own: this run never reads or overwrites anyone else's entries in a shared Redis.
  const keyPrefix = `orderflow:${process.pid}:`;
  // Every process of the shop builds the same three lines: hits are served from its own memory without a round
  // trip, and an invalidation made by any process reaches every process's memory through the channel.
  const backend = new LayeredBackend({
    l2: new RedisBackend({ client, keyPrefix }),
    bus: new RedisInvalidationBus({ client, channel: `${keyPrefix}invalidations` }),
  });
  const caching = new CachingService({ backend, defaults });
  const { host } = new URL(redisUrl);
  return {
    caching,
    description: `layered backend (memory over Redis at ${host}), key prefix ${keyPrefix}`,
    close: async () => {
      await backend.clear(); // a sample leaves nothing behind (its prefix would never be used again)
      // Disposes L1, L2 and the bus (which closes the subscriber connection it opened); the client is the
      // application's, so it is closed here.
      await caching.dispose();
      await client.quit();
    },
  };
}

/**
 * Start-up warming: fetches the catalogue and the featured products through the cached read paths, so the
 * first visitors get hits. Returns the number of entries stored.
 */
export async function warmCache(caching: CachingService, catalogue: CatalogueQueries): Promise<number> {
  const before = caching.stats().sets;
  const entries = await catalogue.getCatalogue();
  await Promise.all(entries.filter(entry => entry.featured).map(entry => catalogue.getProduct(entry.id)));
  return caching.stats().sets - before;
}
