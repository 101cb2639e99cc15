import { describe, expectTypeOf, test } from 'vitest';
import {
  addDependency,
  CachingError,
  CachingService,
  defineDependency,
  LayeredBackend,
  MemoryBackend,
  ObjectDependency,
  readContext,
  setCacheOptions,
  StringDependency,
  suspendDependencyPropagation,
  type CacheDependency,
  type CacheEntryOptions,
  type CacheEventMap,
  type CacheStats,
  type CachingBackend,
  type CachingErrorCode,
  type DependencyLike,
} from 'aspect-cache';
import { ChaosBackend, describeBackendConformance, FakeClock, TestBus, TestBusNetwork, type ConformanceOptions } from 'aspect-cache/testing';

// The public API's types, under strict + exactOptionalPropertyTypes + skipLibCheck false (the settings of
// the strictest consumer), checked in both decorator modes.

describe('dependencies', () => {
  test('StringDependency and ObjectDependency are CacheDependency', () => {
    expectTypeOf(new StringDependency('PriceList')).toExtend<CacheDependency>();
    expectTypeOf(new StringDependency('Product:1', [new StringDependency('PriceList')])).toExtend<CacheDependency>();
    expectTypeOf(new ObjectDependency({ getCacheKey: () => 'k' })).toExtend<CacheDependency>();
    expectTypeOf<StringDependency['cascadeDependencies']>().toEqualTypeOf<readonly CacheDependency[] | undefined>();
    // @ts-expect-error -- the key is a string
    new StringDependency(42);
    // @ts-expect-error -- an object, not a primitive
    new ObjectDependency('Product:1');
  });

  test('a class can implement CacheDependency, with or without cascadeDependencies (possibly undefined)', () => {
    const catalogue = new StringDependency('Catalogue');
    class Product implements CacheDependency {
      constructor(readonly name: string) {}
      getCacheKey(): string {
        return `Product:${this.name}`;
      }
      get cascadeDependencies(): CacheDependency[] {
        return [catalogue];
      }
    }
    class Sometimes implements CacheDependency {
      readonly cascadeDependencies: Iterable<CacheDependency> | undefined = undefined;
      getCacheKey(): string {
        return 'Sometimes';
      }
    }
    class Plain implements CacheDependency {
      getCacheKey(): string {
        return 'Plain';
      }
    }
    class WrongKey implements CacheDependency {
      // @ts-expect-error -- getCacheKey must return a string
      getCacheKey(): number {
        return 1;
      }
    }
    expectTypeOf(new Product('corn')).toExtend<DependencyLike>();
    void [Sometimes, Plain, WrongKey];
  });

  test('addDependency takes strings and CacheDependency objects', () => {
    expectTypeOf(addDependency).returns.toEqualTypeOf<void>();
    addDependency('Product:1', new StringDependency('PriceList'), { getCacheKey: () => 'k' });
    // @ts-expect-error -- a number is not a dependency
    addDependency(42);
  });
});

describe('defineDependency', () => {
  interface Product {
    id: number;
    sku: string;
  }
  const product = defineDependency('Product', { byId: (p: Product) => p.id, bySku: (p: Product) => p.sku });

  test('builds typed keys from the keyers', () => {
    expectTypeOf(product.byId).toEqualTypeOf<(value: number) => CacheDependency>();
    expectTypeOf(product.bySku).toEqualTypeOf<(value: string) => CacheDependency>();
    expectTypeOf(product.of).parameter(0).toEqualTypeOf<Product>();
    expectTypeOf(product.all).toEqualTypeOf<CacheDependency>();
    expectTypeOf(product.kind).toEqualTypeOf<string>();
    addDependency(product.byId(1), product.of({ id: 1, sku: 'a' }), product.all);
  });

  test('a wrong key field, a wrong value type or a wrong record is an error', () => {
    // @ts-expect-error -- there is no keyer byName
    product.byName('corn');
    // @ts-expect-error -- byId takes the id's type, a number
    product.byId('1');
    // @ts-expect-error -- the record lacks sku
    product.of({ id: 1 });
    // @ts-expect-error -- a keyer's name must start with 'by'
    defineDependency('Product', { id: (p: Product) => p.id });
    // @ts-expect-error -- a keyer returns a string, number, bigint or boolean
    defineDependency('Product', { byId: (p: Product) => ({ id: p.id }) });
  });
});

