import { describe, expectTypeOf, test } from 'vitest';
import { container } from 'tsyringe';
import { CachingService } from 'aspect-cache';
import { CachingInjectable, registerCachingService } from 'aspect-cache/tsyringe';

describe('aspect-cache/tsyringe', () => {
  test('@CachingInjectable decorates classes only', () => {
    @CachingInjectable({ token: 'catalogue' })
    class Catalogue {
      constructor(readonly caching: CachingService) {}

      // @ts-expect-error -- a class decorator on a method
      @CachingInjectable()
      run(): number {
        return 1;
      }
    }
    expectTypeOf(new Catalogue(new CachingService()).caching).toEqualTypeOf<CachingService>();
  });

  test('registerCachingService returns the registered service', () => {
    expectTypeOf(registerCachingService(container)).toEqualTypeOf<CachingService>();
    // @ts-expect-error -- a container first
    registerCachingService(new CachingService());
  });
});
