import { describe, test } from 'vitest';
import { Cache, CacheKey, InvalidateCache } from 'aspect-cache';

// Legacy decorators only (tsconfig.types-legacy.json, experimentalDecorators + emitDecoratorMetadata).
// Legacy member decorators see no "kind": methods and accessors both get a descriptor, so a getter or setter
// is told apart by its value's type only, and static members are rejected when the class is defined.

describe('decorators (legacy)', () => {
  test('are errors on a parameter', () => {
    class Misused {
      // @ts-expect-error -- @Cache is not a parameter decorator
      run(@Cache() id: string): string {
        return id;
      }

      // @ts-expect-error -- @InvalidateCache is not a parameter decorator
      stop(@InvalidateCache('run') id: string): string {
        return id;
      }

      // @ts-expect-error -- @CacheKey is not a parameter decorator
      constructor(@CacheKey() readonly id: string) {}
    }
    void Misused;
  });

  test('@CacheKey is an error on static members', () => {
    class Misused {
      // @ts-expect-error -- a static field is not part of an instance's key
      @CacheKey()
      static shared = 1;

      // @ts-expect-error -- a static getter is not part of an instance's key
      @CacheKey()
      static get version(): number {
        return 1;
      }
    }
    void Misused;
  });

  test('@Cache compiles on a method whose parameters are classes (emitDecoratorMetadata)', () => {
    class Connection {}
    class Repository {
      @Cache({ ignoreArgs: [0] })
      async find(connection: Connection, id: number): Promise<number> {
        void connection;
        return id;
      }
    }
    void Repository;
  });
});
