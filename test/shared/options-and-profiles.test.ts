import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  addDependency,
  bindCachingService,
  Cache,
  CacheConfiguration,
  CachingError,
  CachingService,
  MemoryBackend,
  type CacheOptions,
  type CachingServiceOptions,
  type Clock,
} from 'aspect-cache';
import { failureOf } from '../support/failure-of.js';

// Options per method, class, profile and service (SPEC §7): eager validation, precedence, profiles with
// their own backends, and invalidation across all of them.

class ManualClock implements Clock {
  constructor(public time = 1_000_000) {}

  now(): number {
    return this.time;
  }
}

const services: CachingService[] = [];

function makeService(options: CachingServiceOptions = {}): CachingService {
  const service = new CachingService({ logger: { debug: vi.fn(), warn: vi.fn(), error: vi.fn() }, ...options });
  services.push(service);
  return service;
}

afterEach(async () => {
  await Promise.all(services.splice(0).map(s => s.dispose()));
});

function syncFailureOf(fn: () => unknown): unknown {
  try {
    fn();
  } catch (error) {
    return error;
  }
  throw new Error('expected a throw, none happened');
}

describe('option validation at decoration', () => {
  const invalid: Array<[string, Record<string, unknown>]> = [
    ['ttl', { ttl: -1 }],
    ['ttl', { ttl: 0 }],
    ['ttl', { ttl: Number.NaN }],
    ['ttl', { ttl: '5s' }],
    ['slidingExpiration', { slidingExpiration: -10 }],
    ['slidingExpiration', { slidingExpiration: 0 }],
    ['slidingExpiration', { slidingExpiration: Number.NaN }],
    ['slidingExpiration', { ttl: 1_000, slidingExpiration: 1_000 }],
    ['slidingExpiration', { ttl: 1_000, slidingExpiration: 5_000 }],
    ['enabled', { enabled: 'yes' }],
    ['cacheUndefined', { cacheUndefined: 0 }],
    ['profile', { profile: '' }],
  ];

  it.each(invalid)('@Cache with an invalid %s (%j) throws E_INVALID_OPTION naming it when the class is defined', (name, options) => {
    const define = () => {
      class BadOptions {
        @Cache(options as CacheOptions)
        async get(id: string): Promise<string> {
          return id;
        }
      }
      return BadOptions;
    };
    expect(define).toThrow(CachingError);
    const error = syncFailureOf(define);
    expect(error).toMatchObject({ code: 'E_INVALID_OPTION' });
    expect((error as Error).message).toContain(name);
  });

  it("an unknown option name (typo 'tll') is rejected at decoration, naming it", () => {
    const define = () => {
      class Typo {
        @Cache({ tll: 5_000 } as unknown as CacheOptions)
        async get(id: string): Promise<string> {
          return id;
        }
      }
      return Typo;
    };
    const error = syncFailureOf(define);
    expect(error).toBeInstanceOf(CachingError);
    expect(error).toMatchObject({ code: 'E_INVALID_OPTION' });
    expect((error as Error).message).toContain("'tll'");
  });

  it('@CacheConfiguration validates its options when the class is defined', () => {
    const error = syncFailureOf(() => {
      @CacheConfiguration({ ttl: -5 })
      class BadClassOptions {
        @Cache()
        async get(id: string): Promise<string> {
          return id;
        }
      }
      return BadClassOptions;
    });
    expect(error).toBeInstanceOf(CachingError);
    expect(error).toMatchObject({ code: 'E_INVALID_OPTION' });
    expect((error as Error).message).toContain('ttl');
  });

  it('valid options do not throw at decoration', () => {
    expect(() => {
      class GoodOptions {
        @Cache({ ttl: 1_000, slidingExpiration: 500, cacheUndefined: false, enabled: true, ignoreThis: true, profile: 'any' })
        async get(id: string): Promise<string> {
          return id;
        }
      }
      return GoodOptions;
    }).not.toThrow();
  });
});