describe('CachingService', () => {
  const service = new CachingService({ backend: new MemoryBackend(), keyPrefix: 'app:', defaults: { ttl: 60_000 }, profiles: { hot: { ttl: 1_000 } } });

  test('its methods return what they promise', () => {
    expectTypeOf(service.invalidate('Product:1')).toEqualTypeOf<Promise<{ pending: boolean }>>();
    expectTypeOf(service.invalidateCall(() => 1)).toEqualTypeOf<Promise<void>>();
    expectTypeOf(service.refreshCall(async () => 1)).toEqualTypeOf<Promise<number>>();
    expectTypeOf(service.refreshCall(() => 'a')).toEqualTypeOf<Promise<string>>();
    expectTypeOf(service.transaction(async () => ({ ok: true }))).toEqualTypeOf<Promise<{ ok: boolean }>>();
    expectTypeOf(service.suspendDependencyPropagation(() => 1)).toEqualTypeOf<number>();
    expectTypeOf(service.clear()).toEqualTypeOf<Promise<void>>();
    expectTypeOf(service.dispose()).toEqualTypeOf<Promise<void>>();
    expectTypeOf(service.stats()).toEqualTypeOf<CacheStats>();
    expectTypeOf(service.backend).toEqualTypeOf<CachingBackend>();
    expectTypeOf(service.readContext('tenant')).toEqualTypeOf<unknown>();
    expectTypeOf(CachingService.default).toEqualTypeOf<CachingService>();
  });

  test('on() types each event and returns an unsubscribe function', () => {
    const off = service.on('set', event => {
      expectTypeOf(event).toEqualTypeOf<CacheEventMap['set']>();
      expectTypeOf(event.dependencies).toEqualTypeOf<readonly string[]>();
    });
    expectTypeOf(off).toEqualTypeOf<() => void>();
    // @ts-expect-error -- no such event
    service.on('hits', () => undefined);
  });

  test('its options are typed', () => {
    // @ts-expect-error -- 'backends' is not an option
    new CachingService({ backends: new MemoryBackend() });
    // @ts-expect-error -- key is per method, not a service default
    new CachingService({ defaults: { key: () => 'k' } });
    // @ts-expect-error -- under exactOptionalPropertyTypes, leave keyPrefix out rather than set it to undefined
    new CachingService({ keyPrefix: undefined });
    new CachingService({ backend: new LayeredBackend({ l1: new MemoryBackend(), l2: new MemoryBackend(), bus: new TestBusNetwork().connect() }), contexts: { tenant: () => 'acme' } });
  });
});

describe('the ambient helpers', () => {
  test('readContext, setCacheOptions and suspendDependencyPropagation', () => {
    expectTypeOf(readContext('tenant')).toEqualTypeOf<unknown>();
    expectTypeOf(setCacheOptions).parameter(0).toEqualTypeOf<CacheEntryOptions>();
    setCacheOptions({ ttl: 1_000, sliding: 500, skip: false });
    // @ts-expect-error -- 'slidingExpiration' is a method option; per entry it is 'sliding'
    setCacheOptions({ slidingExpiration: 500 });
    // @ts-expect-error -- ttl is a number of ms
    setCacheOptions({ ttl: '1s' });
    expectTypeOf(suspendDependencyPropagation(async () => 'a')).toEqualTypeOf<Promise<string>>();
  });

  test('CachingError carries a typed code', () => {
    const error = new CachingError('E_INVALID_OPTION', 'message');
    expectTypeOf(error.code).toEqualTypeOf<CachingErrorCode>();
    expectTypeOf(error).toExtend<Error>();
  });
});

describe('aspect-cache/testing', () => {
  test('exports a fake clock, a chaos backend, a test bus and the conformance suite', () => {
    const clock = new FakeClock(0);
    expectTypeOf(clock.now()).toEqualTypeOf<number>();
    expectTypeOf(clock.advance).toEqualTypeOf<(ms: number) => void>();
    const chaos = new ChaosBackend(new MemoryBackend({ clock }));
    expectTypeOf(chaos).toExtend<CachingBackend>();
    expectTypeOf(chaos.fail('get', 'set')).toEqualTypeOf<ChaosBackend>();
    // @ts-expect-error -- not a backend operation
    chaos.fail('read');
    const network = new TestBusNetwork({ seed: 7 });
    expectTypeOf(network.connect()).toEqualTypeOf<TestBus>();
    expectTypeOf(network.faults({ drop: 0.1 })).toEqualTypeOf<TestBusNetwork>();
    expectTypeOf(describeBackendConformance).toEqualTypeOf<(name: string, options: ConformanceOptions) => void>();
    const options: ConformanceOptions = { create: ({ clock: c }) => new MemoryBackend({ clock: c }), richValues: true };
    void options;
  });
});
