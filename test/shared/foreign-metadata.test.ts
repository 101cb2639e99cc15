import 'reflect-metadata';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { bindCachingService, Cache, CachingService, InvalidateCache } from 'aspect-cache';

// SPEC §15: @Cache and @InvalidateCache keep what other decorators (Nest's @Get, @SetMetadata, guards…) put on
// the method, whichever order they are written in. A decorator below ours ran first and tagged the original
// function, which ours replaces; a decorator above ours tags our wrapper.

const ROLE = 'test:role';
const TAG = Symbol('test:tag');

type Tagged = Function & { [TAG]?: string; route?: string };

/**
 * A decorator from another library, in the current decorator mode: legacy, it writes reflect-metadata and an
 * own property on `descriptor.value` (what Nest's method decorators do); TC39, it returns a new function
 * calling the method, with the metadata and the property on that new function.
 */
function Tag(role: string, route: string): (...args: any[]) => any {
  const tag = (fn: Function): void => {
    Reflect.defineMetadata(ROLE, role, fn);
    Object.assign(fn, { [TAG]: role, route });
  };
  return (...args: unknown[]): any => {
    const [value, context] = args as [Function, { kind?: string } | undefined];
    if (typeof context === 'object' && context !== null && context.kind === 'method') {
      const replacement = function (this: unknown, ...callArgs: unknown[]) {
        return value.apply(this, callArgs);
      };
      tag(replacement);
      return replacement;
    }
    const descriptor = args[2] as PropertyDescriptor;
    tag(descriptor.value as Function);
    return descriptor;
  };
}

function expectTagged(fn: Tagged, role: string, route: string): void {
  expect(Reflect.getOwnMetadata(ROLE, fn)).toBe(role);
  expect(Reflect.getMetadata(ROLE, fn)).toBe(role);
  expect(fn[TAG]).toBe(role);
  expect(fn.route).toBe(route);
}

let service: CachingService;

beforeEach(() => {
  service = new CachingService({ logger: { debug: vi.fn(), warn: vi.fn(), error: vi.fn() } });
});

afterEach(async () => {
  await service.dispose();
});

describe('@Cache keeps the metadata of other decorators', () => {
  it('when @Cache is written above the other decorator', async () => {
    let runs = 0;
    class Catalogue {
      @Cache()
      @Tag('reader', '/prices/:id')
      async getPrice(id: string): Promise<string> {
        runs++;
        return `price of ${id}`;
      }
    }
    expectTagged(Catalogue.prototype.getPrice, 'reader', '/prices/:id');
    const catalogue = bindCachingService(new Catalogue(), service);
    await expect(catalogue.getPrice('corn')).resolves.toBe('price of corn');
    await expect(catalogue.getPrice('corn')).resolves.toBe('price of corn');
    expect(runs).toBe(1);
    expect(service.stats().hits).toBe(1);
  });

  it('when @Cache is written below the other decorator', async () => {
    let runs = 0;
    class Catalogue {
      @Tag('reader', '/prices/:id')
      @Cache()
      async getPrice(id: string): Promise<string> {
        runs++;
        return `price of ${id}`;
      }
    }
    expectTagged(Catalogue.prototype.getPrice, 'reader', '/prices/:id');
    const catalogue = bindCachingService(new Catalogue(), service);
    await catalogue.getPrice('corn');
    await catalogue.getPrice('corn');
    expect(runs).toBe(1);
  });

  it('on a synchronous static method', () => {
    let runs = 0;
    class Rates {
      @Cache()
      @Tag('static', '/rates')
      static rate(currency: string): number {
        runs++;
        return currency.length;
      }
    }
    expectTagged(Rates.rate, 'static', '/rates');
    bindCachingService(Rates, service);
    expect(Rates.rate('EUR')).toBe(3);
    expect(Rates.rate('EUR')).toBe(3);
    expect(runs).toBe(1);
  });

  it("keeps the wrapper's own name and length", () => {
    class Catalogue {
      @Cache()
      @Tag('reader', '/x')
      async getPrice(id: string, currency: string): Promise<string> {
        return id + currency;
      }
    }
    expect(Catalogue.prototype.getPrice.name).toBe('getPrice');
    // The wrapper takes rest parameters: its own length (0) is not replaced by the original's.
    expect(Catalogue.prototype.getPrice.length).toBe(0);
  });
});

describe('@InvalidateCache keeps the metadata of other decorators', () => {
  it('when @InvalidateCache is written above the other decorator', async () => {
    const prices = new Map([['corn', 1]]);
    let runs = 0;
    class Catalogue {
      @Cache()
      async getPrice(id: string): Promise<number> {
        runs++;
        return prices.get(id)!;
      }

      // Explicit mapping: under TC39 the method @InvalidateCache receives is Tag's replacement, whose
      // (...callArgs) parameters cannot be mapped by name.
      @InvalidateCache({ method: 'getPrice', args: (id: string) => [id] })
      @Tag('writer', '/prices/:id')
      async updatePrice(id: string, price: number): Promise<void> {
        prices.set(id, price);
      }
    }
    expectTagged(Catalogue.prototype.updatePrice, 'writer', '/prices/:id');
    const catalogue = bindCachingService(new Catalogue(), service);
    await catalogue.getPrice('corn');
    await catalogue.updatePrice('corn', 5);
    await expect(catalogue.getPrice('corn')).resolves.toBe(5);
    expect(runs).toBe(2);
  });

  it('when @InvalidateCache is written below the other decorator', async () => {
    const prices = new Map([['corn', 1]]);
    let runs = 0;
    class Catalogue {
      @Cache()
      async getPrice(id: string): Promise<number> {
        runs++;
        return prices.get(id)!;
      }

      @Tag('writer', '/prices/:id')
      @InvalidateCache('getPrice')
      async updatePrice(id: string, price: number): Promise<void> {
        prices.set(id, price);
      }
    }
    expectTagged(Catalogue.prototype.updatePrice, 'writer', '/prices/:id');
    const catalogue = bindCachingService(new Catalogue(), service);
    await catalogue.getPrice('corn');
    await catalogue.updatePrice('corn', 5);
    await expect(catalogue.getPrice('corn')).resolves.toBe(5);
    expect(runs).toBe(2);
  });
});
