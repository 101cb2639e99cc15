// The load generator and the consistency checker.
//
// Load: a closed loop of `concurrency` virtual users for `durationMs`. Each user sends one request, waits for
// the answer, and sends the next, to a process picked at random. A request is a write with probability
// `writeShare`, otherwise a read; reads and writes pick products and customers with a Zipf-like skew (a few are
// popular, most are not), see READ_MIX and WRITE_MIX. Before the load, every category page is read once to learn
// the product ids; nothing else is warmed: the caches start cold (apart from those pages).
//
// Checker: every acknowledged write (a 2xx answer, which the service sends only after COMMIT and after its
// invalidations resolved) is read back through ANOTHER process at once by the same user — the read starts
// right after the answer came — and again `recheckAfterMs` later. A read-back is stale when it returns the value
// from before the write (the previous price, an order list without the new order, an order still open after its
// cancellation). Writes use unique prices, so "the previous value" cannot come back legitimately.
//
// The layered bound: SPEC §6/§8 allow another process to serve an L1 copy for the bus's propagation delay after
// an invalidation resolved elsewhere. So a stale immediate read-back that started within `staleBoundMs` of the
// acknowledgement is counted apart (`staleWithinBound`); one that started later, and ANY stale re-read, is
// `staleBeyondBound` — a violation.
import { performance } from 'node:perf_hooks';
import { between, seededRandom, zipfSampler } from '../random.js';
import { SEED } from '../schema.js';
import { JsonClient, type Response } from './client.js';

/** What a process answers on GET /stats (http.ts; declared here so the load generator needs nothing else of the service). */
export interface ProcessStats {
  readonly pid: number;
  readonly requests: number;
  readonly sql: number;
  readonly cache: { readonly hits: number; readonly misses: number; readonly sets: number; readonly skips: number; readonly invalidatedEntries: number; readonly errors: number };
}

export interface LoadOptions {
  /** Base URLs of the service's processes, e.g. `http://127.0.0.1:4100`. */
  readonly targets: readonly string[];
  /** Virtual users (requests in flight). @default 32 */
  readonly concurrency?: number;
  /** How long the measured part lasts. */
  readonly durationMs: number;
  /**
   * A first part of the load that is not measured (requests, latencies and the processes' /stats counters are
   * reset at its end), so the figures describe a warm service; failures and the checker count it too. @default 0
   */
  readonly warmupMs?: number;
  /** Share of requests that are writes, 0..1. */
  readonly writeShare: number;
  /** Seeds the random choices. @default 1 */
  readonly seed?: number;
  /** When the second read-back of a write starts, after its acknowledgement. @default 300 */
  readonly recheckAfterMs?: number;
  /** How long after an acknowledgement a stale read-back is allowed (the propagation delay). @default 50 */
  readonly staleBoundMs?: number;
  /** Skew of the popularity of products and customers (Zipf exponent). @default 0.8 */
  readonly skew?: number;
}

export interface CheckReport {
  /** Writes acknowledged (2xx) and read back. */
  readonly checked: number;
  /** Read-backs started right after the acknowledgement that returned the value from before the write. */
  readonly staleImmediate: number;
  /** ...of which started within `staleBoundMs` of the acknowledgement (allowed: the propagation delay). */
  readonly staleWithinBound: number;
  /** Stale immediate read-backs started after the bound, plus every stale re-read: violations. */
  readonly staleBeyondBound: number;
  /** Re-reads (`recheckAfterMs` later) that were stale (included in staleBeyondBound). */
  readonly staleLater: number;
  /** Median time from an acknowledgement to the start of its immediate read-back (ms). */
  readonly readBackDelayP50Ms: number;
  /** A few stale read-backs, for the report. */
  readonly examples: readonly string[];
}

export interface LoadReport {
  /** Requests the virtual users sent (immediate read-backs included; re-reads not). */
  readonly requests: number;
  readonly writes: number;
  /** Requests without the expected answer (network errors, 5xx — a write answered 503 `pending` too —, wrong status). */
  readonly failed: number;
  readonly failures: Readonly<Record<string, number>>;
  readonly durationMs: number;
  readonly requestsPerSecond: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  /** Over every process, from GET /stats: SQL statements and API requests they served (re-reads included). */
  readonly sql: number;
  readonly serverRequests: number;
  readonly sqlPerRequest: number;
  /** Cache hits / (hits + misses), nested cached calls included; null with caching off. */
  readonly hitRatio: number | null;
  readonly check: CheckReport;
  /** What each process reported (GET /stats) at the end. */
  readonly processes: readonly ProcessStats[];
}

