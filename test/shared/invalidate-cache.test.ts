import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { addDependency, bindCachingService, Cache, CachingService, InvalidateCache } from 'aspect-cache';
import { deferred, flush } from '../support/deferred.js';
import { definitionError } from '../support/definition-error.js';

// @InvalidateCache (SPEC §2, §6): targets in the same class, in another class, or with an explicit mapper;
// arguments mapped by name; invalidation only after success; mapping mistakes reported at class definition.

let service: CachingService;

beforeEach(() => {
  service = new CachingService({ logger: { debug: vi.fn(), warn: vi.fn(), error: vi.fn() } });
});

afterEach(async () => {
  await service.dispose();
});


describe('same-class targets', () => {
  it("updatePrice(id, price) invalidates getPrice(id) for that id only", async () => {
    const prices = new Map([
      ['corn', 1],
      ['wheat', 2],
    ]);
    const runs: string[] = [];
    class PriceCatalogue {
      @Cache()
      async getPrice(id: string): Promise<number> {
        runs.push(id);
        return prices.get(id)!;
      }

      @InvalidateCache('getPrice')
      async updatePrice(id: string, price: number): Promise<void> {
        prices.set(id, price);
      }
    }
    const catalogue = bindCachingService(new PriceCatalogue(), service);
    await catalogue.getPrice('corn');
    await catalogue.getPrice('wheat');
    await catalogue.updatePrice('corn', 10);
    await expect(catalogue.getPrice('corn')).resolves.toBe(10);
    await expect(catalogue.getPrice('wheat')).resolves.toBe(2);
    expect(runs).toEqual(['corn', 'wheat', 'corn']);
  });

  it('maps arguments by name, not by position', async () => {
    const stock = new Map<string, number>([
      ['eu/corn', 5],
      ['us/corn', 7],
      ['eu/rice', 9],
    ]);
    const runs: string[] = [];
    class Stock {
      @Cache()
      async level(region: string, sku: string): Promise<number> {
        runs.push(`${region}/${sku}`);
        return stock.get(`${region}/${sku}`)!;
      }

      // same names, different order, and an extra parameter
      @InvalidateCache('level')
      async adjust(delta: number, sku: string, region: string): Promise<void> {
        stock.set(`${region}/${sku}`, stock.get(`${region}/${sku}`)! + delta);
      }
    }
    const s = bindCachingService(new Stock(), service);
    await s.level('eu', 'corn');
    await s.level('us', 'corn');
    await s.level('eu', 'rice');
    await s.adjust(100, 'corn', 'eu');
    await expect(s.level('eu', 'corn')).resolves.toBe(105);
    await expect(s.level('us', 'corn')).resolves.toBe(7);
    await expect(s.level('eu', 'rice')).resolves.toBe(9);
    expect(runs).toEqual(['eu/corn', 'us/corn', 'eu/rice', 'eu/corn']);
  });

  it('a synchronous invalidating method invalidates as soon as it returns', () => {
    const names = new Map([[1, 'one']]);
    let runs = 0;
    class SyncNames {
      @Cache()
      name(id: number): string {
        runs++;
        return names.get(id)!;
      }

      @InvalidateCache('name')
      rename(id: number, value: string): string {
        names.set(id, value);
        return 'renamed';
      }
    }
    const n = bindCachingService(new SyncNames(), service);
    expect(n.name(1)).toBe('one');
    expect(n.rename(1, 'uno')).toBe('renamed');
    expect(n.name(1)).toBe('uno');
    expect(runs).toBe(2);
  });

  it('one decorator can name several targets; the invalidating method returns its own result', async () => {
    const runs: string[] = [];
    class Profiles {
      @Cache()
      async profile(userId: number): Promise<string> {
        runs.push(`profile ${userId}`);
        return `p${userId}`;
      }

      @Cache()
      async avatar(userId: number): Promise<string> {
        runs.push(`avatar ${userId}`);
        return `a${userId}`;
      }

      @InvalidateCache('profile', 'avatar')
      async update(userId: number): Promise<string> {
        return `updated ${userId}`;
      }
    }
    const p = bindCachingService(new Profiles(), service);
    await p.profile(1);
    await p.avatar(1);
    await expect(p.update(1)).resolves.toBe('updated 1');
    await p.profile(1);
    await p.avatar(1);
    expect(runs).toEqual(['profile 1', 'avatar 1', 'profile 1', 'avatar 1']);
  });

  it('entries computed from the invalidated call are invalidated too', async () => {
    const prices = new Map([['corn', 1]]);
    const runs: string[] = [];
    class Shop {
      @Cache()
      async getPrice(id: string): Promise<number> {
        runs.push(`price ${id}`);
        return prices.get(id)!;
      }

      @Cache()
      async quote(id: string, quantity: number): Promise<number> {
        runs.push(`quote ${id}x${quantity}`);
        return (await this.getPrice(id)) * quantity;
      }

      @InvalidateCache('getPrice')
      async updatePrice(id: string, price: number): Promise<void> {
        prices.set(id, price);
      }
    }
    const shop = bindCachingService(new Shop(), service);
    await expect(shop.quote('corn', 3)).resolves.toBe(3);
    await shop.updatePrice('corn', 5);
    await expect(shop.quote('corn', 3)).resolves.toBe(15);
    expect(runs).toEqual(['quote cornx3', 'price corn', 'quote cornx3', 'price corn']);
  });

  it('static methods can invalidate static cached methods by name', async () => {
    const rates = new Map([['EUR', 1]]);
    let runs = 0;
    class Rates {
      @Cache()
      static async rate(currency: string): Promise<number> {
        runs++;
        return rates.get(currency)!;
      }

      @InvalidateCache('rate')
      static async setRate(currency: string, value: number): Promise<void> {
        rates.set(currency, value);
      }
    }
    bindCachingService(Rates, service);
    await Rates.rate('EUR');
    await Rates.setRate('EUR', 2);
    await expect(Rates.rate('EUR')).resolves.toBe(2);
    expect(runs).toBe(2);
  });
});

