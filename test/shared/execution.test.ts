import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { bindCachingService, Cache, CachingService, MemoryBackend, type Logger } from 'aspect-cache';

// Execution semantics of @Cache (SPEC §7): what is cached, what never is, sync stays sync, static and
// instance methods, and how `this` takes part in the key.

function isThenable(value: unknown): boolean {
  return value !== null && (typeof value === 'object' || typeof value === 'function') && typeof (value as { then?: unknown }).then === 'function';
}

function quietLogger(): Logger {
  return { debug: vi.fn(), warn: vi.fn(), error: vi.fn() };
}

let backend: MemoryBackend;
let service: CachingService;

beforeEach(() => {
  backend = new MemoryBackend();
  service = new CachingService({ backend, logger: quietLogger() });
});

afterEach(async () => {
  await service.dispose();
});

describe('async methods', () => {
  it('cache the resolved value: a hit is a fresh promise of the value, never the promise the method returned', async () => {
    const produced: Promise<{ id: string; price: number }>[] = [];
    class PromisePrices {
      // Not declared `async`: returns its own promise object, so identity can be checked.
      @Cache()
      getPrice(id: string): Promise<{ id: string; price: number }> {
        const promise = Promise.resolve({ id, price: 42 });
        produced.push(promise);
        return promise;
      }
    }
    const prices = bindCachingService(new PromisePrices(), service);
    const keys: string[] = [];
    service.on('miss', e => keys.push(e.key));

    const first = prices.getPrice('corn');
    expect(isThenable(first)).toBe(true);
    const value = await first;
    expect(value).toEqual({ id: 'corn', price: 42 });

    const second = prices.getPrice('corn');
    expect(second).toBeInstanceOf(Promise);
    expect(second).not.toBe(produced[0]);
    expect(second).not.toBe(first);
    await expect(second).resolves.toEqual({ id: 'corn', price: 42 });
    expect(produced).toHaveLength(1);

    // What the backend holds is the value itself, not a promise.
    expect(keys).toHaveLength(1);
    const lookup = backend.get(keys[0]!);
    expect(lookup.hit).toBe(true);
    if (lookup.hit) {
      expect(isThenable(lookup.value)).toBe(false);
      expect(lookup.value).toEqual({ id: 'corn', price: 42 });
    }
  });

  it('an async method is computed once per argument list and hits return promises', async () => {
    let runs = 0;
    class AsyncCatalogue {
      @Cache()
      async getName(id: number): Promise<string> {
        runs++;
        return `product-${id}`;
      }
    }
    const catalogue = bindCachingService(new AsyncCatalogue(), service);
    await expect(catalogue.getName(1)).resolves.toBe('product-1');
    const hit = catalogue.getName(1);
    expect(hit).toBeInstanceOf(Promise);
    await expect(hit).resolves.toBe('product-1');
    await expect(catalogue.getName(2)).resolves.toBe('product-2');
    expect(runs).toBe(2);
  });

  it('a rejection is never cached: the next call runs the method again', async () => {
    let runs = 0;
    class FlakyLoader {
      @Cache()
      async load(id: string): Promise<string> {
        runs++;
        if (runs === 1) throw new Error(`boom ${id}`);
        return `loaded ${id}`;
      }
    }
    const loader = bindCachingService(new FlakyLoader(), service);
    await expect(loader.load('a')).rejects.toThrow('boom a');
    await expect(loader.load('a')).resolves.toBe('loaded a');
    await expect(loader.load('a')).resolves.toBe('loaded a');
    expect(runs).toBe(2);
  });

  it('a promise-returning method that rejects later is not cached either', async () => {
    let runs = 0;
    class LateRejecter {
      @Cache()
      fetch(id: string): Promise<string> {
        runs++;
        const attempt = runs;
        return new Promise((resolve, reject) => setImmediate(() => (attempt === 1 ? reject(new Error('late failure')) : resolve(id))));
      }
    }
    const rejecter = bindCachingService(new LateRejecter(), service);
    await expect(rejecter.fetch('x')).rejects.toThrow('late failure');
    await expect(rejecter.fetch('x')).resolves.toBe('x');
    await expect(rejecter.fetch('x')).resolves.toBe('x');
    expect(runs).toBe(2);
    expect(service.stats().sets).toBe(1);
  });

  it('a synchronous throw is never cached: the next call runs the method again', () => {
    let runs = 0;
    class FlakyParser {
      @Cache()
      parse(text: string): number {
        runs++;
        if (runs === 1) throw new SyntaxError(`cannot parse ${text}`);
        return text.length;
      }
    }
    const parser = bindCachingService(new FlakyParser(), service);
    expect(() => parser.parse('abc')).toThrow(SyntaxError);
    expect(parser.parse('abc')).toBe(3);
    expect(parser.parse('abc')).toBe(3);
    expect(runs).toBe(2);
  });

  it('undefined results are cached by default (async and sync)', async () => {
    let asyncRuns = 0;
    let syncRuns = 0;
    class MissingThings {
      @Cache()
      async findAsync(_id: string): Promise<string | undefined> {
        asyncRuns++;
        return undefined;
      }

      @Cache()
      findSync(_id: string): string | undefined {
        syncRuns++;
        return undefined;
      }
    }
    const things = bindCachingService(new MissingThings(), service);
    await expect(things.findAsync('x')).resolves.toBeUndefined();
    const hit = things.findAsync('x');
    expect(hit).toBeInstanceOf(Promise);
    await expect(hit).resolves.toBeUndefined();
    expect(things.findSync('x')).toBeUndefined();
    expect(things.findSync('x')).toBeUndefined();
    expect(asyncRuns).toBe(1);
    expect(syncRuns).toBe(1);
  });

  it('null results are cached by default', async () => {
    let runs = 0;
    class NullThings {
      @Cache()
      async find(_id: string): Promise<string | null> {
        runs++;
        return null;
      }
    }
    const things = bindCachingService(new NullThings(), service);
    await expect(things.find('x')).resolves.toBeNull();
    await expect(things.find('x')).resolves.toBeNull();
    expect(runs).toBe(1);
  });

  it('cacheUndefined: false reruns the method while it returns undefined, but still caches other values', async () => {
    const runs: string[] = [];
    class SparseDirectory {
      @Cache({ cacheUndefined: false })
      async lookup(name: string): Promise<string | null | undefined> {
        runs.push(name);
        if (name === 'nobody') return undefined;
        if (name === 'empty') return null;
        return `${name}@example.org`;
      }
    }
    const directory = bindCachingService(new SparseDirectory(), service);
    await expect(directory.lookup('nobody')).resolves.toBeUndefined();
    await expect(directory.lookup('nobody')).resolves.toBeUndefined();
    await expect(directory.lookup('ada')).resolves.toBe('ada@example.org');
    await expect(directory.lookup('ada')).resolves.toBe('ada@example.org');
    await expect(directory.lookup('empty')).resolves.toBeNull();
    await expect(directory.lookup('empty')).resolves.toBeNull();
    expect(runs).toEqual(['nobody', 'nobody', 'ada', 'empty']);
  });

  it('cacheUndefined: false applies to synchronous methods too', () => {
    let runs = 0;
    class SyncSparse {
      @Cache({ cacheUndefined: false })
      get(_id: number): undefined {
        runs++;
        return undefined;
      }
    }
    const sparse = bindCachingService(new SyncSparse(), service);
    sparse.get(1);
    sparse.get(1);
    sparse.get(1);
    expect(runs).toBe(3);
  });
});

