// setCacheOptions({ ttl, sliding, skip }) (SPEC §14): adaptive caching — the running computation's entry uses
// the given ttl / sliding window instead of the method's, or is not stored; expiry propagates as usual (a
// parent never outlives a child, on the miss and on later hits). Time is a FakeClock.
import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  addDependency,
  bindCachingService,
  Cache,
  CachingError,
  CachingService,
  MemoryBackend,
  setCacheOptions,
  suspendDependencyPropagation,
  type CacheEntryOptions,
  type CachingBackend,
  type SkipReason,
} from 'aspect-cache';
import { ChaosBackend, FakeClock } from 'aspect-cache/testing';
import { deferred, flush } from '../support/deferred.js';

const SECOND = 1_000;

const services: CachingService[] = [];
afterEach(async () => {
  await Promise.all(services.splice(0).map(s => s.dispose()));
});

function makeService(makeBackend: (clock: FakeClock) => CachingBackend) {
  const clock = new FakeClock();
  const service = new CachingService({ backend: makeBackend(clock), clock, telemetry: false, logger: { warn: vi.fn(), error: vi.fn() } });
  services.push(service);
  const skips: Array<{ key: string; reason: SkipReason }> = [];
  service.on('skip', e => skips.push({ key: e.key, reason: e.reason }));
  const sets: Array<{ key: string; expiresAt: number }> = [];
  service.on('set', e => sets.push({ key: e.key, expiresAt: e.expiresAt }));
  return { service, clock, skips, sets };
}

/** Orders whose cache options depend on their status (what adaptive caching is for). */
class Orders {
  readonly statuses = new Map<string, string>();
  /** What getOrder passes to setCacheOptions (per id), if anything. */
  readonly adjust = new Map<string, CacheEntryOptions>();
  readonly runs = new Map<string, number>();

  #count(name: string): void {
    this.runs.set(name, (this.runs.get(name) ?? 0) + 1);
  }

  @Cache({ ttl: 60 * SECOND })
  async getOrder(id: string): Promise<string> {
    this.#count(`order:${id}`);
    addDependency(`order:${id}`);
    const adjust = this.adjust.get(id);
    if (adjust !== undefined) setCacheOptions(adjust);
    return this.statuses.get(id) ?? 'new';
  }

  /** No ttl of its own: it lives as long as the orders it shows. */
  @Cache()
  async getSummary(a: string, b: string): Promise<string> {
    this.#count(`summary:${a}+${b}`);
    return `${await this.getOrder(a)}/${await this.getOrder(b)}`;
  }

  @Cache()
  async getBadge(id: string): Promise<string> {
    this.#count(`badge:${id}`);
    return `[${await this.getOrder(id)}]`;
  }

  /** No ttl at all unless the computation asks. */
  @Cache()
  async getNote(id: string): Promise<string> {
    this.#count(`note:${id}`);
    const adjust = this.adjust.get(id);
    if (adjust !== undefined) setCacheOptions(adjust);
    return `note ${id}`;
  }

  of(name: string): number {
    return this.runs.get(name) ?? 0;
  }
}

const backends: Array<[string, (clock: FakeClock) => CachingBackend]> = [
  ['memory', clock => new MemoryBackend({ clock })],
  ['asynchronous backend', clock => new ChaosBackend(new MemoryBackend({ clock }))],
];

