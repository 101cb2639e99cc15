// RedisBackend against real Redis servers (standalone, and the 3-master cluster where said), driven through
// CachingService and decorated methods wherever the behaviour is user-visible (SPEC §6 and §8).
//
// A "process" below is a CachingService with its own RedisBackend on its own ioredis connection: two of them
// with the same key prefix share entries exactly as two application processes would. Races are driven with
// deferred promises; real (short) sleeps are used only where Redis' own clock is involved (expiry).
import { Cluster, type Redis } from 'ioredis';
import SuperJSON from 'superjson';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { addDependency, bindCachingService, Cache, CachingService, StringDependency, type CacheDependency, type CacheEventMap } from '../../src/index.js';
import { RedisBackend, type RedisBackendOptions } from '../../src/redis.js';
import { deferred, type Deferred } from '../support/deferred.js';
import { clientCommandsDuring, commandCalls, keysByKind, partitionOf, purgePrefix, readsProcessed, totalCalls } from './support/backend-support.js';
import { sleep, waitUntil } from './support/redis-process.js';
import { clusterClient, countKeys, describeRedis, ready, resetCommandStats, scanKeys, standaloneClient, uniquePrefix, type RedisClient } from './support/redis.js';

// ───────────────────────────── processes and their events ─────────────────────────────

interface Recorded {
  hits: string[];
  misses: string[];
  sets: Array<CacheEventMap['set']>;
  skips: Array<CacheEventMap['skip']>;
  errors: Array<CacheEventMap['error']>;
  failsafes: Array<CacheEventMap['failsafe']>;
  invalidations: Array<CacheEventMap['invalidate']>;
}

interface Process {
  readonly client: RedisClient;
  readonly backend: RedisBackend;
  readonly service: CachingService;
  readonly events: Recorded;
}

/** Services and prefixes of the running test: disposed and deleted after it. */
const cleanup: { services: CachingService[]; prefixes: Array<{ client: RedisClient; prefix: string }> } = { services: [], prefixes: [] };

function startProcess(client: RedisClient, keyPrefix: string, options: Partial<RedisBackendOptions> = {}): Process {
  const backend = new RedisBackend({ client, keyPrefix, ...options });
  const service = new CachingService({ backend, telemetry: false });
  const events: Recorded = { hits: [], misses: [], sets: [], skips: [], errors: [], failsafes: [], invalidations: [] };
  service.on('hit', e => events.hits.push(e.key));
  service.on('miss', e => events.misses.push(e.key));
  service.on('set', e => events.sets.push(e));
  service.on('skip', e => events.skips.push(e));
  service.on('error', e => events.errors.push(e));
  service.on('failsafe', e => events.failsafes.push(e));
  service.on('invalidate', e => events.invalidations.push(e));
  cleanup.services.push(service);
  if (!cleanup.prefixes.some(p => p.prefix === keyPrefix)) cleanup.prefixes.push({ client, prefix: keyPrefix });
  return { client, backend, service, events };
}

async function cleanUp(): Promise<void> {
  const { services, prefixes } = cleanup;
  cleanup.services = [];
  cleanup.prefixes = [];
  await Promise.all(services.map(s => s.dispose()));
  for (const { client, prefix } of prefixes) if (client.status === 'ready') await purgePrefix(client, prefix);
}

const messageOf = (error: unknown): string => (error instanceof Error ? error.message : String(error));

/** The Redis keys of the test's prefix that are entries (`v:`) or dependency indexes (`i:`). */
async function entriesAndIndexes(client: RedisClient, prefix: string): Promise<{ v: string[]; i: string[] }> {
  const { v, i } = await keysByKind(client, prefix);
  return { v, i };
}

// ───────────────────────────── the services under test ─────────────────────────────

/**
 * A price list read from a shared "database" (the Map). `gate`, when set, holds the computation open after it
 * read the price and recorded its dependency; `started` resolves when a computation starts.
 */
class Catalogue {
  runs = 0;
  gate: Deferred<void> | undefined;
  started: Deferred<void> = deferred();

  constructor(
    service: CachingService,
    readonly db: Map<string, number>,
    readonly counter: { runs: number } = { runs: 0 },
  ) {
    bindCachingService(this, service);
  }

  @Cache()
  async getPrice(id: string): Promise<number> {
    this.runs++;
    this.counter.runs++;
    addDependency(`Price:${id}`);
    const price = this.db.get(id) ?? 0;
    this.started.resolve();
    if (this.gate !== undefined) await this.gate.promise;
    return price;
  }
}

/** The Redis key of `Catalogue.getPrice(id)` as the service builds it (checked against the `set` events). */
const priceKey = (id: string) => `Catalogue.getPrice(${JSON.stringify(id)})`;

/** A domain record that is its own dependency; registered with superjson so it round-trips with its prototype. */
class Product implements CacheDependency {
  constructor(
    readonly name: string,
    readonly price: number,
    readonly updatedAt: Date,
  ) {}

  getCacheKey(): string {
    return `Product:${this.name}`;
  }

  /** On the prototype (not serialized): updating a product invalidates everything about the catalogue. */
  get cascadeDependencies(): CacheDependency[] {
    return [new StringDependency('ProductCatalogue')];
  }

  label(): string {
    return `${this.name} at ${this.price}`;
  }
}
SuperJSON.registerClass(Product, { identifier: 'aspect-cache.test.Product' });

class Shop {
  runs: Record<string, number> = {};
  constructor(
    service: CachingService,
    readonly products: Map<string, Product>,
  ) {
    bindCachingService(this, service);
  }

  #count(name: string): void {
    this.runs[name] = (this.runs[name] ?? 0) + 1;
  }

  @Cache()
  async getProduct(name: string): Promise<Product> {
    this.#count(`getProduct:${name}`);
    const product = this.products.get(name)!;
    addDependency(product);
    return product;
  }

  @Cache()
  async listing(): Promise<string[]> {
    this.#count('listing');
    addDependency('ProductCatalogue');
    return [...this.products.keys()];
  }

  @Cache()
  async rich(): Promise<unknown> {
    this.#count('rich');
    return richValue();
  }

  @Cache()
  async nothing(): Promise<undefined> {
    this.#count('nothing');
    return undefined;
  }
}

function richValue() {
  return {
    at: new Date('2024-02-29T12:34:56.789Z'),
    byName: new Map<string, unknown>([
      ['corn', { price: 1, since: new Date(0) }],
      ['wheat', undefined],
    ]),
    tags: new Set(['a', 'b', 3]),
    big: 12_345_678_901_234_567_890n,
    missing: undefined,
    nested: { deeper: { missing: undefined, list: [undefined, 1, new Date(1)] } },
  };
}

/** Values that cannot be stored in Redis: over the size limit, or holding a function. */
class Awkward {
  runs = 0;
  constructor(service: CachingService) {
    bindCachingService(this, service);
  }

  @Cache()
  async big(): Promise<string> {
    this.runs++;
    return 'x'.repeat(5_000);
  }

  @Cache()
  async withFunction(): Promise<{ name: string; format: () => string }> {
    this.runs++;
    return { name: 'corn', format: () => 'corn!' };
  }
}

/** Entries for the fan-out and hygiene tests. */
class Feed {
  constructor(service: CachingService) {
    bindCachingService(this, service);
  }

  @Cache()
  async hot(i: number): Promise<number> {
    addDependency('Hot');
    return i;
  }

  @Cache({ ttl: 1_500 })
  async item(i: number): Promise<{ i: number }> {
    addDependency(`Group:${i % 5}`, 'Feed');
    if (i % 10_000 === 0) addDependency('Rare');
    return { i };
  }
}

