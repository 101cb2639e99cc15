// Vary-by contexts (SPEC §11): context values in keys, readContext, propagation of what a call varies by to
// its cached callers, single-flight per context value, and clear errors — on memory, on an asynchronous
// backend (ChaosBackend over memory) and on a layered backend.
import { AsyncLocalStorage } from 'node:async_hooks';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { addDependency, bindCachingService, Cache, CachingError, CachingService, LayeredBackend, MemoryBackend, readContext, type CachingBackend, type Logger } from 'aspect-cache';
import { ChaosBackend, TestBusNetwork } from 'aspect-cache/testing';
import { deferred, flush, type Deferred } from '../support/deferred.js';

interface Request {
  tenant: string;
  user?: string;
  roles?: string[];
  query?: Record<string, string>;
}

const requests = new AsyncLocalStorage<Request>();
const as = <T>(request: Request, fn: () => T): T => requests.run(request, fn);

const contexts = {
  tenant: () => requests.getStore()?.tenant ?? null,
  user: () => requests.getStore()?.user ?? null,
  'user.roles': () => requests.getStore()?.roles ?? [],
  query: (name?: string) => requests.getStore()?.query?.[name ?? ''] ?? null,
};

type LogFn = (message: string, data?: unknown) => void;
const quiet = (): Logger => ({ debug: vi.fn<LogFn>(), warn: vi.fn<LogFn>(), error: vi.fn<LogFn>() });

const services: CachingService[] = [];
afterEach(async () => {
  await Promise.all(services.splice(0).map(s => s.dispose()));
});

const backends: Record<string, () => CachingBackend> = {
  memory: () => new MemoryBackend(),
  'asynchronous (chaos over memory)': () => new ChaosBackend(new MemoryBackend()),
  'layered (memory over memory, test bus)': () => new LayeredBackend({ l2: new MemoryBackend(), bus: new TestBusNetwork({ heartbeatMs: 60_000 }).connect() }),
};

/** Prices per tenant: the data a tenant must never see of another. */
class Db {
  readonly prices = new Map<string, number>([
    ['acme:corn', 10],
    ['acme:wheat', 20],
    ['globex:corn', 11],
    ['globex:wheat', 21],
  ]);
  runs = new Map<string, number>();
  gate: Map<string, Deferred<void>> = new Map();
  count(name: string): void {
    this.runs.set(name, (this.runs.get(name) ?? 0) + 1);
  }
  ran(name: string): number {
    return this.runs.get(name) ?? 0;
  }
}