describe('other-class targets and explicit mappers', () => {
  it('[OtherClass, method] invalidates that class\'s entries for the mapped arguments', async () => {
    const levels = new Map([
      ['corn', 1],
      ['rice', 2],
    ]);
    const runs: string[] = [];
    class Inventory {
      @Cache()
      async stock(sku: string): Promise<number> {
        runs.push(sku);
        return levels.get(sku)!;
      }
    }
    class Warehouse {
      @InvalidateCache([Inventory, 'stock'])
      async receive(sku: string, quantity: number): Promise<void> {
        levels.set(sku, levels.get(sku)! + quantity);
      }
    }
    const inventory = bindCachingService(new Inventory(), service);
    const warehouse = bindCachingService(new Warehouse(), service);
    await inventory.stock('corn');
    await inventory.stock('rice');
    await warehouse.receive('corn', 10);
    await expect(inventory.stock('corn')).resolves.toBe(11);
    await expect(inventory.stock('rice')).resolves.toBe(2);
    expect(runs).toEqual(['corn', 'rice', 'corn']);
  });

  it('{ method, args } maps renamed or structured arguments explicitly', async () => {
    interface Product {
      id: string;
      price: number;
    }
    const prices = new Map([
      ['corn', 1],
      ['rice', 2],
    ]);
    const runs: string[] = [];
    class Products {
      @Cache()
      async getPrice(id: string): Promise<number> {
        runs.push(id);
        return prices.get(id)!;
      }

      @InvalidateCache({ method: 'getPrice', args: (product: Product) => [product.id] })
      async save(product: Product): Promise<void> {
        prices.set(product.id, product.price);
      }
    }
    const products = bindCachingService(new Products(), service);
    await products.getPrice('corn');
    await products.getPrice('rice');
    await products.save({ id: 'rice', price: 20 });
    await expect(products.getPrice('rice')).resolves.toBe(20);
    await expect(products.getPrice('corn')).resolves.toBe(1);
    expect(runs).toEqual(['corn', 'rice', 'rice']);
  });

  it('{ target, method, args } maps arguments onto another class\'s method', async () => {
    const totals = new Map([['c1', 0]]);
    const runs: string[] = [];
    class Accounts {
      @Cache()
      async balance(customerId: string): Promise<number> {
        runs.push(customerId);
        return totals.get(customerId)!;
      }
    }
    class Payments {
      @InvalidateCache({ target: Accounts, method: 'balance', args: (payment: { payer: string; amount: number }) => [payment.payer] })
      async pay(payment: { payer: string; amount: number }): Promise<string> {
        totals.set(payment.payer, totals.get(payment.payer)! + payment.amount);
        return 'paid';
      }
    }
    const accounts = bindCachingService(new Accounts(), service);
    const payments = bindCachingService(new Payments(), service);
    await accounts.balance('c1');
    await expect(payments.pay({ payer: 'c1', amount: 30 })).resolves.toBe('paid');
    await expect(accounts.balance('c1')).resolves.toBe(30);
    expect(runs).toEqual(['c1', 'c1']);
  });

  it('a destructured parameter of the target works with an args mapper', async () => {
    let runs = 0;
    class Search {
      @Cache()
      async find({ term, page }: { term: string; page: number }): Promise<string> {
        runs++;
        return `${term}#${page}`;
      }

      @InvalidateCache({ method: 'find', args: (term: string) => [{ term, page: 1 }] })
      async reindex(term: string): Promise<void> {}
    }
    const search = bindCachingService(new Search(), service);
    await search.find({ term: 'corn', page: 1 });
    await search.find({ page: 1, term: 'corn' });
    expect(runs).toBe(1);
    await search.reindex('corn');
    await search.find({ term: 'corn', page: 1 });
    expect(runs).toBe(2);
  });
});

