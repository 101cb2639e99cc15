// Read-your-writes and no derived stale store when the invalidation comes from elsewhere (SPEC §6): two
// services sharing one MemoryBackend stand for two processes sharing one store. The invalidating service
// cannot detach the reading service's computations, so a caller that joins one must not take a value the
// store refused as stale. Computations are held open with deferred promises.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { addDependency, bindCachingService, Cache, CachingService, MemoryBackend } from 'aspect-cache';
import { FakeClock } from 'aspect-cache/testing';
import { deferred, flush, type Deferred } from '../support/deferred.js';

class Rows {
  readonly versions = new Map<number, number>();
  readonly gates = new Map<number, Deferred<void>>();
  reads = 0;

  @Cache()
  async getRow(id: number): Promise<{ id: number; version: number }> {
    this.reads++;
    const version = this.versions.get(id) ?? 1; // read, then held open
    addDependency(`row:${id}`);
    await this.gates.get(id)?.promise;
    return { id, version };
  }

  @Cache()
  async getGroup(group: number): Promise<number[]> {
    const rows = await Promise.all([this.getRow(group * 10), this.getRow(group * 10 + 1)]);
    return rows.map(r => r.version);
  }
}

let store: MemoryBackend;
let reader: CachingService;
let writer: CachingService;

beforeEach(() => {
  store = new MemoryBackend();
  reader = new CachingService({ backend: store });
  writer = new CachingService({ backend: store });
});

afterEach(async () => {
  await reader.dispose();
  await writer.dispose();
});

describe('an invalidation made by another service sharing the store', () => {
  it('a call that starts after it resolved never gets the value of a computation that began before it', async () => {
    const rows = bindCachingService(new Rows(), reader);
    const gate = deferred();
    rows.gates.set(1, gate);
    const old = rows.getRow(1); // reads version 1, held open
    await flush();
    rows.versions.set(1, 2);
    await writer.invalidate('row:1');
    const fresh = rows.getRow(1); // starts after the invalidation resolved
    gate.resolve();
    expect(await old).toEqual({ id: 1, version: 1 });
    expect(await fresh).toEqual({ id: 1, version: 2 });
    expect(await rows.getRow(1)).toEqual({ id: 1, version: 2 });
  });

  it('a parent that started after it resolved is computed from the new child value, and is stored fresh', async () => {
    const rows = bindCachingService(new Rows(), reader);
    const gate = deferred();
    rows.gates.set(70, gate);
    const old = rows.getRow(70);
    await flush();
    rows.versions.set(70, 2);
    await writer.invalidate('row:70');
    const group = rows.getGroup(7); // joins nothing stale: its child getRow(70) must be recomputed
    gate.resolve();
    await old;
    expect(await group).toEqual([2, 1]);
    await flush();
    expect(await rows.getGroup(7)).toEqual([2, 1]); // what was stored is fresh too
  });

  it('callers that joined together and were refused still compute once between them', async () => {
    const rows = bindCachingService(new Rows(), reader);
    const gate = deferred();
    rows.gates.set(5, gate);
    const leader = rows.getRow(5);
    await flush();
    rows.versions.set(5, 2);
    await writer.invalidate('row:5');
    rows.gates.delete(5);
    const joiners = [rows.getRow(5), rows.getRow(5), rows.getRow(5)];
    gate.resolve();
    await leader;
    expect(await Promise.all(joiners)).toEqual([1, 2, 3].map(() => ({ id: 5, version: 2 })));
    expect(rows.reads).toBe(2);
  });
});

describe('sliding expiration reaches the parent when the child is computed (SPEC §4)', () => {
  it('a parent computed together with a sliding child lapses when the child would have', async () => {
    const clock = new FakeClock();
    const service = new CachingService({ clock });
    class Catalogue {
      parentRuns = 0;
      @Cache({ ttl: 100_000, slidingExpiration: 1_000 })
      async price(id: string): Promise<number> {
        return id.length;
      }
      @Cache({ ttl: 100_000 })
      async total(): Promise<number> {
        this.parentRuns++;
        return (await this.price('corn')) + 1;
      }
    }
    const catalogue = bindCachingService(new Catalogue(), service);
    await catalogue.total(); // computes the child too
    clock.advance(1_500); // the child was not read: its sliding window lapsed
    await catalogue.total();
    expect(catalogue.parentRuns).toBe(2);
    await service.dispose();
  });
});

describe('a computation whose value is being stored', () => {
  it('is not joined by a caller that starts after an invalidation made right after the store', async () => {
    // The hook runs inside the store: the entry is written, then another service invalidates it, then a new
    // call starts in the reading service — while the stored computation is still its flight.
    let hook: (() => void) | undefined;
    class HookedBackend extends MemoryBackend {
      override set(...args: Parameters<MemoryBackend['set']>): ReturnType<MemoryBackend['set']> {
        const outcome = super.set(...args);
        const run = hook;
        hook = undefined;
        run?.();
        return outcome;
      }
    }
    const shared = new HookedBackend();
    const a = new CachingService({ backend: shared });
    const b = new CachingService({ backend: shared });
    const rows = bindCachingService(new Rows(), b);
    let late: Promise<{ id: number; version: number }> | undefined;
    hook = () => {
      rows.versions.set(9, 2);
      void a.invalidate('row:9'); // synchronous on memory: resolved before the next line
      late = rows.getRow(9);
    };
    expect(await rows.getRow(9)).toEqual({ id: 9, version: 1 });
    expect(late).toBeDefined();
    expect(await late).toEqual({ id: 9, version: 2 });
    await a.dispose();
    await b.dispose();
  });
});

describe('a long computation over short-lived children', () => {
  it('is not handed to a caller that joins after its value has already expired', async () => {
    const clock = new FakeClock();
    const service = new CachingService({ clock });
    const gate = deferred();
    let runs = 0;
    class Slow {
      @Cache({ ttl: 100 })
      async child(): Promise<number> {
        return ++runs;
      }
      @Cache()
      async parent(): Promise<number> {
        const value = await this.child(); // expires 100 ms after it was computed
        await gate.promise;
        return value;
      }
    }
    const slow = bindCachingService(new Slow(), service);
    const first = slow.parent();
    await flush();
    clock.advance(200); // the child's value (and so the parent's) has expired
    const joiner = slow.parent();
    await flush();
    gate.resolve();
    expect(await first).toBe(1); // the caller that computed it gets it
    expect(await joiner).toBe(2); // the late joiner does not get an expired value: it recomputes
    await service.dispose();
  });
});
