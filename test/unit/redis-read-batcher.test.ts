import type { Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';
import type { CacheLookup } from '../../src/backends/backend.js';
import { ReadBatcher } from '../../src/backends/redis/read-batcher.js';
import { CallGuard } from '../../src/backends/resilience/call-guard.js';
import { CircuitBreaker } from '../../src/backends/resilience/circuit-breaker.js';

/**
 * A stand-in client recording what is sent: pipelines (their commands: `get <key>`, `time`, `hget <key>`),
 * answered by `reply` (the HGETs), a generation of '42' and a TIME of [1000 s, 5 µs]; or by `pipelineReply`.
 */
function clientOf(reply: (key: string) => Promise<string | null>, pipelineReply?: (commands: string[]) => Promise<Array<[Error | null, unknown]>>) {
  const sent: string[][] = [];
  const client = {
    hget: (key: string) => (sent.push([`hget ${key}`]), reply(key)),
    pipeline() {
      const commands: string[] = [];
      return {
        get: (key: string) => commands.push(`get ${key}`),
        time: () => commands.push('time'),
        hget: (key: string) => commands.push(`hget ${key}`),
        exec: () =>
          (sent.push(commands),
          pipelineReply
            ? pipelineReply(commands)
            : Promise.all(commands.map(async c => (c === 'time' ? [null, ['1000', '5']] : c.startsWith('get ') ? [null, '42'] : [null, await reply(c.slice(5))]) as [null, unknown]))),
      };
    },
  };
  return { client: client as unknown as Redis, sent };
}

/** A batcher whose `interpret` answers a hit with the field as value (a miss for an absent one, its token the clock it was given). */
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
    now: () => 7,
    interpret: (_base, key, packed, clock): CacheLookup => (packed == null ? { hit: false, token: { key, clock } } : { hit: true, value: packed, async: false, dependencies: [], expiresAt: Infinity }),
    foreign: () => Promise.reject(new Error('unexpected foreign')),
  });
  return { batcher, breaker };
}

describe('ReadBatcher', () => {
  it('sends the lookups of one tick as one pipeline per partition: the generation and TIME, then the HGETs', async () => {
    const { client, sent } = clientOf(async key => (key.endsWith(':absent') ? null : `value of ${key}`));
    const { batcher } = batcherOf(client);
    const lookups = await Promise.all([batcher.get(0, 'p0:', 'a'), batcher.get(0, 'p0:', 'absent'), batcher.get(1, 'p1:', 'b')]);
    expect(sent).toEqual([
      ['get p0:s', 'time', 'hget p0:v:a', 'hget p0:v:absent'],
      ['get p1:s', 'time', 'hget p1:v:b'],
    ]);
    expect(lookups.map(l => (l.hit ? l.value : 'miss'))).toEqual(['value of p0:v:a', 'miss', 'value of p1:v:b']);
    // The miss is given what its token is made of: the generation and time read before its entry, and when they were sent.
    expect(lookups[1]).toEqual({ hit: false, token: { key: 'absent', clock: { generation: '42', time: ['1000', '5'], sentAt: 7 } } });
    await batcher.get(0, 'p0:', 'c'); // the next tick is a batch of its own
    expect(sent).toHaveLength(3);
  });

  it('gives a miss no clock when the generation or TIME failed (it then takes its token on its own)', async () => {
    const { client } = clientOf(
      async () => null,
      async commands => commands.map(c => (c === 'time' ? [new Error('ERR unknown command'), null] : c.startsWith('get ') ? [null, '42'] : [null, null]) as [Error | null, unknown]),
    );
    const { batcher } = batcherOf(client);
    expect(await batcher.get(0, 'p0:', 'a')).toEqual({ hit: false, token: { key: 'a', clock: undefined } });
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
