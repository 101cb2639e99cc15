// Dependency propagation (SPEC §4): a cached parent records the keys and dependencies of every cached child it
// was computed from — on a miss, on a hit, and when it joined a computation another caller started — so that
// invalidating a child or any of its dependencies invalidates every ancestor.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { addDependency, bindCachingService, Cache, CachingService, MemoryBackend } from 'aspect-cache';
import { deferred, flush, type Deferred } from '../support/deferred.js';

/** Counts method executions by name (`getPrice:corn`). */
class Runs {
  readonly #counts = new Map<string, number>();
  count(name: string): void {
    this.#counts.set(name, (this.#counts.get(name) ?? 0) + 1);
  }
  of(name: string): number {
    return this.#counts.get(name) ?? 0;
  }
}

/**
 * Named gates a computation can wait at. A gate is open unless the test `hold`s it first, so only the gates a
 * test cares about block.
 */
class Gates {
  readonly #held = new Map<string, Deferred<void>>();
  readonly reached = new Set<string>();
  hold(...names: string[]): void {
    for (const name of names) this.#held.set(name, deferred());
  }
  wait(name: string): Promise<void> {
    this.reached.add(name);
    return this.#held.get(name)?.promise ?? Promise.resolve();
  }
  open(name: string): void {
    const gate = this.#held.get(name);
    if (gate === undefined) throw new Error(`gate ${name} was not held`);
    gate.resolve();
  }
}

// ───────────────────────────── the ProductCatalogue seed scenario (string dependencies) ─────────────────────────────

class ProductCatalogue {
  readonly #prices: Map<string, number>;
  readonly runs = new Runs();
  readonly log: string[] = [];
  dbOperationCount = 0;

  constructor(
    readonly caching: CachingService,
    prices: Record<string, number> = { corn: 100 },
  ) {
    this.#prices = new Map(Object.entries(prices));
    bindCachingService(this, caching);
  }

