// Multi-partition invalidation on the real 3-master cluster: the scripts of one invalidation run concurrently on
// every partition, so a computation in one partition can take its token after that partition was marked and
// still read an entry of another partition that the invalidation has not reached yet. Such a value must never
// be stored (found by the consistency model: ./consistency-redis.test.ts): the first round fences the keys in
// every partition, the second lowers the fences once every partition has removed its dependents.
import { expect, it } from 'vitest';
import type { Cluster } from 'ioredis';
import type { CacheLookup } from '../../src/backends/backend.js';
import { RedisBackend } from '../../src/redis.js';
import { deferred } from '../support/deferred.js';
import { partitionOf, purgePrefix } from './support/backend-support.js';
import { clusterClient, describeRedis, ready, uniquePrefix } from './support/redis.js';

/**
 * The cluster client seen through a proxy that holds the INVALIDATE script of one partition (the first time it is
 * sent there) until `release` is called: the other partitions run theirs meanwhile.
 */
function holdingInvalidation(client: Cluster, partition: number) {
  const release = deferred();
  const othersDone = deferred();
  let held = false;
  let others = 0;
  const proxy = new Proxy(client, {
    get(target, property, receiver) {
      const value = Reflect.get(target, property, receiver) as unknown;
      if (property !== 'aspectCacheInvalidate') return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
      const invalidate = (value as (...a: unknown[]) => Promise<unknown>).bind(target);
      return (...args: unknown[]) => {
        const here = partitionOf(`${String(args[2])}v:x`);
        if (here === partition && !held) {
          held = true;
          return release.promise.then(() => invalidate(...args));
        }
        return invalidate(...args).finally(() => {
          if (!held || ++others === 15) othersDone.resolve();
        });
      };
    },
  });
  return { client: proxy, release: () => release.resolve(), othersDone: othersDone.promise };
}

const entry = (value: unknown, dependencies: readonly string[]) => ({ value, async: true, dependencies, expiresAt: Infinity, sliding: 0 });

function token(lookup: CacheLookup): unknown {
  if (lookup.hit) throw new Error('expected a miss');
  return lookup.token;
}

describeRedis('invalidation across partitions of the cluster', () => {
  it('an entry computed from a child that the invalidation had not reached yet in its partition is never kept', async () => {
    const keyPrefix = uniquePrefix('xpart');
    const readerClient = clusterClient();
    const writerClient = clusterClient();
    await Promise.all([ready(readerClient), ready(writerClient)]);
    const reader = new RedisBackend({ client: readerClient, keyPrefix });
    const partition = (backend: RedisBackend, key: string) => partitionOf(backend.entryKey(key));
    // A child, and two parents in partitions other than the child's.
    const child = 'child';
    const parents: string[] = [];
    for (let i = 0; parents.length < 2; i++) if (partition(reader, `parent${i}`) !== partition(reader, child)) parents.push(`parent${i}`);
    const [early, late] = parents as [string, string];
    const held = holdingInvalidation(writerClient, partition(reader, child));
    const writer = new RedisBackend({ client: held.client as unknown as Cluster, keyPrefix });
    try {
      expect(await reader.set(child, entry('old', ['row']), token(await reader.get(child)))).toBe('stored');

      // Another process invalidates the child (invalidateCall): every partition but the child's runs round 1.
      const invalidation = writer.invalidate([child]);
      await held.othersDone;

      // Meanwhile computations of both parents begin (their partitions are already marked) and read the child,
      // still present in its own partition.
      const earlyToken = token(await reader.get(early));
      const lateToken = token(await reader.get(late));
      const seen = await reader.get(child);
      expect(seen.hit && seen.value).toBe('old');
      // One parent stores before the invalidation reaches the child's partition: the fence the first round left
      // in its partition refuses it; the other stores after the invalidation completed, with a token taken before
      // the second round: refused too.
      expect(await reader.set(early, entry('from old', [child, 'row']), earlyToken)).toBe('stale');
      held.release();
      expect((await invalidation).pending).toBeUndefined();
      expect(await reader.set(late, entry('from old', [child, 'row']), lateToken)).toBe('stale');

      // Once the invalidation has resolved, no entry computed from the old child is served.
      expect((await reader.get(early)).hit).toBe(false);
      expect((await reader.get(late)).hit).toBe(false);
      expect((await reader.get(child)).hit).toBe(false);
    } finally {
      await purgePrefix(readerClient, keyPrefix);
    }
  });
});

