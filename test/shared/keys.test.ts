import { afterEach, describe, expect, it, vi } from 'vitest';
import { bindCachingService, Cache, CacheConfiguration, CacheKey, CachingError, CachingService, MemoryBackend, type CachingServiceOptions, type Logger } from 'aspect-cache';
import { failureOf } from '../support/failure-of.js';

// Cache keys as seen through decorated methods (SPEC §3): distinct argument tuples never share an entry, equal
// ones do; `this` contributes its key; ignored and AbortSignal arguments; custom keys; unkeyable arguments;
// long keys; scopes and scope collisions; key prefixes. Keys are observed through the 'miss' and 'set' events.
// Class names are unique per test: the scope-collision registry is process-wide.

const services: CachingService[] = [];

function quietLogger(): Logger {
  return { debug: vi.fn(), warn: vi.fn(), error: vi.fn() };
}

function makeService(options: CachingServiceOptions = {}): CachingService {
  const service = new CachingService({ logger: quietLogger(), ...options });
  services.push(service);
  return service;
}

afterEach(async () => {
  await Promise.all(services.splice(0).map(s => s.dispose()));
});

/** The keys of the misses and of the stored entries of a service, in order. */
function recordKeys(service: CachingService): { misses: string[]; sets: string[] } {
  const misses: string[] = [];
  const sets: string[] = [];
  service.on('miss', e => misses.push(e.key));
  service.on('set', e => sets.push(e.key));
  return { misses, sets };
}

/** Collects the process warnings emitted while `fn` runs (process warnings are emitted on the next tick). */
async function warningsDuring(fn: () => unknown): Promise<Array<Error & { code?: string }>> {
  const seen: Array<Error & { code?: string }> = [];
  const listener = (w: Error & { code?: string }) => seen.push(w);
  process.on('warning', listener);
  try {
    await fn();
    await new Promise(resolve => setImmediate(resolve));
    await new Promise(resolve => setImmediate(resolve));
  } finally {
    process.off('warning', listener);
  }
  return seen;
}

describe('argument tuples', () => {
  it('gives every distinct argument tuple its own entry, even when the values print alike', async () => {
    const service = makeService();
    const keys = recordKeys(service);
    let runs = 0;
    class TupleCatalogue {
      @Cache()
      async find(...args: unknown[]): Promise<number> {
        runs++;
        return args.length;
      }
    }
    const c = bindCachingService(new TupleCatalogue(), service);
    const tuples: unknown[][] = [
      [],
      [1],
      ['1'],
      [1n],
      [null],
      ['null'],
      ['undefined'],
      [0],
      [-0],
      [NaN],
      ['NaN'],
      [true],
      ['true'],
      ['a,b'],
      ['a', 'b'],
      [['a', 'b']],
      [['a,b']],
      ['a"', 'b'],
      ['a\\', '"b'],
      [{ a: 1 }],
      [{ a: '1' }],
      [new Map([['a', 1]])],
      [new Set(['a', 1])],
      [new Date(0)],
      [new Uint8Array([1, 2])],
      [[1, 2]],
      [undefined, 1],
      [1, null],
    ];
    for (const t of tuples) await c.find(...t);
    expect(runs).toBe(tuples.length);
    expect(new Set(keys.misses).size).toBe(tuples.length);
    expect(new Set(keys.sets).size).toBe(tuples.length);

    // Every tuple is now a hit: calling them all again runs nothing.
    for (const t of tuples) await c.find(...t);
    expect(runs).toBe(tuples.length);
  });

  it('shares one entry between equal arguments built in a different order', async () => {
    const service = makeService();
    const keys = recordKeys(service);
    let runs = 0;
    class OrderInsensitive {
      @Cache()
      async find(value: unknown): Promise<number> {
        runs++;
        return 1;
      }
    }
    const c = bindCachingService(new OrderInsensitive(), service);
    await c.find({ a: 1, b: { x: 1, y: 2 } });
    await c.find({ b: { y: 2, x: 1 }, a: 1 });
    await c.find(new Map<string, number>([['p', 1], ['q', 2]]));
    await c.find(new Map<string, number>([['q', 2], ['p', 1]]));
    await c.find(new Set([3, 1, 2]));
    await c.find(new Set([1, 2, 3]));
    await c.find(new Date(86_400_000));
    await c.find(new Date('1970-01-02T00:00:00Z'));
    expect(runs).toBe(4);
    expect(keys.misses).toHaveLength(4);
  });

  it('keys an argument object with @CacheKey properties by its class and those properties only', async () => {
    class OrderRef {
      @CacheKey() id: number;
      @CacheKey() tenant: string;
      note: string;
      constructor(id: number, tenant: string, note: string) {
        this.id = id;
        this.tenant = tenant;
        this.note = note;
      }
    }
    const service = makeService();
    const keys = recordKeys(service);
    let runs = 0;
    class OrderTotals {
      @Cache()
      total(order: OrderRef): number {
        runs++;
        return order.id * 10;
      }
    }
    const s = bindCachingService(new OrderTotals(), service);
    expect(s.total(new OrderRef(1, 'acme', 'first'))).toBe(10);
    expect(s.total(new OrderRef(1, 'acme', 'second'))).toBe(10);
    expect(runs).toBe(1);
    s.total(new OrderRef(2, 'acme', 'first'));
    s.total(new OrderRef(1, 'globex', 'first'));
    expect(runs).toBe(3);
    expect(new Set(keys.misses).size).toBe(3);
    expect(keys.misses[0]).toContain('OrderRef');
  });
});