for (const [name, makeBackend] of backends) {
  describe(`setCacheOptions (${name})`, () => {
    it("a shorter ttl replaces the method's for this entry only", async () => {
      const { service, clock } = makeService(makeBackend);
      const orders = bindCachingService(new Orders(), service);
      orders.adjust.set('draft', { ttl: 2 * SECOND });
      await orders.getOrder('draft');
      await orders.getOrder('paid');
      clock.advance(1_999);
      await orders.getOrder('draft');
      expect(orders.of('order:draft')).toBe(1);
      clock.advance(1);
      await orders.getOrder('draft');
      await orders.getOrder('paid');
      expect(orders.of('order:draft')).toBe(2);
      expect(orders.of('order:paid')).toBe(1); // the method's own 60 s
    });

    it("a longer ttl outlives the method's", async () => {
      const { service, clock } = makeService(makeBackend);
      const orders = bindCachingService(new Orders(), service);
      orders.adjust.set('delivered', { ttl: 3_600 * SECOND });
      await orders.getOrder('delivered');
      clock.advance(10 * 60 * SECOND);
      await orders.getOrder('delivered');
      expect(orders.of('order:delivered')).toBe(1);
      clock.advance(3_600 * SECOND);
      await orders.getOrder('delivered');
      expect(orders.of('order:delivered')).toBe(2);
    });

    it('gives a ttl to a method that has none', async () => {
      const { service, clock, sets } = makeService(makeBackend);
      const orders = bindCachingService(new Orders(), service);
      orders.adjust.set('n1', { ttl: 5 * SECOND });
      const start = clock.now();
      await orders.getNote('n1');
      expect(sets.at(-1)!.expiresAt).toBe(start + 5 * SECOND);
      clock.advance(5 * SECOND);
      await orders.getNote('n1');
      expect(orders.of('note:n1')).toBe(2);
    });

    it("a parent never outlives the child's adjusted expiry: on the child's miss, and on a later hit", async () => {
      const { service, clock } = makeService(makeBackend);
      const orders = bindCachingService(new Orders(), service);
      orders.adjust.set('a', { ttl: 10 * SECOND });
      await orders.getSummary('a', 'b'); // child 'a' computed now: expires at +10 s
      clock.advance(4 * SECOND);
      await orders.getBadge('a'); // child 'a' is a hit: the badge learns its expiry (+10 s from the start)
      expect(orders.of('order:a')).toBe(1);
      clock.advance(5_999);
      await orders.getSummary('a', 'b');
      await orders.getBadge('a');
      expect(orders.of('summary:a+b')).toBe(1);
      expect(orders.of('badge:a')).toBe(1);
      clock.advance(1);
      await orders.getSummary('a', 'b');
      await orders.getBadge('a');
      expect(orders.of('summary:a+b')).toBe(2);
      expect(orders.of('badge:a')).toBe(2);
      expect(orders.of('order:b')).toBe(1); // b keeps its 60 s
    });

    it('a sliding window keeps the entry while it is read and lets it lapse otherwise; the parent gets the window', async () => {
      const { service, clock } = makeService(makeBackend);
      const orders = bindCachingService(new Orders(), service);
      orders.adjust.set('s', { sliding: 2 * SECOND });
      await orders.getBadge('s'); // parent computed with the child's window
      for (let i = 0; i < 3; i++) {
        clock.advance(1_500);
        await orders.getOrder('s');
      }
      expect(orders.of('order:s')).toBe(1); // read within each window: still there after 4.5 s
      await orders.getBadge('s');
      expect(orders.of('badge:s')).toBe(2); // the parent expired with the window it was handed (2 s)
      clock.advance(2 * SECOND);
      await orders.getOrder('s');
      expect(orders.of('order:s')).toBe(2);
    });

    it('skip: true returns the value without storing it (skip, reason requested); its parent still depends on it', async () => {
      const { service, skips } = makeService(makeBackend);
      const orders = bindCachingService(new Orders(), service);
      orders.adjust.set('d', { skip: true });
      orders.statuses.set('d', 'draft');
      expect(await orders.getOrder('d')).toBe('draft');
      expect(await orders.getOrder('d')).toBe('draft');
      expect(orders.of('order:d')).toBe(2);
      expect(skips.map(s => s.reason)).toEqual(['requested', 'requested']);
      expect(await orders.getBadge('d')).toBe('[draft]');
      expect(await orders.getBadge('d')).toBe('[draft]');
      expect(orders.of('badge:d')).toBe(1);
      orders.statuses.set('d', 'paid');
      await service.invalidate('order:d');
      expect(await orders.getBadge('d')).toBe('[paid]');
    });

    it('calls merge: the last value of each option wins, and skip: false undoes skip: true', async () => {
      const { service, clock, skips } = makeService(makeBackend);
      let runs = 0;
      class Merging {
        @Cache({ ttl: 60 * SECOND })
        async value(): Promise<number> {
          runs++;
          setCacheOptions({ ttl: 1 * SECOND, skip: true });
          setCacheOptions({ ttl: 3 * SECOND });
          setCacheOptions({ skip: false });
          return runs;
        }
      }
      const m = bindCachingService(new Merging(), service);
      await m.value();
      clock.advance(2_999);
      await m.value();
      expect(runs).toBe(1);
      clock.advance(1);
      await m.value();
      expect(runs).toBe(2);
      expect(skips).toEqual([]);
    });

    it("acts on the computation running now only: a child's options do not reach its parent's entry, nor a parent's its child's", async () => {
      const { service, clock } = makeService(makeBackend);
      const runs: string[] = [];
      class Tree {
        @Cache({ ttl: 10 * SECOND })
        async child(): Promise<string> {
          runs.push('child');
          setCacheOptions({ ttl: 50 * SECOND });
          return 'c';
        }
        /** Its own 20 s: the child's 50 s only caps it. */
        @Cache({ ttl: 20 * SECOND })
        async plain(): Promise<string> {
          runs.push('plain');
          return `p(${await this.child()})`;
        }
        /** Asks for 5 s after calling the child: its own entry only. */
        @Cache({ ttl: 20 * SECOND })
        async short(): Promise<string> {
          runs.push('short');
          const c = await this.child();
          setCacheOptions({ ttl: 5 * SECOND });
          return `s(${c})`;
        }
      }
      const tree = bindCachingService(new Tree(), service);
      await tree.short();
      await tree.plain();
      expect(runs).toEqual(['short', 'child', 'plain']);
      clock.advance(5 * SECOND);
      await tree.short();
      expect(runs).toEqual(['short', 'child', 'plain', 'short']); // the child (50 s) is still a hit
      clock.advance(15 * SECOND);
      await tree.plain();
      await tree.child();
      expect(runs).toEqual(['short', 'child', 'plain', 'short', 'plain']); // 20 s, not the child's 50 s
    });

    it('does nothing outside a cached method, inside suspendDependencyPropagation, or after the method returned', async () => {
      const { service, clock } = makeService(makeBackend);
      expect(() => setCacheOptions({ ttl: 1, skip: true })).not.toThrow();
      const late = deferred();
      let runs = 0;
      class Scoped {
        @Cache({ ttl: 60 * SECOND })
        async value(): Promise<number> {
          runs++;
          suspendDependencyPropagation(() => setCacheOptions({ skip: true }));
          void late.promise.then(() => setCacheOptions({ ttl: 1 }));
          return runs;
        }
      }
      const scoped = bindCachingService(new Scoped(), service);
      await scoped.value();
      late.resolve();
      await flush();
      clock.advance(30 * SECOND);
      await scoped.value();
      expect(runs).toBe(1);
    });
  });
}