/** Expiry through the service: sliding windows, and a parent capped by its child. */
class Clocked {
  runs: Record<string, number> = {};
  constructor(service: CachingService) {
    bindCachingService(this, service);
  }

  #count(name: string): void {
    this.runs[name] = (this.runs[name] ?? 0) + 1;
  }

  @Cache({ slidingExpiration: 400 })
  async sliding(id: string): Promise<string> {
    this.#count(`sliding:${id}`);
    return `sliding ${id}`;
  }

  @Cache({ slidingExpiration: 400, ttl: 900 })
  async cappedSliding(id: string): Promise<string> {
    this.#count(`cappedSliding:${id}`);
    return `capped ${id}`;
  }

  @Cache({ ttl: 800 })
  async child(id: string): Promise<string> {
    this.#count(`child:${id}`);
    return `child ${id}`;
  }

  @Cache({ ttl: 60_000 })
  async parent(id: string): Promise<string> {
    this.#count(`parent:${id}`);
    return `parent of ${await this.child(id)}`;
  }

  @Cache({ ttl: 60_000 })
  async otherParent(id: string): Promise<string> {
    this.#count(`otherParent:${id}`);
    return `other parent of ${await this.child(id)}`;
  }
}

/** Fail-safe: the value expires quickly; recomputing it fails when `failing` is set. */
class Quotes {
  runs = 0;
  failing = false;
  constructor(
    service: CachingService,
    readonly source: { value: string },
  ) {
    bindCachingService(this, service);
  }

  @Cache({ ttl: 300, failSafe: { maxStaleness: 5_000 } })
  async quote(id: string): Promise<string> {
    this.runs++;
    if (this.failing) throw new Error(`the quote service is down (${id})`);
    return `${this.source.value} ${id}`;
  }
}

/** A chain of cached calls for the cluster: a → b → c → dependency D. */
class Chain {
  runs = 0;
  constructor(service: CachingService) {
    bindCachingService(this, service);
  }

  @Cache()
  async a(id: string): Promise<string> {
    this.runs++;
    return `a(${await this.b(id)})`;
  }

  @Cache()
  async b(id: string): Promise<string> {
    this.runs++;
    return `b(${await this.c(id)})`;
  }

  @Cache()
  async c(id: string): Promise<string> {
    this.runs++;
    addDependency(`D:${id}`);
    return `c(${id})`;
  }
}

/** Orders made of lines, each line depending on a product: entries and their dependencies across partitions. */
class Orders {
  runs: Record<string, number> = {};
  constructor(service: CachingService) {
    bindCachingService(this, service);
  }

  #count(name: string): void {
    this.runs[name] = (this.runs[name] ?? 0) + 1;
  }

  @Cache()
  async line(id: number): Promise<string> {
    this.#count(`line:${id}`);
    addDependency(`Product:${id % 7}`);
    return `line ${id} of product ${id % 7}`;
  }

  @Cache()
  async order(id: number): Promise<string[]> {
    this.#count(`order:${id}`);
    return Promise.all([0, 1, 2, 3, 4].map(n => this.line(id * 5 + n)));
  }
}

// ───────────────────────────── shared checks ─────────────────────────────

/**
 * What a lookup sends: on a standalone server one LOOKUP script (EVALSHA), which reads the partition's generation
 * (GET), the server's clock (TIME) and the entry's field (HGET) inside the server; on a cluster the same three
 * commands as a pipeline. The generation and the clock are what a miss takes its token from.
 */
const lookupCommands = (probe: RedisClient) => (probe instanceof Cluster ? ['get', 'time', 'hget'] : ['evalsha']);

/** N hits on a warm entry: exactly N socket writes of the client (one round trip each), however many masters there are. */
async function expectOneRoundTripPerHit(client: RedisClient, probe: RedisClient, label: string): Promise<void> {
  const prefix = uniquePrefix(`round-trips-${label}`);
  const a = startProcess(client, prefix);
  const catalogue = new Catalogue(a.service, new Map([['corn', 3]]));
  expect(await catalogue.getPrice('corn')).toBe(3); // miss: computed and stored
  expect(await catalogue.getPrice('corn')).toBe(3); // hit: warms the connection (a script is sent in full once per connection)
  expect(catalogue.runs).toBe(1);

  const N = 25;
  await connectAll(client);
  await resetCommandStats(probe);
  const nodes = probe instanceof Cluster ? probe.nodes('master') : [probe];
  const writes = countSocketWrites(client);
  let writesPerHit: number[] = [];
  const sent = await clientCommandsDuring(nodes, async () => {
    try {
      for (let i = 0; i < N; i++) {
        const before = writes.count;
        expect(await catalogue.getPrice('corn')).toBe(3);
        writesPerHit.push(writes.count - before);
      }
    } finally {
      writes.stop();
    }
  });
  const calls = await commandCalls(probe);

  expect(catalogue.runs).toBe(1);
  expect(a.events.hits).toHaveLength(N + 1);
  // One socket write (one round trip) per hit.
  expect(writesPerHit).toEqual(Array(N).fill(1));
  // What the servers received from clients: the same command(s) per hit, in that order.
  const lookup = lookupCommands(probe);
  expect(sent).toEqual(Array.from({ length: N }, () => lookup).flat());
  console.log(`[redis-backend] a hit on the ${label} is one round trip: ${lookup.join(', ').toUpperCase()} in one write`);
  // INFO commandstats agrees. Since Redis 7 it also counts the commands a script runs inside the server
  // (GET, TIME and HGET under the LOOKUP script's EVALSHA), which are not round trips: MONITOR above tells them apart.
  // (On a cluster, another client's topology check may add a command of its own: MONITOR is the exact count.)
  expect(calls.get('hget')).toBe(N);
  for (const command of ['get', 'time', 'hget', ...lookup]) expect(calls.get(command)).toBeGreaterThanOrEqual(N);
  // The servers executed nothing else at all, but the measurement itself (INFO, CONFIG RESETSTAT, and the
  // MONITOR connections' HELLO, MONITOR and ECHO) and replicas acknowledging the replication stream (REPLCONF).
  // ioredis's own cluster topology refreshes (CLUSTER SLOTS/NODES) may land in the window too: not cache traffic.
  if (!(probe instanceof Cluster)) expect(totalCalls(calls, ['info', 'config|resetstat', 'hello', 'monitor', 'echo', 'replconf', 'cluster|slots', 'cluster|nodes', 'cluster|shards', 'cluster|info', 'command'])).toBe(4 * N);
}

/**
 * N misses, each computed and stored: two socket writes each (the lookup, which brings the token, and the store
 * script), and the servers receive the lookup (see lookupCommands) and one EVALSHA per miss.
 */
async function expectTwoRoundTripsPerMiss(client: RedisClient, probe: RedisClient, label: string): Promise<void> {
  const prefix = uniquePrefix(`miss-round-trips-${label}`);
  const a = startProcess(client, prefix);
  const N = 20;
  const catalogue = new Catalogue(a.service, new Map(Array.from({ length: N + 1 }, (_, i) => [`m${i}`, i])));
  expect(await catalogue.getPrice('m0')).toBe(0); // warms the connection (a script is sent in full once per connection)
  await connectAll(client);
  const nodes = probe instanceof Cluster ? probe.nodes('master') : [probe];
  const writes = countSocketWrites(client);
  const writesPerMiss: number[] = [];
  const sent = await clientCommandsDuring(nodes, async () => {
    try {
      for (let i = 1; i <= N; i++) {
        const before = writes.count;
        expect(await catalogue.getPrice(`m${i}`)).toBe(i);
        await waitUntil(async () => a.events.sets.length === i + 1, 2_000, () => `m${i} was not stored`);
        writesPerMiss.push(writes.count - before);
      }
    } finally {
      writes.stop();
    }
  });
  expect(catalogue.runs).toBe(N + 1);
  expect(a.events.sets).toHaveLength(N + 1);
  expect(writesPerMiss).toEqual(Array(N).fill(2));
  // A cluster client connects to a master on its first command there (HELLO, INFO): not cache traffic.
  // Its first script on a master is sent in full (EVAL), later ones by their SHA.
  const lookup = lookupCommands(probe);
  expect(sent.filter(c => c !== 'hello' && c !== 'info').map(c => (c === 'eval' ? 'evalsha' : c))).toEqual(Array.from({ length: N }, () => [...lookup, 'evalsha']).flat());
  console.log(`[redis-backend] a miss on the ${label} is two round trips: ${lookup.join(', ').toUpperCase()}, then the store (EVALSHA)`);
}