describe('the instance (`this`) in keys', () => {
  it('keys an instance with @CacheKey properties by them: different keys do not share entries, equal keys do', async () => {
    const service = makeService();
    const keys = recordKeys(service);
    let runs = 0;
    class TenantRepository {
      @CacheKey() tenant: string;
      constructor(tenant: string) {
        this.tenant = tenant;
      }
      @Cache()
      async count(table: string): Promise<string> {
        runs++;
        return `${this.tenant}:${table}`;
      }
    }
    const a = bindCachingService(new TenantRepository('a'), service);
    const b = bindCachingService(new TenantRepository('b'), service);
    const a2 = bindCachingService(new TenantRepository('a'), service);
    expect(await a.count('users')).toBe('a:users');
    expect(await b.count('users')).toBe('b:users');
    expect(runs).toBe(2);
    expect(await a2.count('users')).toBe('a:users');
    expect(runs).toBe(2);
    expect(keys.misses).toHaveLength(2);
    expect(keys.misses[0]).not.toBe(keys.misses[1]);
  });

  it('keys an instance with a getCacheKey() method by that key', async () => {
    const service = makeService();
    const keys = recordKeys(service);
    let runs = 0;
    class AccountView {
      constructor(readonly id: string) {}
      getCacheKey(): string {
        return `Account:${this.id}`;
      }
      @Cache()
      balance(): number {
        runs++;
        return this.id.length;
      }
    }
    const x = bindCachingService(new AccountView('x'), service);
    const yy = bindCachingService(new AccountView('yy'), service);
    const x2 = bindCachingService(new AccountView('x'), service);
    expect(x.balance()).toBe(1);
    expect(yy.balance()).toBe(2);
    expect(x2.balance()).toBe(1);
    expect(runs).toBe(2);
    expect(keys.misses[0]).toContain('Account:x');
  });

  it('keys an instance whose getCacheKey is an instance field (arrow function) by that key too', () => {
    const service = makeService();
    let runs = 0;
    class SessionView {
      constructor(readonly user: string) {}
      getCacheKey = (): string => `Session:${this.user}`;
      @Cache()
      greeting(): string {
        runs++;
        return `hello ${this.user}`;
      }
    }
    const ann = bindCachingService(new SessionView('ann'), service);
    const bob = bindCachingService(new SessionView('bob'), service);
    expect(ann.greeting()).toBe('hello ann');
    expect(bob.greeting()).toBe('hello bob');
    expect(runs).toBe(2);
  });

  it('keys a subclass instance by its getCacheKey() when the cached method is declared on the base class', () => {
    const service = makeService();
    let runs = 0;
    class BaseReport {
      @Cache()
      title(): string {
        runs++;
        return `report ${(this as unknown as { getCacheKey(): string }).getCacheKey()}`;
      }
    }
    class RegionReport extends BaseReport {
      constructor(readonly region: string) {
        super();
      }
      getCacheKey(): string {
        return `Region:${this.region}`;
      }
    }
    const north = bindCachingService(new RegionReport('north'), service);
    const south = bindCachingService(new RegionReport('south'), service);
    expect(north.title()).toBe('report Region:north');
    expect(south.title()).toBe('report Region:south');
    expect(runs).toBe(2);
  });

  it('keys subclass instances by @CacheKey properties declared on the base class that declares the cached method', () => {
    const service = makeService();
    let runs = 0;
    class TenantScopedBase {
      @CacheKey() tenant: string;
      constructor(tenant: string) {
        this.tenant = tenant;
      }
      @Cache()
      settings(): string {
        runs++;
        return `settings of ${this.tenant}`;
      }
    }
    class TenantScopedChild extends TenantScopedBase {}
    // The first instance built is a subclass instance.
    const a = bindCachingService(new TenantScopedChild('a'), service);
    const b = bindCachingService(new TenantScopedChild('b'), service);
    expect(a.settings()).toBe('settings of a');
    expect(b.settings()).toBe('settings of b');
    expect(runs).toBe(2);
  });

  it('keys subclass instances by their own @CacheKey properties when the cached method is declared on the base class', () => {
    const service = makeService();
    let runs = 0;
    class GenericRepository {
      @Cache()
      describe(): string {
        runs++;
        return `repo ${(this as unknown as { region: string }).region}`;
      }
    }
    class RegionalRepository extends GenericRepository {
      @CacheKey() region: string;
      constructor(region: string) {
        super();
        this.region = region;
      }
    }
    const eu = bindCachingService(new RegionalRepository('eu'), service);
    const us = bindCachingService(new RegionalRepository('us'), service);
    expect(eu.describe()).toBe('repo eu');
    expect(us.describe()).toBe('repo us');
    expect(runs).toBe(2);
  });

  it('treats an instance without a key as a stateless service: instances share entries', () => {
    const service = makeService();
    let runs = 0;
    class StatelessPricing {
      readonly createdAt = Math.random();
      @Cache()
      price(item: string): number {
        runs++;
        return item.length;
      }
    }
    const p1 = bindCachingService(new StatelessPricing(), service);
    const p2 = bindCachingService(new StatelessPricing(), service);
    p1.price('corn');
    p2.price('corn');
    expect(runs).toBe(1);
  });

  it('leaves a keyed instance out of the key with ignoreThis: true, so instances share entries', () => {
    const service = makeService();
    const keys = recordKeys(service);
    let runs = 0;
    class SharedLookup {
      @CacheKey() tenant: string;
      constructor(tenant: string) {
        this.tenant = tenant;
      }
      @Cache({ ignoreThis: true })
      country(code: string): string {
        runs++;
        return code.toUpperCase();
      }
      @Cache()
      perTenant(code: string): string {
        runs++;
        return code;
      }
    }
    const a = bindCachingService(new SharedLookup('a'), service);
    const b = bindCachingService(new SharedLookup('b'), service);
    expect(a.country('fr')).toBe('FR');
    expect(b.country('fr')).toBe('FR');
    expect(runs).toBe(1);
    expect(keys.misses[0]).not.toContain('"a"');
    // The same class's other method, without ignoreThis, still keys by tenant.
    a.perTenant('fr');
    b.perTenant('fr');
    expect(runs).toBe(3);
  });
});

