// The caching service of one process. With caching on, every process builds the same layered backend: its
// own memory (L1) over the shared Redis (L2), with invalidations broadcast on a Redis channel, so a hit is
// usually served from memory and a write made in any process reaches every process's memory.
import { CachingService, LayeredBackend, MemoryBackend } from 'aspect-cache';
import { RedisBackend, RedisInvalidationBus } from 'aspect-cache/redis';
import { Redis } from 'ioredis';
import SuperJSON from 'superjson';
import type { CachingMode } from './config.js';
import { Product } from './domain.js';

export interface ServiceCache {
  readonly caching: CachingService;
  /** Closes the service and the Redis connection. */
  close(): Promise<void>;
}

/**
 * Writes invalidate what they change; the TTL only bounds how long an entry could outlive an invalidation lost
 * with a crashed process (SPEC: a queued invalidation dies with its process).
 */
const TTL_MS = 10 * 60_000;

/**
 * Builds the caching service for `mode`:
 * - `on`: LayeredBackend (MemoryBackend L1 of 50,000 entries, RedisBackend L2, RedisInvalidationBus);
 * - `off`: the same service with `enabled: false` — every @Cache method runs its body, nothing is stored,
 *   no Redis connection; the rest of the code (queries, commands, transactions) is unchanged;
 * - `broken-*`: see config.ts.
 * `keyPrefix` must be the same in every process of one deployment (and change when the data is re-seeded).
 */
export async function createCaching(mode: CachingMode, redisUrl: string, keyPrefix: string): Promise<ServiceCache> {
  if (mode === 'off') {
    const caching = new CachingService({ defaults: { enabled: false }, telemetry: false });
    return { caching, close: () => caching.dispose() };
  }
  // Values in Redis are serialized with superjson: getProduct returns Product instances (with getCacheKey).
  SuperJSON.registerClass(Product, { identifier: 'orderflow.Product' });
  const client = new Redis(redisUrl, { lazyConnect: true, maxRetriesPerRequest: 1 });
  let lastError: unknown;
  client.on('error', error => (lastError = error)); // the backend reports failures through its own events
  try {
    await client.connect();
  } catch (error) {
    client.disconnect();
    const cause = lastError ?? error;
    throw new Error(`Cannot connect to Redis at ${new URL(redisUrl).host}: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
  }
  const channel = mode === 'broken-private-bus' ? `${keyPrefix}invalidations:${process.pid}` : `${keyPrefix}invalidations`;
  const backend = new LayeredBackend({
    l1: new MemoryBackend({ maxEntries: 50_000 }),
    l2: new RedisBackend({ client, keyPrefix }),
    bus: new RedisInvalidationBus({ client, channel }),
  });
  const caching = new CachingService({ backend, defaults: { ttl: TTL_MS }, telemetry: false });
  // Backend failures never fail a request (the method runs); they are worth a line in the log.
  caching.on('error', event => console.error(`orderflow-service: cache ${event.operation} failed: ${event.error instanceof Error ? event.error.message : String(event.error)}`));
  return {
    caching,
    close: async () => {
      await caching.dispose(); // L1, L2 and the bus (which closes its subscriber connection)
      await client.quit(); // the client is ours, not the backend's
    },
  };
}
