// @Cache({ ttl, eagerRefresh }) (SPEC §14): a hit past `eagerRefresh × ttl` returns the cached value and refreshes
// the entry in the background, once (single-flight); the old value is served meanwhile, a failing refresh keeps
// it, and the refreshed value is served after. Time is a FakeClock; refreshes are held open with deferreds.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { addDependency, bindCachingService, Cache, CachingError, CachingService, MemoryBackend, readContext, setCacheOptions, type CachingBackend, type CachingServiceOptions } from 'aspect-cache';
import { ChaosBackend, FakeClock } from 'aspect-cache/testing';
import { deferred, flush, type Deferred } from '../support/deferred.js';
import { failureOf } from '../support/failure-of.js';

const SECOND = 1_000;

const services: CachingService[] = [];
afterEach(async () => {
  await Promise.all(services.splice(0).map(s => s.dispose()));
});

function makeService(makeBackend: (clock: FakeClock) => CachingBackend, options: CachingServiceOptions = {}) {
  const clock = new FakeClock();
  const logger = { warn: vi.fn(), error: vi.fn() };
  const service = new CachingService({ backend: makeBackend(clock), clock, telemetry: false, logger, ...options });
  services.push(service);
  const errors: Array<{ error: unknown; operation: string; key?: string }> = [];
  service.on('error', e => errors.push(e));
  return { service, clock, errors, logger };
}

/** A quote whose source can be held open (`gate`) or made to fail, one version per computation. */
class Quotes {
  version = 0;
  runs = 0;
  gate: Deferred<void> | undefined;
  failing = false;

  @Cache({ ttl: 10 * SECOND, eagerRefresh: 0.5 })
  async quote(id: string): Promise<string> {
    this.runs++;
    addDependency(`quote:${id}`);
    const version = ++this.version;
    await this.gate?.promise;
    if (this.failing) throw new Error('quote source down');
    return `${id} v${version}`;
  }

  /** The same without eager refresh. */
  @Cache({ ttl: 10 * SECOND })
  async plain(id: string): Promise<string> {
    this.runs++;
    return `${id} v${++this.version}`;
  }
}

const backends: Array<[string, (clock: FakeClock) => CachingBackend]> = [
  ['memory', clock => new MemoryBackend({ clock })],
  ['asynchronous backend', clock => new ChaosBackend(new MemoryBackend({ clock }))],
];