describe('ignored arguments', () => {
  it('ignoreArgs: [1] shares an entry between calls that differ only in argument 1, keeping a placeholder', () => {
    const service = makeService();
    const keys = recordKeys(service);
    let runs = 0;
    class TracedSearch {
      @Cache({ ignoreArgs: [1] })
      search(query: string, traceId: string, page: number): string {
        runs++;
        return `${query}#${page}`;
      }
    }
    const s = bindCachingService(new TracedSearch(), service);
    expect(s.search('corn', 'trace-1', 2)).toBe('corn#2');
    expect(s.search('corn', 'trace-2', 2)).toBe('corn#2');
    expect(runs).toBe(1);
    s.search('corn', 'trace-1', 3);
    s.search('wheat', 'trace-1', 2);
    expect(runs).toBe(3);
    // The ignored position keeps a placeholder: argument 2 is not shifted into position 1.
    expect(keys.misses[0]).toContain(',_,');
    expect(keys.misses[0]).not.toContain('trace');
  });

  it('accepts an unkeyable value in an ignored position', () => {
    const service = makeService();
    let runs = 0;
    class DbHandle {
      readonly pool = {};
    }
    class IgnoredHandle {
      @Cache({ ignoreArgs: [0] })
      load(db: DbHandle, id: number): number {
        runs++;
        return id;
      }
    }
    const s = bindCachingService(new IgnoredHandle(), service);
    expect(s.load(new DbHandle(), 7)).toBe(7);
    expect(s.load(new DbHandle(), 7)).toBe(7);
    expect(runs).toBe(1);
  });

  it('ignores AbortSignal arguments: calls with different signals, or none, share an entry', async () => {
    const service = makeService();
    const keys = recordKeys(service);
    let runs = 0;
    class Downloads {
      @Cache()
      async fetch(url: string, signal?: AbortSignal): Promise<string> {
        runs++;
        return url;
      }
      @Cache()
      async fetchFirst(signal: AbortSignal, url: string): Promise<string> {
        runs++;
        return url;
      }
    }
    const d = bindCachingService(new Downloads(), service);
    await d.fetch('/a', new AbortController().signal);
    await d.fetch('/a', new AbortController().signal);
    await d.fetch('/a');
    expect(runs).toBe(1);
    await d.fetchFirst(new AbortController().signal, '/a');
    await d.fetchFirst(AbortSignal.timeout(60_000), '/a');
    expect(runs).toBe(2);
    await d.fetch('/b', new AbortController().signal);
    expect(runs).toBe(3);
    expect(keys.misses).toHaveLength(3);
  });

  it('trims trailing undefined arguments: getX(1) and getX(1, undefined) share an entry (documented decision)', () => {
    const service = makeService();
    let runs = 0;
    class TrailingArgs {
      @Cache()
      getX(a?: number, b?: number): string {
        runs++;
        return `${a}/${b}`;
      }
    }
    const t = bindCachingService(new TrailingArgs(), service);
    t.getX(1);
    t.getX(1, undefined);
    expect(runs).toBe(1);
    t.getX();
    t.getX(undefined);
    t.getX(undefined, undefined);
    expect(runs).toBe(2);
    // Only trailing ones are trimmed: a leading undefined still counts.
    t.getX(undefined, 1);
    expect(runs).toBe(3);
    t.getX(1, 1);
    expect(runs).toBe(4);
  });
});

