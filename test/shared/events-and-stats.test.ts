import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { addDependency, bindCachingService, Cache, CachingService, InvalidateCache, type CacheEventMap, type Logger } from 'aspect-cache';
import { deferred, flush } from '../support/deferred.js';

// Observability (SPEC §9): hit, miss, set, skip and invalidate events with their payloads, unsubscribing,
// listeners that throw, and the stats() counters.

type LogFn = (message: string, data?: unknown) => void;

function stubLogger() {
  return { debug: vi.fn<LogFn>(), warn: vi.fn<LogFn>(), error: vi.fn<LogFn>() } satisfies Logger;
}

let logger: ReturnType<typeof stubLogger>;
let service: CachingService;

beforeEach(() => {
  logger = stubLogger();
  service = new CachingService({ logger });
});

afterEach(async () => {
  await service.dispose();
});

/** Records every event of the given names, in order, as [name, payload]. */
function record(names: Array<keyof CacheEventMap>): Array<[string, any]> {
  const seen: Array<[string, any]> = [];
  for (const name of names) service.on(name, payload => seen.push([name, payload]));
  return seen;
}

describe('events', () => {
  it('a first call emits miss then set, a second call emits hit, all with the same key', () => {
    class SyncEvents {
      @Cache()
      double(n: number): number {
        return n * 2;
      }
    }
    const s = bindCachingService(new SyncEvents(), service);
    const seen = record(['miss', 'set', 'hit']);
    s.double(21);
    s.double(21);
    expect(seen.map(([name]) => name)).toEqual(['miss', 'set', 'hit']);
    const key = seen[0]![1].key as string;
    expect(key).toContain('SyncEvents');
    expect(key).toContain('double');
    expect(seen.every(([, payload]) => payload.key === key)).toBe(true);
  });

  it('async methods emit the same sequence', async () => {
    class AsyncEvents {
      @Cache()
      async name(id: number): Promise<string> {
        return `n${id}`;
      }
    }
    const s = bindCachingService(new AsyncEvents(), service);
    const seen = record(['miss', 'set', 'hit']);
    await s.name(1);
    await s.name(1);
    await s.name(2);
    expect(seen.map(([name]) => name)).toEqual(['miss', 'set', 'hit', 'miss', 'set']);
    expect(seen[3]![1].key).not.toBe(seen[0]![1].key);
  });

  it('set carries the entry\'s dependencies (added ones and child calls) and its expiry', async () => {
    const base = 5_000_000;
    const clockService = new CachingService({ logger, clock: { now: () => base } });
    try {
      class Deps {
        @Cache()
        async child(id: string): Promise<string> {
          addDependency(`Product:${id}`);
          return id;
        }

        @Cache({ ttl: 2_000 })
        async parent(id: string): Promise<string> {
          addDependency('Catalogue');
          return `parent of ${await this.child(id)}`;
        }
      }
      const d = bindCachingService(new Deps(), clockService);
      const sets: Array<CacheEventMap['set']> = [];
      clockService.on('set', e => sets.push(e));
      await d.parent('corn');
      expect(sets).toHaveLength(2);
      const [childSet, parentSet] = sets;
      expect(childSet!.key).toContain('child');
      expect(childSet!.dependencies).toEqual(['Product:corn']);
      expect(childSet!.expiresAt).toBe(Infinity);
      expect(parentSet!.key).toContain('parent');
      expect([...parentSet!.dependencies].sort()).toEqual(['Catalogue', 'Product:corn', childSet!.key].sort());
      expect(parentSet!.expiresAt).toBe(base + 2_000);
    } finally {
      await clockService.dispose();
    }
  });

  it("skip with reason 'undefined' when cacheUndefined is false", async () => {
    class Sparse {
      @Cache({ cacheUndefined: false })
      async find(_id: string): Promise<string | undefined> {
        return undefined;
      }
    }
    const seen = record(['skip', 'set']);
    await bindCachingService(new Sparse(), service).find('x');
    expect(seen).toHaveLength(1);
    expect(seen[0]![0]).toBe('skip');
    expect(seen[0]![1]).toMatchObject({ reason: 'undefined' });
    expect(seen[0]![1].key).toContain('find');
  });

  it("skip with reason 'stale' when a dependency is invalidated while the value is computed; the caller still gets it", async () => {
    const gate = deferred<void>();
    let runs = 0;
    class Racy {
      @Cache()
      async price(id: string): Promise<string> {
        runs++;
        addDependency('PriceList');
        await gate.promise;
        return `${id}@${runs}`;
      }
    }
    const r = bindCachingService(new Racy(), service);
    const seen = record(['skip', 'set']);
    const pending = r.price('corn');
    await flush();
    await service.invalidate('PriceList');
    gate.resolve();
    await expect(pending).resolves.toBe('corn@1');
    expect(seen.map(([name, payload]) => [name, payload.reason])).toEqual([['skip', 'stale']]);
    // not stored: the next call recomputes
    await expect(r.price('corn')).resolves.toBe('corn@2');
    expect(service.stats().skips).toBe(1);
  });

  it('invalidate carries the invalidated keys and the entries removed', async () => {
    class Catalogue {
      @Cache()
      async price(id: string): Promise<number> {
        addDependency('PriceList');
        return id.length;
      }
    }
    const c = bindCachingService(new Catalogue(), service);
    const sets: string[] = [];
    service.on('set', e => sets.push(e.key));
    await c.price('corn');
    await c.price('rice');
    const invalidations: Array<CacheEventMap['invalidate']> = [];
    service.on('invalidate', e => invalidations.push(e));
    await service.invalidate('PriceList');
    expect(invalidations).toHaveLength(1);
    expect(invalidations[0]!.keys).toEqual(['PriceList']);
    expect([...invalidations[0]!.entries].sort()).toEqual([...sets].sort());
  });

  it('@InvalidateCache emits invalidate with the target call\'s key', async () => {
    class Writer {
      @Cache()
      async read(id: string): Promise<string> {
        return id;
      }

      @InvalidateCache('read')
      async write(id: string): Promise<void> {
        void id;
      }
    }
    const w = bindCachingService(new Writer(), service);
    const missKeys: string[] = [];
    service.on('miss', e => missKeys.push(e.key));
    await w.read('a');
    const invalidations: Array<CacheEventMap['invalidate']> = [];
    service.on('invalidate', e => invalidations.push(e));
    await w.write('a');
    expect(invalidations).toHaveLength(1);
    expect(invalidations[0]!.keys).toEqual([missKeys[0]]);
    expect(invalidations[0]!.entries).toEqual([missKeys[0]]);
  });

  it('on() returns a function that unsubscribes the listener', () => {
    class Counted {
      @Cache()
      value(n: number): number {
        return n;
      }
    }
    const c = bindCachingService(new Counted(), service);
    const hits: string[] = [];
    const other: string[] = [];
    const off = service.on('hit', e => hits.push(e.key));
    service.on('hit', e => other.push(e.key));
    c.value(1);
    c.value(1);
    expect(hits).toHaveLength(1);
    off();
    c.value(1);
    expect(hits).toHaveLength(1);
    expect(other).toHaveLength(2);
    expect(() => off()).not.toThrow();
  });

  it('several listeners on one event all receive it', async () => {
    class Multi {
      @Cache()
      async v(): Promise<number> {
        return 1;
      }
    }
    const a = vi.fn();
    const b = vi.fn();
    service.on('miss', a);
    service.on('miss', b);
    await bindCachingService(new Multi(), service).v();
    expect(a).toHaveBeenCalledTimes(1);
    expect(b).toHaveBeenCalledTimes(1);
  });
});

