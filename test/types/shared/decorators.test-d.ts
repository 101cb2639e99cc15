import { describe, expectTypeOf, test } from 'vitest';
import { Cache, CacheConfiguration, CacheKey, InvalidateCache, type CacheOptions, type InvalidationTarget } from 'aspect-cache';

// Checked twice, once per decorator mode (tsconfig.types-legacy.json, tsconfig.types-standard.json). Each
// `@ts-expect-error` fails the check if the line it covers compiles, so every "is an error" below is asserted.

describe('@Cache', () => {
  test('compiles on sync and async, instance and static methods, with and without parameters', () => {
    class Catalogue {
      @Cache()
      count(): number {
        return 1;
      }

      @Cache({ ttl: 60_000 })
      async price(id: string, currency: 'EUR' | 'USD'): Promise<number> {
        return id.length + currency.length;
      }

      @Cache()
      static version(): string {
        return '1';
      }

      @Cache({ ttl: 1_000, slidingExpiration: 500 })
      static async load(...ids: readonly number[]): Promise<number[]> {
        return [...ids];
      }
    }
    // The decorated methods keep their types.
    expectTypeOf(new Catalogue().price).toEqualTypeOf<(id: string, currency: 'EUR' | 'USD') => Promise<number>>();
    expectTypeOf(new Catalogue().count()).toEqualTypeOf<number>();
    expectTypeOf(Catalogue.load).toEqualTypeOf<(...ids: readonly number[]) => Promise<number[]>>();
    expectTypeOf(Catalogue.version()).toEqualTypeOf<string>();
  });

  test('compiles on generic and overloaded methods, and keeps their signatures', () => {
    class Repository {
      @Cache()
      async find<T extends string>(id: T): Promise<{ id: T }> {
        return { id };
      }

      lookup(id: string): string;
      lookup(id: number): number;
      @Cache()
      lookup(id: string | number): string | number {
        return id;
      }
    }
    const repository = new Repository();
    expectTypeOf(repository.find('a')).toEqualTypeOf<Promise<{ id: 'a' }>>();
    expectTypeOf(repository.lookup(1)).toEqualTypeOf<number>();
    expectTypeOf(repository.lookup('a')).toEqualTypeOf<string>();
  });

  test('its options are typed: a misspelt or mistyped option is an error', () => {
    expectTypeOf(Cache).parameter(0).toEqualTypeOf<CacheOptions | undefined>();
    // @ts-expect-error -- 'tll' is not an option
    Cache({ tll: 1_000 });
    // @ts-expect-error -- ttl is a number of ms
    Cache({ ttl: '1m' });
    // @ts-expect-error -- failSafe needs maxStaleness
    Cache({ failSafe: { softTimeout: 10 } });
    // @ts-expect-error -- under exactOptionalPropertyTypes, leave an option out rather than set it to undefined
    Cache({ ttl: undefined });
    Cache({ ttl: 1, failSafe: { maxStaleness: 5_000 }, varyBy: ['tenant'], shouldCache: (value: unknown) => value !== null, eagerRefresh: 0.8, key: (id: string) => id });
  });

  test('is an error on a field, a static field, a getter and a setter', () => {
    class Misused {
      // @ts-expect-error -- a field cannot be cached
      @Cache()
      total = 1;

      // @ts-expect-error -- a static field cannot be cached
      @Cache()
      static shared = 1;

      // @ts-expect-error -- a getter cannot be cached
      @Cache()
      get computed(): number {
        return 1;
      }

      // @ts-expect-error -- a setter cannot be cached
      @Cache()
      set assigned(value: number) {
        void value;
      }
    }
    void Misused;
  });

  test('is an error without parentheses and on a class', () => {
    class Bare {
      // @ts-expect-error -- @Cache is a factory: write @Cache()
      @Cache
      run(): number {
        return 1;
      }
    }
    // @ts-expect-error -- @Cache decorates methods, not classes
    @Cache()
    class OnClass {}
    void [Bare, OnClass];
  });
});

