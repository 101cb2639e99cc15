// @Cache({ shouldCache }) (SPEC §14): a result the predicate rejects is returned, not stored (`skip`, reason
// `predicate`); the caller still learns its dependencies; joiners take it only when the backend certifies it;
// a predicate that throws never fails the call. On a memory backend and on an asynchronous one.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { addDependency, bindCachingService, Cache, CachingError, CachingService, MemoryBackend, type CachingBackend, type CachingServiceOptions, type SkipReason } from 'aspect-cache';
import { ChaosBackend } from 'aspect-cache/testing';
import { deferred, flush, type Deferred } from '../support/deferred.js';
import { failureOf } from '../support/failure-of.js';

const services: CachingService[] = [];
afterEach(async () => {
  await Promise.all(services.splice(0).map(s => s.dispose()));
});

function makeService(options: CachingServiceOptions = {}) {
  const service = new CachingService({ telemetry: false, logger: { warn: vi.fn(), error: vi.fn() }, ...options });
  services.push(service);
  const skips: Array<{ key: string; reason: SkipReason }> = [];
  const errors: Array<{ error: unknown; operation: string; key?: string }> = [];
  service.on('skip', e => skips.push({ key: e.key, reason: e.reason }));
  service.on('error', e => errors.push(e));
  return { service, skips, errors };
}

interface Product {
  readonly id: string;
  readonly name: string;
}

class Products {
  readonly rows = new Map<string, Product>([['p1', { id: 'p1', name: 'corn' }]]);
  readonly gates = new Map<string, Deferred<void>>();
  runs = 0;
  parentRuns = 0;

  @Cache({ shouldCache: (product: Product | null) => product !== null })
  async find(id: string): Promise<Product | null> {
    this.runs++;
    addDependency(`product:${id}`);
    const row = this.rows.get(id) ?? null;
    await this.gates.get(id)?.promise;
    return row;
  }

  @Cache()
  async label(id: string): Promise<string> {
    this.parentRuns++;
    const product = await this.find(id);
    return product === null ? `${id}: not found` : `${id}: ${product.name}`;
  }
}

const backends: Array<[string, () => CachingBackend]> = [
  ['memory', () => new MemoryBackend()],
  ['asynchronous backend', () => new ChaosBackend(new MemoryBackend())],
];

for (const [name, makeBackend] of backends) {
  describe(`shouldCache (${name})`, () => {
    it('stores an accepted value and returns a rejected one without storing it (skip, reason predicate)', async () => {
      const { service, skips } = makeService({ backend: makeBackend() });
      const products = bindCachingService(new Products(), service);
      expect(await products.find('p1')).toEqual({ id: 'p1', name: 'corn' });
      expect(await products.find('p1')).toEqual({ id: 'p1', name: 'corn' });
      expect(products.runs).toBe(1);
      expect(await products.find('missing')).toBeNull();
      expect(await products.find('missing')).toBeNull();
      expect(products.runs).toBe(3);
      expect(skips.map(s => s.reason)).toEqual(['predicate', 'predicate']);
      expect(skips[0]!.key).toContain('missing');
      expect(service.stats()).toMatchObject({ sets: 1, skips: 2 });
      // Once the row exists, the value is accepted and cached.
      products.rows.set('missing', { id: 'missing', name: 'wheat' });
      expect(await products.find('missing')).toEqual({ id: 'missing', name: 'wheat' });
      expect(await products.find('missing')).toEqual({ id: 'missing', name: 'wheat' });
      expect(products.runs).toBe(4);
    });

    it("a cached caller of a rejected value still depends on it: the child's dependency invalidates the caller", async () => {
      const { service } = makeService({ backend: makeBackend() });
      const products = bindCachingService(new Products(), service);
      expect(await products.label('p2')).toBe('p2: not found');
      expect(await products.label('p2')).toBe('p2: not found');
      expect(products.parentRuns).toBe(1); // the caller's own value is stored
      products.rows.set('p2', { id: 'p2', name: 'barley' });
      await service.invalidate('product:p2');
      expect(await products.label('p2')).toBe('p2: barley');
      expect(products.parentRuns).toBe(2);
    });

    it('a caller that joined the computation of a rejected value takes it when nothing it read was invalidated', async () => {
      const { service } = makeService({ backend: makeBackend() });
      const products = bindCachingService(new Products(), service);
      const gate = deferred();
      products.gates.set('p3', gate);
      const first = products.find('p3');
      await flush();
      const second = products.find('p3');
      await flush();
      gate.resolve();
      expect(await first).toBeNull();
      expect(await second).toBeNull();
      expect(products.runs).toBe(1);
    });

    it('a caller that joined it computes on its own when a dependency was invalidated meanwhile (not certified)', async () => {
      const { service } = makeService({ backend: makeBackend() });
      const products = bindCachingService(new Products(), service);
      const gate = deferred();
      products.gates.set('p4', gate);
      const first = products.find('p4');
      await flush();
      const second = products.find('p4');
      await flush();
      products.rows.set('p4', { id: 'p4', name: 'oats' });
      await service.invalidate('product:p4');
      products.gates.delete('p4');
      gate.resolve();
      expect(await first).toBeNull(); // read before the write: its own caller gets it
      expect(await second).toEqual({ id: 'p4', name: 'oats' });
      expect(products.runs).toBe(2);
    });

    it('a predicate that throws never fails the call: the value is returned, not stored, and reported', async () => {
      const { service, skips, errors } = makeService({ backend: makeBackend() });
      let runs = 0;
      class Throwing {
        @Cache({
          shouldCache: () => {
            throw new Error('predicate bug');
          },
        })
        async value(id: string): Promise<string> {
          runs++;
          return id;
        }
      }
      const throwing = bindCachingService(new Throwing(), service);
      expect(await throwing.value('a')).toBe('a');
      expect(await throwing.value('a')).toBe('a');
      expect(runs).toBe(2);
      expect(skips.map(s => s.reason)).toEqual(['predicate', 'predicate']);
      expect(errors).toHaveLength(2);
      expect(errors[0]).toMatchObject({ operation: 'shouldCache', error: { message: 'predicate bug' } });
      expect(errors[0]!.key).toContain('Throwing.value');
    });

    it('a predicate that answers something other than a boolean (a promise) stores nothing and says why', async () => {
      const { service, skips, errors } = makeService({ backend: makeBackend() });
      let runs = 0;
      class AsyncPredicate {
        @Cache({ shouldCache: (async () => true) as unknown as (value: unknown) => boolean })
        async value(id: string): Promise<string> {
          runs++;
          return id;
        }
      }
      const p = bindCachingService(new AsyncPredicate(), service);
      expect(await p.value('a')).toBe('a');
      expect(await p.value('a')).toBe('a');
      expect(runs).toBe(2);
      expect(skips.map(s => s.reason)).toEqual(['predicate', 'predicate']);
      expect(errors[0]!.error).toBeInstanceOf(CachingError);
      expect((errors[0]!.error as Error).message).toMatch(/answered a promise, not true or false/);
    });

    it('the predicate sees the resolved value of an async method', async () => {
      const { service } = makeService({ backend: makeBackend() });
      const seen: unknown[] = [];
      class Seen {
        @Cache({ shouldCache: value => (seen.push(value), true) })
        async value(): Promise<number> {
          return 7;
        }
      }
      await bindCachingService(new Seen(), service).value();
      expect(seen).toEqual([7]);
    });
  });
}

