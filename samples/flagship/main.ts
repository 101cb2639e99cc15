// The README's example, running: async cached reads, a cached price list built from cached prices (so it
// depends on what they depend on), @InvalidateCache on the write, and invalidation by dependency key.
// Run: npm start (or npm run sample:flagship). It asserts what it prints (node:assert) and exits non-zero if
// a claim stops holding.
import assert from 'node:assert/strict';
import { addDependency, Cache, CachingService, InvalidateCache } from 'aspect-cache';

/** An in-memory "database" that prints and counts every read, so the output shows what reached it. */
class Database {
  readonly #prices = new Map<string, number>([
    ['corn', 100],
    ['wheat', 150],
  ]);
  reads = 0;

  async productIds(): Promise<string[]> {
    this.reads++;
    console.log('   database     productIds()');
    return [...this.#prices.keys()];
  }

  async price(id: string): Promise<number> {
    this.reads++;
    console.log(`   database     price('${id}')`);
    return this.#prices.get(id)!;
  }

  async setPrice(id: string, price: number): Promise<void> {
    console.log(`   database     setPrice('${id}', ${price})`);
    this.#prices.set(id, price);
  }
}

// The class of the README's example, unchanged.
class ProductCatalogue {
  constructor(private readonly db: Database) {}

  @Cache({ ttl: 10 * 60_000 })
  async getPrice(id: string): Promise<number> {
    addDependency(`ProductPrice:${id}`);          // this entry depends on that key
    return this.db.price(id);
  }

  @Cache()
  async getPriceList(): Promise<Map<string, number>> {
    const prices = new Map<string, number>();
    for (const id of await this.db.productIds()) prices.set(id, await this.getPrice(id)); // dependencies flow up
    return prices;
  }

  @InvalidateCache('getPrice')                    // after success: invalidates getPrice(id) — mapped by name —
  async updatePrice(id: string, price: number) {  // and everything computed from it, such as getPriceList()
    await this.db.setPrice(id, price);
  }
}

// What the cache does, as it happens: `computed` is a miss (the method runs), `from cache` a hit.
const caching = CachingService.default;
caching.on('miss', ({ key }) => console.log(`   computed     ${key}`));
caching.on('hit', ({ key }) => console.log(`   from cache   ${key}`));
caching.on('invalidate', ({ entries }) => console.log(`   invalidated  ${entries.length > 0 ? entries.join(', ') : 'nothing'}`));

const db = new Database();
const catalogue = new ProductCatalogue(db);

/** Runs one step, prints its result and how many database reads it took, and checks that count. */
async function step<T>(title: string, expectedReads: number, run: () => Promise<T>, show: (value: T) => string): Promise<T> {
  console.log(title);
  const before = db.reads;
  const value = await run();
  const reads = db.reads - before;
  console.log(`   result       ${show(value)}   (${reads} database read${reads === 1 ? '' : 's'})`);
  console.log('');
  assert.equal(reads, expectedReads, `${title}: expected ${expectedReads} database reads, got ${reads}`);
  return value;
}

const list = (prices: Map<string, number>) => [...prices].map(([id, price]) => `${id} ${price}`).join(', ');

console.log('aspect-cache: the README example on the memory backend.');
console.log('');

await step('1. getPriceList(), first call: it runs, and so does each getPrice(id) it calls.', 3, () => catalogue.getPriceList(), list);

await step('2. getPriceList() again: served from cache, nothing runs.', 0, () => catalogue.getPriceList(), list);

await step("3. getPrice('wheat'): cached too — it was computed inside the list.", 0, () => catalogue.getPrice('wheat'), String);

console.log("4. updatePrice('corn', 110): @InvalidateCache('getPrice') invalidates getPrice('corn') and, with it,");
console.log("   getPriceList(): the list's entry recorded what the getPrice calls inside it depend on.");
await catalogue.updatePrice('corn', 110);
console.log('');

const updated = await step("5. getPriceList() again: it runs; getPrice('corn') runs again; getPrice('wheat') comes from cache.", 2, () => catalogue.getPriceList(), list);
assert.equal(updated.get('corn'), 110);

console.log("6. The price of wheat changes without the catalogue (an import job writes the database), and the job");
console.log("   invalidates by dependency key, from anywhere: CachingService.default.invalidate('ProductPrice:wheat').");
await db.setPrice('wheat', 160);
const { pending } = await CachingService.default.invalidate('ProductPrice:wheat');
console.log(`   pending      ${pending}   (true only when a store could not be reached and the invalidation is queued)`);
assert.equal(pending, false);
console.log('');

const imported = await step("7. getPriceList() again: only the list and getPrice('wheat') run.", 2, () => catalogue.getPriceList(), list);
assert.equal(imported.get('wheat'), 160);

const stats = caching.stats();
console.log(`Done: ${stats.hits} hits, ${stats.misses} misses, ${stats.invalidatedEntries} entries invalidated, ${db.reads} database reads in all.`);
await caching.dispose();