for (const [name, makeBackend] of backends) {
  describe(`eagerRefresh (${name})`, () => {
    it('before the refresh point a hit refreshes nothing; after it, one background refresh while the old value is served', async () => {
      const { service, clock } = makeService(makeBackend);
      const quotes = bindCachingService(new Quotes(), service);
      expect(await quotes.quote('a')).toBe('a v1');
      clock.advance(4_999);
      expect(await quotes.quote('a')).toBe('a v1');
      await flush();
      expect(quotes.runs).toBe(1);
      clock.advance(1); // 5 s: half the ttl
      const gate = (quotes.gate = deferred());
      const hits = await Promise.all([quotes.quote('a'), quotes.quote('a'), quotes.quote('a')]);
      expect(hits).toEqual(['a v1', 'a v1', 'a v1']);
      await flush();
      expect(await quotes.quote('a')).toBe('a v1'); // still the old value while the refresh runs
      await flush();
      expect(quotes.runs).toBe(2); // one refresh for all of them
      gate.resolve();
      quotes.gate = undefined;
      await flush();
      expect(await quotes.quote('a')).toBe('a v2');
      expect(quotes.runs).toBe(2);
      expect(service.stats()).toMatchObject({ misses: 1, sets: 2 });
    });

    it('the refreshed entry gets a new life: its own refresh point, then its own expiry', async () => {
      const { service, clock } = makeService(makeBackend);
      const quotes = bindCachingService(new Quotes(), service);
      await quotes.quote('b'); // v1 at t0
      clock.advance(6 * SECOND);
      expect(await quotes.quote('b')).toBe('b v1'); // refreshes: v2 stored at t0+6 s
      await flush();
      expect(await quotes.quote('b')).toBe('b v2');
      clock.advance(4_999); // t0+11 s: v1 would have expired; v2's refresh point is t0+11 s
      expect(await quotes.quote('b')).toBe('b v2');
      await flush();
      expect(quotes.runs).toBe(2);
      clock.advance(1);
      expect(await quotes.quote('b')).toBe('b v2');
      await flush();
      expect(quotes.runs).toBe(3);
      expect(await quotes.quote('b')).toBe('b v3');
    });

    it('a refresh that fails keeps the old value (reported as an error event); a later hit tries again', async () => {
      const { service, clock, errors } = makeService(makeBackend);
      const quotes = bindCachingService(new Quotes(), service);
      await quotes.quote('c');
      clock.advance(6 * SECOND);
      quotes.failing = true;
      expect(await quotes.quote('c')).toBe('c v1');
      await flush();
      expect(quotes.runs).toBe(2);
      expect(errors).toHaveLength(1);
      expect(errors[0]).toMatchObject({ operation: 'eager refresh', error: { message: 'quote source down' } });
      expect(errors[0]!.key).toContain('Quotes.quote');
      expect(await quotes.quote('c')).toBe('c v1'); // the old entry stays, and this hit starts another refresh
      await flush();
      expect(quotes.runs).toBe(3);
      quotes.failing = false;
      expect(await quotes.quote('c')).toBe('c v1');
      await flush();
      expect(await quotes.quote('c')).toBe('c v4');
      clock.advance(4 * SECOND); // v1 would have expired at 10 s; v4 lives
      expect(await quotes.quote('c')).toBe('c v4');
    });

    it('a refresh whose data is invalidated while it runs is not stored (its token was taken before it ran)', async () => {
      const { service, clock } = makeService(makeBackend);
      const quotes = bindCachingService(new Quotes(), service);
      await quotes.quote('d');
      clock.advance(6 * SECOND);
      const gate = (quotes.gate = deferred());
      expect(await quotes.quote('d')).toBe('d v1');
      await flush();
      expect(quotes.runs).toBe(2); // v2 is being computed from data about to change
      await service.invalidate('quote:d');
      quotes.gate = undefined;
      gate.resolve();
      await flush();
      expect(await quotes.quote('d')).toBe('d v3');
      expect(await quotes.quote('d')).toBe('d v3');
    });

    it('a method without eagerRefresh is never refreshed before its expiry', async () => {
      const { service, clock } = makeService(makeBackend);
      const quotes = bindCachingService(new Quotes(), service);
      await quotes.plain('e');
      clock.advance(9_999);
      expect(await quotes.plain('e')).toBe('e v1');
      await flush();
      expect(quotes.runs).toBe(1);
    });

    it('the refresh point is a fraction of the ttl setCacheOptions chose for the entry', async () => {
      const { service, clock } = makeService(makeBackend);
      let runs = 0;
      class Adaptive {
        @Cache({ ttl: 100 * SECOND, eagerRefresh: 0.5 })
        async value(): Promise<number> {
          runs++;
          setCacheOptions({ ttl: 4 * SECOND });
          return runs;
        }
      }
      const adaptive = bindCachingService(new Adaptive(), service);
      await adaptive.value();
      clock.advance(1_999);
      await adaptive.value();
      await flush();
      expect(runs).toBe(1);
      clock.advance(1); // 2 s = half of 4 s
      expect(await adaptive.value()).toBe(1);
      await flush();
      expect(runs).toBe(2);
      expect(await adaptive.value()).toBe(2);
    });

    it('an entry whose expiry a child capped before its refresh point is not refreshed eagerly: it expires with the child', async () => {
      const { service, clock } = makeService(makeBackend);
      const runs: string[] = [];
      class Capped {
        @Cache({ ttl: 3 * SECOND })
        async child(): Promise<string> {
          runs.push('child');
          return 'c';
        }
        @Cache({ ttl: 10 * SECOND, eagerRefresh: 0.5 })
        async parent(): Promise<string> {
          runs.push('parent');
          return `p(${await this.child()})`;
        }
      }
      const capped = bindCachingService(new Capped(), service);
      await capped.parent();
      for (let t = 0; t < 5; t++) {
        clock.advance(500);
        await capped.parent();
        await flush();
      }
      expect(runs).toEqual(['parent', 'child']); // no refresh storm at 2.5 s (the refresh point would be 5 s)
      clock.advance(500); // 3 s: the child, and with it the parent, expired
      await capped.parent();
      expect(runs).toEqual(['parent', 'child', 'parent', 'child']);
    });

    it("hits inside a cached parent hand up the child's key and dependencies as usual while it refreshes", async () => {
      const { service, clock } = makeService(makeBackend);
      const quotes = bindCachingService(new Quotes(), service);
      let parentRuns = 0;
      class Board {
        @Cache()
        async board(): Promise<string> {
          parentRuns++;
          return `board: ${await quotes.quote('f')}`;
        }
      }
      const board = bindCachingService(new Board(), service);
      await quotes.quote('f');
      clock.advance(6 * SECOND);
      const gate = (quotes.gate = deferred());
      expect(await board.board()).toBe('board: f v1'); // the child's hit starts its refresh
      quotes.gate = undefined;
      gate.resolve();
      await flush();
      await service.invalidate('quote:f');
      expect(await board.board()).toBe('board: f v3');
      expect(parentRuns).toBe(2);
    });
  });
}