describe('invalidation happens only after success', () => {
  it('a synchronous invalidating method that throws invalidates nothing', () => {
    let runs = 0;
    class SyncFailing {
      @Cache()
      get(id: number): number {
        runs++;
        return id;
      }

      @InvalidateCache('get')
      set(id: number): void {
        throw new Error(`cannot set ${id}`);
      }
    }
    const s = bindCachingService(new SyncFailing(), service);
    s.get(1);
    expect(() => s.set(1)).toThrow('cannot set 1');
    s.get(1);
    expect(runs).toBe(1);
    expect(service.stats().invalidations).toBe(0);
  });

  it('an async invalidating method that rejects invalidates nothing', async () => {
    let runs = 0;
    class AsyncFailing {
      @Cache()
      async get(id: number): Promise<number> {
        runs++;
        return id;
      }

      @InvalidateCache('get')
      async set(id: number): Promise<void> {
        await Promise.resolve();
        throw new Error(`cannot set ${id}`);
      }
    }
    const s = bindCachingService(new AsyncFailing(), service);
    await s.get(1);
    await expect(s.set(1)).rejects.toThrow('cannot set 1');
    await s.get(1);
    expect(runs).toBe(1);
    expect(service.stats().invalidations).toBe(0);
  });

  it('an async invalidating method invalidates only once its promise resolves', async () => {
    const gate = deferred<void>();
    let runs = 0;
    class SlowWriter {
      @Cache()
      async read(id: string): Promise<string> {
        runs++;
        return `${id}@${runs}`;
      }

      @InvalidateCache('read')
      async write(id: string): Promise<void> {
        await gate.promise;
      }
    }
    const w = bindCachingService(new SlowWriter(), service);
    await expect(w.read('a')).resolves.toBe('a@1');
    const writing = w.write('a');
    await flush();
    // still served from the cache while the write is pending
    await expect(w.read('a')).resolves.toBe('a@1');
    expect(runs).toBe(1);
    gate.resolve();
    await writing;
    await expect(w.read('a')).resolves.toBe('a@2');
    expect(runs).toBe(2);
  });

  it('the invalidating method resolves only after the invalidation is done', async () => {
    let runs = 0;
    class Writer {
      @Cache()
      async read(id: string): Promise<number> {
        runs++;
        return runs;
      }

      @InvalidateCache('read')
      async write(id: string): Promise<string> {
        return `wrote ${id}`;
      }
    }
    const w = bindCachingService(new Writer(), service);
    const seen: string[] = [];
    service.on('invalidate', () => seen.push('invalidated'));
    await w.read('x');
    const result = await w.write('x');
    seen.push(result);
    expect(seen).toEqual(['invalidated', 'wrote x']);
  });
});

