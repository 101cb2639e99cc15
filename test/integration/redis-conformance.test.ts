// The backend conformance suite (SPEC §8) against RedisBackend on a real standalone Redis and on a real
// 3-master Redis Cluster (16 partitions by default there, so every multi-key operation crosses slots and
// masters). Each test gets a fresh backend under a fresh key prefix; the prefix is deleted afterwards.
//
// Expiry runs on the Redis server's clock, so the suite's expiry tests use real, short TTLs
// (supportsFakeClock: false). Redis expires keys to the millisecond (PEXPIREAT), so the unit only needs to
// absorb round trips and scheduling delays: an expiry test spans about 10 units, a read expected to miss
// comes half a unit after the expiry (37 ms here), and all the expiry tests together wait about 50 units.
import { beforeAll } from 'vitest';
import type { CachingBackend } from '../../src/index.js';
import { RedisBackend } from '../../src/redis.js';
import { describeBackendConformance } from '../../src/testing.js';
import { purgePrefix } from './support/backend-support.js';
import { clusterClient, describeRedis, ready, standaloneClient, uniquePrefix, type RedisClient } from './support/redis.js';

/** The time unit of the expiry tests, in ms. */
const REAL_TIME_UNIT_MS = 75;

function redisConformance(topology: 'standalone' | 'cluster', connect: () => RedisClient): void {
  describeRedis(`RedisBackend conformance on a ${topology} Redis`, () => {
    // One connection for the whole suite (created outside any test, so it is closed after the suite); each
    // test gets its own backend and prefix on it.
    let client: RedisClient;
    const prefixes = new WeakMap<CachingBackend, string>();

    beforeAll(async () => {
      client = connect();
      await ready(client);
    });

    describeBackendConformance(`RedisBackend (${topology})`, {
      create: () => {
        const keyPrefix = uniquePrefix(`conformance-${topology}`);
        const backend = new RedisBackend({ client, keyPrefix });
        prefixes.set(backend, keyPrefix);
        return backend;
      },
      supportsFakeClock: false,
      realTimeUnitMs: REAL_TIME_UNIT_MS,
      richValues: true,
      dispose: async backend => {
        await backend.dispose(); // idempotent: also called after the test that disposed it itself
        const keyPrefix = prefixes.get(backend);
        if (keyPrefix !== undefined) await purgePrefix(client, keyPrefix);
      },
    });
  });
}

redisConformance('standalone', () => standaloneClient());
redisConformance('cluster', () => clusterClient());
