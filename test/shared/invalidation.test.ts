// Invalidation (SPEC §5, §6, §9): CacheDependency objects and their cascades, StringDependency,
// ObjectDependency, invalidateCall, @InvalidateCache, and the 'invalidate' event.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  addDependency,
  bindCachingService,
  Cache,
  CacheKey,
  CachingError,
  CachingService,
  InvalidateCache,
  MemoryBackend,
  ObjectDependency,
  StringDependency,
  type CacheDependency,
  type InvalidateOptions,
  type InvalidationResult,
} from 'aspect-cache';
import { deferred, flush } from '../support/deferred.js';

class Runs {
  readonly #counts = new Map<string, number>();
  count(name: string): void {
    this.#counts.set(name, (this.#counts.get(name) ?? 0) + 1);
  }
  of(name: string): number {
    return this.#counts.get(name) ?? 0;
  }
}

// ───────────────────────────── the ProductCatalogue seed scenario (object dependencies) ─────────────────────────────

const catalogueDependency = new StringDependency('ProductCatalogue');

/** A product record is its own dependency, and cascades to the whole catalogue. */
class Product implements CacheDependency {
  constructor(
    readonly name: string,
    readonly price: number,
  ) {}

  getCacheKey(): string {
    return `Product:${this.name}`;
  }

  get cascadeDependencies(): Iterable<CacheDependency> {
    return [catalogueDependency];
  }

  toString(): string {
    return `Product { Name = ${this.name}, Price = ${this.price} }`;
  }
}

class ObjectCatalogue {
  readonly #products = new Map<string, Product>();
  readonly runs = new Runs();
  readonly log: string[] = [];
  dbOperationCount = 0;

  constructor(
    readonly caching: CachingService,
    products: Record<string, number> = { corn: 100 },
  ) {
    for (const [name, price] of Object.entries(products)) this.#products.set(name, new Product(name, price));
    bindCachingService(this, caching);
  }