  @Cache()
  getProducts(): string[] {
    this.log.push('Getting the product list from database.');
    this.runs.count('getProducts');
    this.dbOperationCount++;
    addDependency('ProductList');
    return [...this.#prices.keys()];
  }

  @Cache()
  getPrice(productId: string): number {
    this.log.push(`Getting the price of ${productId} from database.`);
    this.runs.count(`getPrice:${productId}`);
    this.dbOperationCount++;
    addDependency(`ProductPrice:${productId}`);
    return this.#prices.get(productId)!;
  }

  @Cache()
  getPriceList(): Record<string, number> {
    this.runs.count('getPriceList');
    this.dbOperationCount++;
    addDependency('PriceList');
    return Object.fromEntries(this.#prices);
  }

  /** A cached parent computed from getProducts() and getPrice() of each product. */
  @Cache()
  describeCatalogue(): string {
    this.runs.count('describeCatalogue');
    return this.getProducts()
      .map(product => `${product}=${this.getPrice(product)}`)
      .join(', ');
  }

  async addProduct(productId: string, price: number): Promise<void> {
    this.log.push(`Adding the product ${productId}.`);
    this.dbOperationCount++;
    this.#prices.set(productId, price);
    await this.caching.invalidate('ProductList', 'PriceList');
  }

  async updatePrice(productId: string, price: number): Promise<void> {
    if (!this.#prices.has(productId)) throw new Error(`The product '${productId}' does not exist.`);
    this.log.push(`Updating the price of ${productId}.`);
    this.dbOperationCount++;
    this.#prices.set(productId, price);
    await this.caching.invalidate(`ProductPrice:${productId}`, 'PriceList');
  }
}

/** The reference output of the string-dependencies sample (SAMPLES.md). */
const STRING_DEPENDENCIES_REFERENCE = [
  'Read the price catalogue a first time.',
  'Getting the product list from database.',
  'Getting the price of corn from database.',
  "Price of 'corn' is 100.",
  'Read the price catalogue a second time time. It should be completely performed from cache.',
  "Price of 'corn' is 100.",
  'Updating the catalogue.',
  'Adding the product wheat.',
  'Updating the price of corn.',
  'Getting the product list from database.',
  'Getting the price of corn from database.',
  'Catalogue after changes:',
  "Price of 'corn' is 110.",
  'Getting the price of wheat from database.',
  "Price of 'wheat' is 150.",
];

function printCatalogue(catalogue: ProductCatalogue): void {
  for (const product of catalogue.getProducts()) catalogue.log.push(`Price of '${product}' is ${catalogue.getPrice(product)}.`);
}

describe('ProductCatalogue with string dependencies', () => {
  let caching: CachingService;
  let catalogue: ProductCatalogue;

  beforeEach(() => {
    caching = new CachingService();
    catalogue = new ProductCatalogue(caching);
  });

  afterEach(async () => {
    await caching.dispose();
  });

  it('replays the reference run of the string-dependencies sample line by line', async () => {
    const log = catalogue.log;
    log.push('Read the price catalogue a first time.');
    printCatalogue(catalogue);

    log.push('Read the price catalogue a second time time. It should be completely performed from cache.');
    const operationsBefore = catalogue.dbOperationCount;
    printCatalogue(catalogue);
    expect(catalogue.dbOperationCount).toBe(operationsBefore);
    expect(catalogue.getProducts()).toHaveLength(1);

    log.push('Updating the catalogue.');
    await catalogue.addProduct('wheat', 150);
    await catalogue.updatePrice('corn', 110);
    expect(catalogue.getProducts()).toHaveLength(2);
    expect(catalogue.getPrice('corn')).toBe(110);

    log.push('Catalogue after changes:');
    printCatalogue(catalogue);

    expect(log).toEqual(STRING_DEPENDENCIES_REFERENCE);
  });

  it('getPrice() is served from cache after the first call', () => {
    expect(catalogue.getPrice('corn')).toBe(100);
    expect(catalogue.getPrice('corn')).toBe(100);
    expect(catalogue.getPrice('corn')).toBe(100);
    expect(catalogue.runs.of('getPrice:corn')).toBe(1);
  });

  it('getProducts(), getPriceList() and a parent of them are each computed once however often they are read', () => {
    for (let i = 0; i < 3; i++) {
      expect(catalogue.getProducts()).toEqual(['corn']);
      expect(catalogue.getPriceList()).toEqual({ corn: 100 });
      expect(catalogue.describeCatalogue()).toBe('corn=100');
    }
    expect(catalogue.runs.of('getProducts')).toBe(1);
    expect(catalogue.runs.of('getPriceList')).toBe(1);
    expect(catalogue.runs.of('describeCatalogue')).toBe(1);
    expect(catalogue.runs.of('getPrice:corn')).toBe(1);
  });

  it("invalidate('ProductPrice:corn') reruns only getPrice('corn') and the entries computed from it", async () => {
    const twoProducts = new ProductCatalogue(caching, { corn: 100, wheat: 150 });
    expect(twoProducts.describeCatalogue()).toBe('corn=100, wheat=150');
    expect(twoProducts.getPriceList()).toEqual({ corn: 100, wheat: 150 });

    await caching.invalidate('ProductPrice:corn');

    expect(twoProducts.describeCatalogue()).toBe('corn=100, wheat=150');
    expect(twoProducts.getPriceList()).toEqual({ corn: 100, wheat: 150 });
    expect(twoProducts.runs.of('describeCatalogue')).toBe(2);
    expect(twoProducts.runs.of('getPrice:corn')).toBe(2);
    expect(twoProducts.runs.of('getPrice:wheat')).toBe(1);
    expect(twoProducts.runs.of('getProducts')).toBe(1);
    expect(twoProducts.runs.of('getPriceList')).toBe(1);
  });

  it('updatePrice() makes the next reads return the new price and leaves the product list cached', async () => {
    expect(catalogue.describeCatalogue()).toBe('corn=100');
    await catalogue.updatePrice('corn', 110);
    expect(catalogue.getPrice('corn')).toBe(110);
    expect(catalogue.describeCatalogue()).toBe('corn=110');
    expect(catalogue.getPriceList()).toEqual({ corn: 110 });
    expect(catalogue.runs.of('getProducts')).toBe(1);
  });

  it('addProduct() invalidates the product list and every parent computed from it, but not the prices', async () => {
    expect(catalogue.describeCatalogue()).toBe('corn=100');
    expect(catalogue.getPriceList()).toEqual({ corn: 100 });
    await catalogue.addProduct('wheat', 150);
    expect(catalogue.describeCatalogue()).toBe('corn=100, wheat=150');
    expect(catalogue.getPriceList()).toEqual({ corn: 100, wheat: 150 });
    expect(catalogue.runs.of('getProducts')).toBe(2);
    expect(catalogue.runs.of('getPriceList')).toBe(2);
    expect(catalogue.runs.of('getPrice:corn')).toBe(1);
  });

  it('updatePrice() of an unknown product throws and invalidates nothing', async () => {
    expect(catalogue.describeCatalogue()).toBe('corn=100');
    await expect(catalogue.updatePrice('rye', 1)).rejects.toThrow("The product 'rye' does not exist.");
    expect(catalogue.describeCatalogue()).toBe('corn=100');
    expect(catalogue.runs.of('describeCatalogue')).toBe(1);
  });

  it("a parent computed while its child was a hit is still invalidated by the child's dependency", async () => {
    expect(catalogue.getProducts()).toEqual(['corn']);
    expect(catalogue.getPrice('corn')).toBe(100);
    // Both children are hits now: the parent only learns their dependencies from the stored entries.
    expect(catalogue.describeCatalogue()).toBe('corn=100');
    expect(catalogue.runs.of('getPrice:corn')).toBe(1);

    await catalogue.updatePrice('corn', 120);

    expect(catalogue.describeCatalogue()).toBe('corn=120');
    expect(catalogue.runs.of('describeCatalogue')).toBe(2);
  });

  it('a parent computed while its child was a hit is invalidated by invalidateCall() of that child', async () => {
    expect(catalogue.getPrice('corn')).toBe(100);
    expect(catalogue.describeCatalogue()).toBe('corn=100');

    await caching.invalidateCall(() => catalogue.getPrice('corn'));

    expect(catalogue.describeCatalogue()).toBe('corn=100');
    expect(catalogue.runs.of('describeCatalogue')).toBe(2);
    expect(catalogue.runs.of('getPrice:corn')).toBe(2);
    expect(catalogue.runs.of('getProducts')).toBe(1);
  });
});

// ───────────────────────────── chains, fan-in, helpers in between ─────────────────────────────

class Chain {
  readonly runs = new Runs();
  constructor(readonly gates = new Gates()) {}

  @Cache()
  async top(id: string): Promise<string> {
    this.runs.count(`top:${id}`);
    return `top(${await this.middle(id)})`;
  }

  @Cache()
  async middle(id: string): Promise<string> {
    this.runs.count(`middle:${id}`);
    return `middle(${await this.leaf(id)})`;
  }

  @Cache()
  async leaf(id: string): Promise<string> {
    this.runs.count(`leaf:${id}`);
    addDependency(`Leaf:${id}`);
    await this.gates.wait(`leaf:${id}`);
    return `leaf ${id}`;
  }

  /** Fans in three cached children with Promise.all. */
  @Cache()
  async fanIn(): Promise<string> {
    this.runs.count('fanIn');
    const parts = await Promise.all([this.leaf('x'), this.leaf('y'), this.leaf('z')]);
    return parts.join(' + ');
  }

  /** Reaches a cached child through non-cached async helpers. */
  @Cache()
  async throughHelpers(id: string): Promise<string> {
    this.runs.count(`throughHelpers:${id}`);
    return this.outerHelper(id);
  }

  async outerHelper(id: string): Promise<string> {
    await flush(1);
    const value = await this.innerHelper(id);
    await new Promise(resolve => setImmediate(resolve));
    return value;
  }

  async innerHelper(id: string): Promise<string> {
    await Promise.resolve();
    addDependency(`Helper:${id}`);
    const [a, b] = await Promise.all([this.leaf(id), Promise.resolve().then(() => this.middle(`${id}-nested`))]);
    return `${a} & ${b}`;
  }

  /** A synchronous parent reaching a cached synchronous child through a plain function. */
  @Cache()
  syncParent(id: string): string {
    this.runs.count(`syncParent:${id}`);
    return plainHelper(() => this.syncChild(id));
  }

  @Cache()
  syncChild(id: string): string {
    this.runs.count(`syncChild:${id}`);
    addDependency(`SyncChild:${id}`);
    return `sync ${id}`;
  }
}

function plainHelper(fn: () => string): string {
  return `[${fn()}]`;
}

describe('propagation through chains and fan-in', () => {
  let caching: CachingService;
  let chain: Chain;

  beforeEach(() => {
    caching = new CachingService();
    chain = bindCachingService(new Chain(), caching);
  });

  afterEach(async () => {
    await caching.dispose();
  });

  it("invalidating the leaf's dependency of a three-level chain recomputes all three levels", async () => {
    expect(await chain.top('1')).toBe('top(middle(leaf 1))');
    expect(await chain.top('2')).toBe('top(middle(leaf 2))');
    expect(await chain.top('1')).toBe('top(middle(leaf 1))');
    expect(chain.runs.of('top:1')).toBe(1);

    await caching.invalidate('Leaf:1');

    expect(await chain.top('1')).toBe('top(middle(leaf 1))');
    expect(await chain.top('2')).toBe('top(middle(leaf 2))');
    expect([chain.runs.of('top:1'), chain.runs.of('middle:1'), chain.runs.of('leaf:1')]).toEqual([2, 2, 2]);
    expect([chain.runs.of('top:2'), chain.runs.of('middle:2'), chain.runs.of('leaf:2')]).toEqual([1, 1, 1]);
  });

  it('a three-level chain built from hits is still invalidated by the leaf dependency', async () => {
    await chain.leaf('1');
    await chain.middle('1'); // leaf is a hit here
    await chain.top('1'); // middle is a hit here
    expect([chain.runs.of('top:1'), chain.runs.of('middle:1'), chain.runs.of('leaf:1')]).toEqual([1, 1, 1]);

    await caching.invalidate('Leaf:1');

    await chain.top('1');
    expect([chain.runs.of('top:1'), chain.runs.of('middle:1'), chain.runs.of('leaf:1')]).toEqual([2, 2, 2]);
  });

  it('invalidateCall() of the middle child invalidates the parent and keeps the leaf', async () => {
    await chain.top('1');

    await caching.invalidateCall(() => chain.middle('1'));

    expect(chain.runs.of('middle:1')).toBe(1); // invalidateCall does not run the method
    expect(await chain.top('1')).toBe('top(middle(leaf 1))');
    expect([chain.runs.of('top:1'), chain.runs.of('middle:1'), chain.runs.of('leaf:1')]).toEqual([2, 2, 1]);
  });

  it('Promise.all of several cached children gives the parent the dependencies of each', async () => {
    await chain.leaf('y'); // one child is a hit, the others are misses
    expect(await chain.fanIn()).toBe('leaf x + leaf y + leaf z');

    for (const [i, id] of ['x', 'y', 'z'].entries()) {
      await caching.invalidate(`Leaf:${id}`);
      expect(await chain.fanIn()).toBe('leaf x + leaf y + leaf z');
      expect(chain.runs.of('fanIn')).toBe(i + 2);
    }
  });

  it('Promise.all of children that complete in reverse order still gives the parent every dependency', async () => {
    chain.gates.hold('leaf:x', 'leaf:y', 'leaf:z');
    const parent = chain.fanIn();
    await flush();
    chain.gates.open('leaf:z');
    await flush();
    chain.gates.open('leaf:y');
    await flush();
    chain.gates.open('leaf:x');
    expect(await parent).toBe('leaf x + leaf y + leaf z');

    await caching.invalidate('Leaf:x');
    await chain.fanIn();
    expect(chain.runs.of('fanIn')).toBe(2);
    await caching.invalidate('Leaf:z');
    await chain.fanIn();
    expect(chain.runs.of('fanIn')).toBe(3);
  });

  it('non-cached async functions between a parent and its cached children do not break the chain', async () => {
    expect(await chain.throughHelpers('h')).toBe('leaf h & middle(leaf h-nested)');
    expect(await chain.throughHelpers('h')).toBe('leaf h & middle(leaf h-nested)');
    expect(chain.runs.of('throughHelpers:h')).toBe(1);

    await caching.invalidate('Leaf:h');
    await chain.throughHelpers('h');
    expect(chain.runs.of('throughHelpers:h')).toBe(2);

    await caching.invalidate('Leaf:h-nested'); // two cached levels below a helper
    await chain.throughHelpers('h');
    expect(chain.runs.of('throughHelpers:h')).toBe(3);

    await caching.invalidate('Helper:h'); // added by the helper itself, inside the parent's computation
    await chain.throughHelpers('h');
    expect(chain.runs.of('throughHelpers:h')).toBe(4);
  });

  it('a synchronous parent reaching a cached child through a plain function is invalidated by the child dependency', async () => {
    expect(chain.syncParent('s')).toBe('[sync s]');
    expect(chain.syncParent('s')).toBe('[sync s]');
    expect(chain.runs.of('syncParent:s')).toBe(1);

    await caching.invalidate('SyncChild:s');

    expect(chain.syncParent('s')).toBe('[sync s]');
    expect(chain.runs.of('syncParent:s')).toBe(2);
    expect(chain.runs.of('syncChild:s')).toBe(2);
  });
});

describe('dependencies stored with the entry', () => {
  let caching: CachingService;
  let chain: Chain;
  let setKeys: string[];
  let evicted: string[];

  beforeEach(() => {
    caching = new CachingService({ backend: new MemoryBackend({ maxEntries: 3 }) });
    chain = bindCachingService(new Chain(), caching);
    setKeys = [];
    evicted = [];
    caching.on('set', event => setKeys.push(event.key));
    caching.on('evict', event => evicted.push(event.key));
  });

  afterEach(async () => {
    await caching.dispose();
  });

  it("a parent computed from a hit still depends on the child's dependencies after the child entry was evicted", async () => {
    await chain.leaf('1');
    const leafKey = setKeys[0]!;
    await chain.middle('1'); // the leaf is a hit: its dependencies come from its stored entry
    await chain.leaf('f1');
    await chain.leaf('f2'); // a fourth entry evicts the least recently used one: the leaf
    expect(evicted).toEqual([leafKey]);

    await caching.invalidate('Leaf:1');

    expect(await chain.middle('1')).toBe('middle(leaf 1)');
    expect(chain.runs.of('middle:1')).toBe(2);
  });

  it("dependencies handed up on hits reach the grandparent: it survives the eviction of the middle entry's children", async () => {
    await chain.middle('1'); // computes leaf and middle
    const [leafKey, middleKey] = setKeys;
    await chain.leaf('f1'); // entries: leaf 1, middle 1, leaf f1 — the leaf 1 entry is now the oldest
    await chain.leaf('f2'); // evicts leaf 1
    await chain.top('1'); // the middle is a hit: the top learns the leaf's dependency from the middle's entry
    const topKey = setKeys.at(-1)!;
    await chain.leaf('f3');
    await chain.leaf('f4'); // evicts the middle entry; the top entry stays
    expect(evicted).toEqual(expect.arrayContaining([leafKey, middleKey]));
    expect(evicted).not.toContain(topKey);
    const topRuns = chain.runs.of('top:1');
    expect(topRuns).toBe(1);

    await caching.invalidate('Leaf:1');

    await chain.top('1');
    expect(chain.runs.of('top:1')).toBe(2);
  });
});

// ───────────────────────────── concurrency ─────────────────────────────

class Requests {
  readonly runs = new Runs();
  constructor(readonly gates: Gates) {}

  @Cache()
  async child(id: string): Promise<string> {
    this.runs.count(`child:${id}`);
    addDependency(`Child:${id}`);
    await this.gates.wait(`child:${id}`);
    return `child ${id}`;
  }

  @Cache()
  async parent(id: string): Promise<string> {
    this.runs.count(`parent:${id}`);
    addDependency(`Parent:${id}`);
    await this.gates.wait(`parent-before:${id}`);
    const value = await this.child(id);
    await this.gates.wait(`parent-after:${id}`);
    addDependency(`ParentAfter:${id}`);
    return `parent(${value})`;
  }

  /** A second kind of parent of the same child. */
  @Cache()
  async other(id: string): Promise<string> {
    this.runs.count(`other:${id}`);
    return `other(${await this.child(id)})`;
  }
}

describe('propagation under concurrency', () => {
  let caching: CachingService;
  let gates: Gates;
  let requests: Requests;
  let stored: Map<string, readonly string[]>;

  beforeEach(() => {
    caching = new CachingService();
    gates = new Gates();
    requests = bindCachingService(new Requests(gates), caching);
    stored = new Map();
    caching.on('set', event => stored.set(event.key, event.dependencies));
  });

  afterEach(async () => {
    await caching.dispose();
  });

  it("concurrent unrelated requests never see each other's dependencies", async () => {
    gates.hold('parent-before:a', 'parent-before:b', 'child:a', 'child:b', 'parent-after:a', 'parent-after:b');
    const a = requests.parent('a');
    const b = requests.parent('b');
    // Interleave every step of the two computations.
    for (const gate of ['parent-before:b', 'parent-before:a', 'child:a', 'child:b', 'parent-after:b', 'parent-after:a']) {
      await flush();
      gates.open(gate);
    }
    expect(await a).toBe('parent(child a)');
    expect(await b).toBe('parent(child b)');

    const keyOf = (predicate: (deps: readonly string[]) => boolean): string => {
      const found = [...stored.entries()].filter(([, deps]) => predicate(deps));
      expect(found).toHaveLength(1);
      return found[0]![0];
    };
    const childA = keyOf(deps => deps.includes('Child:a') && !deps.includes('Parent:a'));
    const childB = keyOf(deps => deps.includes('Child:b') && !deps.includes('Parent:b'));
    const parentA = keyOf(deps => deps.includes('Parent:a'));
    const parentB = keyOf(deps => deps.includes('Parent:b'));
    expect(new Set(stored.get(childA))).toEqual(new Set(['Child:a']));
    expect(new Set(stored.get(childB))).toEqual(new Set(['Child:b']));
    expect(new Set(stored.get(parentA))).toEqual(new Set(['Parent:a', childA, 'Child:a', 'ParentAfter:a']));
    expect(new Set(stored.get(parentB))).toEqual(new Set(['Parent:b', childB, 'Child:b', 'ParentAfter:b']));

    await caching.invalidate('Child:b');
    await requests.parent('a');
    await requests.parent('b');
    expect(requests.runs.of('parent:a')).toBe(1);
    expect(requests.runs.of('parent:b')).toBe(2);

    await caching.invalidate('ParentAfter:a');
    await requests.parent('a');
    await requests.parent('b');
    expect(requests.runs.of('parent:a')).toBe(2);
    expect(requests.runs.of('parent:b')).toBe(2);
  });

  it('many interleaved requests each record exactly their own dependencies', async () => {
    const ids = ['p', 'q', 'r', 's', 't'];
    for (const id of ids) gates.hold(`child:${id}`);
    const results = ids.map(id => requests.parent(id));
    await flush();
    for (const id of [...ids].reverse()) {
      gates.open(`child:${id}`);
      await flush(1);
    }
    expect(await Promise.all(results)).toEqual(ids.map(id => `parent(child ${id})`));

    await caching.invalidate('Child:r');
    for (const id of ids) await requests.parent(id);
    expect(ids.map(id => requests.runs.of(`parent:${id}`))).toEqual([1, 1, 2, 1, 1]);
  });

  it("a parent that joined a child's computation started by a top-level caller still gets the child's dependencies", async () => {
    gates.hold('child:k');
    const leader = requests.child('k'); // no caching context: a plain request
    await flush();
    const joiner = requests.parent('k');
    await flush();
    gates.open('child:k');
    expect(await leader).toBe('child k');
    expect(await joiner).toBe('parent(child k)');
    expect(requests.runs.of('child:k')).toBe(1); // the parent joined, it did not compute the child again

    await caching.invalidate('Child:k');
    await requests.parent('k');
    expect(requests.runs.of('parent:k')).toBe(2);
  });

  it("a parent that joined a child's computation started by another parent gets the child's key and dependencies", async () => {
    gates.hold('child:k');
    const first = requests.parent('k');
    await flush();
    const second = requests.other('k');
    await flush();
    gates.open('child:k');
    expect(await first).toBe('parent(child k)');
    expect(await second).toBe('other(child k)');
    expect(requests.runs.of('child:k')).toBe(1);

    await caching.invalidateCall(() => requests.child('k'));
    await requests.parent('k');
    await requests.other('k');
    expect(requests.runs.of('parent:k')).toBe(2);
    expect(requests.runs.of('other:k')).toBe(2);

    await caching.invalidate('Child:k');
    await requests.other('k');
    expect(requests.runs.of('other:k')).toBe(3);
  });
});

// ───────────────────────────── services and static methods ─────────────────────────────

class PriceBoard {
  static runs = new Runs();

  @Cache()
  static price(id: string): number {
    PriceBoard.runs.count(`price:${id}`);
    addDependency(`BoardPrice:${id}`);
    return id.length;
  }

  @Cache()
  static total(): number {
    PriceBoard.runs.count('total');
    return PriceBoard.price('corn') + PriceBoard.price('wheat');
  }
}

describe('services and static methods', () => {
  const services: CachingService[] = [];
  const service = (): CachingService => {
    const s = new CachingService();
    services.push(s);
    return s;
  };

  beforeEach(() => {
    PriceBoard.runs = new Runs();
  });

  afterEach(async () => {
    await Promise.all(services.splice(0).map(s => s.dispose()));
  });

  it('two services never share entries', async () => {
    const first = service();
    const second = service();
    const a = new ProductCatalogue(first, { corn: 100 });
    const b = new ProductCatalogue(second, { corn: 200 });

    expect(a.getPrice('corn')).toBe(100);
    expect(b.getPrice('corn')).toBe(200);
    expect(a.getPrice('corn')).toBe(100);
    expect(b.getPrice('corn')).toBe(200);
    expect(a.runs.of('getPrice:corn')).toBe(1);
    expect(b.runs.of('getPrice:corn')).toBe(1);
  });

  it("invalidating a dependency in one service leaves the other service's entries", async () => {
    const first = service();
    const second = service();
    const a = new ProductCatalogue(first);
    const b = new ProductCatalogue(second);
    a.describeCatalogue();
    b.describeCatalogue();

    await first.invalidate('ProductPrice:corn');
    a.describeCatalogue();
    b.describeCatalogue();
    expect(a.runs.of('describeCatalogue')).toBe(2);
    expect(b.runs.of('describeCatalogue')).toBe(1);

    await second.invalidateCall(() => b.getPrice('corn'));
    a.describeCatalogue();
    b.describeCatalogue();
    expect(a.runs.of('describeCatalogue')).toBe(2);
    expect(b.runs.of('describeCatalogue')).toBe(2);
  });

  it('an unbound instance uses CachingService.default and a bound one never reads its entries', async () => {
    const defaultService = service();
    CachingService.default = defaultService;
    const bound = service();
    const plain = new ProductCatalogue(defaultService, { corn: 1 });
    Reflect.deleteProperty(plain, Symbol.for('aspect-cache.service'));
    const other = new ProductCatalogue(bound, { corn: 2 });

    expect(plain.getPrice('corn')).toBe(1);
    expect(other.getPrice('corn')).toBe(2);
    await bound.invalidate('ProductPrice:corn');
    expect(plain.getPrice('corn')).toBe(1);
    expect(plain.runs.of('getPrice:corn')).toBe(1);
    await defaultService.invalidate('ProductPrice:corn');
    expect(plain.getPrice('corn')).toBe(1);
    expect(plain.runs.of('getPrice:corn')).toBe(2);
  });

  it('static cached methods propagate their dependencies to a static cached parent', async () => {
    const caching = service();
    bindCachingService(PriceBoard, caching);
    expect(PriceBoard.total()).toBe(9);
    expect(PriceBoard.total()).toBe(9);
    expect(PriceBoard.runs.of('total')).toBe(1);

    await caching.invalidate('BoardPrice:wheat');

    expect(PriceBoard.total()).toBe(9);
    expect(PriceBoard.runs.of('total')).toBe(2);
    expect(PriceBoard.runs.of('price:wheat')).toBe(2);
    expect(PriceBoard.runs.of('price:corn')).toBe(1);
  });
});