/**
 * N cached prices (each a different value) looked up concurrently in one tick: each caller gets its own value,
 * each hit is still one HGET, and the lookups leave the client in at most `maxWrites` socket writes (one per
 * partition's batch; without batching, one per lookup) and reach the server(s) in at most `maxReads` reads.
 */
async function expectConcurrentHitsWrittenTogether(client: RedisClient, probe: RedisClient, label: string, n: number, limits: { maxWrites: number; maxReads: number }): Promise<void> {
  const prefix = uniquePrefix(`batched-${label}`);
  const a = startProcess(client, prefix);
  const ids = Array.from({ length: n }, (_, i) => `item-${i}`);
  const catalogue = new Catalogue(a.service, new Map(ids.map((id, i) => [id, 1000 + i])));
  for (const id of ids) await catalogue.getPrice(id);
  expect(catalogue.runs).toBe(n);

  await resetCommandStats(probe);
  const readsBefore = await readsProcessed(probe);
  const writes = countSocketWrites(client);
  let prices: number[];
  try {
    prices = await Promise.all(ids.map(id => catalogue.getPrice(id)));
  } finally {
    writes.stop();
  }
  const reads = (await readsProcessed(probe)) - readsBefore - (probe instanceof Cluster ? probe.nodes('master').length : 1); // minus the INFO reads
  const calls = await commandCalls(probe);

  expect(prices).toEqual(ids.map((_, i) => 1000 + i));
  expect(catalogue.runs).toBe(n);
  expect(a.events.hits).toHaveLength(n);
  expect(calls.get('hget')).toBe(n);
  expect(writes.count).toBeGreaterThan(0);
  expect(writes.count).toBeLessThanOrEqual(limits.maxWrites);
  expect(reads).toBeLessThanOrEqual(limits.maxReads);
  expect(a.events.errors).toEqual([]);
  console.log(`[redis-backend] ${n} concurrent hits on the ${label}: ${n} HGETs in ${writes.count} socket write(s) of the client, ${reads} socket read(s) of the server(s)`);
}

/** Connects a cluster client to every master (it connects to one on its first command there). */
async function connectAll(client: RedisClient): Promise<void> {
  if (client instanceof Cluster) await Promise.all(client.nodes('master').map(node => node.ping()));
}

/** Counts the writes to the sockets of a client's connections (every master's, on a cluster) until stopped. */
function countSocketWrites(client: RedisClient): { readonly count: number; stop(): void } {
  // (A cluster client connects to a master on its first command there: connect them all first, see connectAll.)
  const sockets = (client instanceof Cluster ? client.nodes('master') : [client]).map(node => node.stream as { write: (...args: unknown[]) => boolean } | undefined).filter(socket => socket !== undefined);
  const counter = { count: 0, stop: () => sockets.forEach(socket => delete (socket as { write?: unknown }).write) };
  for (const socket of sockets) {
    const write = socket.write;
    socket.write = (...args: unknown[]) => {
      counter.count++;
      return write.apply(socket, args);
    };
  }
  return counter;
}

/**
 * Process A computes getPrice('corn') and is held open after reading the price; process B (another connection,
 * same prefix) invalidates; A finishes: its caller gets the value it computed, but nothing is stored.
 */
async function expectNoStaleWriteAcrossProcesses(connect: () => RedisClient, label: string, invalidate: (b: Process, catalogueB: Catalogue) => Promise<unknown>): Promise<void> {
  const prefix = uniquePrefix(`stale-${label}`);
  const clientA = connect();
  const clientB = connect();
  await Promise.all([ready(clientA), ready(clientB)]);
  const a = startProcess(clientA, prefix);
  const b = startProcess(clientB, prefix);
  const db = new Map([['corn', 1]]);
  const catalogueA = new Catalogue(a.service, db);
  const catalogueB = new Catalogue(b.service, db);

  catalogueA.gate = deferred();
  const pending = catalogueA.getPrice('corn');
  await catalogueA.started.promise; // A has read price 1 and recorded Price:corn
  db.set('corn', 2);
  await invalidate(b, catalogueB);
  catalogueA.gate.resolve();

  expect(await pending).toBe(1); // A's caller gets what A computed
  expect(a.events.skips).toEqual([{ key: priceKey('corn'), reason: 'stale' }]);
  expect(a.events.sets).toEqual([]);
  expect(await countKeys(clientA, a.backend.entryKey(priceKey('corn')))).toBe(0);

  expect(await catalogueB.getPrice('corn')).toBe(2); // B misses and recomputes
  expect(catalogueB.runs).toBe(1);
  expect(b.events.misses).toEqual([priceKey('corn')]);
  expect(await catalogueA.getPrice('corn')).toBe(2); // and A now reads B's fresh entry
  expect(catalogueA.runs).toBe(1);
  expect([...a.events.errors, ...b.events.errors]).toEqual([]);
}

// ───────────────────────────── standalone ─────────────────────────────