for (const [backendName, makeBackend] of Object.entries(backends)) {
  describe(`vary-by on ${backendName}`, () => {
    function service(): CachingService {
      const s = new CachingService({ backend: makeBackend(), contexts, logger: quiet() });
      services.push(s);
      return s;
    }

    function build(s: CachingService, db = new Db()) {
      class Catalogue {
        @Cache({ varyBy: ['tenant'] })
        async price(id: string): Promise<{ tenant: string; id: string; price: number }> {
          db.count(`price:${id}`);
          const tenant = readContext('tenant') as string;
          await db.gate.get(`price:${tenant}:${id}`)?.promise;
          addDependency(`Price:${tenant}:${id}`);
          return { tenant, id, price: db.prices.get(`${tenant}:${id}`)! };
        }

        /** Reads the tenant itself (no varyBy). */
        @Cache()
        async banner(): Promise<string> {
          db.count('banner');
          return `Welcome to ${readContext('tenant') as string}`;
        }

        /** No varyBy: varies by tenant through its children. */
        @Cache()
        async page(): Promise<{ tenant: string; items: Array<{ tenant: string; price: number }>; banner: string }> {
          db.count('page');
          const items = await Promise.all(['corn', 'wheat'].map(id => this.price(id)));
          return { tenant: items[0]!.tenant, items, banner: await this.banner() };
        }

        /** Two levels up, still without varyBy. */
        @Cache()
        async home(): Promise<{ page: Awaited<ReturnType<Catalogue['page']>> }> {
          db.count('home');
          return { page: await this.page() };
        }

        /** Reads the roles only on some calls: the entry of `admin(true)` varies by them, `admin(false)` does not. */
        @Cache()
        async admin(detailed: boolean): Promise<string> {
          db.count(`admin:${detailed}`);
          if (!detailed) return 'summary';
          const roles = readContext('user.roles') as string[];
          return roles.includes('admin') ? 'all details' : 'some details';
        }

        /** Declares the user, and calls something that varies by the user's roles: only `user` is used. */
        @Cache({ varyBy: ['user'] })
        async profile(): Promise<string> {
          db.count('profile');
          return `${readContext('user') as string}: ${await this.admin(true)}`;
        }

        @Cache({ varyBy: ['query:page'] })
        async listing(): Promise<string> {
          db.count('listing');
          return `page ${String(readContext('query:page'))}`;
        }
      }
      return { catalogue: bindCachingService(new Catalogue(), s), db };
    }

    it('keeps one entry per tenant and hits it after the first call', async () => {
      const { catalogue, db } = build(service());
      expect(await as({ tenant: 'acme' }, () => catalogue.price('corn'))).toEqual({ tenant: 'acme', id: 'corn', price: 10 });
      expect(await as({ tenant: 'globex' }, () => catalogue.price('corn'))).toEqual({ tenant: 'globex', id: 'corn', price: 11 });
      expect(await as({ tenant: 'acme' }, () => catalogue.price('corn'))).toEqual({ tenant: 'acme', id: 'corn', price: 10 });
      expect(await as({ tenant: 'globex' }, () => catalogue.price('corn'))).toEqual({ tenant: 'globex', id: 'corn', price: 11 });
      expect(db.ran('price:corn')).toBe(2);
    });

    it('caches a parent without varyBy per tenant, never across tenants, at every level', async () => {
      const s = service();
      const { catalogue, db } = build(s);
      const acme = await as({ tenant: 'acme' }, () => catalogue.home());
      const globex = await as({ tenant: 'globex' }, () => catalogue.home());
      expect(acme.page.items.map(i => i.tenant)).toEqual(['acme', 'acme']);
      expect(acme.page.banner).toBe('Welcome to acme');
      expect(globex.page.items.map(i => i.price)).toEqual([11, 21]);
      expect(globex.page.banner).toBe('Welcome to globex');
      // Both tenants hit now: the parents were found again through their variant records.
      const hitsBefore = s.stats().hits;
      expect(await as({ tenant: 'acme' }, () => catalogue.home())).toEqual(acme);
      expect(await as({ tenant: 'globex' }, () => catalogue.home())).toEqual(globex);
      expect(await as({ tenant: 'acme' }, () => catalogue.page())).toEqual(acme.page);
      expect(s.stats().hits - hitsBefore).toBe(3);
      expect(db.ran('home')).toBe(2);
      expect(db.ran('page')).toBe(2);
      // A third tenant computes its own, from its own data.
      const initech = await as({ tenant: 'initech' }, () => catalogue.home());
      expect(initech.page.tenant).toBe('initech');
      expect(db.ran('home')).toBe(3);
    });

    it('makes a method that calls readContext, and its callers, vary by that context', async () => {
      const { catalogue, db } = build(service());
      expect(await as({ tenant: 'acme' }, () => catalogue.banner())).toBe('Welcome to acme');
      expect(await as({ tenant: 'globex' }, () => catalogue.banner())).toBe('Welcome to globex');
      expect(await as({ tenant: 'acme' }, () => catalogue.banner())).toBe('Welcome to acme');
      expect(db.ran('banner')).toBe(2);
    });

    it('shares an entry between callers whose contexts agree, and only varies where a branch read a context', async () => {
      const { catalogue, db } = build(service());
      const alice = { tenant: 'acme', user: 'alice', roles: ['admin'] };
      const bob = { tenant: 'acme', user: 'bob', roles: ['clerk'] };
      const carol = { tenant: 'globex', user: 'carol', roles: ['admin'] };
      expect(await as(alice, () => catalogue.admin(false))).toBe('summary');
      expect(await as(bob, () => catalogue.admin(false))).toBe('summary');
      expect(db.ran('admin:false')).toBe(1); // no context read: one entry for everyone
      expect(await as(alice, () => catalogue.admin(true))).toBe('all details');
      expect(await as(bob, () => catalogue.admin(true))).toBe('some details');
      expect(await as(carol, () => catalogue.admin(true))).toBe('all details');
      expect(db.ran('admin:true')).toBe(2); // per roles, shared by alice and carol (same roles)
    });

    it('uses only `user` when a call varies by both `user` and `user.roles`', async () => {
      const s = service();
      const { catalogue, db } = build(s);
      const keys: string[] = [];
      s.on('set', e => keys.push(e.key));
      expect(await as({ tenant: 'acme', user: 'alice', roles: ['admin'] }, () => catalogue.profile())).toBe('alice: all details');
      expect(await as({ tenant: 'acme', user: 'alice', roles: ['admin'] }, () => catalogue.profile())).toBe('alice: all details');
      expect(await as({ tenant: 'acme', user: 'bob', roles: ['admin'] }, () => catalogue.profile())).toBe('bob: all details');
      expect(db.ran('profile')).toBe(2);
      const profileKeys = keys.filter(k => k.includes('profile'));
      expect(profileKeys.length).toBe(2);
      for (const key of profileKeys) {
        expect(key).toContain('"user"=');
        expect(key).not.toContain('user.roles');
      }
    });

    it('keeps `user.roles` apart when `user` is null (anonymous callers with different roles do not share)', async () => {
      const { catalogue, db } = build(service());
      expect(await as({ tenant: 'acme', roles: ['admin'] }, () => catalogue.profile())).toBe('null: all details');
      expect(await as({ tenant: 'acme', roles: ['clerk'] }, () => catalogue.profile())).toBe('null: some details');
      expect(await as({ tenant: 'acme', roles: ['admin'] }, () => catalogue.profile())).toBe('null: all details');
      expect(db.ran('profile')).toBe(2);
    });

    it('passes the parameter of a parameterised context to its provider', async () => {
      const { catalogue, db } = build(service());
      expect(await as({ tenant: 'acme', query: { page: '1' } }, () => catalogue.listing())).toBe('page 1');
      expect(await as({ tenant: 'acme', query: { page: '2' } }, () => catalogue.listing())).toBe('page 2');
      expect(await as({ tenant: 'globex', query: { page: '1' } }, () => catalogue.listing())).toBe('page 1');
      expect(db.ran('listing')).toBe(2);
    });

    it('gives two concurrent first calls under different tenants their own values (declared varyBy)', async () => {
      const { catalogue, db } = build(service());
      db.gate.set('price:acme:corn', deferred());
      db.gate.set('price:globex:corn', deferred());
      const acme = as({ tenant: 'acme' }, () => catalogue.price('corn'));
      const globex = as({ tenant: 'globex' }, () => catalogue.price('corn'));
      const acme2 = as({ tenant: 'acme' }, () => catalogue.price('corn'));
      await flush();
      db.gate.get('price:globex:corn')!.resolve();
      db.gate.get('price:acme:corn')!.resolve();
      expect((await acme).tenant).toBe('acme');
      expect((await globex).tenant).toBe('globex');
      expect((await acme2).tenant).toBe('acme');
      expect(db.ran('price:corn')).toBe(2); // the second acme caller joined the first
    });

    it('gives two concurrent first calls of a parent under different tenants their own values (learned varyBy)', async () => {
      const { catalogue, db } = build(service());
      for (const tenant of ['acme', 'globex']) for (const id of ['corn', 'wheat']) db.gate.set(`price:${tenant}:${id}`, deferred());
      const acme = as({ tenant: 'acme' }, () => catalogue.page());
      const globex = as({ tenant: 'globex' }, () => catalogue.page());
      const acme2 = as({ tenant: 'acme' }, () => catalogue.page());
      await flush();
      for (const gate of db.gate.values()) gate.resolve();
      const [a, g, a2] = await Promise.all([acme, globex, acme2]);
      expect(a.items.map(i => i.tenant)).toEqual(['acme', 'acme']);
      expect(g.items.map(i => i.tenant)).toEqual(['globex', 'globex']);
      expect(g.banner).toBe('Welcome to globex');
      expect(a2).toEqual(a);
      expect(db.ran('page')).toBeLessThanOrEqual(3);
      // Afterwards both variants are hits.
      expect(await as({ tenant: 'globex' }, () => catalogue.page())).toEqual(g);
      expect(await as({ tenant: 'acme' }, () => catalogue.page())).toEqual(a);
      expect(db.ran('page')).toBeLessThanOrEqual(3);
    });

    it('removes every variant when a dependency or the call is invalidated', async () => {
      const s = service();
      const { catalogue, db } = build(s);
      for (const tenant of ['acme', 'globex']) await as({ tenant }, () => catalogue.page());
      expect(db.ran('page')).toBe(2);
      db.prices.set('acme:corn', 99);
      await s.invalidate('Price:acme:corn');
      expect((await as({ tenant: 'acme' }, () => catalogue.page())).items[0]!.price).toBe(99);
      expect((await as({ tenant: 'globex' }, () => catalogue.page())).items[0]!.price).toBe(11);
      expect(db.ran('page')).toBe(3); // only acme's page depended on acme's corn
      db.prices.set('globex:corn', 98);
      db.prices.set('acme:corn', 97);
      await s.invalidateCall(() => catalogue.price('corn'));
      expect((await as({ tenant: 'acme' }, () => catalogue.page())).items[0]!.price).toBe(97);
      expect((await as({ tenant: 'globex' }, () => catalogue.page())).items[0]!.price).toBe(98);
      await s.invalidateCall(() => catalogue.page());
      const before = db.ran('page');
      await as({ tenant: 'acme' }, () => catalogue.page());
      await as({ tenant: 'globex' }, () => catalogue.page());
      expect(db.ran('page')).toBe(before + 2);
    });

    it('refreshes the variant of the current contexts only', async () => {
      const s = service();
      const { catalogue, db } = build(s);
      await as({ tenant: 'acme' }, () => catalogue.page());
      await as({ tenant: 'globex' }, () => catalogue.page());
      db.prices.set('acme:corn', 50);
      const fresh = await as({ tenant: 'acme' }, () => s.refreshCall(() => catalogue.price('corn')));
      expect(fresh).toEqual({ tenant: 'acme', id: 'corn', price: 50 });
      expect(await as({ tenant: 'acme' }, () => catalogue.price('corn'))).toEqual(fresh);
      expect((await as({ tenant: 'acme' }, () => catalogue.page())).items[0]!.price).toBe(50); // its dependent went
      expect((await as({ tenant: 'globex' }, () => catalogue.page())).items[0]!.price).toBe(11);
    });

    it('fails a call whose context provider throws or returns an unkeyable value, naming the context', async () => {
      const s = new CachingService({
        backend: makeBackend(),
        logger: quiet(),
        contexts: {
          tenant: () => {
            throw new Error('no request');
          },
          session: () => Symbol('session'),
        },
      });
      services.push(s);
      class Broken {
        @Cache({ varyBy: ['tenant'] })
        async a(): Promise<number> {
          return 1;
        }
        @Cache()
        async b(): Promise<unknown> {
          return readContext('session');
        }
      }
      const broken = bindCachingService(new Broken(), s);
      const a = await broken.a().then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(a).toBeInstanceOf(CachingError);
      expect((a as CachingError).code).toBe('E_CONTEXT');
      expect((a as Error).message).toContain("context 'tenant'");
      expect((a as Error).message).toContain('no request');
      // An unkeyable value read with readContext fails the call too, naming the context; nothing is stored.
      const sets: string[] = [];
      s.on('set', e => sets.push(e.key));
      const b = await broken.b().then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(b).toBeInstanceOf(CachingError);
      expect((b as CachingError).code).toBe('E_CONTEXT');
      expect((b as Error).message).toMatch(/context 'session' is unkeyable/);
      expect(sets).toEqual([]);
    });
  });
}