describe('synchronous methods on the memory backend', () => {
  it('stay synchronous: neither a miss nor a hit returns a promise', () => {
    let runs = 0;
    class SyncMath {
      @Cache()
      square(n: number): number {
        runs++;
        return n * n;
      }
    }
    const math = bindCachingService(new SyncMath(), service);
    const miss = math.square(7);
    expect(isThenable(miss)).toBe(false);
    expect(miss).toBe(49);
    const hit = math.square(7);
    expect(isThenable(hit)).toBe(false);
    expect(hit).toBe(49);
    expect(runs).toBe(1);
  });

  it('a synchronous hit returns the stored object itself, with no copy', () => {
    class SyncConfig {
      @Cache()
      settings(section: string): { section: string } {
        return { section };
      }
    }
    const config = bindCachingService(new SyncConfig(), service);
    const first = config.settings('db');
    expect(config.settings('db')).toBe(first);
    expect(config.settings('cache')).not.toBe(first);
  });
});

describe('static methods', () => {
  it('static synchronous and asynchronous methods are cached', async () => {
    let squares = 0;
    let cubes = 0;
    class StaticMath {
      @Cache()
      static square(n: number): number {
        squares++;
        return n * n;
      }

      @Cache()
      static async cube(n: number): Promise<number> {
        cubes++;
        return n * n * n;
      }
    }
    bindCachingService(StaticMath, service);
    expect(StaticMath.square(3)).toBe(9);
    expect(StaticMath.square(3)).toBe(9);
    expect(isThenable(StaticMath.square(3))).toBe(false);
    await expect(StaticMath.cube(2)).resolves.toBe(8);
    await expect(StaticMath.cube(2)).resolves.toBe(8);
    expect(squares).toBe(1);
    expect(cubes).toBe(1);
    expect(service.stats().hits).toBe(3);
  });

  it('static methods use CachingService.default when no service is bound to the class', async () => {
    const previous = CachingService.default;
    const fresh = new CachingService({ logger: quietLogger() });
    CachingService.default = fresh;
    try {
      let runs = 0;
      class DefaultStatic {
        @Cache()
        static async rate(currency: string): Promise<number> {
          runs++;
          return currency.length;
        }
      }
      await DefaultStatic.rate('EUR');
      await DefaultStatic.rate('EUR');
      expect(runs).toBe(1);
      expect(fresh.stats().hits).toBe(1);
      expect(service.stats().hits).toBe(0);
    } finally {
      await fresh.dispose();
      CachingService.default = previous;
    }
  });
});

