import type { Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';
import type { CacheLookup } from '../../src/backends/backend.js';
import { ReadBatcher } from '../../src/backends/redis/read-batcher.js';
import { CallGuard } from '../../src/backends/resilience/call-guard.js';
import { CircuitBreaker } from '../../src/backends/resilience/circuit-breaker.js';

/** The answer to one command of a lookup (`get <key>`, `time`, `hget <key>`): a value, or an Error in its place. */
type Answer = (command: string) => Promise<unknown>;

/** By default: a generation of '42', a TIME of [1000 s, 5 µs], and `field(key)` for each entry. */
const defaultAnswer =
  (field: (key: string) => Promise<string | null>): Answer =>
  async command =>
    command === 'time' ? ['1000', '5'] : command.startsWith('get ') ? '42' : field(command.slice(5));

/**
 * A stand-in client recording what is sent, as commands (`get <key>`, `time`, `hget <key>`) per round trip: the
 * LOOKUP script (standalone; it answers one reply per command, an error in its place) or a pipeline (cluster;
 * it answers [error, reply] pairs). `fail` makes the whole round trip fail.
 */
function clientOf(answer: Answer, fail?: () => Promise<never>) {
  const sent: string[][] = [];
  const client = {
    hget: (key: string) => (sent.push([`hget ${key}`]), answer(`hget ${key}`)),
    pipeline() {
      const commands: string[] = [];
      return {
        get: (key: string) => commands.push(`get ${key}`),
        time: () => commands.push('time'),
        hget: (key: string) => commands.push(`hget ${key}`),
        exec: () => {
          sent.push(commands);
          if (fail) return fail();
          return Promise.all(commands.map(async c => {
            const reply = await answer(c);
            return reply instanceof Error ? [reply, null] : [null, reply];
          }));
        },
      };
    },
  };
  // (numKeys, seq, entry…, field): the script reads the generation, TIME, then each entry's field.
  const lookupScript = (...args: Array<string | number>) => {
    const keys = args.slice(1, 1 + Number(args[0])).map(String);
    const commands = [`get ${keys[0]}`, 'time', ...keys.slice(1).map(k => `hget ${k}`)];
    sent.push(commands);
    if (fail) return fail();
    return Promise.all(commands.map(answer));
  };
  return { client: client as unknown as Redis, lookupScript, sent };
}

/** A batcher whose `interpret` answers a hit with the field as value (a miss for an absent one, its token the clock it was given). */
function batcherOf(stand: ReturnType<typeof clientOf>, isCluster: boolean, failureThreshold = 2) {
  const breaker = new CircuitBreaker({ failureThreshold }, { where: 'RedisBackend', remote: 'Redis', clock: { now: () => Date.now() }, onChange: () => undefined });
  const guard = new CallGuard({ where: 'RedisBackend', remote: 'Redis', timeoutMs: 1_000, breaker });
  const batcher = new ReadBatcher({
    client: stand.client,
    isCluster,
    lookupScript: stand.lookupScript,
    partitions: 2,
    timeoutMs: 1_000,
    guard,
    breaker,
    now: () => 7,
    interpret: (_base, key, packed, clock): CacheLookup => (packed == null ? { hit: false, token: { key, clock } } : { hit: true, value: packed, async: false, dependencies: [], expiresAt: Infinity }),
    foreign: async (_base, key) => ({ hit: false, token: { key, foreign: true } }),
  });
  return { batcher, breaker };
}

for (const [topology, isCluster] of [
  ['standalone: one LOOKUP script per batch', false],
  ['cluster: one pipeline per batch', true],
] as const) {
  describe(`ReadBatcher (${topology})`, () => {
    it('sends the lookups of one tick as one round trip per partition: the generation and TIME, then the entries', async () => {
      const stand = clientOf(defaultAnswer(async key => (key.endsWith(':absent') ? null : `value of ${key}`)));
      const { batcher } = batcherOf(stand, isCluster);
      const lookups = await Promise.all([batcher.get(0, 'p0:', 'a'), batcher.get(0, 'p0:', 'absent'), batcher.get(1, 'p1:', 'b')]);
      expect(stand.sent).toEqual([
        ['get p0:s', 'time', 'hget p0:v:a', 'hget p0:v:absent'],
        ['get p1:s', 'time', 'hget p1:v:b'],
      ]);
      expect(lookups.map(l => (l.hit ? l.value : 'miss'))).toEqual(['value of p0:v:a', 'miss', 'value of p1:v:b']);
      // The miss is given what its token is made of: the generation and time read before its entry, and when they were sent.
      expect(lookups[1]).toEqual({ hit: false, token: { key: 'absent', clock: { generation: '42', time: ['1000', '5'], sentAt: 7 } } });
      await batcher.get(0, 'p0:', 'c'); // the next tick is a batch of its own
      expect(stand.sent).toHaveLength(3);
    });

    it('gives a miss no clock when the generation could not be read (it then takes its token on its own)', async () => {
      const base = defaultAnswer(async () => null);
      const stand = clientOf(async command => (command.startsWith('get ') ? new Error('WRONGTYPE Operation against a key holding the wrong kind of value') : base(command)));
      const { batcher } = batcherOf(stand, isCluster);
      expect(await batcher.get(0, 'p0:', 'a')).toEqual({ hit: false, token: { key: 'a', clock: undefined } });
    });

    it('answers an entry of another type as a foreign key, and the other lookups of the batch as usual', async () => {
      const base = defaultAnswer(async key => `value of ${key}`);
      const stand = clientOf(async command => (command === 'hget p0:v:b' ? new Error('WRONGTYPE Operation against a key holding the wrong kind of value') : base(command)));
      const { batcher, breaker } = batcherOf(stand, isCluster, 1);
      const lookups = await Promise.all([batcher.get(0, 'p0:', 'a'), batcher.get(0, 'p0:', 'b'), batcher.get(0, 'p0:', 'c')]);
      expect(lookups).toEqual([
        { hit: true, value: 'value of p0:v:a', async: false, dependencies: [], expiresAt: Infinity },
        { hit: false, token: { key: 'b', foreign: true } },
        { hit: true, value: 'value of p0:v:c', async: false, dependencies: [], expiresAt: Infinity },
      ]);
      expect(breaker.state).toBe('closed');
      // A batch of nothing but foreign keys is still an answering Redis: no failure against the circuit.
      const foreign = clientOf(async command => (command.startsWith('hget ') ? new Error('WRONGTYPE Operation against a key holding the wrong kind of value') : base(command)));
      const second = batcherOf(foreign, isCluster, 1);
      expect((await Promise.all([second.batcher.get(0, 'p0:', 'x'), second.batcher.get(0, 'p0:', 'y')])).map(l => l.hit)).toEqual([false, false]);
      expect(second.breaker.state).toBe('closed');
    });

    it('splits a tick of more than 1,000 lookups of one partition into round trips of at most 1,000', async () => {
      const stand = clientOf(defaultAnswer(async key => `value of ${key}`));
      const { batcher } = batcherOf(stand, isCluster);
      const keys = Array.from({ length: 2_500 }, (_, i) => `k${i}`);
      const lookups = await Promise.all(keys.map(key => batcher.get(0, 'p0:', key)));
      expect(stand.sent.map(commands => commands.length - 2)).toEqual([1_000, 1_000, 500]);
      expect(lookups.map(l => (l.hit ? l.value : 'miss'))).toEqual(keys.map(key => `value of p0:v:${key}`));
    });

    it('a batch that gets no answer fails every lookup in it and counts once against the circuit', async () => {
      const stand = clientOf(defaultAnswer(async () => null), () => Promise.reject(new Error('connection lost')));
      const { batcher, breaker } = batcherOf(stand, isCluster, 2);
      const results = await Promise.allSettled([batcher.get(0, 'p0:', 'a'), batcher.get(0, 'p0:', 'b'), batcher.get(0, 'p0:', 'c')]);
      expect(results.map(r => (r.status === 'rejected' ? (r.reason as Error).message : 'ok'))).toEqual(Array(3).fill('RedisBackend: connection lost'));
      expect(breaker.state).toBe('closed'); // one failed round trip of a threshold of 2
      await batcher.get(0, 'p0:', 'd').catch(() => undefined);
      expect(breaker.state).toBe('open');
    });

    it('with an open circuit, a lookup is refused at once without calling Redis', async () => {
      const stand = clientOf(defaultAnswer(async () => 'x'));
      const { batcher, breaker } = batcherOf(stand, isCluster, 1);
      breaker.recordFailure();
      await expect(batcher.get(0, 'p0:', 'a')).rejects.toThrow(/circuit is open/);
      expect(stand.sent).toEqual([]);
    });
  });
}