  @Cache()
  getProducts(): string[] {
    this.log.push('Getting the product list from database.');
    this.runs.count('getProducts');
    this.dbOperationCount++;
    addDependency('ProductList');
    return [...this.#products.keys()];
  }

  @Cache()
  getProduct(name: string): Product {
    this.log.push(`Getting the price of ${name} from database.`);
    this.runs.count(`getProduct:${name}`);
    this.dbOperationCount++;
    const product = this.#products.get(name)!;
    addDependency(product);
    return product;
  }

  @Cache()
  getPriceList(): Record<string, number> {
    this.runs.count('getPriceList');
    this.dbOperationCount++;
    addDependency(catalogueDependency);
    return Object.fromEntries([...this.#products.values()].map(p => [p.name, p.price]));
  }

  /** A parent of getProduct('corn') only. */
  @Cache()
  cornLabel(): string {
    this.runs.count('cornLabel');
    return String(this.getProduct('corn'));
  }

  async addProduct(name: string, price: number): Promise<void> {
    this.log.push(`Adding the product ${name}.`);
    this.dbOperationCount++;
    const product = new Product(name, price);
    this.#products.set(name, product);
    await this.caching.invalidate(product, 'ProductList');
  }

  async updateProduct(name: string, price: number): Promise<void> {
    if (!this.#products.has(name)) throw new Error(`The product '${name}' does not exist.`);
    this.log.push(`Updating the price of ${name}.`);
    this.dbOperationCount++;
    const product = new Product(name, price);
    this.#products.set(name, product);
    await this.caching.invalidate(product);
  }
}

/** The reference output of the object-dependencies sample (SAMPLES.md). */
const OBJECT_DEPENDENCIES_REFERENCE = [
  'Read the price catalogue a first time.',
  'Getting the product list from database.',
  'Getting the price of corn from database.',
  "Price of 'corn' is Product { Name = corn, Price = 100 }.",
  'Read the price catalogue a second time time. It should be completely performed from cache.',
  "Price of 'corn' is Product { Name = corn, Price = 100 }.",
  'Updating the catalogue.',
  'Adding the product wheat.',
  'Updating the price of corn.',
  'Getting the product list from database.',
  'Getting the price of corn from database.',
  'Catalogue after changes:',
  "Price of 'corn' is Product { Name = corn, Price = 110 }.",
  'Getting the price of wheat from database.',
  "Price of 'wheat' is Product { Name = wheat, Price = 150 }.",
];

function printCatalogue(catalogue: ObjectCatalogue): void {
  for (const name of catalogue.getProducts()) catalogue.log.push(`Price of '${name}' is ${catalogue.getProduct(name)}.`);
}

describe('ProductCatalogue with object dependencies and cascades', () => {
  let caching: CachingService;
  let catalogue: ObjectCatalogue;

  beforeEach(() => {
    caching = new CachingService();
    catalogue = new ObjectCatalogue(caching, { corn: 100, wheat: 150 });
  });

  afterEach(async () => {
    await caching.dispose();
  });

  it('replays the reference run of the object-dependencies sample line by line', async () => {
    const single = new ObjectCatalogue(caching, { corn: 100 });
    const log = single.log;
    log.push('Read the price catalogue a first time.');
    printCatalogue(single);

    log.push('Read the price catalogue a second time time. It should be completely performed from cache.');
    const operationsBefore = single.dbOperationCount;
    printCatalogue(single);
    expect(single.dbOperationCount).toBe(operationsBefore);
    expect(single.getProducts()).toHaveLength(1);

    log.push('Updating the catalogue.');
    await single.addProduct('wheat', 150);
    await single.updateProduct('corn', 110);
    expect(single.getProducts()).toHaveLength(2);
    expect(single.getProduct('corn').price).toBe(110);

    log.push('Catalogue after changes:');
    printCatalogue(single);

    expect(log).toEqual(OBJECT_DEPENDENCIES_REFERENCE);
  });

  it("invalidating product corn invalidates getProduct('corn') and the entries depending on 'ProductCatalogue', not getProduct('wheat')", async () => {
    catalogue.getProduct('corn');
    catalogue.getProduct('wheat');
    catalogue.getPriceList();
    catalogue.cornLabel();

    await catalogue.updateProduct('corn', 110);

    expect(catalogue.getProduct('corn').price).toBe(110);
    expect(catalogue.getProduct('wheat').price).toBe(150);
    expect(catalogue.getPriceList()).toEqual({ corn: 110, wheat: 150 });
    expect(catalogue.cornLabel()).toBe('Product { Name = corn, Price = 110 }');
    expect(catalogue.runs.of('getProduct:corn')).toBe(2);
    expect(catalogue.runs.of('getProduct:wheat')).toBe(1);
    expect(catalogue.runs.of('getPriceList')).toBe(2);
    expect(catalogue.runs.of('cornLabel')).toBe(2);
  });

  it("adding a dependency registers only its own key: invalidating 'ProductCatalogue' leaves getProduct('corn')", async () => {
    catalogue.getProduct('corn');
    catalogue.getPriceList();

    await caching.invalidate('ProductCatalogue');

    catalogue.getProduct('corn');
    catalogue.getPriceList();
    expect(catalogue.runs.of('getProduct:corn')).toBe(1);
    expect(catalogue.runs.of('getPriceList')).toBe(2);
  });

  it('a dependency object and a string with the same key invalidate the same entries', async () => {
    catalogue.getProduct('corn');
    await caching.invalidate('Product:corn');
    catalogue.getProduct('corn');
    expect(catalogue.runs.of('getProduct:corn')).toBe(2);

    catalogue.getPriceList();
    await caching.invalidate(new StringDependency('ProductCatalogue'));
    catalogue.getPriceList();
    expect(catalogue.runs.of('getPriceList')).toBe(2);
  });
});

// ───────────────────────────── cascades with cycles ─────────────────────────────

/** A dependency node whose cascade targets are set after construction, so cycles can be built. */
class Node implements CacheDependency {
  cascadeDependencies: CacheDependency[] = [];
  constructor(readonly key: string) {}
  getCacheKey(): string {
    return this.key;
  }
}

/**
 * A category in a data cycle (a → b → a) whose cascade objects are created on each access, as a domain object
 * built from database rows would. The access count guards the test: a closure that does not recognise the
 * cycle by key fails with a clear error instead of looping forever.
 */
class Category implements CacheDependency {
  static accesses = 0;
  constructor(
    readonly id: string,
    readonly parentId: string,
  ) {}
  getCacheKey(): string {
    return `Category:${this.id}`;
  }
  get cascadeDependencies(): Iterable<CacheDependency> {
    if (++Category.accesses > 1_000) throw new Error('the cascade closure followed a cycle 1000 times without noticing it');
    return [new Category(this.parentId, this.id)];
  }
}

class Dependent {
  readonly runs = new Runs();

  @Cache()
  on(...keys: string[]): string {
    this.runs.count(keys.join('+'));
    addDependency(...keys);
    return keys.join('+');
  }
}

describe('cascades', () => {
  let caching: CachingService;
  let dependent: Dependent;

  beforeEach(() => {
    caching = new CachingService();
    dependent = bindCachingService(new Dependent(), caching);
    Category.accesses = 0;
  });

  afterEach(async () => {
    await caching.dispose();
  });

  it('invalidation follows cascades transitively', async () => {
    const c = new Node('C');
    const b = new Node('B');
    const a = new Node('A');
    a.cascadeDependencies = [b];
    b.cascadeDependencies = [c];
    for (const key of ['A', 'B', 'C', 'D']) dependent.on(key);

    await caching.invalidate(a);

    for (const key of ['A', 'B', 'C', 'D']) dependent.on(key);
    expect(['A', 'B', 'C', 'D'].map(k => dependent.runs.of(k))).toEqual([2, 2, 2, 1]);
  });

  it('a cycle of cascade objects terminates and invalidates every member of the cycle', async () => {
    const a = new Node('A');
    const b = new Node('B');
    const c = new Node('C');
    a.cascadeDependencies = [b];
    b.cascadeDependencies = [c];
    c.cascadeDependencies = [a, c];
    for (const key of ['A', 'B', 'C', 'D']) dependent.on(key);

    await caching.invalidate(b);

    for (const key of ['A', 'B', 'C', 'D']) dependent.on(key);
    expect(['A', 'B', 'C', 'D'].map(k => dependent.runs.of(k))).toEqual([2, 2, 2, 1]);
  });

  it('a cycle of cascades built from fresh objects with the same keys terminates', async () => {
    dependent.on('Category:a');
    dependent.on('Category:b');
    dependent.on('Category:c');

    await caching.invalidate(new Category('a', 'b'));

    dependent.on('Category:a');
    dependent.on('Category:b');
    dependent.on('Category:c');
    expect([dependent.runs.of('Category:a'), dependent.runs.of('Category:b'), dependent.runs.of('Category:c')]).toEqual([2, 2, 1]);
  });

  it('two dependencies with the same key and different cascades are both followed (a product moved between categories)', async () => {
    const before = new StringDependency('Product:1', [new StringDependency('Category:A')]);
    const after = new StringDependency('Product:1', [new StringDependency('Category:B')]);
    for (const key of ['Product:1', 'Category:A', 'Category:B', 'Category:C']) dependent.on(key);

    await caching.invalidate(before, after);

    for (const key of ['Product:1', 'Category:A', 'Category:B', 'Category:C']) dependent.on(key);
    expect(['Product:1', 'Category:A', 'Category:B', 'Category:C'].map(k => dependent.runs.of(k))).toEqual([2, 2, 2, 1]);
  });

  it('StringDependency cascades given to its constructor are followed', async () => {
    const priceList = new StringDependency('PriceList', [new StringDependency('Catalogue', [new StringDependency('Everything')])]);
    expect(priceList.getCacheKey()).toBe('PriceList');
    dependent.on('Everything');
    dependent.on('Unrelated');

    await caching.invalidate(priceList);

    dependent.on('Everything');
    dependent.on('Unrelated');
    expect(dependent.runs.of('Everything')).toBe(2);
    expect(dependent.runs.of('Unrelated')).toBe(1);
  });

  it('an entry with several dependencies is invalidated by any one of them', async () => {
    dependent.on('X', 'Y', 'Z');
    await caching.invalidate('Y');
    dependent.on('X', 'Y', 'Z');
    expect(dependent.runs.of('X+Y+Z')).toBe(2);
  });

  it('invalidating a key nobody recorded is harmless', async () => {
    dependent.on('X');
    await expect(caching.invalidate('Nobody')).resolves.toEqual({ pending: false });
    dependent.on('X');
    expect(dependent.runs.of('X')).toBe(1);
  });
});

// ───────────────────────────── transitive invalidation through entry keys ─────────────────────────────

/** Each node depends on its own data and on whatever key the test links it to (another call's key). */
class Graph {
  readonly runs = new Runs();
  readonly links = new Map<string, string[]>();

  @Cache()
  node(name: string): string {
    this.runs.count(name);
    addDependency(`Data:${name}`, ...(this.links.get(name) ?? []));
    return name;
  }
}

describe('transitive invalidation through entry keys', () => {
  let caching: CachingService;
  let graph: Graph;
  const keys = new Map<string, string>();

  beforeEach(async () => {
    caching = new CachingService();
    graph = bindCachingService(new Graph(), caching);
    // Learn the key of each call from the 'set' event, then start from an empty cache.
    const off = caching.on('set', event => keys.set(event.key.match(/"(\w+)"/)![1]!, event.key));
    for (const name of ['x', 'y', 'z']) graph.node(name);
    off();
    await caching.invalidate('Data:x', 'Data:y', 'Data:z');
  });

  afterEach(async () => {
    await caching.dispose();
  });

  it('an entry that recorded the key of another call is invalidated with it, at any depth', async () => {
    graph.links.set('y', [keys.get('z')!]);
    graph.links.set('x', [keys.get('y')!]);
    graph.node('z');
    graph.node('y');
    graph.node('x');

    await caching.invalidate('Data:z');

    for (const name of ['x', 'y', 'z']) graph.node(name);
    expect(['x', 'y', 'z'].map(n => graph.runs.of(n))).toEqual([3, 3, 3]);
  });

  it('a cycle of entries recording each other terminates and invalidates every entry of the cycle', async () => {
    graph.links.set('x', [keys.get('y')!]);
    graph.links.set('y', [keys.get('z')!]);
    graph.links.set('z', [keys.get('x')!]);
    for (const name of ['x', 'y', 'z']) graph.node(name);

    await caching.invalidate('Data:y');

    for (const name of ['x', 'y', 'z']) graph.node(name);
    expect(['x', 'y', 'z'].map(n => graph.runs.of(n))).toEqual([3, 3, 3]);
  });
});

// ───────────────────────────── ObjectDependency ─────────────────────────────

class Order {
  @CacheKey() readonly id: number;
  constructor(id: number) {
    this.id = id;
  }
}

class Invoice {
  @CacheKey() readonly id: number;
  constructor(id: number) {
    this.id = id;
  }
}

/** A keyed object that cascades to its customer. */
class CustomerOrder {
  @CacheKey() readonly id: number;
  constructor(
    id: number,
    readonly customer: string,
  ) {
    this.id = id;
  }
  get cascadeDependencies(): Iterable<CacheDependency> {
    return [new StringDependency(`Customer:${this.customer}`)];
  }
}

class Orders {
  readonly runs = new Runs();

  @Cache()
  getOrder(id: number): string {
    this.runs.count(`getOrder:${id}`);
    addDependency(new ObjectDependency(new Order(id)));
    return `order ${id}`;
  }

  @Cache()
  getCustomerSummary(customer: string): string {
    this.runs.count(`summary:${customer}`);
    addDependency(`Customer:${customer}`);
    return `summary ${customer}`;
  }

  @Cache()
  getCustomerOrder(id: number): string {
    this.runs.count(`customerOrder:${id}`);
    addDependency(new ObjectDependency(new CustomerOrder(id, 'ada')));
    return `customer order ${id}`;
  }
}

describe('ObjectDependency', () => {
  let caching: CachingService;
  let orders: Orders;

  beforeEach(() => {
    caching = new CachingService();
    orders = bindCachingService(new Orders(), caching);
  });

  afterEach(async () => {
    await caching.dispose();
  });

  it('another instance with the same @CacheKey properties invalidates the entry', async () => {
    orders.getOrder(42);
    orders.getOrder(43);

    await caching.invalidate(new ObjectDependency(new Order(42)));

    orders.getOrder(42);
    orders.getOrder(43);
    expect(orders.runs.of('getOrder:42')).toBe(2);
    expect(orders.runs.of('getOrder:43')).toBe(1);
  });

  it('objects of two classes with the same raw key do not invalidate each other', async () => {
    orders.getOrder(42);
    await caching.invalidate(new ObjectDependency(new Invoice(42)));
    orders.getOrder(42);
    expect(orders.runs.of('getOrder:42')).toBe(1);
  });

  it("follows the wrapped object's cascadeDependencies on invalidation", async () => {
    orders.getCustomerOrder(7);
    orders.getCustomerSummary('ada');
    orders.getCustomerSummary('bob');

    await caching.invalidate(new ObjectDependency(new CustomerOrder(7, 'ada')));

    orders.getCustomerOrder(7);
    orders.getCustomerSummary('ada');
    orders.getCustomerSummary('bob');
    expect(orders.runs.of('customerOrder:7')).toBe(2);
    expect(orders.runs.of('summary:ada')).toBe(2);
    expect(orders.runs.of('summary:bob')).toBe(1);
  });

  it('refuses an object without a cache key, naming its class', () => {
    class Unkeyed {}
    expect(() => new ObjectDependency(new Unkeyed())).toThrow(CachingError);
    expect(() => new ObjectDependency(new Unkeyed())).toThrow(/Unkeyed/);
  });
});

// ───────────────────────────── invalidateCall, key namespace, events ─────────────────────────────

class PriceService {
  readonly runs = new Runs();
  readonly #prices = new Map<string, number>([
    ['corn', 100],
    ['wheat', 150],
  ]);

  @Cache()
  async getPrice(productId: string): Promise<number> {
    this.runs.count(`getPrice:${productId}`);
    addDependency(`ProductPrice:${productId}`);
    return this.#prices.get(productId)!;
  }

  @Cache()
  async getTotal(): Promise<number> {
    this.runs.count('getTotal');
    return (await this.getPrice('corn')) + (await this.getPrice('wheat'));
  }

  @Cache()
  async getCornReport(): Promise<string> {
    this.runs.count('getCornReport');
    return `corn costs ${await this.getPrice('corn')}`;
  }

  @InvalidateCache('getPrice')
  async updatePrice(productId: string, price: number, gate?: Promise<void>): Promise<void> {
    if (!this.#prices.has(productId)) throw new Error(`The product '${productId}' does not exist.`);
    this.#prices.set(productId, price);
    if (gate) await gate;
  }

  setPriceQuietly(productId: string, price: number): void {
    this.#prices.set(productId, price);
  }
}

describe('invalidateCall', () => {
  let caching: CachingService;
  let prices: PriceService;

  beforeEach(() => {
    caching = new CachingService();
    prices = bindCachingService(new PriceService(), caching);
  });

  afterEach(async () => {
    await caching.dispose();
  });

  it("invalidateCall(() => svc.getPrice('corn')) removes that entry and its dependents without running the method", async () => {
    expect(await prices.getTotal()).toBe(250);
    expect(await prices.getCornReport()).toBe('corn costs 100');
    prices.setPriceQuietly('corn', 120);

    await caching.invalidateCall(() => prices.getPrice('corn'));
    expect(prices.runs.of('getPrice:corn')).toBe(1);

    expect(await prices.getPrice('corn')).toBe(120);
    expect(await prices.getTotal()).toBe(270);
    expect(await prices.getCornReport()).toBe('corn costs 120');
    expect(prices.runs.of('getPrice:corn')).toBe(2);
    expect(prices.runs.of('getPrice:wheat')).toBe(1);
    expect(prices.runs.of('getTotal')).toBe(2);
    expect(prices.runs.of('getCornReport')).toBe(2);
  });

  it("invalidateCall of getPrice('corn') leaves getPrice('wheat') and entries computed only from it", async () => {
    await prices.getPrice('wheat');
    await prices.getPrice('corn');
    await caching.invalidateCall(() => prices.getPrice('corn'));
    await prices.getPrice('wheat');
    expect(prices.runs.of('getPrice:wheat')).toBe(1);
  });

  it('invalidateCall of an entry that is not cached does nothing and does not run the method', async () => {
    await caching.invalidateCall(() => prices.getPrice('corn'));
    expect(prices.runs.of('getPrice:corn')).toBe(0);
  });

  it('invalidateCall rejects a function that calls no cached method', async () => {
    await expect(caching.invalidateCall(() => prices.setPriceQuietly('corn', 1))).rejects.toThrow(CachingError);
  });

  it('a method key and a dependency key share one namespace: invalidate() with the key of a call removes it and its dependents', async () => {
    const keys: string[] = [];
    caching.on('set', event => keys.push(event.key));
    await prices.getPrice('corn');
    const cornKey = keys[0]!;
    await prices.getCornReport();

    await caching.invalidate(cornKey);

    await prices.getCornReport();
    expect(prices.runs.of('getPrice:corn')).toBe(2);
    expect(prices.runs.of('getCornReport')).toBe(2);
  });
});

describe('@InvalidateCache', () => {
  let caching: CachingService;
  let prices: PriceService;

  beforeEach(() => {
    caching = new CachingService();
    prices = bindCachingService(new PriceService(), caching);
  });

  afterEach(async () => {
    await caching.dispose();
  });

  it("updatePrice('corn') invalidates getPrice('corn') and its parents once it succeeds", async () => {
    expect(await prices.getTotal()).toBe(250);
    await prices.updatePrice('corn', 110);
    expect(await prices.getTotal()).toBe(260);
    expect(prices.runs.of('getPrice:corn')).toBe(2);
    expect(prices.runs.of('getPrice:wheat')).toBe(1);
  });

  it('invalidates only after the promise of the write resolves', async () => {
    await prices.getPrice('corn');
    const gate = deferred();
    const update = prices.updatePrice('corn', 110, gate.promise);
    await flush();
    expect(await prices.getPrice('corn')).toBe(100); // still the cached entry while the write is pending
    expect(prices.runs.of('getPrice:corn')).toBe(1);
    gate.resolve();
    await update;
    expect(await prices.getPrice('corn')).toBe(110);
    expect(prices.runs.of('getPrice:corn')).toBe(2);
  });

  it('invalidates nothing when the write throws', async () => {
    await prices.getTotal();
    await expect(prices.updatePrice('rye', 1)).rejects.toThrow("The product 'rye' does not exist.");
    await prices.getTotal();
    expect(prices.runs.of('getTotal')).toBe(1);
  });
});

describe("the 'invalidate' event", () => {
  let caching: CachingService;
  let prices: PriceService;
  let events: Array<{ keys: readonly string[]; entries: readonly string[] }>;
  let setKeys: string[];

  beforeEach(() => {
    caching = new CachingService();
    prices = bindCachingService(new PriceService(), caching);
    events = [];
    setKeys = [];
    caching.on('invalidate', event => events.push(event));
    caching.on('set', event => setKeys.push(event.key));
  });

  afterEach(async () => {
    await caching.dispose();
  });

  it('carries the invalidated keys and the keys of the removed entries', async () => {
    await prices.getPrice('corn');
    await prices.getCornReport();
    await prices.getPrice('wheat');
    const [cornKey, reportKey] = setKeys;

    await caching.invalidate('ProductPrice:corn');

    expect(events).toHaveLength(1);
    expect(events[0]!.keys).toEqual(['ProductPrice:corn']);
    expect([...events[0]!.entries].sort()).toEqual([cornKey, reportKey].sort());
  });

  it('lists the cascaded keys with the invalidated ones', async () => {
    await caching.invalidate(new Product('corn', 1));
    expect(events).toHaveLength(1);
    expect([...events[0]!.keys].sort()).toEqual(['Product:corn', 'ProductCatalogue']);
    expect(events[0]!.entries).toEqual([]);
  });

  it('carries the key of the call for invalidateCall, and the entries removed with it', async () => {
    await prices.getCornReport();
    const [cornKey, reportKey] = setKeys;

    await caching.invalidateCall(() => prices.getPrice('corn'));

    expect(events).toHaveLength(1);
    expect(events[0]!.keys).toEqual([cornKey]);
    expect([...events[0]!.entries].sort()).toEqual([cornKey, reportKey].sort());
  });

  it('stops reaching a listener once it unsubscribed', async () => {
    const seen: unknown[] = [];
    const off = caching.on('invalidate', event => seen.push(event));
    await caching.invalidate('A');
    off();
    await caching.invalidate('B');
    expect(seen).toHaveLength(1);
  });
});

// ───────────────────────────── invalidate() reports a queued invalidation (SPEC §6) ─────────────────────────────

describe('invalidate() resolves { pending }', () => {
  /** A backend that could not reach its store: it removed nothing yet and queued the invalidation. */
  class QueuingBackend extends MemoryBackend {
    override invalidate(keys: readonly string[], options?: InvalidateOptions): InvalidationResult {
      return { ...super.invalidate(keys, options), pending: true };
    }
  }

  it('is { pending: false } when every backend applied it, and { pending: true } when any backend queued it', async () => {
    const local = new CachingService({ telemetry: false });
    expect(await local.invalidate('Price:corn')).toEqual({ pending: false });
    const mixed = new CachingService({ telemetry: false, profiles: { remote: { backend: new QueuingBackend() } } });
    expect(await mixed.invalidate('Price:corn')).toEqual({ pending: true });
    // invalidateCall keeps resolving to nothing (SPEC §2).
    class Prices {
      @Cache()
      get(id: string): string {
        return id;
      }
    }
    const prices = bindCachingService(new Prices(), mixed);
    await expect(mixed.invalidateCall(() => prices.get('corn'))).resolves.toBeUndefined();
    await Promise.all([local.dispose(), mixed.dispose()]);
  });
});