describe('this and the key', () => {
  it('two stateless instances of the same class share entries (the class name stands for the instance)', async () => {
    let runs = 0;
    class StatelessPrices {
      readonly createdAt = Math.random();

      @Cache()
      async getPrice(id: string): Promise<number> {
        runs++;
        return id.length;
      }
    }
    const a = bindCachingService(new StatelessPrices(), service);
    const b = bindCachingService(new StatelessPrices(), service);
    const keys: string[] = [];
    service.on('miss', e => keys.push(`miss ${e.key}`));
    service.on('hit', e => keys.push(`hit ${e.key}`));
    await expect(a.getPrice('corn')).resolves.toBe(4);
    await expect(b.getPrice('corn')).resolves.toBe(4);
    expect(runs).toBe(1);
    expect(keys).toHaveLength(2);
    expect(keys[1]!.replace(/^hit /, '')).toBe(keys[0]!.replace(/^miss /, ''));
    expect(keys[0]).toContain('StatelessPrices');
    expect(keys[0]).toContain('getPrice');
  });

  it('instances with their own cache key get their own entries', async () => {
    const runs: string[] = [];
    class Tenant {
      constructor(readonly id: string) {}

      getCacheKey(): string {
        return this.id;
      }

      @Cache()
      async settings(section: string): Promise<string> {
        runs.push(`${this.id}/${section}`);
        return `${this.id}:${section}`;
      }
    }
    const acme = bindCachingService(new Tenant('acme'), service);
    const initech = bindCachingService(new Tenant('initech'), service);
    await expect(acme.settings('billing')).resolves.toBe('acme:billing');
    await expect(initech.settings('billing')).resolves.toBe('initech:billing');
    await expect(acme.settings('billing')).resolves.toBe('acme:billing');
    await expect(initech.settings('billing')).resolves.toBe('initech:billing');
    expect(runs).toEqual(['acme/billing', 'initech/billing']);
  });

  it('ignoreThis: true makes instances with their own key share one entry', async () => {
    const runs: string[] = [];
    class SharedTenant {
      constructor(readonly id: string) {}

      getCacheKey(): string {
        return this.id;
      }

      @Cache({ ignoreThis: true })
      async currencies(region: string): Promise<string> {
        runs.push(`${this.id}/${region}`);
        return `currencies of ${region}`;
      }
    }
    const acme = bindCachingService(new SharedTenant('acme'), service);
    const initech = bindCachingService(new SharedTenant('initech'), service);
    await expect(acme.currencies('eu')).resolves.toBe('currencies of eu');
    await expect(initech.currencies('eu')).resolves.toBe('currencies of eu');
    expect(runs).toEqual(['acme/eu']);
  });

  it('different arguments give different entries', () => {
    const runs: unknown[] = [];
    class Echo {
      @Cache()
      echo(value: unknown): string {
        runs.push(value);
        return typeof value;
      }
    }
    const echo = bindCachingService(new Echo(), service);
    echo.echo(1);
    echo.echo('1');
    echo.echo(1);
    echo.echo('1');
    expect(runs).toEqual([1, '1']);
  });

  it('two services with their own memory backends never share entries', async () => {
    const other = new CachingService({ logger: quietLogger() });
    try {
      let runs = 0;
      class SharedClass {
        @Cache()
        async value(id: number): Promise<number> {
          runs++;
          return id;
        }
      }
      const a = bindCachingService(new SharedClass(), service);
      const b = bindCachingService(new SharedClass(), other);
      await a.value(1);
      await b.value(1);
      await a.value(1);
      await b.value(1);
      expect(runs).toBe(2);
    } finally {
      await other.dispose();
    }
  });

  it('an instance without a bound service uses CachingService.default', async () => {
    const previous = CachingService.default;
    const fresh = new CachingService({ logger: quietLogger() });
    CachingService.default = fresh;
    try {
      let runs = 0;
      class Unbound {
        @Cache()
        async answer(): Promise<number> {
          runs++;
          return 42;
        }
      }
      const unbound = new Unbound();
      await unbound.answer();
      await unbound.answer();
      expect(runs).toBe(1);
      expect(fresh.stats()).toMatchObject({ misses: 1, hits: 1 });
    } finally {
      await fresh.dispose();
      CachingService.default = previous;
    }
  });
});