describe('setCacheOptions on a synchronous method (memory)', () => {
  it('applies to the entry of a synchronous computation', () => {
    const { service, clock } = makeService(clock => new MemoryBackend({ clock }));
    let runs = 0;
    class Sync {
      @Cache()
      value(): number {
        runs++;
        setCacheOptions({ ttl: 1 * SECOND });
        return runs;
      }
    }
    const sync = bindCachingService(new Sync(), service);
    expect(sync.value()).toBe(1);
    clock.advance(999);
    expect(sync.value()).toBe(1);
    clock.advance(1);
    expect(sync.value()).toBe(2);
  });
});

describe('setCacheOptions argument checks', () => {
  const cases: Array<[string, unknown, RegExp]> = [
    ['a misspelt option', { ttlMs: 5 }, /unknown option 'ttlMs'; did you mean 'ttl'/],
    ['slidingExpiration for sliding', { slidingExpiration: 5 }, /unknown option 'slidingExpiration'; did you mean 'sliding'/],
    ['a negative ttl', { ttl: -1 }, /option ttl must be a positive number of milliseconds, got -1/],
    ['a zero ttl', { ttl: 0 }, /option ttl must be a positive number/],
    ['an infinite sliding', { sliding: Infinity }, /option sliding must be a positive number/],
    ['a string ttl', { ttl: '5s' }, /option ttl must be a positive number of milliseconds, got "5s"/],
    ['a non-boolean skip', { skip: 'yes' }, /option skip must be true or false/],
    ['sliding not shorter than ttl', { ttl: 1_000, sliding: 1_000 }, /option sliding \(1000 ms\) must be shorter than ttl \(1000 ms\)/],
    ['not an object', 5, /pass an object/],
    ['null', null, /pass an object/],
  ];
  for (const [what, argument, message] of cases) {
    it(`${what} is a CachingError naming the option, inside and outside a cached method`, async () => {
      const call = () => setCacheOptions(argument as CacheEntryOptions);
      expect(call).toThrow(CachingError);
      expect(call).toThrow(message);
      const { service } = makeService(clock => new MemoryBackend({ clock }));
      class Bad {
        @Cache()
        async value(): Promise<number> {
          setCacheOptions(argument as CacheEntryOptions);
          return 1;
        }
      }
      await expect(bindCachingService(new Bad(), service).value()).rejects.toMatchObject({ code: 'E_INVALID_OPTION', message: expect.stringMatching(message) });
    });
  }
});