describe('custom key option', () => {
  it('uses the string returned by key instead of the arguments', () => {
    const service = makeService();
    const keys = recordKeys(service);
    let runs = 0;
    class Connection {
      readonly socket = {};
    }
    class CustomStringKey {
      @Cache({ key: (id: string) => `user:${id}` })
      user(id: string, conn: Connection): string {
        runs++;
        return id;
      }
    }
    const s = bindCachingService(new CustomStringKey(), service);
    s.user('u1', new Connection());
    s.user('u1', new Connection());
    expect(runs).toBe(1);
    s.user('u2', new Connection());
    expect(runs).toBe(2);
    expect(keys.misses[0]).toContain('user:u1');
  });

  it('encodes the array returned by key like an argument list', () => {
    const service = makeService();
    let runs = 0;
    class Query {
      constructor(
        readonly tenant: string,
        readonly id: number,
        readonly requestedAt: number,
      ) {}
    }
    class CustomArrayKey {
      @Cache({ key: (q: Query) => [q.tenant, q.id] })
      run(q: Query): number {
        runs++;
        return q.id;
      }
    }
    const s = bindCachingService(new CustomArrayKey(), service);
    s.run(new Query('acme', 1, 100));
    s.run(new Query('acme', 1, 200));
    expect(runs).toBe(1);
    s.run(new Query('acme', 2, 100));
    s.run(new Query('acme,2', 1, 100));
    s.run(new Query('acme', NaN, 100));
    expect(runs).toBe(4);
  });
});