describe('option validation in the service', () => {
  it('an invalid profile option fails the CachingService constructor, naming the profile and the option', () => {
    const error = syncFailureOf(() => new CachingService({ profiles: { hot: { ttl: -1 } } }));
    expect(error).toBeInstanceOf(CachingError);
    expect(error).toMatchObject({ code: 'E_INVALID_OPTION' });
    expect((error as Error).message).toContain('hot');
    expect((error as Error).message).toContain('ttl');
  });

  it('an unknown profile option fails the constructor', () => {
    const error = syncFailureOf(() => new CachingService({ profiles: { hot: { tll: 5 } as never } }));
    expect(error).toMatchObject({ code: 'E_INVALID_OPTION' });
    expect((error as Error).message).toContain('tll');
  });

  it('invalid defaults fail the constructor', () => {
    const error = syncFailureOf(() => new CachingService({ defaults: { slidingExpiration: Number.NaN } }));
    expect(error).toMatchObject({ code: 'E_INVALID_OPTION' });
    expect((error as Error).message).toContain('slidingExpiration');
  });

  it('a slidingExpiration that reaches the ttl once profile and method options combine fails before the method runs', async () => {
    const service = makeService({ profiles: { short: { ttl: 1_000 } } });
    let runs = 0;
    class Combined {
      @Cache({ profile: 'short', slidingExpiration: 2_000 })
      async get(id: string): Promise<string> {
        runs++;
        return id;
      }
    }
    const combined = bindCachingService(new Combined(), service);
    const error = await failureOf(() => combined.get('a'));
    expect(error).toMatchObject({ code: 'E_INVALID_OPTION' });
    expect((error as Error).message).toContain('slidingExpiration');
    expect(runs).toBe(0);
  });
});

describe('enabled', () => {
  it('enabled: false runs the method on every call and stores nothing', async () => {
    const service = makeService();
    let asyncRuns = 0;
    let syncRuns = 0;
    class Uncached {
      @Cache({ enabled: false })
      async load(id: string): Promise<string> {
        asyncRuns++;
        return id;
      }

      @Cache({ enabled: false })
      compute(n: number): number {
        syncRuns++;
        return n + 1;
      }
    }
    const u = bindCachingService(new Uncached(), service);
    for (let i = 0; i < 3; i++) {
      await expect(u.load('x')).resolves.toBe('x');
      expect(u.compute(1)).toBe(2);
    }
    expect(asyncRuns).toBe(3);
    expect(syncRuns).toBe(3);
    expect(service.stats()).toMatchObject({ hits: 0, sets: 0 });
  });
});