describe('throwing listeners', () => {
  it('a listener that throws never breaks a call; the logger is told and other listeners still run', async () => {
    class Guarded {
      @Cache()
      async value(id: string): Promise<string> {
        addDependency('Dep');
        return id;
      }

      @Cache()
      syncValue(id: string): string {
        return id;
      }
    }
    const g = bindCachingService(new Guarded(), service);
    const names = ['hit', 'miss', 'set', 'invalidate'] as const;
    const after: string[] = [];
    for (const name of names) {
      service.on(name, () => {
        throw new Error(`listener for ${name} is broken`);
      });
      service.on(name, () => after.push(name));
    }
    await expect(g.value('a')).resolves.toBe('a');
    await expect(g.value('a')).resolves.toBe('a');
    expect(g.syncValue('b')).toBe('b');
    expect(g.syncValue('b')).toBe('b');
    await expect(service.invalidate('Dep')).resolves.toEqual({ pending: false });
    expect(after).toEqual(['miss', 'set', 'hit', 'miss', 'set', 'hit', 'invalidate']);
    expect(logger.error).toHaveBeenCalledTimes(7);
    const logged = logger.error.mock.calls.map(call => call[1]);
    expect(logged.every(e => e instanceof Error)).toBe(true);
    expect(service.stats().errors).toBe(7);
  });

  it("a listener throwing on 'skip' does not break the call either", async () => {
    class SkipThrows {
      @Cache({ cacheUndefined: false })
      nothing(): undefined {
        return undefined;
      }
    }
    service.on('skip', () => {
      throw new Error('skip listener broken');
    });
    const s = bindCachingService(new SkipThrows(), service);
    expect(() => s.nothing()).not.toThrow();
    expect(logger.error).toHaveBeenCalledTimes(1);
  });
});

