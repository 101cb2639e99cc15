// Read-your-writes and no derived stale store across processes on Redis (SPEC §6): two services with their own
// connections and backends on one store stand for two processes (the randomized consistency tests run real
// child processes too). Computations are held open with deferred promises.
import { afterEach, expect, it } from 'vitest';
import { addDependency, bindCachingService, Cache, CachingService } from '../../src/index.js';
import { RedisBackend } from '../../src/redis.js';
import { deferred, flush, type Deferred } from '../support/deferred.js';
import { clusterClient, describeRedis, ready, standaloneClient, uniquePrefix, type RedisClient } from './support/redis.js';

class Rows {
  readonly versions = new Map<number, number>();
  readonly gates = new Map<number, Deferred<void>>();
  reads = 0;
  failing = false;

  @Cache()
  async getRow(id: number): Promise<{ id: number; version: number }> {
    this.reads++;
    const version = this.versions.get(id) ?? 1;
    addDependency(`row:${id}`);
    await this.gates.get(id)?.promise;
    return { id, version };
  }

  @Cache()
  async getGroup(group: number): Promise<number[]> {
    const rows = await Promise.all([this.getRow(group * 10), this.getRow(group * 10 + 1)]);
    return rows.map(r => r.version);
  }

  @Cache({ ttl: 300, failSafe: { maxStaleness: 60_000 } })
  async quote(id: number): Promise<number> {
    this.reads++;
    addDependency(`row:${id}`);
    if (this.failing) throw new Error('source down');
    return this.versions.get(id) ?? 1;
  }
}

const services: CachingService[] = [];
afterEach(async () => {
  await Promise.all(services.splice(0).map(s => s.dispose()));
});

function twoProcesses(makeClient: () => RedisClient, lock = false) {
  const keyPrefix = uniquePrefix('xproc');
  const make = () => {
    const client = makeClient();
    const backend = new RedisBackend({ client, keyPrefix, lock });
    const service = new CachingService({ backend, telemetry: false });
    services.push(service);
    return { client, backend, service };
  };
  return { reader: make(), writer: make() };
}

for (const [name, makeClient] of [
  ['standalone', () => standaloneClient()],
  ['cluster', () => clusterClient()],
] as const) {
  describeRedis(`across processes on Redis (${name})`, () => {
    for (const lock of [false, true]) {
      it(`a call that starts after another process's invalidation resolved gets the new value${lock ? ' (lock: true)' : ''}`, async () => {
        const { reader, writer } = twoProcesses(makeClient, lock);
        await ready(reader.client);
        const rows = bindCachingService(new Rows(), reader.service);
        const gate = deferred();
        rows.gates.set(1, gate);
        const old = rows.getRow(1);
        await waitForRead(rows, 1);
        rows.versions.set(1, 2);
        await writer.service.invalidate('row:1');
        const fresh = rows.getRow(1);
        await flush();
        gate.resolve();
        expect(await old).toEqual({ id: 1, version: 1 });
        expect(await fresh).toEqual({ id: 1, version: 2 });
        expect(await rows.getRow(1)).toEqual({ id: 1, version: 2 });
      });
    }

    it("a parent that starts after another process's invalidation is not derived from, nor stored with, the old child", async () => {
      const { reader, writer } = twoProcesses(makeClient);
      const rows = bindCachingService(new Rows(), reader.service);
      const gate = deferred();
      rows.gates.set(70, gate);
      const old = rows.getRow(70);
      await waitForRead(rows, 1);
      rows.versions.set(70, 2);
      await writer.service.invalidate('row:70');
      const group = rows.getGroup(7);
      await waitForRead(rows, 2); // getRow(71) computes: getRow(70) was called in the same tick and joined
      gate.resolve();
      await old;
      expect(await group).toEqual([2, 1]);
      const other = bindCachingService(new Rows(), writer.service);
      other.versions.set(70, 2);
      expect(await other.getGroup(7)).toEqual([2, 1]); // what the store holds is fresh, seen from the other process
    });

    it('fail-safe never serves a copy invalidated after the lookup that found it (and brought its token)', async () => {
      const { reader, writer } = twoProcesses(makeClient);
      const rows = bindCachingService(new Rows(), reader.service);
      expect(await rows.quote(3)).toBe(1);
      await new Promise(resolve => setTimeout(resolve, 400)); // expired, inside the fail-safe window
      // The invalidation lands after the reader's lookup found the expired copy (with its token in the same round
      // trip), before fail-safe asks whether the copy may be served (the backend's scripts are commands defined
      // on its client).
      const scripts = reader.client as unknown as { aspectCacheCheck: (...args: unknown[]) => Promise<unknown> };
      const check = scripts.aspectCacheCheck.bind(scripts);
      let injected = false;
      scripts.aspectCacheCheck = async (...args: unknown[]) => {
        if (!injected) {
          injected = true;
          await writer.service.invalidate('row:3');
        }
        return check(...args);
      };
      rows.failing = true;
      await expect(rows.quote(3)).rejects.toThrow('source down');
      expect(injected).toBe(true);
    });
  });
}

async function waitForRead(rows: Rows, reads: number): Promise<void> {
  for (let i = 0; i < 200 && rows.reads < reads; i++) await new Promise(resolve => setTimeout(resolve, 5));
  expect(rows.reads).toBe(reads);
}