describe('profiles', () => {
  it("@Cache({ profile: 'hot' }) stores into the hot profile's backend and uses its ttl", async () => {
    const clock = new ManualClock();
    const mainBackend = new MemoryBackend({ clock });
    const hotBackend = new MemoryBackend({ clock });
    const service = makeService({ backend: mainBackend, clock, profiles: { hot: { ttl: 5_000, backend: hotBackend } } });
    const runs: string[] = [];
    class Quotes {
      @Cache({ profile: 'hot' })
      async live(symbol: string): Promise<string> {
        runs.push(`live ${symbol}`);
        return `${symbol}@${clock.now()}`;
      }

      @Cache()
      async history(symbol: string): Promise<string> {
        runs.push(`history ${symbol}`);
        return `history of ${symbol}`;
      }
    }
    const expiries: number[] = [];
    service.on('set', e => expiries.push(e.expiresAt));
    const quotes = bindCachingService(new Quotes(), service);

    await quotes.live('ACME');
    expect(hotBackend.size).toBe(1);
    expect(mainBackend.size).toBe(0);
    expect(expiries).toEqual([clock.now() + 5_000]);

    await quotes.history('ACME');
    expect(mainBackend.size).toBe(1);
    expect(hotBackend.size).toBe(1);

    clock.time += 4_999;
    await quotes.live('ACME');
    expect(runs).toEqual(['live ACME', 'history ACME']);
    clock.time += 1;
    await quotes.live('ACME');
    await quotes.history('ACME');
    expect(runs).toEqual(['live ACME', 'history ACME', 'live ACME']);
  });

  it('an unknown profile fails on the first call with E_UNKNOWN_PROFILE naming it, without running the method', async () => {
    const service = makeService({ profiles: { hot: { ttl: 1_000 } } });
    let runs = 0;
    class Misconfigured {
      @Cache({ profile: 'warm' })
      async get(id: string): Promise<string> {
        runs++;
        return id;
      }
    }
    // Profiles belong to services: decoration alone cannot know, so the class is defined fine.
    const m = bindCachingService(new Misconfigured(), service);
    const error = await failureOf(() => m.get('a'));
    expect(error).toBeInstanceOf(CachingError);
    expect(error).toMatchObject({ code: 'E_UNKNOWN_PROFILE' });
    expect((error as Error).message).toContain('warm');
    // and it keeps failing rather than silently caching
    expect(await failureOf(() => m.get('a'))).toMatchObject({ code: 'E_UNKNOWN_PROFILE' });
    expect(runs).toBe(0);
  });

  it('an async method reports E_UNKNOWN_PROFILE as a rejection, never as a synchronous throw', async () => {
    const service = makeService();
    class AsyncMisconfigured {
      @Cache({ profile: 'missing' })
      async get(id: string): Promise<string> {
        return id;
      }
    }
    const m = bindCachingService(new AsyncMisconfigured(), service);
    let result: Promise<string> | undefined;
    expect(() => {
      result = m.get('a');
    }).not.toThrow();
    await expect(result).rejects.toMatchObject({ code: 'E_UNKNOWN_PROFILE' });
  });

  it('a disabled profile runs its methods directly', async () => {
    const service = makeService({ profiles: { off: { enabled: false } } });
    let runs = 0;
    class Direct {
      @Cache({ profile: 'off' })
      async get(id: string): Promise<string> {
        runs++;
        return id;
      }
    }
    const d = bindCachingService(new Direct(), service);
    await d.get('a');
    await d.get('a');
    await d.get('a');
    expect(runs).toBe(3);
    expect(service.stats().sets).toBe(0);
  });

  it("a profile named 'default' applies to methods that name no profile", async () => {
    const clock = new ManualClock();
    const service = makeService({ clock, profiles: { default: { ttl: 100 } } });
    let runs = 0;
    class UsesDefault {
      @Cache()
      async get(id: string): Promise<string> {
        runs++;
        return id;
      }
    }
    const u = bindCachingService(new UsesDefault(), service);
    await u.get('a');
    clock.time += 99;
    await u.get('a');
    expect(runs).toBe(1);
    clock.time += 1;
    await u.get('a');
    expect(runs).toBe(2);
  });

  it('method options override profile options', async () => {
    const clock = new ManualClock();
    const service = makeService({ clock, profiles: { slow: { ttl: 10_000 } } });
    let runs = 0;
    class Overrides {
      @Cache({ profile: 'slow', ttl: 1_000 })
      async get(id: string): Promise<string> {
        runs++;
        return id;
      }
    }
    const o = bindCachingService(new Overrides(), service);
    await o.get('a');
    clock.time += 1_000;
    await o.get('a');
    expect(runs).toBe(2);
  });

  it('invalidation reaches every backend of every profile', async () => {
    const hot = new MemoryBackend();
    const cold = new MemoryBackend();
    const service = makeService({ profiles: { hot: { backend: hot }, cold: { backend: cold } } });
    const runs: string[] = [];
    class Spread {
      @Cache({ profile: 'hot' })
      async a(): Promise<string> {
        runs.push('a');
        addDependency('Catalogue');
        return 'a';
      }

      @Cache({ profile: 'cold' })
      async b(): Promise<string> {
        runs.push('b');
        addDependency('Catalogue');
        return 'b';
      }

      @Cache()
      async c(): Promise<string> {
        runs.push('c');
        addDependency('Catalogue');
        return 'c';
      }
    }
    const s = bindCachingService(new Spread(), service);
    await Promise.all([s.a(), s.b(), s.c()]);
    expect(hot.size + cold.size + (service.backend as MemoryBackend).size).toBe(3);
    const removed: string[] = [];
    service.on('invalidate', e => removed.push(...e.entries));
    await service.invalidate('Catalogue');
    expect(removed).toHaveLength(3);
    expect(hot.size).toBe(0);
    expect(cold.size).toBe(0);
    await Promise.all([s.a(), s.b(), s.c()]);
    expect(runs.sort()).toEqual(['a', 'a', 'b', 'b', 'c', 'c']);
  });

  it("invalidateCall removes an entry stored in a profile's own backend", async () => {
    const hot = new MemoryBackend();
    const service = makeService({ profiles: { hot: { backend: hot } } });
    let runs = 0;
    class HotOnly {
      @Cache({ profile: 'hot' })
      async get(id: string): Promise<string> {
        runs++;
        return id;
      }
    }
    const h = bindCachingService(new HotOnly(), service);
    await h.get('a');
    await service.invalidateCall(() => h.get('a'));
    expect(hot.size).toBe(0);
    await h.get('a');
    expect(runs).toBe(2);
  });
});