describe('shouldCache (synchronous methods on memory)', () => {
  it('a rejected synchronous result is returned synchronously and not stored', () => {
    const { service, skips } = makeService();
    let runs = 0;
    class Sync {
      @Cache({ shouldCache: (n: number) => n >= 0 })
      value(n: number): number {
        runs++;
        return n;
      }
    }
    const sync = bindCachingService(new Sync(), service);
    expect(sync.value(-1)).toBe(-1);
    expect(sync.value(-1)).toBe(-1);
    expect(sync.value(1)).toBe(1);
    expect(sync.value(1)).toBe(1);
    expect(runs).toBe(3);
    expect(skips.map(s => s.reason)).toEqual(['predicate', 'predicate']);
  });
});

describe('shouldCache on profiles and defaults', () => {
  it("a profile's or the defaults' predicate applies to methods without their own; a method's replaces it", async () => {
    const { service } = makeService({
      defaults: { shouldCache: (v: string) => !v.startsWith('tmp') },
      profiles: { strict: { shouldCache: (v: string) => v.length > 3 } },
    });
    const runs: string[] = [];
    class Options {
      @Cache()
      async byDefault(v: string): Promise<string> {
        runs.push(`default ${v}`);
        return v;
      }
      @Cache({ profile: 'strict' })
      async byProfile(v: string): Promise<string> {
        runs.push(`profile ${v}`);
        return v;
      }
      @Cache({ profile: 'strict', shouldCache: () => true })
      async own(v: string): Promise<string> {
        runs.push(`own ${v}`);
        return v;
      }
    }
    const o = bindCachingService(new Options(), service);
    for (let i = 0; i < 2; i++) {
      await o.byDefault('tmp1');
      await o.byDefault('kept');
      await o.byProfile('abc');
      await o.byProfile('abcd');
      await o.own('abc');
    }
    expect(runs).toEqual(['default tmp1', 'default kept', 'profile abc', 'profile abcd', 'own abc', 'default tmp1', 'profile abc']);
  });

  it('a shouldCache that is not a function fails at decoration, in a profile and in the defaults', () => {
    const decorate = () => {
      class Bad {
        @Cache({ shouldCache: 'yes' as never })
        async v(): Promise<number> {
          return 1;
        }
      }
      return Bad;
    };
    for (const attempt of [decorate, () => new CachingService({ profiles: { p: { shouldCache: true as never } } }), () => new CachingService({ defaults: { shouldCache: 1 as never } })]) {
      let error: unknown;
      try {
        attempt();
      } catch (e) {
        error = e;
      }
      expect(error).toBeInstanceOf(CachingError);
      expect((error as CachingError).code).toBe('E_INVALID_OPTION');
      expect((error as Error).message).toContain('shouldCache');
    }
  });

  it('a misspelt shouldCache is named with the nearest valid option', async () => {
    const error = await failureOf(() => new CachingService({ defaults: { shouldcache: () => true } as never }));
    expect((error as Error).message).toMatch(/unknown option 'shouldcache'; did you mean 'shouldCache'/);
  });
});
