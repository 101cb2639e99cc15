// Per-call control on real Redis (SPEC §14), standalone and on the 3-master cluster: caching.clear() (entries gone,
// by SCAN on every master — never KEYS —, a computation in flight across it not stored, other processes on the
// same prefix and their L1 copies see it), and the entry options that travel with an entry between processes
// (eagerRefresh's refresh point, setCacheOptions' ttl, shouldCache). Two services with their own clients and
// backends on one prefix stand for two processes.
import { Cluster, type Redis } from 'ioredis';
import { afterEach, expect, it } from 'vitest';
import { addDependency, bindCachingService, Cache, CachingService, LayeredBackend, setCacheOptions, type CachingBackend } from '../../src/index.js';
import { RedisBackend, RedisInvalidationBus } from '../../src/redis.js';
import { deferred, type Deferred } from '../support/deferred.js';
import { clientCommandsDuring, keysByKind, purgePrefix } from './support/backend-support.js';
import { clusterClient, describeRedis, ready, scanKeys, standaloneClient, uniquePrefix, type RedisClient } from './support/redis.js';

class Catalogue {
  version = 1;
  runs = 0;
  gate: Deferred<void> | undefined;

  @Cache()
  async price(id: number): Promise<string> {
    this.runs++;
    addDependency(`price:${id}`);
    const version = this.version;
    await this.gate?.promise;
    return `${id} v${version}`;
  }

  @Cache()
  async list(ids: number[]): Promise<string[]> {
    this.runs++;
    return Promise.all(ids.map(id => this.price(id)));
  }

  @Cache({ ttl: 1_500, eagerRefresh: 0.3 })
  async quote(id: number): Promise<string> {
    this.runs++;
    return `quote ${id} v${this.version}`;
  }

  @Cache({ ttl: 60_000 })
  async draft(id: number): Promise<string> {
    this.runs++;
    setCacheOptions({ ttl: 300 });
    return `draft ${id} v${this.version}`;
  }

  @Cache({ shouldCache: (v: string | null) => v !== null })
  async find(id: number): Promise<string | null> {
    this.runs++;
    return id > 100 ? null : `found ${id}`;
  }
}

const services: CachingService[] = [];
const cleanups: Array<() => Promise<unknown>> = [];
/** Registered inside each describeRedis, so it runs before the helpers close the test's clients. */
function disposeAfterEach(): void {
  afterEach(async () => {
    await Promise.all(services.splice(0).map(s => s.dispose()));
    for (const cleanup of cleanups.splice(0)) await cleanup();
  });
}

/**
 * Long, so that the layered processes' safety net (a resync after a gap or silence, within about two heartbeats)
 * cannot be what makes another process drop its L1 copies in the test: the published clear must.
 */
const HEARTBEAT_MS = 3_000;

const sleep = (ms: number) => new Promise<void>(resolve => setTimeout(resolve, ms));

