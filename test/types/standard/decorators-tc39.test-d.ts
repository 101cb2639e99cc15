import { describe, expectTypeOf, test } from 'vitest';
import { Cache, CacheKey, InvalidateCache } from 'aspect-cache';

// TC39 decorators only (tsconfig.types-standard.json): the context type tells TypeScript what is decorated,
// whether it is static or #private, and its name, so more misuse is a compile error than with legacy ones.

describe('@Cache and @InvalidateCache (TC39)', () => {
  test('compile on #private and static #private methods', () => {
    class Catalogue {
      @Cache()
      async #price(id: string): Promise<number> {
        return id.length;
      }

      @Cache()
      static #version(): string {
        return '1';
      }

      @InvalidateCache('#price')
      async #reset(id: string): Promise<void> {
        void id;
      }

      async price(id: string): Promise<number> {
        await this.#reset(id);
        return this.#price(id);
      }

      static version(): string {
        return Catalogue.#version();
      }
    }
    expectTypeOf(new Catalogue().price('a')).toEqualTypeOf<Promise<number>>();
  });

  test('are errors on an accessor field', () => {
    class Misused {
      // @ts-expect-error -- an accessor cannot be cached
      @Cache()
      accessor total = 1;

      // @ts-expect-error -- an accessor cannot invalidate
      @InvalidateCache('total')
      accessor invalidator = 1;
    }
    void Misused;
  });
});

describe('@CacheKey (TC39)', () => {
  test('compiles on an accessor field', () => {
    class Order {
      @CacheKey()
      accessor id = 42;
    }
    void Order;
  });

  test('is an error on static, #private, symbol-named members and on setters', () => {
    const key = Symbol('key');
    class Misused {
      // @ts-expect-error -- a static field is not part of an instance's key
      @CacheKey()
      static shared = 1;

      // @ts-expect-error -- a #private field cannot be read by the key builder
      @CacheKey()
      #secret = 1;

      // @ts-expect-error -- a static getter is not part of an instance's key
      @CacheKey()
      static get version(): number {
        return 1;
      }

      // @ts-expect-error -- a symbol-named property cannot be part of a key
      @CacheKey()
      [key] = 1;

      // @ts-expect-error -- a setter has no value to key by
      @CacheKey()
      set assigned(value: number) {
        void value;
      }

      read(): number {
        return this.#secret;
      }
    }
    void Misused;
  });
});
