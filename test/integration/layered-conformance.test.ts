// The backend conformance suite (SPEC §8) against LayeredBackend over a RedisBackend L2 with a
// RedisInvalidationBus, on a real standalone Redis and on the real 3-master cluster. Each test gets a fresh
// layered backend (its own L1, a fresh key prefix and channel); the prefix is deleted afterwards. Expiry runs
// on Redis's clock (real, short TTLs), as in redis-conformance.test.ts.
import { beforeAll } from 'vitest';
import { LayeredBackend, type CachingBackend } from '../../src/index.js';
import { RedisBackend, RedisInvalidationBus } from '../../src/redis.js';
import { describeBackendConformance } from '../../src/testing.js';
import { purgePrefix } from './support/backend-support.js';
import { clusterClient, describeRedis, ready, standaloneClient, uniquePrefix, type RedisClient } from './support/redis.js';

const REAL_TIME_UNIT_MS = 75;

function layeredConformance(topology: 'standalone' | 'cluster', connect: () => RedisClient): void {
  describeRedis(`LayeredBackend conformance over Redis (${topology})`, () => {
    let client: RedisClient;
    const prefixes = new WeakMap<CachingBackend, string>();

    beforeAll(async () => {
      client = connect();
      await ready(client);
    });

    describeBackendConformance(`LayeredBackend over RedisBackend (${topology})`, {
      create: () => {
        const keyPrefix = uniquePrefix(`layered-conformance-${topology}`);
        const backend = new LayeredBackend({
          l2: new RedisBackend({ client, keyPrefix }),
          bus: new RedisInvalidationBus({ client, channel: `${keyPrefix}bus`, heartbeatMs: 200 }),
        });
        prefixes.set(backend, keyPrefix);
        return backend;
      },
      supportsFakeClock: false,
      realTimeUnitMs: REAL_TIME_UNIT_MS,
      richValues: true,
      dispose: async backend => {
        await backend.dispose();
        const keyPrefix = prefixes.get(backend);
        if (keyPrefix !== undefined) await purgePrefix(client, keyPrefix);
      },
    });
  });
}

layeredConformance('standalone', () => standaloneClient());
layeredConformance('cluster', () => clusterClient());