describe('unkeyable arguments', () => {
  it('fails with E_UNKEYABLE naming the class, method and argument position, suggests ignoreArgs, and stores nothing', async () => {
    const service = makeService();
    const keys = recordKeys(service);
    let runs = 0;
    class PgConnection {
      query(): void {}
    }
    class AuditRepository {
      @Cache()
      async find(id: number, conn: PgConnection): Promise<number> {
        runs++;
        return id;
      }
    }
    const r = bindCachingService(new AuditRepository(), service);
    const error = await failureOf(() => r.find(1, new PgConnection()));
    expect(error).toBeInstanceOf(CachingError);
    expect(error).toMatchObject({ code: 'E_UNKEYABLE' });
    const message = (error as Error).message;
    expect(message).toContain('AuditRepository.find');
    expect(message).toContain('PgConnection');
    expect(message).toMatch(/argument 1\b/);
    expect(message).toContain('ignoreArgs: [1]');
    expect(runs).toBe(0);
    expect(keys.misses).toEqual([]);
    expect(keys.sets).toEqual([]);
    expect(service.stats().sets).toBe(0);
    // The method itself still works with keyable arguments.
    expect(await r.find(1, undefined as unknown as PgConnection)).toBe(1);
    expect(runs).toBe(1);
  });

  it('fails likewise for a function argument', () => {
    const service = makeService();
    const keys = recordKeys(service);
    let runs = 0;
    class CallbackRunner {
      @Cache()
      run(callback: () => number, label: string): number {
        runs++;
        return callback();
      }
    }
    const r = bindCachingService(new CallbackRunner(), service);
    let error: unknown;
    try {
      r.run(() => 1, 'x');
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(CachingError);
    expect(error).toMatchObject({ code: 'E_UNKEYABLE' });
    const message = (error as Error).message;
    expect(message).toContain('CallbackRunner.run');
    expect(message).toContain('function');
    expect(message).toMatch(/argument 0\b/);
    expect(message).toContain('ignoreArgs: [0]');
    expect(runs).toBe(0);
    expect(keys.misses).toEqual([]);
    expect(keys.sets).toEqual([]);
  });

  it('names the path of an unkeyable value nested inside an argument', async () => {
    const service = makeService();
    class Socket {}
    class NestedArgs {
      @Cache()
      async send(message: { to: string; via: Socket }): Promise<string> {
        return message.to;
      }
    }
    const s = bindCachingService(new NestedArgs(), service);
    const error = await failureOf(() => s.send({ to: 'ann', via: new Socket() }));
    expect(error).toMatchObject({ code: 'E_UNKEYABLE' });
    expect((error as Error).message).toContain('Socket');
    expect((error as Error).message).toContain('.via');
  });

  it('an async method reports an unkeyable argument as a rejected promise, not a synchronous throw', async () => {
    const service = makeService();
    class Lock {}
    class AsyncUnkeyable {
      @Cache()
      async get(lock: Lock): Promise<number> {
        return 1;
      }
    }
    const s = bindCachingService(new AsyncUnkeyable(), service);
    let result: Promise<number> | undefined;
    let thrown: unknown;
    try {
      result = s.get(new Lock());
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeUndefined();
    await expect(result).rejects.toMatchObject({ code: 'E_UNKEYABLE' });
  });
});

describe('long keys', () => {
  it('hashes keys longer than 250 characters behind a readable Class.method~ prefix, and the call still caches', async () => {
    const service = makeService();
    const keys = recordKeys(service);
    let runs = 0;
    class LongKeyCatalogue {
      @Cache()
      async search(text: string): Promise<number> {
        runs++;
        return text.length;
      }
    }
    const c = bindCachingService(new LongKeyCatalogue(), service);
    const long = 'corn '.repeat(100);
    expect(await c.search(long)).toBe(500);
    expect(await c.search(long)).toBe(500);
    expect(runs).toBe(1);
    expect(keys.sets).toHaveLength(1);
    const key = keys.sets[0]!;
    expect(key.startsWith('LongKeyCatalogue.search~')).toBe(true);
    expect(key.length).toBeLessThanOrEqual(250);
    expect(key).not.toContain('corn corn');

    // Another long argument differing only at its end gets its own entry.
    expect(await c.search(`${long}!`)).toBe(501);
    expect(runs).toBe(2);
    expect(keys.sets[1]).not.toBe(key);
    expect(keys.sets[1]!.startsWith('LongKeyCatalogue.search~')).toBe(true);
  });

  it('keeps keys under the threshold readable', () => {
    const service = makeService();
    const keys = recordKeys(service);
    class ShortKeyCatalogue {
      @Cache()
      search(text: string): number {
        return text.length;
      }
    }
    const c = bindCachingService(new ShortKeyCatalogue(), service);
    c.search('corn');
    expect(keys.misses[0]).toContain('ShortKeyCatalogue.search');
    expect(keys.misses[0]).toContain('"corn"');
    expect(keys.misses[0]).not.toContain('~');
  });

  it('hashes a long key of a keyed instance too, and still separates instances', () => {
    const service = makeService({ keyPrefix: 'p:' });
    const keys = recordKeys(service);
    let runs = 0;
    class LongTenantDocs {
      @CacheKey() tenant: string;
      constructor(tenant: string) {
        this.tenant = tenant;
      }
      @Cache()
      render(body: string): number {
        runs++;
        return body.length;
      }
    }
    const body = 'x'.repeat(400);
    const a = bindCachingService(new LongTenantDocs('a'), service);
    const b = bindCachingService(new LongTenantDocs('b'), service);
    a.render(body);
    b.render(body);
    a.render(body);
    expect(runs).toBe(2);
    expect(keys.misses).toHaveLength(2);
    expect(keys.misses[0]).not.toBe(keys.misses[1]);
    for (const key of keys.misses) expect(key.startsWith('p:LongTenantDocs.render~')).toBe(true);
  });
});

describe('scope', () => {
  it('replaces the class name in keys with the scope option', () => {
    const service = makeService();
    const keys = recordKeys(service);
    class ScopedInvoices {
      @Cache({ scope: 'billing.Invoices' })
      total(id: number): number {
        return id;
      }
    }
    bindCachingService(new ScopedInvoices(), service).total(1);
    expect(keys.misses[0]!.startsWith('billing.Invoices.total(')).toBe(true);
    expect(keys.misses[0]).not.toContain('ScopedInvoices');
  });

  it('takes the scope from @CacheConfiguration, and lets a method scope override it', () => {
    const service = makeService();
    const keys = recordKeys(service);
    @CacheConfiguration({ scope: 'crm.Contacts' })
    class ConfiguredContacts {
      @Cache()
      find(id: number): number {
        return id;
      }
      @Cache({ scope: 'crm.Special' })
      special(id: number): number {
        return id;
      }
    }
    const c = bindCachingService(new ConfiguredContacts(), service);
    c.find(1);
    c.special(1);
    expect(keys.misses[0]!.startsWith('crm.Contacts.find(')).toBe(true);
    expect(keys.misses[1]!.startsWith('crm.Special.special(')).toBe(true);
  });

  it('keeps two same-named classes apart when they have different scopes, without a warning', async () => {
    const service = makeService();
    let runsA = 0;
    let runsB = 0;
    const makeA = () => {
      class ScopedTwin {
        @Cache({ scope: 'module-a.ScopedTwin' })
        get(id: number): string {
          runsA++;
          return `a${id}`;
        }
      }
      return ScopedTwin;
    };
    const makeB = () => {
      class ScopedTwin {
        @Cache({ scope: 'module-b.ScopedTwin' })
        get(id: number): string {
          runsB++;
          return `b${id}`;
        }
      }
      return ScopedTwin;
    };
    const warnings = await warningsDuring(() => {
      const a = bindCachingService(new (makeA())(), service);
      const b = bindCachingService(new (makeB())(), service);
      expect(a.get(1)).toBe('a1');
      expect(b.get(1)).toBe('b1');
    });
    expect(runsA).toBe(1);
    expect(runsB).toBe(1);
    expect(warnings.filter(w => w.code === 'ASPECT_CACHE_SCOPE_COLLISION')).toEqual([]);
  });
});

describe('scope collisions', () => {
  function defineDuplicate() {
    class DuplicateInventory {
      @Cache()
      stock(sku: string): number {
        return sku.length;
      }
    }
    return DuplicateInventory;
  }

  it('warns once with ASPECT_CACHE_SCOPE_COLLISION when two different classes of the same name produce the same keys', async () => {
    const service = makeService();
    const classes = [defineDuplicate(), defineDuplicate(), defineDuplicate()];
    expect(classes[0]).not.toBe(classes[1]);
    const warnings = await warningsDuring(() => {
      for (const cls of classes) {
        const instance = bindCachingService(new cls(), service);
        instance.stock('a');
        instance.stock('b');
      }
    });
    const collisions = warnings.filter(w => w.code === 'ASPECT_CACHE_SCOPE_COLLISION');
    expect(collisions).toHaveLength(1);
    expect(collisions[0]!.message).toContain('DuplicateInventory');

    // Later calls on either class do not warn again.
    const later = await warningsDuring(() => {
      for (const cls of classes) bindCachingService(new cls(), service).stock('c');
      bindCachingService(new (defineDuplicate())(), service).stock('d');
    });
    expect(later.filter(w => w.code === 'ASPECT_CACHE_SCOPE_COLLISION')).toEqual([]);
  });

  it('does not warn when the same class is used through many instances and services', async () => {
    class ReusedInventory {
      @Cache()
      stock(sku: string): number {
        return sku.length;
      }
      @Cache()
      price(sku: string): number {
        return sku.length;
      }
    }
    const first = makeService();
    const second = makeService();
    const warnings = await warningsDuring(() => {
      for (const service of [first, second]) {
        for (let i = 0; i < 3; i++) {
          const r = bindCachingService(new ReusedInventory(), service);
          r.stock('a');
          r.price('a');
        }
      }
    });
    expect(warnings.filter(w => w.code === 'ASPECT_CACHE_SCOPE_COLLISION')).toEqual([]);
  });

  it('does not warn for same-named classes whose cached methods have different names', async () => {
    const service = makeService();
    const makeFirst = () => {
      class SplitNames {
        @Cache()
        left(): number {
          return 1;
        }
      }
      return SplitNames;
    };
    const makeSecond = () => {
      class SplitNames {
        @Cache()
        right(): number {
          return 2;
        }
      }
      return SplitNames;
    };
    const warnings = await warningsDuring(() => {
      bindCachingService(new (makeFirst())(), service).left();
      bindCachingService(new (makeSecond())(), service).right();
    });
    expect(warnings.filter(w => w.code === 'ASPECT_CACHE_SCOPE_COLLISION')).toEqual([]);
  });
});

describe('key prefix', () => {
  it('prefixes every key with the service keyPrefix', async () => {
    const service = makeService({ keyPrefix: 'tenant-a:' });
    const keys = recordKeys(service);
    class PrefixedCatalogue {
      @Cache()
      async price(id: string): Promise<number> {
        return id.length;
      }
    }
    const c = bindCachingService(new PrefixedCatalogue(), service);
    await c.price('corn');
    await c.price('wheat');
    expect(keys.misses).toHaveLength(2);
    for (const key of [...keys.misses, ...keys.sets]) expect(key.startsWith('tenant-a:PrefixedCatalogue.price(')).toBe(true);
  });

  it('separates services sharing one backend by their prefixes, and shares entries under the same prefix', () => {
    const backend = new MemoryBackend();
    const a = makeService({ backend, keyPrefix: 'a:' });
    const b = makeService({ backend, keyPrefix: 'b:' });
    const a2 = makeService({ backend, keyPrefix: 'a:' });
    let runs = 0;
    class SharedStore {
      @Cache()
      value(id: number): number {
        runs++;
        return id;
      }
    }
    bindCachingService(new SharedStore(), a).value(1);
    bindCachingService(new SharedStore(), b).value(1);
    expect(runs).toBe(2);
    bindCachingService(new SharedStore(), a2).value(1);
    expect(runs).toBe(2);
  });
});
