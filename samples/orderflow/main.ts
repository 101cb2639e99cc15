// OrderFlow: the read paths of a small shop, cached with aspect-cache. Domain events invalidate exactly the
// entries computed from what changed — through nested cached calls and cascades — and the sample checks it
// with node:assert, so it fails loudly if an invalidation is missing or too broad.
// Run: npm run sample:orderflow                     (memory backend)
//      REDIS_URL=redis://127.0.0.1:6379 npm run sample:orderflow   (layered backend: memory over Redis)
import assert from 'node:assert/strict';
import { CachingService } from 'aspect-cache';
import { createCaching, warmCache } from './caching.js';
import { ShopCommands } from './commands.js';
import { Database } from './database.js';
import { Customer, formatMoney, Product, SupportAgent } from './domain.js';
import { EventBus } from './events.js';
import { invalidateOnDomainEvents } from './invalidation.js';
import { AccessDeniedError, CatalogueQueries, OrderQueries, type CatalogueEntry, type CustomerSummary, type OrderDetail } from './queries.js';

const { caching, description, close } = await createCaching();
CachingService.default = caching; // decorated methods use the default service

const db = new Database();
const bus = new EventBus();
invalidateOnDomainEvents(bus, caching);
const catalogue = new CatalogueQueries(db);
const orders = new OrderQueries(db, catalogue);
const commands = new ShopCommands(db, bus);

// Signed-in requesters (as a web session would hold them).
const alice = new Customer('alice', 'Alice', 'alice@example.com');
const bob = new Customer('bob', 'Bob', 'bob@example.com');
const sam = new SupportAgent('sam', 'Sam');

// ───────────────────────────── console helpers ─────────────────────────────

interface Observed<T> {
  readonly value: T;
  /** True when the call was answered from the cache (no computation at all). */
  readonly fromCache: boolean;
  readonly dbReads: number;
}

/** Runs one read, prints its result and whether it was a hit or how much it cost, and returns both. */
async function read<T>(label: string, call: () => Promise<T>, show: (value: T) => string): Promise<Observed<T>> {
  const readsBefore = db.reads;
  const before = caching.stats();
  const value = await call();
  const after = caching.stats();
  const dbReads = db.reads - readsBefore;
  const misses = after.misses - before.misses;
  const reused = after.hits - before.hits;
  const fromCache = misses === 0;
  if (fromCache) assert.equal(dbReads, 0, `${label}: a hit must not read the database`);
  const cost = fromCache ? 'cache hit' : `computed: ${count(dbReads, 'database read')}${reused > 0 ? `, ${count(reused, 'cached result')} reused` : ''}`;
  console.log(`  ${label.padEnd(32)}${show(value).padEnd(43)} ${cost}`);
  return { value, fromCache, dbReads };
}

/** Runs a write, prints the entries it invalidated (sorted), and returns their keys. */
async function write(title: string, action: () => Promise<unknown>): Promise<string[]> {
  console.log(`\n${title}`);
  const removed: string[] = [];
  const off = caching.on('invalidate', event => removed.push(...event.entries));
  try {
    await action();
  } finally {
    off();
  }
  removed.sort();
  console.log(`  Invalidated ${count(removed.length, 'entry', 'entries')}:`);
  for (const key of removed) console.log(`    ${key}`);
  return removed;
}

function count(n: number, singular: string, plural = `${singular}s`): string {
  return `${n} ${n === 1 ? singular : plural}`;
}

const showCatalogue = (entries: CatalogueEntry[]) => `${entries.length} products, grinder ${formatMoney(entries.find(e => e.id === 'grinder')!.priceCents)}`;
const showProduct = (product: Product) => `${product.name}, ${formatMoney(product.priceCents)}`;
const showDetail = (detail: OrderDetail) =>
  `${detail.status}, ${count(detail.lines.length, 'line')}, ${formatMoney(detail.totalCents)}${detail.support ? ` + ${detail.support.paymentReference}` : ''}`;