describe('ignoreThis at every level', () => {
  // Instances with their own key normally get their own entries; ignoreThis at the method, class, profile
  // or service level makes them share one (SPEC §7: options per method, per profile and per service).
  function tenantClass(decorate: 'class' | 'profile' | 'defaults', runs: string[]) {
    if (decorate === 'class') {
      @CacheConfiguration({ ignoreThis: true })
      class ClassLevelTenant {
        constructor(readonly id: string) {}

        getCacheKey(): string {
          return this.id;
        }

        @Cache()
        async regions(kind: string): Promise<string> {
          runs.push(`${this.id}/${kind}`);
          return `regions ${kind}`;
        }
      }
      return ClassLevelTenant;
    }
    class ProfileOrDefaultsTenant {
      constructor(readonly id: string) {}

      getCacheKey(): string {
        return this.id;
      }

      @Cache({ profile: 'shared' })
      async regions(kind: string): Promise<string> {
        runs.push(`${this.id}/${kind}`);
        return `regions ${kind}`;
      }
    }
    return ProfileOrDefaultsTenant;
  }

  it.each([
    ['@CacheConfiguration', 'class' as const, {}],
    ['a profile', 'profile' as const, { profiles: { shared: { ignoreThis: true } } }],
    ['the service defaults', 'defaults' as const, { profiles: { shared: {} }, defaults: { ignoreThis: true } }],
  ])('ignoreThis: true set by %s makes keyed instances share entries', async (_label, level, options) => {
    const service = makeService(options as CachingServiceOptions);
    const runs: string[] = [];
    const Tenant = tenantClass(level, runs);
    const acme = bindCachingService(new Tenant('acme'), service);
    const initech = bindCachingService(new Tenant('initech'), service);
    await expect(acme.regions('eu')).resolves.toBe('regions eu');
    await expect(initech.regions('eu')).resolves.toBe('regions eu');
    expect(runs).toEqual(['acme/eu']);
  });
});

describe('service defaults', () => {
  it('defaults.ttl applies to methods without their own ttl; a method ttl overrides it', async () => {
    const clock = new ManualClock();
    const service = makeService({ clock, defaults: { ttl: 1_000 } });
    const runs: string[] = [];
    class WithDefaults {
      @Cache()
      async short(id: string): Promise<string> {
        runs.push(`short ${id}`);
        return id;
      }

      @Cache({ ttl: 60_000 })
      async long(id: string): Promise<string> {
        runs.push(`long ${id}`);
        return id;
      }
    }
    const w = bindCachingService(new WithDefaults(), service);
    await w.short('a');
    await w.long('a');
    clock.time += 1_000;
    await w.short('a');
    await w.long('a');
    expect(runs).toEqual(['short a', 'long a', 'short a']);
  });

  it('defaults.profile routes methods without a profile to that profile', async () => {
    const hot = new MemoryBackend();
    const main = new MemoryBackend();
    const service = makeService({ backend: main, profiles: { hot: { backend: hot } }, defaults: { profile: 'hot' } });
    class Routed {
      @Cache()
      async get(id: string): Promise<string> {
        return id;
      }
    }
    await bindCachingService(new Routed(), service).get('x');
    expect(hot.size).toBe(1);
    expect(main.size).toBe(0);
  });

  it('defaults.cacheUndefined: false applies to every method, and a method can opt back in', async () => {
    const service = makeService({ defaults: { cacheUndefined: false } });
    const runs: string[] = [];
    class Undefineds {
      @Cache()
      async inherits(): Promise<undefined> {
        runs.push('inherits');
        return undefined;
      }

      @Cache({ cacheUndefined: true })
      async optsIn(): Promise<undefined> {
        runs.push('optsIn');
        return undefined;
      }
    }
    const u = bindCachingService(new Undefineds(), service);
    await u.inherits();
    await u.inherits();
    await u.optsIn();
    await u.optsIn();
    expect(runs).toEqual(['inherits', 'inherits', 'optsIn']);
  });

  it('defaults.enabled: false disables caching unless a method enables it', async () => {
    const service = makeService({ defaults: { enabled: false } });
    const runs: string[] = [];
    class Toggles {
      @Cache()
      async off(): Promise<number> {
        runs.push('off');
        return 1;
      }

      @Cache({ enabled: true })
      async on(): Promise<number> {
        runs.push('on');
        return 2;
      }
    }
    const t = bindCachingService(new Toggles(), service);
    await t.off();
    await t.off();
    await t.on();
    await t.on();
    expect(runs).toEqual(['off', 'off', 'on']);
  });

  it('keyPrefix is prepended to every key', async () => {
    const service = makeService({ keyPrefix: 'tenant-7:' });
    const keys: string[] = [];
    service.on('miss', e => keys.push(e.key));
    class Prefixed {
      @Cache()
      async get(id: string): Promise<string> {
        return id;
      }
    }
    await bindCachingService(new Prefixed(), service).get('a');
    expect(keys).toHaveLength(1);
    expect(keys[0]!.startsWith('tenant-7:')).toBe(true);
  });
});

