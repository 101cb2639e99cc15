// Typed dependency keys end to end (SPEC §12): @Cache methods depending on defineDependency keys, and the
// touch, invalidate(product.of(record)), removing every entry that depends on one of the record's keys.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { addDependency, bindCachingService, Cache, CachingError, CachingService, defineDependency, MemoryBackend } from 'aspect-cache';

interface Product {
  id: number;
  name: string;
  price: number;
}

const product = defineDependency('product', { byId: (p: Product) => p.id, byName: (p: Product) => p.name });

class Runs {
  readonly #counts = new Map<string, number>();
  count(name: string): void {
    this.#counts.set(name, (this.#counts.get(name) ?? 0) + 1);
  }
  of(name: string): number {
    return this.#counts.get(name) ?? 0;
  }
}

class Catalogue {
  readonly runs = new Runs();
  readonly #products = new Map<number, Product>([
    [1, { id: 1, name: 'corn', price: 100 }],
    [2, { id: 2, name: 'wheat', price: 80 }],
  ]);

  constructor(caching: CachingService) {
    bindCachingService(this, caching);
  }

  record(id: number): Product {
    return this.#products.get(id)!;
  }

  @Cache()
  async getProduct(id: number): Promise<Product> {
    this.runs.count(`getProduct:${id}`);
    addDependency(product.byId(id));
    return { ...this.#products.get(id)! };
  }

  @Cache()
  priceByName(name: string): number | null {
    this.runs.count(`priceByName:${name}`);
    addDependency(product.byName(name));
    return [...this.#products.values()].find(p => p.name === name)?.price ?? null;
  }

  @Cache()
  async countProducts(): Promise<number> {
    this.runs.count('countProducts');
    addDependency(product.all);
    return this.#products.size;
  }

  /** Depends on the whole record through of(): registers the first keyer's key, product|byid|<id>. */
  @Cache()
  label(id: number): string {
    this.runs.count(`label:${id}`);
    const p = this.#products.get(id)!;
    addDependency(product.of(p));
    return `${p.name} at ${p.price}`;
  }

  /** A parent of getProduct(1): invalidated with it, through propagation. */
  @Cache()
  async cornPage(): Promise<string> {
    this.runs.count('cornPage');
    const corn = await this.getProduct(1);
    return `page of ${corn.name}`;
  }

  /** Takes the id as the URL gives it, a string. */
  @Cache()
  async getProductFromUrl(id: string): Promise<string> {
    this.runs.count(`getProductFromUrl:${id}`);
    addDependency(product.byId(id as unknown as number));
    return this.#products.get(Number(id))!.name;
  }

  @Cache()
  async broken(): Promise<string> {
    this.runs.count('broken');
    addDependency(product.byId(undefined as unknown as number));
    return 'never cached';
  }

  rename(id: number, name: string): { before: Product; after: Product } {
    const before = this.#products.get(id)!;
    const after = { ...before, name };
    this.#products.set(id, after);
    return { before, after };
  }
}

describe('defineDependency with @Cache (touch)', () => {
  let caching: CachingService;
  let catalogue: Catalogue;

  beforeEach(() => {
    caching = new CachingService({ backend: new MemoryBackend() });
    catalogue = new Catalogue(caching);
  });

  afterEach(async () => {
    await caching.dispose();
  });

  async function fillAll(): Promise<void> {
    await catalogue.getProduct(1);
    catalogue.priceByName('corn');
    await catalogue.countProducts();
    await catalogue.getProduct(2);
  }

  it('serves entries that depend on product keys from the cache', async () => {
    await fillAll();
    await fillAll();
    expect(catalogue.runs.of('getProduct:1')).toBe(1);
    expect(catalogue.runs.of('priceByName:corn')).toBe(1);
    expect(catalogue.runs.of('countProducts')).toBe(1);
    expect(catalogue.runs.of('getProduct:2')).toBe(1);
  });

  it('invalidate(product.of(corn)) removes the entries on byId(1), byName(corn) and all, and keeps byId(2)', async () => {
    await fillAll();
    await caching.invalidate(product.of(catalogue.record(1)));
    await fillAll();
    expect(catalogue.runs.of('getProduct:1')).toBe(2);
    expect(catalogue.runs.of('priceByName:corn')).toBe(2);
    expect(catalogue.runs.of('countProducts')).toBe(2);
    expect(catalogue.runs.of('getProduct:2')).toBe(1);
  });

  it('invalidating one key removes only the entries on that key', async () => {
    await fillAll();
    await caching.invalidate(product.byName('corn'));
    await fillAll();
    expect(catalogue.runs.of('priceByName:corn')).toBe(2);
    expect(catalogue.runs.of('getProduct:1')).toBe(1);
    expect(catalogue.runs.of('countProducts')).toBe(1);

    await caching.invalidate(product.all);
    await fillAll();
    expect(catalogue.runs.of('countProducts')).toBe(2);
    expect(catalogue.runs.of('getProduct:1')).toBe(1);
    expect(catalogue.runs.of('getProduct:2')).toBe(1);
  });

  it('reaches cached parents through propagation', async () => {
    await catalogue.cornPage();
    await caching.invalidate(product.of(catalogue.record(1)));
    await catalogue.cornPage();
    expect(catalogue.runs.of('cornPage')).toBe(2);
  });

  it('touching a renamed record before and after, in one call, invalidates the old and the new name', async () => {
    expect(catalogue.priceByName('corn')).toBe(100);
    expect(catalogue.priceByName('maize')).toBeNull(); // cached: no product of that name yet
    const { before, after } = catalogue.rename(1, 'maize');
    // Both touches have the same own key (product|byid|1) and different cascades: both are followed.
    await caching.invalidate(product.of(before), product.of(after));
    expect(catalogue.priceByName('corn')).toBeNull();
    expect(catalogue.priceByName('maize')).toBe(100);
    expect(catalogue.runs.of('priceByName:corn')).toBe(2);
    expect(catalogue.runs.of('priceByName:maize')).toBe(2);
  });

  it('addDependency(product.of(p)) registers the first keyer key: a touch or byId invalidates it, byName alone does not', async () => {
    catalogue.label(1);
    await caching.invalidate(product.byName('corn'));
    catalogue.label(1);
    expect(catalogue.runs.of('label:1')).toBe(1);

    await caching.invalidate(product.byId(1));
    catalogue.label(1);
    expect(catalogue.runs.of('label:1')).toBe(2);

    await caching.invalidate(product.of(catalogue.record(1)));
    catalogue.label(1);
    expect(catalogue.runs.of('label:1')).toBe(3);
  });

  it('an id given as a string (from a URL) and as a number (from the database) is the same dependency', async () => {
    await catalogue.getProductFromUrl('1');
    await caching.invalidate(product.of(catalogue.record(1)));
    await catalogue.getProductFromUrl('1');
    expect(catalogue.runs.of('getProductFromUrl:1')).toBe(2);
  });

  it('an unkeyable value makes the call fail with a CachingError, and nothing is cached', async () => {
    await expect(catalogue.broken()).rejects.toThrow(CachingError);
    await expect(catalogue.broken()).rejects.toThrow(/product\.byId\(value\): got undefined/);
    expect(catalogue.runs.of('broken')).toBe(2);
  });

  it('does not touch the entries of another kind', async () => {
    const order = defineDependency('order', { byId: (o: { id: number }) => o.id });
    class Orders {
      runs = 0;
      constructor(service: CachingService) {
        bindCachingService(this, service);
      }
      @Cache()
      get(id: number): string {
        this.runs++;
        addDependency(order.byId(id));
        return `order ${id}`;
      }
    }
    const orders = new Orders(caching);
    orders.get(1);
    await caching.invalidate(product.of(catalogue.record(1)));
    orders.get(1);
    expect(orders.runs).toBe(1);
  });
});