/** The share of each read, and of each write (cancellations only of orders this run placed). */
const READ_MIX = { product: 0.35, categoryPage: 0.25, orderDetail: 0.25, summary: 0.15 };
const WRITE_MIX = { price: 0.5, placeOrder: 0.3, cancel: 0.2 };

interface Catalogue {
  /** Products, most popular first (a seeded shuffle of the ids). */
  readonly products: readonly string[];
  /** The category page listing each product. */
  readonly pageOf: ReadonlyMap<string, { category: string; page: number }>;
  /** Pages per category. */
  readonly pages: ReadonlyMap<string, number>;
  readonly categories: readonly string[];
  /** Customers, most popular first, and the orders of those whose summary was read. */
  readonly customers: readonly string[];
  readonly ordersOf: Map<string, string[]>;
}

const CATEGORIES = Array.from({ length: SEED.categories }, (_, i) => `c${String(i + 1).padStart(2, '0')}`);
const CUSTOMERS = Array.from({ length: SEED.customers }, (_, i) => `u${String(i + 1).padStart(3, '0')}`);

/**
 * Reads every category page once, as a crawler would, to learn the product ids and where each is listed (the
 * counters are reset after it). Customers' orders are learnt during the load: see `read`.
 */
export async function discover(client: JsonClient, targets: readonly string[], random: () => number): Promise<Catalogue> {
  const at = (i: number) => targets[i % targets.length]!;
  const pageOf = new Map<string, { category: string; page: number }>();
  const pages = new Map<string, number>();
  await inBatches(CATEGORIES, 8, async (category, i) => {
    for (let page = 1; ; page++) {
      const response = await expectOk(client.request(at(i), 'GET', `/categories/${category}/products?page=${page}`));
      for (const product of response.body.products as { id: string }[]) pageOf.set(product.id, { category, page });
      if (!response.body.hasMore) {
        pages.set(category, page);
        break;
      }
    }
  });
  return { products: shuffle([...pageOf.keys()].sort(), random), pageOf, pages, categories: CATEGORIES, customers: shuffle([...CUSTOMERS], random), ordersOf: new Map() };
}

