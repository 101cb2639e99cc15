import { Redis } from 'ioredis';
import { expect, it } from 'vitest';
import { freePorts, refusesConnections } from './support/redis-process.js';
import {
  clusterClient,
  commandCount,
  countKeys,
  describeRedis,
  ready,
  redisTopology,
  resetCommandStats,
  standaloneClient,
  startDedicatedRedis,
  uniquePrefix,
} from './support/redis.js';

// Smoke tests of the Redis test infrastructure itself: the servers the global setup started, the client
// factories, dedicated servers that stop and restart, and command counting.

const redis = redisTopology();

describeRedis('redis test infrastructure: standalone', () => {
  it('runs on a free loopback port of its own, never 6379', () => {
    if (!redis.available) throw new Error('unreachable');
    const ports = [redis.standalone.port, ...redis.cluster.nodes.map(node => node.port)];
    expect(ports).not.toContain(6379);
    expect(new Set(ports).size).toBe(7);
    expect(redis.standalone.host).toBe('127.0.0.1');
  });

  it('answers PING and SET/GET under a unique prefix, leaving no residue', async () => {
    const client = standaloneClient();
    const prefix = uniquePrefix('infra');
    expect(prefix).toMatch(/^t:infra:[0-9a-z]+:$/);
    expect(uniquePrefix('infra')).not.toBe(prefix);
    expect(await client.ping()).toBe('PONG');
    await client.set(`${prefix}greeting`, 'hello');
    expect(await client.get(`${prefix}greeting`)).toBe('hello');
    expect(await countKeys(client, prefix)).toBe(1);
    await client.del(`${prefix}greeting`);
    expect(await countKeys(client, prefix)).toBe(0);
  });
});

describeRedis('redis test infrastructure: cluster', () => {
  const incrBoth = "redis.call('INCR', KEYS[1]); redis.call('INCR', KEYS[2]); return redis.call('MGET', KEYS[1], KEYS[2])";

  it('reaches all 3 masters (and their 3 replicas)', async () => {
    const cluster = clusterClient();
    await ready(cluster);
    expect(cluster.nodes('master')).toHaveLength(3);
    for (const master of cluster.nodes('master')) expect(await master.ping()).toBe('PONG');
    // ioredis connects to replicas only with scaleReads; ask the cluster itself.
    const flags = String(await cluster.cluster('NODES')).trim().split('\n').map(line => line.split(' ')[2]?.split(',') ?? []);
    expect(flags.filter(f => f.includes('master'))).toHaveLength(3);
    expect(flags.filter(f => f.includes('slave'))).toHaveLength(3);
  });

  it('runs a multi-key EVAL whose keys share a hash tag', async () => {
    const cluster = clusterClient();
    const prefix = uniquePrefix('eval', { hashTag: true });
    expect(prefix).toMatch(/^\{t:eval:[0-9a-z]+\}:$/);
    expect(await cluster.eval(incrBoth, 2, `${prefix}a`, `${prefix}b`)).toEqual(['1', '1']);
    await ready(cluster);
    expect(await countKeys(cluster, prefix)).toBe(2);
    await cluster.del(`${prefix}a`, `${prefix}b`);
    expect(await countKeys(cluster, prefix)).toBe(0);
  });

  it('rejects a multi-key EVAL whose keys are in different slots with CROSSSLOT', async () => {
    const cluster = clusterClient();
    const prefix = uniquePrefix('crossslot');
    const first = `${prefix}a`;
    const firstSlot = await cluster.cluster('KEYSLOT', first);
    let second = `${prefix}b`;
    for (let i = 0; (await cluster.cluster('KEYSLOT', second)) === firstSlot; i++) second = `${prefix}b${i}`;
    await expect(cluster.eval(incrBoth, 2, first, second)).rejects.toThrow(/CROSSSLOT/);
    await ready(cluster);
    expect(await countKeys(cluster, prefix)).toBe(0);
  });
});

describeRedis('redis test infrastructure: dedicated server', () => {
  it('stops (clients then fail) and restarts on the same port (clients reconnect)', async () => {
    const server = await startDedicatedRedis();
    const client = standaloneClient({ port: server.port, maxRetriesPerRequest: 1, retryStrategy: () => 50 });
    const prefix = uniquePrefix('dedicated');
    await client.set(`${prefix}k`, 'v');
    expect(await client.get(`${prefix}k`)).toBe('v');

    await server.stop();
    await expect(client.get(`${prefix}k`)).rejects.toThrow();
    expect(await refusesConnections(server.port)).toBe(true);

    await server.start();
    await ready(client);
    expect(await client.get(`${prefix}k`)).toBeNull(); // nothing is persisted
    await client.set(`${prefix}k`, 'again');
    expect(await client.get(`${prefix}k`)).toBe('again');
    expect(await standaloneClient({ port: server.port }).get(`${prefix}k`)).toBe('again');
  });

  it('dispose() stops the server for good', async () => {
    const server = await startDedicatedRedis();
    await server.dispose();
    await server.dispose(); // idempotent
    expect(await refusesConnections(server.port)).toBe(true);
    await expect(server.start()).rejects.toThrow(/disposed/);
  });
});

describeRedis('redis test infrastructure: command counting', () => {
  it('counts the commands a standalone server executed, and resets', async () => {
    const client = standaloneClient();
    const prefix = uniquePrefix('count');
    await resetCommandStats(client);
    expect(await commandCount(client, 'evalsha')).toBe(0);
    const sha = String(await client.script('LOAD', 'return 1'));
    await client.evalsha(sha, 0);
    await client.evalsha(sha, 0);
    expect(await commandCount(client, 'evalsha')).toBe(2);
    expect(await commandCount(client, 'EVALSHA')).toBe(2);
    await client.set(`${prefix}a`, '1');
    expect(await commandCount(client, 'set')).toBe(1);
    await client.del(`${prefix}a`);
  });

  it('sums over the masters of the cluster', async () => {
    const cluster = clusterClient();
    await ready(cluster);
    const prefix = uniquePrefix('count');
    await resetCommandStats(cluster);
    const keys = ['a', 'b', 'c', 'd', 'e', 'f'].map(k => `${prefix}${k}`);
    for (const key of keys) await cluster.set(key, '1');
    expect(await commandCount(cluster, 'set')).toBe(keys.length);
    for (const key of keys) await cluster.del(key);
    expect(await countKeys(cluster, prefix)).toBe(0);
  });

  it('refuses to reset the statistics of a server the tests did not start', async () => {
    const port = (await freePorts(1))[0]!;
    const stranger = new Redis({ host: '127.0.0.1', port, lazyConnect: true });
    await expect(resetCommandStats(stranger)).rejects.toThrow(/not a server these tests started/);
    stranger.disconnect();
  });
});
