import { beforeEach, describe, expect, it, vi } from 'vitest';

// An unbound instance silently using the lazily created CachingService.default while the application built
// its own service is a wiring mistake: its entries live in a private memory cache the application's service
// never invalidates. The first such call warns (ASPECT_CACHE_DEFAULT_FALLBACK), once per process.
//
// The default and the warning are process-wide state, so each test loads a fresh copy of the library.

type Library = typeof import('aspect-cache');
let lib: Library;

beforeEach(async () => {
  vi.resetModules();
  lib = await import('aspect-cache');
});

const quiet = () => ({ debug: vi.fn(), warn: vi.fn(), error: vi.fn() });

/**
 * The ASPECT_CACHE_DEFAULT_FALLBACK warnings emitted while `fn` runs. process.emitWarning is intercepted (other
 * warnings pass through), so the expected warnings do not clutter the test output.
 */
async function fallbackWarnings(fn: () => unknown): Promise<Array<{ message: string }>> {
  const seen: Array<{ message: string }> = [];
  const original = process.emitWarning.bind(process) as (...args: unknown[]) => void;
  const spy = vi.spyOn(process, 'emitWarning').mockImplementation(((warning: string | Error, options?: unknown) => {
    const code = typeof options === 'object' && options !== null ? (options as { code?: string }).code : undefined;
    if (code === 'ASPECT_CACHE_DEFAULT_FALLBACK') seen.push({ message: String(warning) });
    else original(warning, options);
  }) as typeof process.emitWarning);
  try {
    await fn();
  } finally {
    spy.mockRestore();
  }
  return seen;
}

function defineCatalogue(Cache: Library['Cache'], InvalidateCache: Library['InvalidateCache']) {
  class PriceCatalogue {
    runs = 0;

    @Cache()
    getPrice(id: string): number {
      this.runs++;
      return id.length;
    }

    @InvalidateCache('getPrice')
    updatePrice(id: string): string {
      return id;
    }
  }
  return PriceCatalogue;
}

describe('falling back to the lazily created CachingService.default', () => {
  it('warns once, naming the class, the method and the fixes, when another service exists', async () => {
    const { Cache, InvalidateCache, CachingService } = lib;
    const caching = new CachingService({ logger: quiet() });
    const PriceCatalogue = defineCatalogue(Cache, InvalidateCache);
    const catalogue = new PriceCatalogue();
    const warnings = await fallbackWarnings(() => {
      expect(catalogue.getPrice('corn')).toBe(4);
      expect(catalogue.getPrice('corn')).toBe(4);
      catalogue.updatePrice('corn');
      new PriceCatalogue().getPrice('rice');
    });
    expect(warnings).toHaveLength(1);
    const message = warnings[0]!.message;
    expect(message).toContain('PriceCatalogue.getPrice');
    expect(message).toContain('an instance of PriceCatalogue');
    expect(message).toContain('bindCachingService(instance, service)');
    expect(message).toContain('CachingService.default = service');
    expect(message).toContain('CachingInjectable');
    expect(message).toContain('CachingModule');
    // The call itself is unaffected: it is cached in the default, not in the application's service.
    expect(catalogue.runs).toBe(1);
    expect(CachingService.default.stats().hits).toBe(1);
    expect(caching.stats().hits + caching.stats().misses).toBe(0);
    await caching.dispose();
  });

  it('warns when the default already served calls before the application constructed its service', async () => {
    const { Cache, InvalidateCache, CachingService } = lib;
    const PriceCatalogue = defineCatalogue(Cache, InvalidateCache);
    const catalogue = new PriceCatalogue();
    const before = await fallbackWarnings(() => catalogue.getPrice('corn'));
    expect(before).toEqual([]);
    const caching = new CachingService({ logger: quiet() });
    const after = await fallbackWarnings(() => {
      catalogue.getPrice('corn');
      catalogue.getPrice('rice');
    });
    expect(after).toHaveLength(1);
    expect(after[0]!.message).toContain('PriceCatalogue.getPrice');
    // Once per process: another service and more unbound calls do not warn again.
    const another = new CachingService({ logger: quiet() });
    expect(await fallbackWarnings(() => new PriceCatalogue().getPrice('oats'))).toEqual([]);
    await Promise.all([caching.dispose(), another.dispose()]);
  });

  it('names the class of an unbound static method and the bindCachingService call for it', async () => {
    const { Cache, CachingService } = lib;
    const caching = new CachingService({ logger: quiet() });
    class ExchangeRates {
      @Cache()
      static async rate(currency: string): Promise<number> {
        return currency.length;
      }
    }
    const warnings = await fallbackWarnings(() => ExchangeRates.rate('EUR'));
    expect(warnings).toHaveLength(1);
    expect(warnings[0]!.message).toContain('ExchangeRates.rate was called on a class');
    expect(warnings[0]!.message).toContain('bindCachingService(ExchangeRates, service)');
    await caching.dispose();
  });

  it('refreshCall on an unbound instance falls back to the default too, and warns', async () => {
    const { Cache, InvalidateCache, CachingService } = lib;
    const caching = new CachingService({ logger: quiet() });
    const catalogue = new (defineCatalogue(Cache, InvalidateCache))();
    const warnings = await fallbackWarnings(() => caching.refreshCall(() => catalogue.getPrice('corn')));
    expect(warnings).toHaveLength(1);
    expect(warnings[0]!.message).toContain('PriceCatalogue.getPrice');
    await caching.dispose();
  });
});

describe('no warning', () => {
  it('when the application set CachingService.default itself, even after the lazy one served calls', async () => {
    const { Cache, InvalidateCache, CachingService } = lib;
    const catalogue = new (defineCatalogue(Cache, InvalidateCache))();
    catalogue.getPrice('early'); // creates the lazy default
    const caching = new CachingService({ logger: quiet() });
    CachingService.default = caching;
    expect(await fallbackWarnings(() => catalogue.getPrice('corn'))).toEqual([]);
    expect(caching.stats().misses).toBe(1);
    // Even with more services around.
    const other = new CachingService({ logger: quiet() });
    expect(await fallbackWarnings(() => catalogue.getPrice('rice'))).toEqual([]);
    await Promise.all([caching.dispose(), other.dispose()]);
  });

  it('when only the default exists', async () => {
    const { Cache, InvalidateCache, CachingService } = lib;
    const catalogue = new (defineCatalogue(Cache, InvalidateCache))();
    const warnings = await fallbackWarnings(async () => {
      catalogue.getPrice('corn');
      catalogue.updatePrice('corn');
      await CachingService.default.invalidate('anything');
    });
    expect(warnings).toEqual([]);
  });

  it('when the other service was disposed before the unbound call', async () => {
    const { Cache, InvalidateCache, CachingService } = lib;
    const caching = new CachingService({ logger: quiet() });
    await caching.dispose();
    const catalogue = new (defineCatalogue(Cache, InvalidateCache))();
    expect(await fallbackWarnings(() => catalogue.getPrice('corn'))).toEqual([]);
  });

  it('for bound instances, and when the application only uses CachingService.default explicitly', async () => {
    const { Cache, InvalidateCache, CachingService, bindCachingService } = lib;
    const caching = new CachingService({ logger: quiet() });
    const PriceCatalogue = defineCatalogue(Cache, InvalidateCache);
    const warnings = await fallbackWarnings(async () => {
      const bound = bindCachingService(new PriceCatalogue(), caching);
      bound.getPrice('corn');
      bound.updatePrice('corn');
      await CachingService.default.invalidate('ProductPrice:corn');
    });
    expect(warnings).toEqual([]);
    await caching.dispose();
  });
});