const showSummary = (summary: CustomerSummary) =>
  `${count(summary.orders, 'order')}, ${summary.openOrders} open (${formatMoney(summary.openCents)}), ${formatMoney(summary.spentCents)} spent`;

const getCatalogue = () => read('getCatalogue()', () => catalogue.getCatalogue(), showCatalogue);
const getProduct = (id: string, show = showProduct) => read(`getProduct('${id}')`, () => catalogue.getProduct(id), show);
const getOrderDetail = (orderId: string, requester: Customer | SupportAgent) =>
  read(`getOrderDetail('${orderId}', ${requester.id})`, () => orders.getOrderDetail(orderId, requester), showDetail);
const getCustomerSummary = (id: string) => read(`getCustomerSummary('${id}')`, () => orders.getCustomerSummary(id), showSummary);

// ───────────────────────────── the scenario ─────────────────────────────

console.log(`OrderFlow on the ${description}.`);

console.log('\nStart-up: warming the cache with the catalogue and the featured products.');
const readsBeforeWarming = db.reads;
const warmed = await warmCache(caching, catalogue);
console.log(`  Warmed ${count(warmed, 'entry', 'entries')} with ${count(db.reads - readsBeforeWarming, 'database read')}.`);
assert.equal(warmed, 4, 'the catalogue and the 3 featured products are warmed');

console.log('\n1. Browsing: the warmed entries are hits; other products are read once.');
assert.ok((await getCatalogue()).fromCache, 'the catalogue was warmed');
const grinder = await getProduct('grinder');
assert.ok(grinder.fromCache, 'featured products were warmed');
assert.ok(grinder.value instanceof Product, 'a hit gives a Product back (registered with superjson on Redis)');
assert.equal((await getProduct('kettle')).dbReads, 1, 'a product that was not warmed is read once');
assert.ok((await getProduct('kettle')).fromCache, 'and then served from the cache');

console.log('\n2. Order details per requester (Alice is a customer, Sam a support agent).');
const aliceView = await getOrderDetail('o-1002', alice);
assert.ok(!aliceView.fromCache && aliceView.value.support === undefined, 'a customer does not see the support-only fields');
const samView = await getOrderDetail('o-1002', sam);
assert.ok(!samView.fromCache, 'the requester is part of the key: the support view is its own entry');
assert.equal(samView.value.support?.paymentReference, 'pay_9X4K');
const aliceAgain = await getOrderDetail('o-1002', alice);
assert.ok(aliceAgain.fromCache && aliceAgain.value.support === undefined, "Alice's view is a hit, and she never gets Sam's cached view");
await assert.rejects(orders.getOrderDetail('o-1001', bob), AccessDeniedError, 'Bob may not see an order of Alice');
console.log(`  ${"getOrderDetail('o-1001', bob)".padEnd(32)}refused: o-1001 is Alice's order (errors are never cached)`);

console.log('\n3. Customer summaries, computed from the cached order details.');
const aliceSummary = await getCustomerSummary('alice');
assert.ok(!aliceSummary.fromCache);
assert.deepEqual([aliceSummary.value.openCents, aliceSummary.value.spentCents], [9900 + 1950, 2 * 2400 + 1200]);
assert.ok(!(await getCustomerSummary('bob')).fromCache);
assert.ok((await getCustomerSummary('alice')).fromCache);
assert.ok((await getCustomerSummary('bob')).fromCache);