describe('vary-by configuration errors', () => {
  it('rejects varyBy on a service without contexts, naming the method and the context', async () => {
    const s = new CachingService({ logger: quiet() });
    services.push(s);
    class NoContexts {
      @Cache({ varyBy: ['tenant'] })
      async get(): Promise<number> {
        return 1;
      }
    }
    const x = bindCachingService(new NoContexts(), s);
    await expect(x.get()).rejects.toThrow(/NoContexts\.get.*varyBy names 'tenant'.*no contexts option/);
  });

  it('rejects a context name with no provider, listing the registered ones', async () => {
    const s = new CachingService({ logger: quiet(), contexts: { tenant: () => 'a' } });
    services.push(s);
    class Unknown {
      @Cache({ varyBy: ['tenantt'] })
      async get(): Promise<number> {
        return 1;
      }
    }
    const x = bindCachingService(new Unknown(), s);
    await expect(x.get()).rejects.toThrow(/Unknown\.get.*context 'tenantt' has no provider \(registered: 'tenant'\)/);
  });

  it('rejects invalid contexts and varyBy options when they are configured', () => {
    expect(() => new CachingService({ contexts: { tenant: 'acme' as never } })).toThrow(/context 'tenant' must be a function/);
    expect(() => new CachingService({ contexts: { 'query:page': () => 1 } })).toThrow(/context name "query:page" is invalid/);
    expect(() => {
      class Bad {
        @Cache({ varyBy: 'tenant' as never })
        async get(): Promise<number> {
          return 1;
        }
      }
      return Bad;
    }).toThrow(/option varyBy must be an array of context names/);
  });

  it('does not store a parent on a service without contexts over a child that varies', async () => {
    const withContexts = new CachingService({ contexts, logger: quiet() });
    const plain = new CachingService({ logger: quiet() });
    services.push(withContexts, plain);
    let parents = 0;
    class Child {
      @Cache({ varyBy: ['tenant'] })
      async get(): Promise<string> {
        return `data of ${readContext('tenant') as string}`;
      }
    }
    const child = bindCachingService(new Child(), withContexts);
    class Parent {
      @Cache()
      async get(): Promise<string> {
        parents++;
        return `page with ${await child.get()}`;
      }
    }
    const parent = bindCachingService(new Parent(), plain);
    const skips: string[] = [];
    plain.on('skip', e => skips.push(e.reason));
    expect(await as({ tenant: 'acme' }, () => parent.get())).toBe('page with data of acme');
    expect(await as({ tenant: 'globex' }, () => parent.get())).toBe('page with data of globex');
    expect(parents).toBe(2);
    expect(skips).toEqual(['context', 'context']);
  });

  it('readContext outside a cached method returns the value and records nothing', () => {
    const s = new CachingService({ contexts, logger: quiet() });
    services.push(s);
    expect(as({ tenant: 'acme' }, () => s.readContext('tenant'))).toBe('acme');
    expect(() => s.readContext('nope')).toThrow(/context 'nope' has no provider/);
  });

  it('keeps synchronous methods synchronous on memory', () => {
    const s = new CachingService({ contexts, logger: quiet() });
    services.push(s);
    let runs = 0;
    class Sync {
      @Cache({ varyBy: ['tenant'] })
      name(): string {
        runs++;
        return `name of ${readContext('tenant') as string}`;
      }
      @Cache()
      title(): string {
        return `title: ${this.name()}`;
      }
    }
    const x = bindCachingService(new Sync(), s);
    expect(as({ tenant: 'acme' }, () => x.title())).toBe('title: name of acme');
    expect(as({ tenant: 'globex' }, () => x.title())).toBe('title: name of globex');
    expect(as({ tenant: 'acme' }, () => x.title())).toBe('title: name of acme');
    expect(as({ tenant: 'globex' }, () => x.name())).toBe('name of globex');
    expect(runs).toBe(2);
  });
});