describe('@CacheConfiguration', () => {
  it('sets class-level scope and profile for the class\'s @Cache methods', async () => {
    const hot = new MemoryBackend();
    const main = new MemoryBackend();
    const service = makeService({ backend: main, profiles: { hot: { backend: hot } } });
    const keys: string[] = [];
    service.on('miss', e => keys.push(e.key));

    @CacheConfiguration({ scope: 'billing.UserService', profile: 'hot' })
    class UserService {
      @Cache()
      async find(id: string): Promise<string> {
        return id;
      }
    }
    await bindCachingService(new UserService(), service).find('u1');
    expect(keys).toHaveLength(1);
    expect(keys[0]!.startsWith('billing.UserService.find')).toBe(true);
    expect(keys[0]).not.toMatch(/^UserService/);
    expect(hot.size).toBe(1);
    expect(main.size).toBe(0);
  });

  it('method options override the class-level options', async () => {
    const hot = new MemoryBackend();
    const cold = new MemoryBackend();
    const service = makeService({ profiles: { hot: { backend: hot }, cold: { backend: cold } } });
    const keys: string[] = [];
    service.on('miss', e => keys.push(e.key));

    @CacheConfiguration({ scope: 'orders', profile: 'hot' })
    class OrderService {
      @Cache({ profile: 'cold', scope: 'archive' })
      async old(id: string): Promise<string> {
        return id;
      }

      @Cache()
      async recent(id: string): Promise<string> {
        return id;
      }
    }
    const orders = bindCachingService(new OrderService(), service);
    await orders.old('o1');
    await orders.recent('o2');
    expect(cold.size).toBe(1);
    expect(hot.size).toBe(1);
    expect(keys[0]!.startsWith('archive.old')).toBe(true);
    expect(keys[1]!.startsWith('orders.recent')).toBe(true);
  });

  it('two classes with the same name but different scopes do not share entries', async () => {
    const service = makeService();
    const runs: string[] = [];
    function moduleA() {
      @CacheConfiguration({ scope: 'moduleA.Users' })
      class Users {
        @Cache()
        async count(): Promise<string> {
          runs.push('A');
          return 'A';
        }
      }
      return Users;
    }
    function moduleB() {
      @CacheConfiguration({ scope: 'moduleB.Users' })
      class Users {
        @Cache()
        async count(): Promise<string> {
          runs.push('B');
          return 'B';
        }
      }
      return Users;
    }
    const A = moduleA();
    const B = moduleB();
    const a = bindCachingService(new A(), service);
    const b = bindCachingService(new B(), service);
    await expect(a.count()).resolves.toBe('A');
    await expect(b.count()).resolves.toBe('B');
    await expect(a.count()).resolves.toBe('A');
    await expect(b.count()).resolves.toBe('B');
    expect(runs).toEqual(['A', 'B']);
  });

  it('class-level ttl applies to the class\'s methods', async () => {
    const clock = new ManualClock();
    const service = makeService({ clock });
    let runs = 0;
    @CacheConfiguration({ ttl: 500 })
    class ShortLived {
      @Cache()
      async get(id: string): Promise<string> {
        runs++;
        return id;
      }
    }
    const s = bindCachingService(new ShortLived(), service);
    await s.get('a');
    clock.time += 499;
    await s.get('a');
    expect(runs).toBe(1);
    clock.time += 1;
    await s.get('a');
    expect(runs).toBe(2);
  });
});