/** Runs the load against `targets` and checks every acknowledged write; see the file comment. */
export async function runLoad(options: LoadOptions): Promise<LoadReport> {
  const { targets, durationMs, warmupMs = 0, writeShare, concurrency = 32, seed = 1, recheckAfterMs = 300, staleBoundMs = 50, skew = 0.8 } = options;
  if (targets.length === 0) throw new Error('runLoad: no targets');
  const random = seededRandom(seed);
  const client = new JsonClient(concurrency + 16);
  try {
    const catalogue = await discover(client, targets, random);
    await Promise.all(targets.map(target => expectOk(client.request(target, 'POST', '/stats/reset'))));

    const pickProduct = zipfSampler(catalogue.products.length, skew, random);
    const pickCustomer = zipfSampler(catalogue.customers.length, skew, random);
    const pickCategory = zipfSampler(catalogue.categories.length, skew, random);
    const product = () => catalogue.products[pickProduct()]!;
    const customer = () => catalogue.customers[pickCustomer()]!;
    const openOrders: { orderId: string; customerId: string }[] = [];

    const latencies: number[] = [];
    const failures: Record<string, number> = {};
    let requests = 0;
    let writes = 0;
    let measuring = warmupMs === 0;
    const fail = (reason: string) => (failures[reason] = (failures[reason] ?? 0) + 1);
    /** Sends one request of the load; counts it, and a failure when the status is not `expected`. */
    const send = async (label: string, expected: number, target: string, method: string, path: string, init?: { body?: unknown; requester?: string }): Promise<Response | undefined> => {
      const response = await client.request(target, method, path, init);
      if (measuring) {
        requests++;
        latencies.push(response.endedAt - response.startedAt);
      }
      if (response.status === expected) return response;
      fail(response.error ? `${label}: ${response.error}` : `${label}: ${response.status}${response.body?.error ? ` ${String(response.body.error).slice(0, 80)}` : ''}`);
      return undefined;
    };

    // ── the checker ──
    const check = { checked: 0, staleImmediate: 0, staleWithinBound: 0, staleBeyondBound: 0, staleLater: 0, delays: [] as number[], examples: [] as string[] };
    const rereads: Promise<void>[] = [];
    const other = (writer: string) => {
      const others = targets.filter(target => target !== writer);
      return others.length === 0 ? writer : others[between(random, 0, others.length - 1)]!;
    };
    /** One read-back through `target`: true when it returned the value from before `write`. */
    type ReadBack = (target: string, later: boolean, reader: typeof send) => Promise<{ stale: boolean; startedAt: number; what: string }>;
    const afterWrite = async (writer: string, ackAt: number, readBack: ReadBack) => {
      check.checked++;
      const immediate = await readBack(other(writer), false, send);
      const delay = immediate.startedAt - ackAt;
      check.delays.push(delay);
      if (immediate.stale) {
        check.staleImmediate++;
        if (delay <= staleBoundMs) check.staleWithinBound++;
        else check.staleBeyondBound++;
        if (check.examples.length < 5) check.examples.push(`immediate (+${delay.toFixed(1)} ms): ${immediate.what}`);
      }
      rereads.push(
        (async () => {
          await new Promise(resolve => setTimeout(resolve, recheckAfterMs));
          const later = await readBack(other(writer), true, reread);
          if (later.stale) {
            check.staleLater++;
            check.staleBeyondBound++;
            if (check.examples.length < 5) check.examples.push(`re-read (+${(later.startedAt - ackAt).toFixed(0)} ms): ${later.what}`);
          }
        })(),
      );
    };
    /** Re-reads are not part of the load (not in requests or latencies), but their failures count. */
    const reread: typeof send = async (label, expected, target, method, path, init) => {
      const response = await client.request(target, method, path, init);
      if (response.status === expected) return response;
      fail(`re-read ${label}: ${response.error ?? response.status}`);
      return undefined;
    };

    const readBackPrice =
      (productId: string, previous: number): ReadBack =>
      async (target, later, reader) => {
        const response = await reader('read-back product', 200, target, 'GET', `/products/${productId}`);
        let stale = response?.body.priceCents === previous;
        let what = `${productId} still ${previous}`;
        const page = catalogue.pageOf.get(productId);
        if (later && page && !stale) {
          // The category page is computed from the product: it must not show the old price either.
          const listing = await reader('read-back page', 200, target, 'GET', `/categories/${page.category}/products?page=${page.page}`);
          stale = listing?.body.products.find((p: { id: string }) => p.id === productId)?.priceCents === previous;
          what = `category page ${page.category}/${page.page} still lists ${productId} at ${previous}`;
        }
        return { stale, startedAt: response?.startedAt ?? 0, what };
      };
    const readBackNewOrder =
      (orderId: string, customerId: string): ReadBack =>
      async (target, _later, reader) => {
        const response = await reader('read-back summary', 200, target, 'GET', `/customers/${customerId}/summary`);
        return { stale: response !== undefined && !response.body.orderIds.includes(orderId), startedAt: response?.startedAt ?? 0, what: `summary of ${customerId} without ${orderId}` };
      };
    const readBackCancel =
      (orderId: string, customerId: string): ReadBack =>
      async (target, later, reader) => {
        const response = await reader('read-back order', 200, target, 'GET', `/orders/${orderId}`, { requester: later ? 'admin' : `customer:${customerId}` });
        return { stale: response?.body.status === 'placed', startedAt: response?.startedAt ?? 0, what: `${orderId} still placed (${later ? 'admin' : 'customer'} view)` };
      };

    // ── one request of a virtual user ──
    const read = async (target: string) => {
      const roll = random();
      if (roll < READ_MIX.product) return void (await send('product', 200, target, 'GET', `/products/${product()}`));
      if (roll < READ_MIX.product + READ_MIX.categoryPage) {
        const category = catalogue.categories[pickCategory()]!;
        const pages = catalogue.pages.get(category)!;
        const page = random() < 0.6 ? 1 : between(random, 1, pages);
        return void (await send('category page', 200, target, 'GET', `/categories/${category}/products?page=${page}`));
      }
      if (roll < READ_MIX.product + READ_MIX.categoryPage + READ_MIX.orderDetail) {
        const owner = customer();
        const orders = catalogue.ordersOf.get(owner);
        if (orders === undefined) {
          // Not known yet which orders this customer has: read the account page first, as a user would.
          const response = await send('summary', 200, target, 'GET', `/customers/${owner}/summary`);
          if (response) catalogue.ordersOf.set(owner, [...(response.body.orderIds as string[])]);
          return;
        }
        const orderId = orders[between(random, 0, orders.length - 1)]!;
        const who = random();
        // 80% the owner, 15% an administrator, 5% another customer (403, never cached).
        if (who < 0.8) return void (await send('order (customer)', 200, target, 'GET', `/orders/${orderId}`, { requester: `customer:${owner}` }));
        if (who < 0.95) return void (await send('order (admin)', 200, target, 'GET', `/orders/${orderId}`, { requester: 'admin' }));
        const stranger = catalogue.customers.find(c => c !== owner)!; // an order has one owner
        return void (await send('order (other customer)', 403, target, 'GET', `/orders/${orderId}`, { requester: `customer:${stranger}` }));
      }
      const owner = customer();
      const response = await send('summary', 200, target, 'GET', `/customers/${owner}/summary`);
      if (response) catalogue.ordersOf.set(owner, [...(response.body.orderIds as string[])]);
    };

    const write = async (target: string) => {
      if (measuring) writes++;
      const roll = random();
      if (roll < WRITE_MIX.price) {
        // Price changes are spread evenly over the catalogue (a back office edits any product); unique values.
        const productId = catalogue.products[between(random, 0, catalogue.products.length - 1)]!;
        const priceCents = between(random, 20_000, 2_000_000_000);
        const response = await send('change price', 200, target, 'PUT', `/products/${productId}/price`, { body: { priceCents } });
        if (response) await afterWrite(target, response.endedAt, readBackPrice(productId, response.body.previousPriceCents));
        return;
      }
      if (roll < WRITE_MIX.price + WRITE_MIX.placeOrder || openOrders.length === 0) {
        const customerId = customer();
        const count = between(random, 1, 3);
        const lines = [...new Set(Array.from({ length: count }, product))].map(productId => ({ productId, quantity: between(random, 1, 3) }));
        const response = await send('place order', 201, target, 'POST', '/orders', { body: { customerId, lines } });
        if (!response) return;
        const { orderId } = response.body as { orderId: string };
        catalogue.ordersOf.get(customerId)?.push(orderId);
        openOrders.push({ orderId, customerId });
        await afterWrite(target, response.endedAt, readBackNewOrder(orderId, customerId));
        return;
      }
      const { orderId, customerId } = openOrders.splice(between(random, 0, openOrders.length - 1), 1)[0]!;
      const response = await send('cancel order', 200, target, 'POST', `/orders/${orderId}/cancel`);
      if (response) await afterWrite(target, response.endedAt, readBackCancel(orderId, customerId));
    };

    let startedAt = performance.now();
    const deadline = startedAt + warmupMs + durationMs;
    const warmup = new Promise<void>(resolve => {
      if (measuring) return resolve();
      setTimeout(() => {
        measuring = true;
        startedAt = performance.now();
        void Promise.all(targets.map(target => expectOk(client.request(target, 'POST', '/stats/reset')))).then(() => resolve());
      }, warmupMs);
    });
    const user = async () => {
      while (performance.now() < deadline) {
        const target = targets[between(random, 0, targets.length - 1)]!;
        if (random() < writeShare) await write(target);
        else await read(target);
      }
    };
    await Promise.all(Array.from({ length: concurrency }, user));
    const elapsed = performance.now() - startedAt;
    await warmup;
    await Promise.all(rereads);

    const stats = await Promise.all(targets.map(async target => (await expectOk(client.request(target, 'GET', '/stats'))).body as ProcessStats));
    const sql = stats.reduce((sum, s) => sum + s.sql, 0);
    const serverRequests = stats.reduce((sum, s) => sum + s.requests, 0);
    const hits = stats.reduce((sum, s) => sum + s.cache.hits, 0);
    const misses = stats.reduce((sum, s) => sum + s.cache.misses, 0);
    latencies.sort((a, b) => a - b);
    const delays = check.delays.sort((a, b) => a - b);
    return {
      requests,
      writes,
      failed: Object.values(failures).reduce((sum, n) => sum + n, 0),
      failures,
      durationMs: elapsed,
      requestsPerSecond: (requests / elapsed) * 1000,
      p50Ms: quantile(latencies, 0.5),
      p99Ms: quantile(latencies, 0.99),
      sql,
      serverRequests,
      sqlPerRequest: serverRequests === 0 ? 0 : sql / serverRequests,
      hitRatio: hits + misses === 0 ? null : hits / (hits + misses),
      check: {
        checked: check.checked,
        staleImmediate: check.staleImmediate,
        staleWithinBound: check.staleWithinBound,
        staleBeyondBound: check.staleBeyondBound,
        staleLater: check.staleLater,
        readBackDelayP50Ms: quantile(delays, 0.5),
        examples: check.examples,
      },
      processes: stats,
    };
  } finally {
    client.close();
  }
}

function quantile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

function shuffle<T>(items: T[], random: () => number): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = between(random, 0, i);
    [items[i], items[j]] = [items[j]!, items[i]!];
  }
  return items;
}

async function expectOk(pending: Promise<Response>): Promise<Response> {
  const response = await pending;
  if (response.status !== 200) throw new Error(`load generator: ${response.error ?? `status ${response.status} ${JSON.stringify(response.body)}`}`);
  return response;
}

async function inBatches<T>(items: readonly T[], width: number, fn: (item: T, index: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: width }, async () => {
      while (next < items.length) {
        const index = next++;
        await fn(items[index]!, index);
      }
    }),
  );
}