describeRedis('RedisBackend on a standalone Redis', () => {
  let raw: RedisClient;

  beforeEach(async () => {
    raw = standaloneClient();
    await ready(raw);
  });

  afterEach(cleanUp);

  it('serves a hit in exactly one round trip: one command reaches Redis per hit, nothing else', async () => {
    await expectOneRoundTripPerHit(standaloneClient(), raw, 'standalone');
  });

  it('serves a miss in two round trips: the lookup brings the token, then the store', async () => {
    await expectTwoRoundTripsPerMiss(standaloneClient(), raw, 'standalone');
  });

  it('sends the lookups of one tick together: each concurrent caller gets its own value, one HGET per hit, one socket write', async () => {
    await expectConcurrentHitsWrittenTogether(standaloneClient(), raw, 'standalone', 50, { maxWrites: 1, maxReads: 3 });
  });

  it('repairs an entry key holding another type found in a batch: a miss once (the key is replaced), the other callers still hit, the circuit stays closed', async () => {
    const prefix = uniquePrefix('batch-error');
    const a = startProcess(standaloneClient(), prefix);
    const ids = Array.from({ length: 10 }, (_, i) => `item-${i}`);
    const catalogue = new Catalogue(a.service, new Map(ids.map((id, i) => [id, 10 + i])));
    for (const id of ids) await catalogue.getPrice(id);
    // A foreign value of another type under one entry's key: HGET on it fails with WRONGTYPE.
    await raw.set(a.backend.entryKey(priceKey('item-3')), 'not a hash');

    // More batches than the circuit's failure threshold (3): a foreign key must not open it, nor keep failing.
    const ROUNDS = 5;
    for (let round = 1; round <= ROUNDS; round++) {
      const prices = await Promise.all(ids.map(id => catalogue.getPrice(id)));
      expect(prices).toEqual(ids.map((_, i) => 10 + i));
      expect(catalogue.runs).toBe(11); // item-3 ran again once: its entry was rebuilt
      expect(a.backend.circuitState).toBe('closed');
    }
    expect(await raw.type(a.backend.entryKey(priceKey('item-3')))).toBe('hash');
    expect(a.events.hits).toHaveLength(ROUNDS * 10 - 1);
    expect(a.events.errors.filter(e => e.operation === 'get')).toEqual([]);
    const repaired = a.events.errors.filter(e => e.operation === 'decode');
    expect(repaired).toHaveLength(1);
    expect(messageOf(repaired[0]!.error)).toContain('holds a value of another type');
  });

  it('does not send a batch once the circuit has opened after its lookups were queued: they fail at once without reaching Redis', async () => {
    const client = standaloneClient();
    const a = startProcess(client, uniquePrefix('batch-open'), { circuitBreaker: { failureThreshold: 1, resetTimeoutMs: 60_000 } });
    const catalogue = new Catalogue(a.service, new Map([['corn', 3]]));
    expect(await catalogue.getPrice('corn')).toBe(3);
    const scripts = client as unknown as Record<string, unknown>;
    const invalidateScript = scripts.aspectCacheInvalidate;
    scripts.aspectCacheInvalidate = () => Promise.reject(new Error('injected invalidation failure'));
    await resetCommandStats(raw);
    try {
      const lookup = a.backend.get(priceKey('corn')); // queued for this tick's batch while the circuit is closed
      const invalidation = a.backend.invalidate(['Price:other']); // fails before the batch is sent: opens the circuit (threshold 1)
      await expect(lookup).rejects.toThrow(/circuit is open/);
      expect(await invalidation).toEqual({ removed: [], pending: true });
    } finally {
      scripts.aspectCacheInvalidate = invalidateScript;
    }
    expect(a.backend.circuitState).toBe('open');
    expect((await commandCalls(raw)).get('hget')).toBeUndefined();
  });

  it('turns a client that throws while a batch is sent into failed lookups (the methods run), never an uncaught exception', async () => {
    const client = standaloneClient();
    const a = startProcess(client, uniquePrefix('batch-throw'));
    const ids = ['a', 'b', 'c'];
    const catalogue = new Catalogue(a.service, new Map(ids.map((id, i) => [id, i + 1])));
    for (const id of ids) await catalogue.getPrice(id);
    // A standalone batch is one call of the LOOKUP script (see ReadBatcher).
    const scripts = client as unknown as { aspectCacheLookup: unknown };
    const lookup = scripts.aspectCacheLookup;
    scripts.aspectCacheLookup = () => {
      throw new Error('pipeline unavailable');
    };
    try {
      expect(await Promise.all(ids.map(id => catalogue.getPrice(id)))).toEqual([1, 2, 3]);
    } finally {
      scripts.aspectCacheLookup = lookup;
    }
    expect(catalogue.runs).toBe(6);
    const lookupErrors = a.events.errors.filter(e => e.operation === 'get');
    expect(lookupErrors.map(e => e.key).sort()).toEqual(ids.map(priceKey));
    expect(lookupErrors.every(e => /pipeline unavailable/.test(messageOf(e.error)))).toBe(true);
    expect(await catalogue.getPrice('a')).toBe(1); // the entries were never touched: a hit again
    expect(catalogue.runs).toBe(6);
  });

  it('round-trips Date, Map, Set, BigInt and undefined (top-level and nested) through Redis', async () => {
    const prefix = uniquePrefix('values');
    const a = startProcess(standaloneClient(), prefix);
    const b = startProcess(standaloneClient(), prefix);
    const products = new Map<string, Product>();
    const shopA = new Shop(a.service, products);
    const shopB = new Shop(b.service, products);

    expect(await shopA.rich()).toStrictEqual(richValue());
    expect(await shopA.nothing()).toBeUndefined();

    // B never computed them: what it gets was decoded from Redis.
    const fromRedis = (await shopB.rich()) as ReturnType<typeof richValue>;
    expect(fromRedis).toStrictEqual(richValue());
    expect(fromRedis.at).toBeInstanceOf(Date);
    expect(fromRedis.byName).toBeInstanceOf(Map);
    expect(fromRedis.tags).toBeInstanceOf(Set);
    expect(typeof fromRedis.big).toBe('bigint');
    expect('missing' in fromRedis).toBe(true);
    expect(fromRedis.nested.deeper.list[0]).toBeUndefined();
    expect(fromRedis.nested.deeper.list[2]).toBeInstanceOf(Date);
    expect(await shopB.nothing()).toBeUndefined();
    expect(shopB.runs).toEqual({});
    expect(b.events.hits).toHaveLength(2);
  });

  it('round-trips a registered class with its prototype: a cached Product still works as a dependency after a Redis hit', async () => {
    const prefix = uniquePrefix('product');
    const a = startProcess(standaloneClient(), prefix);
    const b = startProcess(standaloneClient(), prefix);
    const products = new Map([
      ['corn', new Product('corn', 3, new Date('2024-01-01T00:00:00Z'))],
      ['wheat', new Product('wheat', 5, new Date('2024-01-02T00:00:00Z'))],
    ]);
    const shopA = new Shop(a.service, products);
    const shopB = new Shop(b.service, products);
    await shopA.getProduct('corn');
    await shopA.getProduct('wheat');
    await shopA.listing();

    const corn = await shopB.getProduct('corn'); // a Redis hit: B never ran getProduct
    expect(shopB.runs).toEqual({});
    expect(corn).toBeInstanceOf(Product);
    expect(corn).not.toBe(products.get('corn'));
    expect(corn.label()).toBe('corn at 3');
    expect(corn.updatedAt).toBeInstanceOf(Date);
    expect(corn.getCacheKey()).toBe('Product:corn');

    // Invalidating the decoded product removes its entry and, through its cascade, the listing; not wheat.
    await b.service.invalidate(corn);
    expect(b.events.invalidations[0]?.entries.slice().sort()).toEqual(['Shop.getProduct("corn")', 'Shop.listing()']);
    await shopA.getProduct('corn');
    await shopA.listing();
    await shopA.getProduct('wheat');
    expect(shopA.runs).toEqual({ 'getProduct:corn': 2, 'getProduct:wheat': 1, listing: 2 });
  });

  it('returns a value over maxPayloadBytes without storing it (skip: too-large), and one holding a function (skip: not-serializable)', async () => {
    const prefix = uniquePrefix('payload');
    const a = startProcess(standaloneClient(), prefix, { maxPayloadBytes: 1_024 });
    const awkward = new Awkward(a.service);

    expect(await awkward.big()).toBe('x'.repeat(5_000));
    expect(await awkward.big()).toHaveLength(5_000);
    expect(awkward.runs).toBe(2);

    const withFunction = await awkward.withFunction();
    expect(withFunction.format()).toBe('corn!');
    expect(awkward.runs).toBe(3);

    expect(a.events.skips).toEqual([
      { key: 'Awkward.big()', reason: 'too-large' },
      { key: 'Awkward.big()', reason: 'too-large' },
      { key: 'Awkward.withFunction()', reason: 'not-serializable', detail: 'a function (format) at .format cannot be serialized faithfully' },
    ]);
    expect(a.events.sets).toEqual([]);
    expect((await entriesAndIndexes(raw, prefix)).v).toEqual([]);
    expect(a.events.errors).toEqual([]);
  });

  it('treats a corrupt payload as a miss: the method runs and the value is stored again', async () => {
    const prefix = uniquePrefix('corrupt');
    const a = startProcess(standaloneClient(), prefix);
    const catalogue = new Catalogue(a.service, new Map([['corn', 4]]));
    await catalogue.getPrice('corn');
    expect(a.events.sets.map(s => s.key)).toEqual([priceKey('corn')]);
    const entryKey = a.backend.entryKey(priceKey('corn'));
    // 'h' holds what a hit reads: a header (expiry cap|sliding|fail-safe|async|dependencies) and the payload.
    expect(await raw.hget(entryKey, 'h')).not.toBeNull();

    await raw.hset(entryKey, 'h', '0|0|0|1|["Price:corn"]\n{"json":{"v":oops');
    expect(await catalogue.getPrice('corn')).toBe(4);
    expect(catalogue.runs).toBe(2);
    expect(a.events.errors.map(e => e.operation)).toEqual(['decode']);
    expect(a.events.sets).toHaveLength(2);

    expect(await catalogue.getPrice('corn')).toBe(4); // the fresh entry decodes
    expect(catalogue.runs).toBe(2);
    expect(a.events.errors).toHaveLength(1);
  });

  it('ignores keys of another schema version or layout under the same prefix, and never touches them', async () => {
    const prefix = uniquePrefix('foreign');
    const key = priceKey('corn');
    const foreign = {
      [`${prefix}ac1:{p0}:v:${key}`]: 'older schema',
      [`${prefix}ac3:{p0}:v:${key}`]: 'newer schema',
      [`${prefix}${key}`]: 'no schema at all',
      [`${prefix}ac2:{p0}:i-legacy:Price:corn`]: 'unknown kind',
    };
    for (const [k, d] of Object.entries(foreign)) await raw.hset(k, 'd', d, 'p', '["Price:corn"]', 'e', '0');

    const a = startProcess(standaloneClient(), prefix);
    const catalogue = new Catalogue(a.service, new Map([['corn', 6]]));
    expect(await catalogue.getPrice('corn')).toBe(6);
    expect(await catalogue.getPrice('corn')).toBe(6);
    expect(catalogue.runs).toBe(1);
    await a.service.invalidate('Price:corn');
    expect(a.events.invalidations[0]?.entries).toEqual([key]);
    await a.backend.clear();

    for (const [k, d] of Object.entries(foreign)) expect(await raw.hget(k, 'd'), k).toBe(d);
    expect(a.events.errors).toEqual([]);
  });

  it('puts the prefix and the schema version in every key: <prefix>ac2:{p0}:<kind>:<key>', async () => {
    const prefix = uniquePrefix('layout');
    const a = startProcess(standaloneClient(), prefix);
    const catalogue = new Catalogue(a.service, new Map([['corn', 1]]));
    await catalogue.getPrice('corn');
    expect(a.backend.entryKey(priceKey('corn'))).toBe(`${prefix}ac2:{p0}:v:${priceKey('corn')}`);
    expect((await scanKeys(raw, prefix)).sort()).toEqual([`${prefix}ac2:{p0}:i:Price:corn`, `${prefix}ac2:{p0}:v:${priceKey('corn')}`]);
  });

  it('keeps backends with different key prefixes on one server apart', async () => {
    const shared = standaloneClient(); // even on one connection
    const one = startProcess(shared, uniquePrefix('tenant-one'));
    const two = startProcess(shared, uniquePrefix('tenant-two'));
    const catalogueOne = new Catalogue(one.service, new Map([['corn', 1]]));
    const catalogueTwo = new Catalogue(two.service, new Map([['corn', 2]]));

    expect(await catalogueOne.getPrice('corn')).toBe(1);
    expect(await catalogueTwo.getPrice('corn')).toBe(2);
    expect(await catalogueOne.getPrice('corn')).toBe(1);
    expect(await catalogueTwo.getPrice('corn')).toBe(2);
    expect([catalogueOne.runs, catalogueTwo.runs]).toEqual([1, 1]);

    await one.service.invalidate('Price:corn');
    expect(await catalogueTwo.getPrice('corn')).toBe(2);
    expect(catalogueTwo.runs).toBe(1);
    expect(await catalogueOne.getPrice('corn')).toBe(1);
    expect(catalogueOne.runs).toBe(2);
  });

  it('shares entries between two services on separate connections with the same prefix, like two processes', async () => {
    const prefix = uniquePrefix('shared');
    const a = startProcess(standaloneClient(), prefix);
    const b = startProcess(standaloneClient(), prefix);
    const db = new Map([['corn', 1]]);
    const catalogueA = new Catalogue(a.service, db);
    const catalogueB = new Catalogue(b.service, db);

    expect(await catalogueA.getPrice('corn')).toBe(1);
    expect(await catalogueB.getPrice('corn')).toBe(1);
    expect([catalogueA.runs, catalogueB.runs]).toEqual([1, 0]);

    db.set('corn', 2);
    await b.service.invalidate('Price:corn');
    expect(await catalogueA.getPrice('corn')).toBe(2);
    expect(await catalogueB.getPrice('corn')).toBe(2);
    expect([catalogueA.runs, catalogueB.runs]).toEqual([2, 0]);
  });

  it('does not store a result whose dependency another process invalidated during the computation', async () => {
    await expectNoStaleWriteAcrossProcesses(() => standaloneClient(), 'standalone-dependency', b => b.service.invalidate('Price:corn'));
  });

  it('does not store a result whose own entry another process invalidated (invalidateCall) during the computation', async () => {
    await expectNoStaleWriteAcrossProcesses(() => standaloneClient(), 'standalone-call', (b, catalogueB) => b.service.invalidateCall(() => catalogueB.getPrice('corn')));
  });

  it('removes 10,000 dependents of one dependency in one invalidation', { timeout: 60_000 }, async () => {
    const prefix = uniquePrefix('fan-out');
    const a = startProcess(standaloneClient(), prefix);
    const feed = new Feed(a.service);
    const count = 10_000;
    for (let i = 0; i < count; i += 1_000) await Promise.all(Array.from({ length: 1_000 }, (_, j) => feed.hot(i + j)));
    expect(a.events.sets).toHaveLength(count);
    expect((await entriesAndIndexes(raw, prefix)).v).toHaveLength(count);

    const startedAt = performance.now();
    await a.service.invalidate('Hot');
    const elapsed = performance.now() - startedAt;
    console.log(`[redis-backend] invalidating 1 dependency with ${count} dependents (standalone): ${elapsed.toFixed(1)} ms`);

    expect(a.events.invalidations).toHaveLength(1);
    expect(a.events.invalidations[0]!.entries).toHaveLength(count);
    expect(await entriesAndIndexes(raw, prefix)).toEqual({ v: [], i: [] });
    expect(elapsed).toBeLessThan(2_000); // a sanity bound only
    expect(a.events.errors).toEqual([]);
  });

  it('leaves no entry and no index key once 100,000 entries sharing a few dependencies have expired', { timeout: 90_000 }, async () => {
    const prefix = uniquePrefix('hygiene');
    const a = startProcess(standaloneClient(), prefix);
    const feed = new Feed(a.service);
    const count = 100_000;
    const BATCH = 1_000;
    const startedAt = performance.now();
    for (let i = 0; i < count; i += BATCH) await Promise.all(Array.from({ length: BATCH }, (_, j) => feed.item(i + j)));
    const lastStoredAt = Date.now();
    const storing = performance.now() - startedAt;
    expect(a.events.sets).toHaveLength(count);
    expect(a.events.errors).toEqual([]);
    // An invalidation while entries are live leaves markers and a generation behind: they must expire too.
    await a.service.invalidate('Rare');
    expect(a.events.invalidations[0]?.entries.length ?? 0).toBeLessThanOrEqual(10);

    await sleep(Math.max(0, lastStoredAt + 1_500 + 1_000 - Date.now())); // the last entry's TTL, and a margin
    const left = await keysByKind(raw, prefix);
    const total = Object.values(left).reduce((n, keys) => n + keys.length, 0);
    console.log(
      `[redis-backend] hygiene: stored ${count} entries in ${(storing / 1000).toFixed(1)} s; ${total} keys left after expiry ` +
        `(v ${left.v.length}, i ${left.i.length}, g ${left.g.length}, s ${left.s.length}, c ${left.c.length}, l ${left.l.length}, other ${left.other.length})`,
    );
    expect(left.v).toEqual([]);
    expect(left.i).toEqual([]);
    expect(left.l).toEqual([]);
    expect(left.other).toEqual([]);
    for (const key of [...left.g, ...left.s, ...left.c]) expect(await raw.pttl(key), key).toBeGreaterThan(0);
    expect(await countKeys(raw, prefix)).toBe(total);
  });

  it('does not leave an index without expiry behind when an entry without expiry leaves it', async () => {
    const prefix = uniquePrefix('index-expiry');
    const a = startProcess(standaloneClient(), prefix);
    const backend = a.backend;
    const store = async (key: string, dependencies: string[], ttl: number | undefined) => {
      const token = await backend.begin(key);
      const expiresAt = ttl === undefined ? Infinity : backend.clock.now() + ttl;
      expect(await backend.set(key, { value: key, async: true, dependencies, expiresAt, sliding: 0 }, token)).toBe('stored');
    };
    await store('forever', ['Shared', 'Own'], undefined); // the index of Shared loses its expiry (PERSIST)
    await store('short', ['Shared'], 300);
    await backend.invalidate(['Own']); // removes 'forever'
    await sleep(600); // 'short' has expired: nothing is left in the index of Shared
    const left = await keysByKind(raw, prefix);
    expect(left.v).toEqual([]);
    expect(left.i).toEqual([]);
  });

  it('extends a sliding entry on every hit, and lets it expire when it is not read', async () => {
    const prefix = uniquePrefix('sliding');
    const a = startProcess(standaloneClient(), prefix);
    const clocked = new Clocked(a.service);
    await clocked.sliding('x');
    const entryKey = a.backend.entryKey('Clocked.sliding("x")');
    for (let i = 0; i < 5; i++) {
      await sleep(200); // well within the 400 ms window, 1 s in all: past the first window
      expect(await clocked.sliding('x')).toBe('sliding x');
      // The hit pushed the entry's expiry in Redis back to about 400 ms from now (the extension may land just
      // after the hit has answered).
      await waitUntil(async () => (await raw.pttl(entryKey)) > 300, 150, () => 'the hit did not extend the entry');
      expect(await raw.pttl(entryKey)).toBeLessThanOrEqual(400);
    }
    expect(clocked.runs['sliding:x']).toBe(1);
    await sleep(600);
    expect(await raw.exists(entryKey)).toBe(0);
    await clocked.sliding('x');
    expect(clocked.runs['sliding:x']).toBe(2);
  });

  it('caps a sliding entry by its absolute ttl', async () => {
    const prefix = uniquePrefix('sliding-cap');
    const a = startProcess(standaloneClient(), prefix);
    const clocked = new Clocked(a.service);
    const startedAt = Date.now();
    await clocked.cappedSliding('x');
    while (Date.now() - startedAt < 600) {
      await sleep(150);
      await clocked.cappedSliding('x');
    }
    expect(clocked.runs['cappedSliding:x']).toBe(1);
    await sleep(Math.max(0, startedAt + 900 + 100 - Date.now())); // past the 900 ms cap, within 400 ms of the last hit
    await clocked.cappedSliding('x');
    expect(clocked.runs['cappedSliding:x']).toBe(2);
  });

  it("caps a parent's expiry in Redis by its child's remaining time to live, on a miss and on a hit of the child", async () => {
    const prefix = uniquePrefix('parent-expiry');
    const a = startProcess(standaloneClient(), prefix);
    const clocked = new Clocked(a.service);
    await clocked.parent('x'); // computes the child (800 ms) too
    const parentTtl = await raw.pttl(a.backend.entryKey('Clocked.parent("x")'));
    expect(parentTtl).toBeGreaterThan(0);
    expect(parentTtl).toBeLessThanOrEqual(800);

    await sleep(400);
    await clocked.otherParent('x'); // the child is a hit, about 400 ms from expiry
    expect(clocked.runs['child:x']).toBe(1);
    const [otherTtl, childTtl] = await Promise.all([
      raw.pttl(a.backend.entryKey('Clocked.otherParent("x")')),
      raw.pttl(a.backend.entryKey('Clocked.child("x")')),
    ]);
    expect(otherTtl).toBeGreaterThan(0);
    expect(childTtl).toBeLessThanOrEqual(400);
    // The parent expires with the child (a few ms of slack: the backend expresses the child's expiry on the
    // local clock and the parent's back on Redis' clock).
    expect(otherTtl).toBeLessThanOrEqual(childTtl + 5);

    await sleep(500); // the child, and with it both parents, have expired
    await clocked.parent('x');
    await clocked.otherParent('x');
    expect(clocked.runs).toEqual({ 'parent:x': 2, 'otherParent:x': 2, 'child:x': 2 });
  });

  it('serves an expired value from Redis (fail-safe) when recomputing it throws', async () => {
    const prefix = uniquePrefix('fail-safe');
    const a = startProcess(standaloneClient(), prefix);
    const b = startProcess(standaloneClient(), prefix);
    const source = { value: 'v1' };
    const quotesA = new Quotes(a.service, source);
    const quotesB = new Quotes(b.service, source);
    expect(await quotesA.quote('corn')).toBe('v1 corn');
    await sleep(450); // past the 300 ms ttl, well within maxStaleness
    expect(await raw.exists(a.backend.entryKey('Quotes.quote("corn")'))).toBe(1); // kept for fail-safe

    // B never computed it: the expired value it serves comes from Redis.
    quotesB.failing = true;
    source.value = 'v2';
    expect(await quotesB.quote('corn')).toBe('v1 corn');
    expect(quotesB.runs).toBe(1);
    expect(b.events.failsafes).toHaveLength(1);
    expect(messageOf(b.events.failsafes[0]!.error)).toMatch(/quote service is down/);
    expect(b.events.hits).toEqual([]);

    // Once recomputing succeeds, the fresh value replaces it.
    quotesB.failing = false;
    expect(await quotesB.quote('corn')).toBe('v2 corn');
    expect(await quotesA.quote('corn')).toBe('v2 corn');
    expect(quotesA.runs).toBe(1);
  });

  it('runs a method once across two processes with the distributed lock, and all callers get its value', async () => {
    const prefix = uniquePrefix('lock');
    const lock = { leaseMs: 3_000, pollMs: 20 };
    const a = startProcess(standaloneClient(), prefix, { lock });
    const b = startProcess(standaloneClient(), prefix, { lock });
    const db = new Map([['corn', 7]]);
    const counter = { runs: 0 };
    const catalogueA = new Catalogue(a.service, db, counter);
    const catalogueB = new Catalogue(b.service, db, counter);
    const gate = deferred();
    catalogueA.gate = gate;
    catalogueB.gate = gate;

    const calls = Array.from({ length: 10 }, (_, i) => (i % 2 === 0 ? catalogueA : catalogueB).getPrice('corn'));
    await Promise.race([catalogueA.started.promise, catalogueB.started.promise]);
    await sleep(150); // real time: the waiters poll Redis every pollMs meanwhile
    expect(counter.runs).toBe(1);
    expect((await keysByKind(raw, prefix)).l).toHaveLength(1);
    gate.resolve();

    expect(await Promise.all(calls)).toEqual(Array(10).fill(7));
    expect(counter.runs).toBe(1);
    await waitUntil(async () => (await keysByKind(raw, prefix)).l.length === 0, 2_000, () => 'a lease is still held');
    expect([...a.events.errors, ...b.events.errors]).toEqual([]);
  });

  it('a waiter that looked just before the lease holder stored reads the value instead of taking the freed lease', async () => {
    // The window: the waiter's read finds nothing, then the holder stores and releases its lease, then the
    // waiter asks for the lease. The freed lease must not be taken to compute the value a second time.
    const prefix = uniquePrefix('lock-window');
    const lock = { leaseMs: 3_000, pollMs: 20 };
    const counter = { runs: 0 };
    const db = new Map([['corn', 9]]);
    const holder = startProcess(standaloneClient(), prefix, { lock });
    expect(await new Catalogue(holder.service, db, counter).getPrice('corn')).toBe(9);
    expect((await keysByKind(raw, prefix)).l).toHaveLength(0);

    const waiterClient = standaloneClient();
    const waiter = startProcess(waiterClient, prefix, { lock });
    // The waiter's lookup (the LOOKUP script: generation, time, the entry's field) is answered as if the entry
    // were not there yet.
    const scripts = waiterClient as unknown as { aspectCacheLookup: (...args: unknown[]) => Promise<unknown[]> };
    const lookup = scripts.aspectCacheLookup.bind(waiterClient);
    let lookups = 0;
    scripts.aspectCacheLookup = async (...args: unknown[]) => {
      const replies = await lookup(...args);
      if (++lookups === 1) replies[2] = null;
      return replies;
    };
    const hget = waiterClient.hget.bind(waiterClient) as (...args: unknown[]) => Promise<string | null>;
    let reads = 0;
    (waiterClient as unknown as { hget: (...args: unknown[]) => Promise<string | null> }).hget = (...args: unknown[]) => {
      reads++;
      return hget(...args);
    };
    expect(await new Catalogue(waiter.service, db, counter).getPrice('corn')).toBe(9);
    expect(counter.runs).toBe(1);
    expect(lookups).toBe(1);
    expect(reads).toBe(1); // the value, read after BEGIN answered that it is stored
    expect(waiter.events.sets).toHaveLength(0);
    expect((await keysByKind(raw, prefix)).l).toHaveLength(0);
  });

  it('waits for a dead holder at most about its lease, then computes, and leaves no lease behind', async () => {
    const prefix = uniquePrefix('dead-holder');
    const a = startProcess(standaloneClient(), prefix, { lock: { leaseMs: 3_000, pollMs: 20 } });
    const catalogue = new Catalogue(a.service, new Map([['corn', 8]]));
    const leaseKey = `${prefix}ac2:{p0}:l:${priceKey('corn')}`;
    expect(a.backend.entryKey(priceKey('corn')).replace(':v:', ':l:')).toBe(leaseKey);
    expect(await raw.set(leaseKey, 'a process that died', 'PX', 500)).toBe('OK');

    const startedAt = performance.now();
    expect(await catalogue.getPrice('corn')).toBe(8);
    const waited = performance.now() - startedAt;
    expect(waited).toBeGreaterThanOrEqual(400);
    expect(waited).toBeLessThan(1_000);
    expect(catalogue.runs).toBe(1);
    expect(a.events.sets.map(s => s.key)).toEqual([priceKey('corn')]);
    await waitUntil(async () => (await keysByKind(raw, prefix)).l.length === 0, 2_000, () => 'a lease is still held');
  });
});