describe('mapping checked at class definition', () => {
  it('a target parameter missing from the invalidating method throws E_INVALIDATION_MAPPING naming it', () => {
    const error = definitionError(() => {
      class MissingParameter {
        @Cache()
        async getPrice(productId: string): Promise<number> {
          return productId.length;
        }

        @InvalidateCache('getPrice')
        async updatePrice(id: string, price: number): Promise<void> {
          void id;
          void price;
        }
      }
      return MissingParameter;
    }, 'E_INVALIDATION_MAPPING');
    expect(error.message).toContain('productId');
    expect(error.message).toContain('updatePrice');
  });

  it('a same-class target defined after the invalidating method is still checked at class definition', () => {
    const error = definitionError(() => {
      class TargetDefinedLater {
        @InvalidateCache('getStock')
        async restock(sku: string): Promise<void> {
          void sku;
        }

        @Cache()
        async getStock(warehouseId: string, sku: string): Promise<number> {
          return warehouseId.length + sku.length;
        }
      }
      return TargetDefinedLater;
    }, 'E_INVALIDATION_MAPPING');
    expect(error.message).toContain('warehouseId');
  });

  it('a correct mapping to a target defined later does not throw and works', async () => {
    let runs = 0;
    class LaterButFine {
      @InvalidateCache('getStock')
      async restock(sku: string): Promise<void> {
        void sku;
      }

      @Cache()
      async getStock(sku: string): Promise<number> {
        runs++;
        return sku.length;
      }
    }
    const l = bindCachingService(new LaterButFine(), service);
    await l.getStock('a');
    await l.restock('a');
    await l.getStock('a');
    expect(runs).toBe(2);
  });

  it('an [OtherClass, method] target with a parameter missing from the invalidating method throws at definition', () => {
    class Ledger {
      @Cache()
      async entries(accountId: string): Promise<string[]> {
        return [accountId];
      }
    }
    const error = definitionError(() => {
      class Poster {
        @InvalidateCache([Ledger, 'entries'])
        async post(account: string): Promise<void> {
          void account;
        }
      }
      return Poster;
    }, 'E_INVALIDATION_MAPPING');
    expect(error.message).toContain('accountId');
  });

  it('a destructured parameter of the target requires an args mapper', () => {
    const error = definitionError(() => {
      class DestructuredTarget {
        @Cache()
        async find({ term }: { term: string }): Promise<string> {
          return term;
        }

        @InvalidateCache('find')
        async reindex(term: string): Promise<void> {
          void term;
        }
      }
      return DestructuredTarget;
    }, 'E_INVALIDATION_MAPPING');
    expect(error.message).toContain('find');
    expect(error.message).toMatch(/args/);
  });

  it('a target that is not a @Cache method of another class throws at definition', () => {
    class PlainService {
      async plain(id: string): Promise<string> {
        return id;
      }
    }
    const error = definitionError(() => {
      class InvalidatesPlain {
        @InvalidateCache([PlainService, 'plain'])
        async touch(id: string): Promise<void> {
          void id;
        }
      }
      return InvalidatesPlain;
    }, 'E_INVALIDATION_MAPPING');
    expect(error.message).toContain('plain');
  });

  it('a same-class target that is not a @Cache method errors before the invalidating method body ever runs', () => {
    let bodyRuns = 0;
    const error = definitionError(() => {
      class InvalidatesOwnPlain {
        async plain(id: string): Promise<string> {
          return id;
        }

        @InvalidateCache('plain')
        touch(id: string): string {
          bodyRuns++;
          return id;
        }
      }
      // Definition, instantiation and first call: the error must come no later than that.
      bindCachingService(new InvalidatesOwnPlain(), service).touch('x');
    }, 'E_INVALIDATION_MAPPING');
    expect(error.message).toContain('plain');
    expect(bodyRuns).toBe(0);
  });

  it('a target method that does not exist errors', () => {
    const error = definitionError(() => {
      class Typo {
        @Cache()
        async getPrice(id: string): Promise<string> {
          return id;
        }

        @InvalidateCache('getPirce')
        update(id: string): string {
          return id;
        }
      }
      bindCachingService(new Typo(), service).update('x');
    }, 'E_INVALIDATION_MAPPING');
    expect(error.message).toContain('getPirce');
  });

  it('@InvalidateCache() with no target throws E_INVALIDATION_MAPPING', () => {
    definitionError(() => InvalidateCache(), 'E_INVALIDATION_MAPPING');
  });
});

describe('invalidation reaches entries computed from the target', () => {
  it("rename('a') drops product('a') and the listing computed from it, but keeps product('b')", async () => {
    const runs: string[] = [];
    class Catalogue {
      @Cache()
      async product(id: string): Promise<string> {
        runs.push(`product ${id}`);
        addDependency(`Product:${id}`);
        return id.toUpperCase();
      }

      @Cache()
      async listing(): Promise<string> {
        runs.push('listing');
        return [await this.product('a'), await this.product('b')].join(',');
      }

      @InvalidateCache('product')
      async rename(id: string): Promise<void> {
        void id;
      }
    }
    const c = bindCachingService(new Catalogue(), service);
    await expect(c.listing()).resolves.toBe('A,B');
    await c.rename('a');
    await c.listing();
    await c.product('b');
    expect(runs).toEqual(['listing', 'product a', 'product b', 'listing', 'product a']);
  });
});