describeRedis('fences of an invalidation on several partitions', () => {
  it('two processes invalidating one key at once leave no fence behind: a computation that starts afterwards is stored', async () => {
    const keyPrefix = uniquePrefix('fences');
    const clients = [clusterClient(), clusterClient(), clusterClient()];
    await Promise.all(clients.map(client => ready(client)));
    const [a, b, reader] = clients.map(client => new RedisBackend({ client: client as Cluster, keyPrefix })) as [RedisBackend, RedisBackend, RedisBackend];
    try {
      for (let round = 0; round < 5; round++) {
        expect(await reader.set('child', entry(`v${round}`, ['row']), token(await reader.get('child')))).toBe('stored');
        expect(await reader.set('parent', entry('p', ['child', 'row']), token(await reader.get('parent')))).toBe('stored');
        const [ra, rb] = await Promise.all([a.invalidate(['row']), b.invalidate(['row'])]);
        expect(ra.pending ?? rb.pending).toBeUndefined();
        expect((await reader.get('child')).hit).toBe(false);
        expect((await reader.get('parent')).hit).toBe(false);
      }
      expect(await reader.set('child', entry('fresh', ['row']), token(await reader.get('child')))).toBe('stored');
      expect(await reader.set('parent', entry('fresh', ['child', 'row']), token(await reader.get('parent')))).toBe('stored');
    } finally {
      await purgePrefix(clients[0]!, keyPrefix);
    }
  });

  it("a transaction's hold taken while another invalidation's fence is up outlives that invalidation's second round", async () => {
    const keyPrefix = uniquePrefix('hold-fence');
    const clients = [clusterClient(), clusterClient(), clusterClient()];
    await Promise.all(clients.map(client => ready(client)));
    // The invalidating process's second-round scripts (their unfence argument is set) wait for `go`; the first
    // of them says the first round has run in every partition.
    const go = deferred();
    const roundOneDone = deferred();
    const proxy = new Proxy(clients[0]!, {
      get(target, property, receiver) {
        const value = Reflect.get(target, property, receiver) as unknown;
        if (property !== 'aspectCacheInvalidate') return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
        const invalidate = (value as (...a: unknown[]) => Promise<unknown>).bind(target);
        return (...args: unknown[]) => {
          if (args[8] === '') return invalidate(...args);
          roundOneDone.resolve();
          return go.promise.then(() => invalidate(...args));
        };
      },
    });
    // Its fence (invalidationTimeoutMs) lasts longer than the transaction's hold.
    const writer = new RedisBackend({ client: proxy as unknown as Cluster, keyPrefix, invalidationTimeoutMs: 3_000 });
    const [transaction, reader] = clients.slice(1).map(client => new RedisBackend({ client: client as Cluster, keyPrefix })) as [RedisBackend, RedisBackend];
    try {
      expect(await reader.set('child', entry('old', ['row']), token(await reader.get('child')))).toBe('stored');
      const invalidation = writer.invalidate(['row']);
      await roundOneDone.promise;
      // A transaction changes the row meanwhile (not committed yet): it holds the key.
      await transaction.invalidate(['row'], { holdMs: 1_000 });
      go.resolve();
      expect((await invalidation).pending).toBeUndefined();
      // The fence is lowered; the hold is not: a computation that reads the uncommitted row's old value now is
      // refused, whatever its token.
      expect(await reader.set('child', entry('read during the transaction', ['row']), token(await reader.get('child')))).toBe('stale');
      // The transaction commits and releases its hold: the next computation is stored.
      await transaction.invalidate(['row'], { release: true });
      expect(await reader.set('child', entry('committed', ['row']), token(await reader.get('child')))).toBe('stored');
    } finally {
      go.resolve();
      await purgePrefix(clients[1]!, keyPrefix);
    }
  });

  it('a fence whose second round never ran refuses the stores that depend on its key only until it ends (invalidationTimeoutMs)', async () => {
    const keyPrefix = uniquePrefix('fence-left');
    const writerClient = clusterClient();
    const readerClient = clusterClient();
    await Promise.all([ready(writerClient), ready(readerClient)]);
    // Every second-round script (its unfence argument is set) fails while `failing` is true.
    let failing = true;
    const proxy = new Proxy(writerClient, {
      get(target, property, receiver) {
        const value = Reflect.get(target, property, receiver) as unknown;
        if (property !== 'aspectCacheInvalidate') return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
        const invalidate = (value as (...a: unknown[]) => Promise<unknown>).bind(target);
        return (...args: unknown[]) => (failing && args[8] !== '' ? Promise.reject(new Error('injected: second round lost')) : invalidate(...args));
      },
    });
    const writer = new RedisBackend({ client: proxy as unknown as Cluster, keyPrefix, invalidationTimeoutMs: 400, retryDelayMs: 60_000 });
    const reader = new RedisBackend({ client: readerClient, keyPrefix });
    writer.subscribe({ onEvent: () => undefined });
    try {
      expect(await reader.set('child', entry('old', ['row']), token(await reader.get('child')))).toBe('stored');
      const result = await writer.invalidate(['row']);
      expect(result.pending).toBe(true);
      expect((await reader.get('child')).hit).toBe(false); // removed by the first round
      // Fenced: a computation that starts now is refused, whatever its token.
      expect(await reader.set('child', entry('during', ['row']), token(await reader.get('child')))).toBe('stale');
      await new Promise(resolve => setTimeout(resolve, 500));
      // The fence has ended: a computation that starts now is stored.
      expect(await reader.set('child', entry('after', ['row']), token(await reader.get('child')))).toBe('stored');
      const hit = await reader.get('child');
      expect(hit.hit && hit.value).toBe('after');
    } finally {
      failing = false;
      await writer.dispose();
      await purgePrefix(readerClient, keyPrefix);
    }
  });
});