// ───────────────────────────── cluster ─────────────────────────────

describeRedis('RedisBackend on a Redis Cluster (16 partitions over 3 masters)', () => {
  let raw: Cluster;

  beforeEach(async () => {
    raw = clusterClient();
    await ready(raw);
  });

  afterEach(cleanUp);

  /** The master (host:port) that serves a partition's hash tag. */
  async function masterOf(redisKey: string): Promise<string> {
    const slot = Number(await raw.cluster('KEYSLOT', redisKey));
    const owner = raw.slots[slot]?.[0];
    if (owner === undefined) throw new Error(`no master for slot ${slot}`);
    return owner;
  }

  it('serves a hit in exactly one round trip: one command reaches the masters per hit, nothing else', async () => {
    const client = clusterClient();
    await ready(client);
    await expectOneRoundTripPerHit(client, raw, 'cluster');
  });

  it('serves a miss in two round trips on the cluster: the lookup brings the token, then the store', async () => {
    await expectTwoRoundTripsPerMiss(clusterClient(), raw, 'cluster');
  });

  it('sends the lookups of one tick together, one pipeline per partition, never CROSSSLOT: each caller gets its own value', async () => {
    const client = clusterClient();
    await ready(client);
    // 200 lookups over 16 partitions: one write per partition, so at most 16 writes and about 16 reads (2 per partition allowed).
    await expectConcurrentHitsWrittenTogether(client, raw, 'cluster', 200, { maxWrites: 16, maxReads: 32 });
  });

  it('serves every hit of a batch while its slot is being migrated: lookups redirected (ASK) and lookups not yet moved both hit', { timeout: 30_000 }, async () => {
    const client = clusterClient();
    await ready(client);
    const prefix = uniquePrefix('cluster-migrating');
    const a = startProcess(client, prefix);
    // Eight prices whose entries share one partition, so one batch (one pipeline) carries all their lookups.
    const ids: string[] = [];
    for (let i = 0; ids.length < 8; i++) if (partitionOf(a.backend.entryKey(priceKey(`item-${i}`))) === 0) ids.push(`item-${i}`);
    const catalogue = new Catalogue(a.service, new Map(ids.map((id, i) => [id, 100 + i])));
    for (const id of ids) await catalogue.getPrice(id);
    expect(catalogue.runs).toBe(8);

    const entryKeys = ids.map(id => a.backend.entryKey(priceKey(id)));
    const slot = Number(await raw.cluster('KEYSLOT', entryKeys[0]!));
    const masters = raw.nodes('master');
    const nodeKey = (node: Redis) => `${node.options.host}:${node.options.port}`;
    const source = masters.find(node => nodeKey(node) === raw.slots[slot]?.[0]);
    const target = masters.find(node => node !== source);
    if (source === undefined || target === undefined) throw new Error(`no source or target master for slot ${slot}`);
    const [sourceId, targetId] = (await Promise.all([source.cluster('MYID'), target.cluster('MYID')])) as [string, string];
    const moved = entryKeys.slice(0, 4);
    // Half-way through a migration: the target imports the slot, the source migrates it, four entries have moved.
    await target.cluster('SETSLOT', slot, 'IMPORTING', sourceId);
    await source.cluster('SETSLOT', slot, 'MIGRATING', targetId);
    try {
      expect(await source.call('MIGRATE', String(target.options.host), String(target.options.port), '', '0', '5000', 'KEYS', ...moved)).toBe('OK');
      await expect(source.hget(moved[0]!, 'h')).rejects.toThrow(/^ASK /); // the source now sends readers of a moved entry to the target

      for (let round = 0; round < 3; round++) {
        expect(await Promise.all(ids.map(id => catalogue.getPrice(id)))).toEqual(ids.map((_, i) => 100 + i));
      }
      expect(catalogue.runs).toBe(8); // no false miss: every lookup found its entry, wherever it was
      expect(a.events.hits).toHaveLength(24);
      expect(a.events.errors).toEqual([]);
    } finally {
      // Back to where the cluster was: the moved entries return to the source, and the slot is stable again.
      // (ASKING lets the importing node act on keys of the slot for the next command; NOKEY if none is there.)
      await target.pipeline().call('ASKING').call('MIGRATE', String(source.options.host), String(source.options.port), '', '0', '5000', 'KEYS', ...moved).exec();
      await source.cluster('SETSLOT', slot, 'STABLE');
      await target.cluster('SETSLOT', slot, 'STABLE');
    }
  });

  it('does not store a result whose dependency another process invalidated during the computation', async () => {
    await expectNoStaleWriteAcrossProcesses(() => clusterClient(), 'cluster-dependency', b => b.service.invalidate('Price:corn'));
  });

  it('does not store a result whose own entry another process invalidated (invalidateCall) during the computation', async () => {
    await expectNoStaleWriteAcrossProcesses(() => clusterClient(), 'cluster-call', (b, catalogueB) => b.service.invalidateCall(() => catalogueB.getPrice('corn')));
  });

  it('stores entries with dependencies on other keys, invalidates across partitions and clears, without CROSSSLOT', async () => {
    const prefix = uniquePrefix('cluster-orders');
    const a = startProcess(raw, prefix);
    const orders = new Orders(a.service);
    const ORDERS = 40;
    for (let id = 0; id < ORDERS; id++) await orders.order(id);
    expect(a.events.sets).toHaveLength(ORDERS * 6);

    const { v, i } = await entriesAndIndexes(raw, prefix);
    expect(v).toHaveLength(ORDERS * 6);
    const partitions = new Set(v.map(partitionOf));
    expect(partitions.size).toBe(16);
    expect(new Set(await Promise.all([...partitions].map(p => masterOf(`${prefix}ac2:{p${p}}:s`))))).toHaveProperty('size', 3);
    expect(i.length).toBeGreaterThan(0);

    // Every order is a hit now; invalidating product 3 removes its lines and the orders holding them.
    for (let id = 0; id < ORDERS; id++) await orders.order(id);
    expect(Object.values(orders.runs).every(n => n === 1)).toBe(true);
    await a.service.invalidate('Product:3');
    const lines = Array.from({ length: ORDERS * 5 }, (_, n) => n).filter(n => n % 7 === 3);
    const expected = [...lines.map(n => `Orders.line(${n})`), ...[...new Set(lines.map(n => Math.floor(n / 5)))].map(id => `Orders.order(${id})`)];
    expect(a.events.invalidations[0]?.entries.slice().sort()).toEqual(expected.sort());
    for (let id = 0; id < ORDERS; id++) await orders.order(id);
    for (let id = 0; id < ORDERS; id++) {
      const affected = [0, 1, 2, 3, 4].some(n => (id * 5 + n) % 7 === 3);
      expect(orders.runs[`order:${id}`], `order ${id}`).toBe(affected ? 2 : 1);
    }

    await a.backend.clear();
    expect(await entriesAndIndexes(raw, prefix)).toEqual({ v: [], i: [] });
    await orders.order(0);
    expect(orders.runs['order:0']).toBe(3);
    expect(a.events.errors).toEqual([]);
  });

  it('removes a chain of entries in different partitions (A on B, B on C, C on D) by invalidating D, in one round of every partition', async () => {
    const prefix = uniquePrefix('cluster-chain');
    const a = startProcess(raw, prefix);
    const backend = a.backend;
    // Pick keys whose partitions differ and whose masters differ, so each link crosses partitions and nodes.
    let keys: [string, string, string] | undefined;
    for (let n = 0; n < 200 && keys === undefined; n++) {
      const candidate: [string, string, string] = [`A:${n}`, `B:${n}`, `C:${n}`];
      const entryKeys = candidate.map(k => backend.entryKey(k));
      if (new Set(entryKeys.map(partitionOf)).size < 3) continue;
      if (new Set(await Promise.all(entryKeys.map(masterOf))).size < 3) continue;
      keys = candidate;
    }
    if (keys === undefined) throw new Error('no chain of keys across 3 partitions on 3 masters');
    const [keyA, keyB, keyC] = keys;
    const store = async (key: string, dependencies: string[]) => {
      const lookup = await backend.get(key);
      expect(lookup.hit).toBe(false);
      if (lookup.hit) return;
      expect(await backend.set(key, { value: key, async: true, dependencies, expiresAt: Infinity, sliding: 0 }, lookup.token)).toBe('stored');
    };
    // Closed dependency lists, as the service stores them: a caller names its child and what the child depends on.
    await store(keyC, ['D']);
    await store(keyB, [keyC, 'D']);
    await store(keyA, [keyB, keyC, 'D']);
    await store('bystander', ['E']);

    const { removed } = await backend.invalidate(['D']);
    expect([...removed].sort()).toEqual([keyA, keyB, keyC]);
    for (const key of keys) expect((await backend.get(key)).hit, key).toBe(false);
    expect((await backend.get('bystander')).hit).toBe(true);
    expect(a.events.errors).toEqual([]);
  });

  it('removes a chain of cached calls across partitions through the service', async () => {
    const prefix = uniquePrefix('cluster-service-chain');
    const a = startProcess(raw, prefix);
    const chain = new Chain(a.service);
    expect(await chain.a('x')).toBe('a(b(c(x)))');
    expect(await chain.a('x')).toBe('a(b(c(x)))');
    expect(chain.runs).toBe(3);
    const entryKeys = ['Chain.a("x")', 'Chain.b("x")', 'Chain.c("x")'];
    expect(a.events.sets.map(s => s.key).sort()).toEqual(entryKeys.slice().sort());
    const partitions = entryKeys.map(k => partitionOf(a.backend.entryKey(k)));
    console.log(`[redis-backend] cluster chain partitions: ${partitions.join(', ')}`);

    await a.service.invalidate('D:x');
    expect(a.events.invalidations[0]?.entries.slice().sort()).toEqual(entryKeys.slice().sort());
    expect((await entriesAndIndexes(raw, prefix)).v).toEqual([]);
    expect(await chain.a('x')).toBe('a(b(c(x)))');
    expect(chain.runs).toBe(6);

    // Invalidating the middle link removes it and its parent, and keeps the child.
    await a.service.invalidateCall(() => chain.b('x'));
    expect(a.events.invalidations[1]?.entries.slice().sort()).toEqual(['Chain.a("x")', 'Chain.b("x")']);
    expect((await entriesAndIndexes(raw, prefix)).v.map(k => k.slice(k.indexOf(':v:') + 3))).toEqual(['Chain.c("x")']);
    expect(a.events.errors).toEqual([]);
  });

  it('removes 10,000 dependents spread over every partition in one invalidation', { timeout: 60_000 }, async () => {
    const prefix = uniquePrefix('cluster-fan-out');
    const a = startProcess(raw, prefix);
    const feed = new Feed(a.service);
    const count = 10_000;
    for (let i = 0; i < count; i += 1_000) await Promise.all(Array.from({ length: 1_000 }, (_, j) => feed.hot(i + j)));
    expect((await entriesAndIndexes(raw, prefix)).v).toHaveLength(count);

    const startedAt = performance.now();
    await a.service.invalidate('Hot');
    const elapsed = performance.now() - startedAt;
    console.log(`[redis-backend] invalidating 1 dependency with ${count} dependents (cluster, 16 partitions): ${elapsed.toFixed(1)} ms`);

    expect(a.events.errors.map(e => `${e.operation}: ${messageOf(e.error)}`)).toEqual([]);
    expect(a.events.invalidations[0]?.entries).toHaveLength(count);
    expect(await entriesAndIndexes(raw, prefix)).toEqual({ v: [], i: [] });
  });
});
