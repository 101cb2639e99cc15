import type { Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';
import type { CacheLookup } from '../../src/backends/backend.js';
import { ReadBatcher } from '../../src/backends/redis/read-batcher.js';
import { CallGuard } from '../../src/backends/resilience/call-guard.js';
import { CircuitBreaker } from '../../src/backends/resilience/circuit-breaker.js';

/** A stand-in client recording what is sent: single HGETs and pipelines (their HGETs), answered by `reply`. */
function clientOf(reply: (key: string) => Promise<string | null>, pipelineReply?: (keys: string[]) => Promise<Array<[Error | null, unknown]>>) {
  const sent: Array<string | string[]> = [];
  const client = {
    hget: (key: string) => (sent.push(key), reply(key)),
    pipeline() {
      const keys: string[] = [];
      return {
        hget: (key: string) => keys.push(key),
        exec: () => (sent.push(keys), pipelineReply ? pipelineReply(keys) : Promise.all(keys.map(async k => [null, await reply(k)] as [null, unknown]))),
      };
    },
  };
  return { client: client as unknown as Redis, sent };
}

/** A batcher whose `interpret` answers a hit with the field as value (a miss for an absent one). */
function batcherOf(client: Redis, failureThreshold = 2) {
  const breaker = new CircuitBreaker({ failureThreshold }, { where: 'RedisBackend', remote: 'Redis', clock: { now: () => Date.now() }, onChange: () => undefined });
  const guard = new CallGuard({ where: 'RedisBackend', remote: 'Redis', timeoutMs: 1_000, breaker });
  const batcher = new ReadBatcher({
    client,
    isCluster: false,
    partitions: 2,
    timeoutMs: 1_000,
    guard,
    breaker,
    interpret: (_base, key, packed): CacheLookup => (packed == null ? { hit: false, token: key } : { hit: true, value: packed, async: false, dependencies: [], expiresAt: Infinity }),
    foreign: () => Promise.reject(new Error('unexpected foreign')),
  });
  return { batcher, breaker };
}

describe('ReadBatcher', () => {
  it('sends the lookups of one tick as one HGET or one pipeline per partition', async () => {
    const { client, sent } = clientOf(async key => (key.endsWith(':absent') ? null : `value of ${key}`));
    const { batcher } = batcherOf(client);
    const lookups = await Promise.all([batcher.get(0, 'p0:', 'a'), batcher.get(0, 'p0:', 'absent'), batcher.get(1, 'p1:', 'b')]);
    expect(sent).toEqual([['p0:v:a', 'p0:v:absent'], 'p1:v:b']);
    expect(lookups.map(l => (l.hit ? l.value : 'miss'))).toEqual(['value of p0:v:a', 'miss', 'value of p1:v:b']);
    await batcher.get(0, 'p0:', 'c'); // the next tick is a batch of its own
    expect(sent).toHaveLength(3);
  });

  it('a batch that gets no answer fails every lookup in it and counts once against the circuit', async () => {
    const { client } = clientOf(() => Promise.reject(new Error('connection lost')), () => Promise.reject(new Error('connection lost')));
    const { batcher, breaker } = batcherOf(client, 2);
    const results = await Promise.allSettled([batcher.get(0, 'p0:', 'a'), batcher.get(0, 'p0:', 'b'), batcher.get(0, 'p0:', 'c')]);
    expect(results.map(r => (r.status === 'rejected' ? (r.reason as Error).message : 'ok'))).toEqual(Array(3).fill('RedisBackend: connection lost'));
    expect(breaker.state).toBe('closed'); // one failed round trip of a threshold of 2
    await batcher.get(0, 'p0:', 'd').catch(() => undefined);
    expect(breaker.state).toBe('open');
  });

  it('with an open circuit, a lookup is refused at once without calling Redis', async () => {
    const { client, sent } = clientOf(async () => 'x');
    const { batcher, breaker } = batcherOf(client, 1);
    breaker.recordFailure();
    await expect(batcher.get(0, 'p0:', 'a')).rejects.toThrow(/circuit is open/);
    expect(sent).toEqual([]);
  });
});
