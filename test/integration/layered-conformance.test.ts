// The backend conformance suite (SPEC §8) against LayeredBackend over a RedisBackend L2 with a
// RedisInvalidationBus, on a real standalone Redis and on the real 3-master cluster. Each test gets a fresh
// layered backend (its own L1, a fresh key prefix and channel); the prefix is deleted afterwards. Expiry runs
// on Redis's clock (real, short TTLs), as in redis-conformance.test.ts.
import { beforeAll, expect, it } from 'vitest';
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

// Malformed or foreign payloads on the channel (another application publishing there, a hand-typed PUBLISH) are
// ignored safely: they count as a possible gap (L1 dropped once), and nothing else changes.
describeRedis('LayeredBackend with foreign payloads on its Redis channel', () => {
  it('drops its L1 once per foreign payload (resync "foreign") and keeps serving correct values from Redis', async () => {
    const client = standaloneClient();
    await ready(client);
    const keyPrefix = uniquePrefix('layered-foreign');
    const channel = `${keyPrefix}bus`;
    const backend = new LayeredBackend({ l2: new RedisBackend({ client, keyPrefix }), bus: new RedisInvalidationBus({ client, channel, heartbeatMs: 200 }) });
    const reasons: string[] = [];
    backend.subscribe({ onEvent: event => event.type === 'resync' && reasons.push(event.reason) });
    try {
      const deadline = Date.now() + 5_000;
      while (!backend.trusted && Date.now() < deadline) await new Promise(resolve => setTimeout(resolve, 5));
      expect(backend.trusted).toBe(true);
      const miss = await backend.get('k');
      expect(miss.hit).toBe(false);
      if (!miss.hit) expect(await backend.set('k', { value: 'v', async: false, dependencies: ['d'], expiresAt: Infinity, sliding: 0 }, miss.token)).toBe('stored');
      for (const payload of ['hello', '{"p":"ac1","t":"i"}', JSON.stringify({ p: 'ac1', t: 'i', f: 'x', s: 1, a: 0, k: [42] })]) await client.publish(channel, payload);
      const until = Date.now() + 2_000;
      while (reasons.filter(r => r === 'foreign').length < 3 && Date.now() < until) await new Promise(resolve => setTimeout(resolve, 5));
      expect(reasons.filter(r => r === 'foreign')).toHaveLength(3);
      const hit = await backend.get('k'); // L1 was dropped: from Redis, unchanged
      expect(hit.hit && hit.value).toBe('v');
    } finally {
      await backend.dispose();
      await purgePrefix(client, keyPrefix);
    }
  });
});