describe('stats()', () => {
  it('counts hits, misses, sets, skips and invalidations', async () => {
    class Counters {
      @Cache()
      async a(id: string): Promise<string> {
        addDependency('Group');
        return id;
      }

      @Cache({ cacheUndefined: false })
      async none(): Promise<undefined> {
        return undefined;
      }
    }
    const c = bindCachingService(new Counters(), service);
    expect(service.stats()).toEqual({ hits: 0, misses: 0, joins: 0, sets: 0, skips: 0, invalidations: 0, invalidatedEntries: 0, errors: 0, failsafes: 0 });
    await c.a('x'); // miss, set
    await c.a('x'); // hit
    await c.a('y'); // miss, set
    await c.a('y'); // hit
    await c.a('y'); // hit
    await c.none(); // miss, skip
    await c.none(); // miss, skip
    await service.invalidate('Group'); // 1 invalidation removing 2 entries
    await service.invalidate('Nothing'); // 1 invalidation removing none
    expect(service.stats()).toEqual({ hits: 3, misses: 4, joins: 0, sets: 2, skips: 2, invalidations: 2, invalidatedEntries: 2, errors: 0, failsafes: 0 });
  });

  it('counts joins of an in-flight computation', async () => {
    const gate = deferred<string>();
    class Joined {
      @Cache()
      async load(id: string): Promise<string> {
        return `${id}${await gate.promise}`;
      }
    }
    const j = bindCachingService(new Joined(), service);
    const calls = [j.load('k'), j.load('k'), j.load('k'), j.load('k')];
    await flush();
    gate.resolve('!');
    await Promise.all(calls);
    const stats = service.stats();
    expect(stats.joins).toBe(3);
    expect(stats.sets).toBe(1);
    expect(stats.hits).toBe(0);
  });

  it('counts invalidations from invalidateCall and @InvalidateCache', async () => {
    class Inv {
      @Cache()
      async get(id: string): Promise<string> {
        return id;
      }

      @InvalidateCache('get')
      async put(id: string): Promise<void> {
        void id;
      }
    }
    const i = bindCachingService(new Inv(), service);
    await i.get('a');
    await i.get('b');
    await i.put('a');
    await service.invalidateCall(() => i.get('b'));
    expect(service.stats()).toMatchObject({ invalidations: 2, invalidatedEntries: 2 });
  });

  it('returns a snapshot that later calls do not change', () => {
    class Snap {
      @Cache()
      v(): number {
        return 1;
      }
    }
    const s = bindCachingService(new Snap(), service);
    const before = service.stats();
    s.v();
    s.v();
    expect(before.hits).toBe(0);
    expect(service.stats().hits).toBe(1);
  });
});