async function until(condition: () => boolean | Promise<boolean>, what: string, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

for (const [topology, connect] of [
  ['standalone', () => standaloneClient()],
  ['cluster', () => clusterClient()],
] as const) {
  describeRedis(`per-call control on Redis (${topology})`, () => {
    disposeAfterEach();

    /** `count` processes on one prefix; `layered` puts an L1 and a RedisInvalidationBus in front of each. */
    async function processes(count: number, { layered = false }: { layered?: boolean } = {}) {
      const keyPrefix = uniquePrefix(`per-call-${topology}`);
      const procs: Array<{ client: RedisClient; backend: CachingBackend; service: CachingService; catalogue: Catalogue }> = [];
      for (let i = 0; i < count; i++) {
        const client: RedisClient = connect();
        await ready(client);
        const l2 = new RedisBackend({ client, keyPrefix });
        const backend: CachingBackend = layered ? new LayeredBackend({ l2, bus: new RedisInvalidationBus({ client, channel: `${keyPrefix}bus`, heartbeatMs: HEARTBEAT_MS }) }) : l2;
        const service = new CachingService({ backend, telemetry: false });
        services.push(service);
        procs.push({ client, backend, service, catalogue: bindCachingService(new Catalogue(), service) });
      }
      cleanups.push(() => purgePrefix(procs[0]!.client, keyPrefix));
      return { keyPrefix, procs };
    }

    const masters = (client: RedisClient): Redis[] => (client instanceof Cluster ? client.nodes('master') : [client]);

    it('clear() removes every entry and index under the prefix, and calls compute again', async () => {
      const { keyPrefix, procs } = await processes(1);
      const { client, service, catalogue } = procs[0]!;
      await catalogue.list([1, 2, 3]);
      const before = await keysByKind(client, keyPrefix);
      expect(before.v.length).toBe(4);
      expect(before.i.length).toBeGreaterThan(0);
      catalogue.version = 2;
      await service.clear();
      const after = await keysByKind(client, keyPrefix);
      expect(after.v).toEqual([]);
      expect(after.i).toEqual([]);
      expect(await catalogue.list([1, 2, 3])).toEqual(['1 v2', '2 v2', '3 v2']);
      expect(catalogue.runs).toBe(8);
    });

    it('clear() scans every master with SCAN … MATCH … COUNT 1000, from cursor 0 (several steps for a large keyspace), and never sends KEYS', { timeout: 20_000 }, async () => {
      const { keyPrefix, procs } = await processes(1);
      const { client, service, catalogue } = procs[0]!;
      await Promise.all(Array.from({ length: 3_000 }, (_, i) => catalogue.price(i)));
      const nodes = masters(client);
      // What the backend asks each master: its SCAN calls (the same node connections as this client's).
      const scans = nodes.map(() => [] as unknown[][]);
      nodes.forEach((node, n) => {
        const scan = node.scan.bind(node) as (...args: unknown[]) => Promise<[string, string[]]>;
        (node as unknown as { scan: (...args: unknown[]) => Promise<[string, string[]]> }).scan = async (...args: unknown[]) => {
          const reply = await scan(...args);
          scans[n]!.push([...args, reply[1].length]);
          return reply;
        };
      });
      const commands = await clientCommandsDuring(nodes, () => service.clear());
      expect(commands).not.toContain('keys');
      expect(commands).not.toContain('flushdb');
      expect(commands).not.toContain('flushall');
      for (const calls of scans) {
        expect(calls.length).toBeGreaterThan(0);
        // Incremental: a cursor, a MATCH under the prefix, a COUNT; each call returns a bounded batch.
        for (const [cursor, match, pattern, count, limit, returned] of calls) {
          expect([match, count, limit]).toEqual(['MATCH', 'COUNT', 1000]);
          expect(String(pattern).startsWith(keyPrefix)).toBe(true);
          expect(typeof cursor).toBe('string');
          expect(returned as number).toBeLessThan(6_000);
        }
        expect(calls[0]![0]).toBe('0');
      }
      if (nodes.length === 1) expect(scans[0]!.length).toBeGreaterThanOrEqual(2); // 6,000 keys: several steps
      const left = await keysByKind(client, keyPrefix);
      expect(left.v.length + left.i.length + left.m.length).toBe(0);
    });

    it('a computation in flight across clear() is returned but not stored: another process computes it again', async () => {
      const { procs } = await processes(2);
      const [a, b] = procs as [(typeof procs)[0], (typeof procs)[0]];
      const gate = (a.catalogue.gate = deferred());
      const inFlight = a.catalogue.price(7);
      await until(() => a.catalogue.runs === 1, 'the computation to start');
      await b.service.clear();
      a.catalogue.gate = undefined;
      gate.resolve();
      expect(await inFlight).toBe('7 v1');
      b.catalogue.version = 2;
      expect(await b.catalogue.price(7)).toBe('7 v2');
      expect(await a.catalogue.price(7)).toBe('7 v2');
      expect(a.catalogue.runs + b.catalogue.runs).toBe(2);
    });

    it("another process on the same prefix sees the clear, and a layered process's L1 copies are dropped", { timeout: 15_000 }, async () => {
      for (const layered of [false, true]) {
        const { procs } = await processes(2, { layered });
        const [a, b] = procs as [(typeof procs)[0], (typeof procs)[0]];
        if (layered) await until(() => procs.every(p => (p.backend as LayeredBackend).trusted), 'the bus');
        await a.catalogue.price(1);
        await b.catalogue.price(1);
        await b.catalogue.price(1); // layered: now served from b's L1
        expect(a.catalogue.runs + b.catalogue.runs).toBe(1);
        if (layered) expect((b.backend as LayeredBackend).l1.size).toBe(1);
        a.catalogue.version = b.catalogue.version = 2;
        await a.service.clear();
        // Within the bus's propagation delay (milliseconds on loopback), well before a heartbeat could resync b.
        await until(async () => (await b.catalogue.price(1)) === '1 v2', `process b to see the clear${layered ? ' (its L1)' : ''}`, 500);
        expect(a.catalogue.runs + b.catalogue.runs).toBe(2);
        expect(await a.catalogue.price(1)).toBe('1 v2');
        expect(a.catalogue.runs + b.catalogue.runs).toBe(2);
      }
    });

    it("eagerRefresh: the refresh point travels with the entry; another process's hit past it refreshes it once", { timeout: 15_000 }, async () => {
      const { procs } = await processes(2);
      const [a, b] = procs as [(typeof procs)[0], (typeof procs)[0]];
      expect(await a.catalogue.quote(1)).toBe('quote 1 v1');
      expect(await b.catalogue.quote(1)).toBe('quote 1 v1');
      expect(b.catalogue.runs).toBe(0);
      await sleep(600); // past 30 % of 1.5 s, well before the expiry
      a.catalogue.version = b.catalogue.version = 2;
      const hits = await Promise.all([b.catalogue.quote(1), b.catalogue.quote(1), b.catalogue.quote(1)]);
      expect(hits).toEqual(['quote 1 v1', 'quote 1 v1', 'quote 1 v1']);
      await until(() => b.service.stats().sets === 1, "process b's background refresh to be stored");
      expect(b.catalogue.runs).toBe(1); // one refresh for the three hits
      expect(await a.catalogue.quote(1)).toBe('quote 1 v2'); // what b refreshed, from Redis
      expect(a.catalogue.runs).toBe(1);
      await sleep(1_000); // v1 would have expired (1.5 s after it was stored); the refreshed entry lives on
      expect(await a.catalogue.quote(1)).toBe('quote 1 v2');
      expect(a.catalogue.runs).toBe(1);
    });

    it("setCacheOptions' ttl is the entry's ttl in Redis, seen by every process; a value shouldCache rejects is stored for none", async () => {
      const { procs } = await processes(2);
      const [a, b] = procs as [(typeof procs)[0], (typeof procs)[0]];
      await a.catalogue.draft(1);
      expect(await b.catalogue.draft(1)).toBe('draft 1 v1');
      expect(b.catalogue.runs).toBe(0);
      await sleep(450);
      b.catalogue.version = 2;
      expect(await b.catalogue.draft(1)).toBe('draft 1 v2'); // 300 ms, not the method's 60 s
      expect(await a.catalogue.find(500)).toBeNull();
      expect(await b.catalogue.find(500)).toBeNull();
      expect(await a.catalogue.find(5)).toBe('found 5');
      expect(await b.catalogue.find(5)).toBe('found 5');
      expect(a.catalogue.runs).toBe(3);
      expect(b.catalogue.runs).toBe(2);
    });
  });
}