describe('@InvalidateCache', () => {
  class ProductList {
    @Cache()
    async products(category: string): Promise<string[]> {
      return [category];
    }

    @Cache()
    static async all(): Promise<string[]> {
      return [];
    }
  }

  test("accepts 'method', [Class, 'method'] and { target?, method, args?, instance? } targets", () => {
    class Catalogue {
      @Cache()
      async price(id: string): Promise<number> {
        return id.length;
      }

      @InvalidateCache('price')
      async setPrice(id: string, price: number): Promise<void> {
        void [id, price];
      }

      @InvalidateCache('price', [ProductList, 'products'], [ProductList, 'all'])
      setPriceSync(id: string, category: string): void {
        void [id, category];
      }

      @InvalidateCache({ method: 'price', args: (productId: string) => [productId] }, { target: ProductList, method: 'products', args: (_id: string, category: string) => [category], instance: () => new ProductList() })
      static async move(productId: string, category: string): Promise<void> {
        void [productId, category];
      }
    }
    void Catalogue;
    expectTypeOf<'price'>().toExtend<InvalidationTarget>();
    expectTypeOf<readonly [typeof ProductList, 'products']>().toExtend<InvalidationTarget>();
    expectTypeOf<{ method: 'price'; args: (id: string) => [string] }>().toExtend<InvalidationTarget>();
  });

  test('its targets are typed: a wrong target shape is an error', () => {
    // @ts-expect-error -- args must be a function returning the target's arguments as an array
    InvalidateCache({ method: 'price', args: ['id'] });
    // @ts-expect-error -- args must return an array
    InvalidateCache({ method: 'price', args: (id: string) => id });
    // @ts-expect-error -- 'arguments' is not a target option
    InvalidateCache({ method: 'price', arguments: (id: string) => [id] });
    // @ts-expect-error -- a target names a method
    InvalidateCache({ target: ProductList });
    // @ts-expect-error -- [Class, 'method'], in that order
    InvalidateCache(['products', ProductList]);
    // @ts-expect-error -- instance must be a function giving the target's `this`
    InvalidateCache({ target: ProductList, method: 'products', instance: new ProductList() });
    // @ts-expect-error -- a method name, not a number
    InvalidateCache(42);
  });

  test('is an error on a field, a getter and a setter', () => {
    class Misused {
      @Cache()
      async price(id: string): Promise<number> {
        return id.length;
      }

      // @ts-expect-error -- a field cannot invalidate
      @InvalidateCache('price')
      invalidator = 1;

      // @ts-expect-error -- a getter cannot invalidate
      @InvalidateCache('price')
      get stale(): number {
        return 1;
      }

      // @ts-expect-error -- a setter cannot invalidate
      @InvalidateCache('price')
      set id(id: string) {
        void id;
      }
    }
    void Misused;
  });
});

describe('@CacheKey', () => {
  test('compiles on public instance fields and getters', () => {
    class Order {
      @CacheKey()
      id = 42;

      @CacheKey()
      tenant!: string;

      constructor(readonly region: string) {}

      @CacheKey()
      get regionCode(): string {
        return this.region.toUpperCase();
      }
    }
    void Order;
  });

  test('is an error on a method, without parentheses and on a class', () => {
    class Misused {
      // @ts-expect-error -- a method is not a key property
      @CacheKey()
      id(): number {
        return 1;
      }

      // @ts-expect-error -- @CacheKey is a factory: write @CacheKey()
      @CacheKey
      tenant = 't';
    }
    // @ts-expect-error -- @CacheKey decorates properties, not classes
    @CacheKey()
    class OnClass {}
    void [Misused, OnClass];
  });
});

describe('@CacheConfiguration', () => {
  test('compiles on classes, abstract ones included, and keeps them', () => {
    @CacheConfiguration({ ttl: 1_000, scope: 'billing.Users', profile: 'hot' })
    class Users {
      constructor(readonly name: string) {}
    }
    @CacheConfiguration({ ttl: 1_000 })
    abstract class Base {}
    expectTypeOf(new Users('a').name).toEqualTypeOf<string>();
    void Base;
  });

  test('its options are class-level: key and ignoreArgs are per method, misspellings are errors', () => {
    // @ts-expect-error -- key is per method
    CacheConfiguration({ key: () => 'k' });
    // @ts-expect-error -- ignoreArgs is per method
    CacheConfiguration({ ignoreArgs: [0] });
    // @ts-expect-error -- 'scopes' is not an option
    CacheConfiguration({ scopes: 'x' });
  });

  test('is an error on a method and on a field', () => {
    class Misused {
      // @ts-expect-error -- a class decorator on a method
      @CacheConfiguration({ ttl: 1 })
      run(): number {
        return 1;
      }

      // @ts-expect-error -- a class decorator on a field
      @CacheConfiguration({ ttl: 1 })
      total = 1;

      // @ts-expect-error -- a class decorator on a static method (whose legacy target is the class)
      @CacheConfiguration({ ttl: 1 })
      static create(): Misused {
        return new Misused();
      }

      // @ts-expect-error -- a class decorator on a static field
      @CacheConfiguration({ ttl: 1 })
      static shared = 1;
    }
    void Misused;
  });
});