const priceChange = await write('4. ProductPriceChanged: the grinder goes from €99.00 to €89.00 (Alice has one in open order o-1002).', () =>
  commands.changePrice('grinder', 8900),
);
assert.deepEqual(
  priceChange,
  [
    'CatalogueQueries.getCatalogue()',
    'CatalogueQueries.getProduct("grinder")',
    'OrderQueries.getCustomerSummary("alice")',
    'OrderQueries.getOrderDetail("o-1002",Customer("Customer:alice"))',
    'OrderQueries.getOrderDetail("o-1002",SupportAgent("Agent:sam"))',
  ],
  'the product, what was computed from it, and (cascade) the catalogue — nothing else',
);
const aliceAfterPrice = await getCustomerSummary('alice');
assert.ok(!aliceAfterPrice.fromCache, "Alice's summary is recomputed: it was computed from the grinder's price");
assert.equal(aliceAfterPrice.value.openCents, 8900 + 1950, "Alice's open order is priced at the new price");
assert.ok((await getCustomerSummary('bob')).fromCache, "Bob's summary is still a hit: he never ordered a grinder");
const catalogueAfterPrice = await getCatalogue();
assert.ok(!catalogueAfterPrice.fromCache, 'the product cascades to the catalogue');
assert.equal(catalogueAfterPrice.value.find(entry => entry.id === 'grinder')?.priceCents, 8900);
assert.ok((await getProduct('espresso')).fromCache, 'other products are still hits');

const shipping = await write('5. OrderShipped: o-1002 ships, charged at the current prices.', () => commands.shipOrder('o-1002'));
assert.deepEqual(shipping, ['OrderQueries.getCustomerSummary("alice")', 'OrderQueries.getOrderDetail("o-1002",Customer("Customer:alice"))']);
const aliceAfterShipping = await getCustomerSummary('alice');
assert.ok(!aliceAfterShipping.fromCache, "Alice's summary is recomputed");
assert.deepEqual([aliceAfterShipping.value.openOrders, aliceAfterShipping.value.spentCents], [0, 6000 + 8900 + 1950]);
assert.ok((await getCustomerSummary('bob')).fromCache, "Bob's summary is still a hit");

const placing = await write('6. OrderPlaced: Bob orders 2 mugs (o-1004).', () => commands.placeOrder('o-1004', 'bob', [{ productId: 'mug', quantity: 2 }]));
assert.deepEqual(placing, ['OrderQueries.getCustomerSummary("bob")'], 'the new order cascades to the order list of Bob only');
const bobAfterOrder = await getCustomerSummary('bob');
assert.ok(!bobAfterOrder.fromCache, "Bob's summary is recomputed");
assert.deepEqual([bobAfterOrder.value.orders, bobAfterOrder.value.openCents], [2, 2400 + 4500 + 2 * 1200]);
assert.ok((await getCustomerSummary('alice')).fromCache, "Alice's summary is still a hit");

const describing = await write("7. @InvalidateCache: updateDescription('kettle', …) invalidates getProduct('kettle') and what used it.", () =>
  commands.updateDescription('kettle', 'Stovetop, 1 litre, with thermometer.'),
);
assert.deepEqual(describing, [
  'CatalogueQueries.getProduct("kettle")',
  'OrderQueries.getCustomerSummary("bob")',
  'OrderQueries.getOrderDetail("o-1003",Customer("Customer:bob"))',
]);
const kettle = await getProduct('kettle', product => `“${product.description}”`);
assert.equal(kettle.value.description, 'Stovetop, 1 litre, with thermometer.');
assert.ok(!(await getCustomerSummary('bob')).fromCache, "Bob's summary is recomputed: his order o-1003 has a kettle");
assert.ok((await getCustomerSummary('alice')).fromCache, "Alice's summary is still a hit");
assert.ok((await getCatalogue()).fromCache, 'descriptions are not in the catalogue: it is still a hit');

const stats = caching.stats();
console.log(`\nDone: ${stats.hits} hits, ${stats.misses} misses, ${stats.sets} entries stored, ${stats.invalidatedEntries} invalidated; ${db.reads} database reads in all.`);
assert.equal(stats.errors, 0, 'no cache errors');
assert.equal(stats.skips, 0, 'every computed value was stored');
console.log('Every invalidation check passed.');

await close();