describe('eagerRefresh on a synchronous method (memory)', () => {
  it('the hit stays synchronous and returns the old value; the refresh runs right after', async () => {
    const { service, clock } = makeService(clock => new MemoryBackend({ clock }));
    let version = 0;
    class Sync {
      @Cache({ ttl: 10 * SECOND, eagerRefresh: 0.8 })
      value(): number {
        return ++version;
      }
    }
    const sync = bindCachingService(new Sync(), service);
    expect(sync.value()).toBe(1);
    clock.advance(8 * SECOND);
    expect(sync.value()).toBe(1);
    expect(version).toBe(1); // not run inside the caller's call
    await flush();
    expect(version).toBe(2);
    expect(sync.value()).toBe(2);
  });
});

describe('eagerRefresh with vary-by contexts', () => {
  for (const [name, makeBackend] of backends) {
    it(`refreshes the variant that was hit, with its own context values (${name})`, async () => {
      let tenant = 'acme';
      const { service, clock } = makeService(makeBackend, { contexts: { tenant: () => tenant } });
      const reads: string[] = [];
      const prices = new Map([
        ['acme', 10],
        ['globex', 20],
      ]);
      class Prices {
        @Cache({ ttl: 10 * SECOND, eagerRefresh: 0.5 })
        async price(): Promise<number> {
          const t = readContext('tenant') as string;
          reads.push(t);
          return prices.get(t)!;
        }
      }
      const p = bindCachingService(new Prices(), service);
      expect(await p.price()).toBe(10);
      tenant = 'globex';
      expect(await p.price()).toBe(20);
      clock.advance(6 * SECOND);
      prices.set('globex', 21);
      expect(await p.price()).toBe(20); // globex's entry refreshes in the background, with globex's values
      await flush();
      expect(reads).toEqual(['acme', 'globex', 'globex']);
      expect(await p.price()).toBe(21);
      tenant = 'acme';
      expect(await p.price()).toBe(10); // acme's entry was not touched; now it refreshes too
      await flush();
      expect(reads).toEqual(['acme', 'globex', 'globex', 'acme']);
      tenant = 'globex';
      expect(await p.price()).toBe(21);
    });
  }
});

describe('eagerRefresh options', () => {
  it('must be a fraction strictly between 0 and 1, or false', () => {
    for (const bad of [0, 1, 1.5, -0.2, Number.NaN, '0.5', true]) {
      let error: unknown;
      try {
        class Bad {
          @Cache({ ttl: 1_000, eagerRefresh: bad as never })
          async v(): Promise<number> {
            return 1;
          }
        }
        void Bad;
      } catch (e) {
        error = e;
      }
      expect(error, String(bad)).toBeInstanceOf(CachingError);
      expect((error as Error).message).toMatch(/option eagerRefresh must be a fraction of the ttl between 0 and 1/);
    }
    expect(() => new CachingService({ profiles: { p: { eagerRefresh: 2 } } })).toThrow(/eagerRefresh/);
  });

  it('without a ttl once profile and defaults apply, the first call fails with a CachingError and runs nothing', async () => {
    const { service } = makeService(clock => new MemoryBackend({ clock }), { profiles: { eager: { eagerRefresh: 0.5 } } });
    let runs = 0;
    class NoTtl {
      @Cache({ profile: 'eager' })
      async v(): Promise<number> {
        return ++runs;
      }
    }
    const error = await failureOf(() => bindCachingService(new NoTtl(), service).v());
    expect(error).toMatchObject({ code: 'E_INVALID_OPTION' });
    expect((error as Error).message).toMatch(/NoTtl\.v: eagerRefresh \(0\.5\) is a fraction of the ttl, but no ttl applies/);
    expect(runs).toBe(0);
  });

  it("a profile's eagerRefresh applies with the defaults' ttl; eagerRefresh: false turns it off for one method", async () => {
    const { service, clock } = makeService(clock => new MemoryBackend({ clock }), { defaults: { ttl: 10 * SECOND }, profiles: { eager: { eagerRefresh: 0.5 } } });
    const runs: string[] = [];
    class Profiled {
      @Cache({ profile: 'eager' })
      async on(): Promise<number> {
        runs.push('on');
        return runs.length;
      }
      @Cache({ profile: 'eager', eagerRefresh: false })
      async off(): Promise<number> {
        runs.push('off');
        return runs.length;
      }
    }
    const p = bindCachingService(new Profiled(), service);
    await p.on();
    await p.off();
    clock.advance(6 * SECOND);
    await p.on();
    await p.off();
    await flush();
    expect(runs).toEqual(['on', 'off', 'on']);
  });

  it('a refresh still running when the service is disposed reports nothing', async () => {
    const { service, clock, errors, logger } = makeService(clock => new MemoryBackend({ clock }));
    const quotes = bindCachingService(new Quotes(), service);
    await quotes.quote('z');
    clock.advance(6 * SECOND);
    const gate = (quotes.gate = deferred());
    await quotes.quote('z');
    await flush();
    await service.dispose();
    quotes.failing = true;
    gate.resolve();
    await flush();
    expect(errors).toEqual([]);
    expect(logger.error).not.toHaveBeenCalled();
  });
});
