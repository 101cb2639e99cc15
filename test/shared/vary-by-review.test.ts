// Adversarial review of vary-by contexts (SPEC §11): each test states a way one caller's data could reach
// another, a variant outlive what it was computed from, or the cache do needless work, and checks it does not.
import { AsyncLocalStorage } from 'node:async_hooks';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { addDependency, bindCachingService, Cache, CachingService, LayeredBackend, MemoryBackend, readContext, suspendDependencyPropagation, type CachingBackend, type Logger } from 'aspect-cache';
import { ChaosBackend, TestBusNetwork } from 'aspect-cache/testing';
import { deferred, flush } from '../support/deferred.js';

interface Session {
  tenant: string;
  user?: string | null;
  roles?: string[];
}

const requests = new AsyncLocalStorage<Session>();
const as = <T>(session: Session, fn: () => T): T => requests.run(session, fn);

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

for (const [backendName, makeBackend] of Object.entries(backends)) {
  describe(`vary-by review on ${backendName}`, () => {
    function service(contexts: Record<string, (param?: string) => unknown>): CachingService {
      const s = new CachingService({ backend: makeBackend(), contexts, logger: quiet() });
      services.push(s);
      return s;
    }

    const sessionContexts = {
      tenant: () => requests.getStore()?.tenant ?? null,
      user: () => requests.getStore()?.user ?? null,
      'user.roles': () => requests.getStore()?.roles ?? [],
    };

    it('keys a variant by the value the computation read, even when the shared session changes before the store (learned context)', async () => {
      // A session object shared by the concurrent requests of one user (an in-memory session store): alice is
      // demoted while her report is computed. The report was computed for an admin; it must not be stored
      // under the clerks' key, where every clerk would read it.
      const s = service(sessionContexts);
      const gate = deferred();
      class Reports {
        @Cache()
        async report(): Promise<string> {
          const roles = readContext('user.roles') as string[];
          await gate.promise;
          return roles.includes('admin') ? 'salaries of everyone' : 'headcount';
        }
      }
      const reports = bindCachingService(new Reports(), s);
      const alice: Session = { tenant: 'acme', user: 'alice', roles: ['admin'] };
      const pending = as(alice, () => reports.report());
      await flush();
      alice.roles = ['clerk']; // demoted by a concurrent request of the same session
      gate.resolve();
      expect(await pending).toBe('salaries of everyone'); // she was an admin when it started: fine for her
      const bob: Session = { tenant: 'acme', user: 'bob', roles: ['clerk'] };
      expect(await as(bob, () => reports.report())).toBe('headcount');
    });

    it('keys a declared variant by the value the computation read, even when the shared session changes during the computation', async () => {
      const s = service(sessionContexts);
      const gate = deferred();
      class Prices {
        @Cache({ varyBy: ['tenant'] })
        async list(): Promise<string> {
          await gate.promise;
          return `prices of ${readContext('tenant') as string}`;
        }
      }
      const prices = bindCachingService(new Prices(), s);
      const session: Session = { tenant: 'acme' };
      const pending = as(session, () => prices.list());
      await flush();
      session.tenant = 'globex'; // the shared request object is switched to another tenant meanwhile
      gate.resolve();
      await pending;
      expect(await as({ tenant: 'acme' }, () => prices.list())).toBe('prices of acme');
    });

    it('remembers the key of a context value from that value, even when the provider answers differently on its next read', async () => {
      // A provider whose value flips between two consecutive reads (a lazily resolved or refreshed request
      // field) must not teach the key cache that one tenant's key is another's. Both tenants' entries exist
      // (written by another service on the same store), so the flickering call itself is a hit either way.
      const answers: string[] = [];
      let current = 'acme';
      const tenant = () => answers.shift() ?? current;
      const backend = makeBackend();
      const writer = new CachingService({ backend, contexts: { tenant }, logger: quiet() });
      const reader = new CachingService({ backend, contexts: { tenant }, logger: quiet() });
      services.push(writer, reader);
      class Prices {
        @Cache({ varyBy: ['tenant'] })
        async list(): Promise<string> {
          return `prices of ${readContext('tenant') as string}`;
        }
      }
      const viaWriter = bindCachingService(new Prices(), writer);
      const viaReader = bindCachingService(new Prices(), reader);
      expect(await viaWriter.list()).toBe('prices of acme');
      current = 'globex';
      expect(await viaWriter.list()).toBe('prices of globex');
      answers.push('acme'); // one flicker: this call's first read says acme, its next one globex
      await viaReader.list();
      current = 'acme'; // from now on every read says acme
      expect(await viaReader.list()).toBe('prices of acme');
    });

    it('makes a parent vary by a child it awaited inside suspendDependencyPropagation (no cross-tenant parent entry)', async () => {
      const s = service(sessionContexts);
      class Catalogue {
        @Cache({ varyBy: ['tenant'] })
        async prices(): Promise<string> {
          return `prices of ${readContext('tenant') as string}`;
        }
        @Cache()
        async page(): Promise<string> {
          // Dependencies are suspended (the data is refreshed elsewhere), but the value is still the tenant's.
          const prices = await suspendDependencyPropagation(() => this.prices());
          return `page with ${prices}`;
        }
      }
      const catalogue = bindCachingService(new Catalogue(), s);
      expect(await as({ tenant: 'acme' }, () => catalogue.page())).toBe('page with prices of acme');
      expect(await as({ tenant: 'globex' }, () => catalogue.page())).toBe('page with prices of globex');
    });

    it('stops varying by a context once the call no longer reads it (a record is not a ratchet)', async () => {
      const s = service(sessionContexts);
      let isPrivate = true;
      let runs = 0;
      class Docs {
        @Cache()
        async doc(id: string): Promise<string> {
          runs++;
          addDependency(`Doc:${id}`);
          if (isPrivate) return `draft of ${id} for ${readContext('user') as string}`;
          return `published ${id}`;
        }
      }
      const docs = bindCachingService(new Docs(), s);
      const alice: Session = { tenant: 'acme', user: 'alice' };
      const bob: Session = { tenant: 'acme', user: 'bob' };
      expect(await as(alice, () => docs.doc('1'))).toBe('draft of 1 for alice');
      isPrivate = false;
      await s.invalidate('Doc:1');
      runs = 0;
      expect(await as(alice, () => docs.doc('1'))).toBe('published 1');
      expect(await as(bob, () => docs.doc('1'))).toBe('published 1');
      expect(await as({ tenant: 'acme', user: 'carol' }, () => docs.doc('1'))).toBe('published 1');
      expect(runs).toBe(1); // the published document varies by no one: one entry for all
    });

    it('does not fail a call for a context its current computation does not read, whether or not this service remembers the record', async () => {
      // Background jobs run outside a request: the tenant provider throws there. A call that read the tenant
      // once (record: tenant) but no longer does must not fail only in processes that remember the record.
      const tenantOrThrow = () => {
        const session = requests.getStore();
        if (session === undefined) throw new Error('no request');
        return session.tenant;
      };
      const backend = makeBackend();
      const remembering = new CachingService({ backend, contexts: { tenant: tenantOrThrow }, logger: quiet() });
      const fresh = new CachingService({ backend, contexts: { tenant: tenantOrThrow }, logger: quiet() });
      services.push(remembering, fresh);
      let perTenant = true;
      class Settings {
        @Cache()
        async theme(): Promise<string> {
          addDependency('Theme');
          return perTenant ? `theme of ${readContext('tenant') as string}` : 'default theme';
        }
      }
      const viaRemembering = bindCachingService(new Settings(), remembering);
      const viaFresh = bindCachingService(new Settings(), fresh);
      expect(await as({ tenant: 'acme' }, () => viaRemembering.theme())).toBe('theme of acme');
      perTenant = false;
      await remembering.invalidate('Theme');
      expect(await viaFresh.theme()).toBe('default theme'); // the record is read and skipped: fine
      expect(await viaRemembering.theme()).toBe('default theme');
    });

    it('replaces, on refreshCall, the entry other services sharing the store read for the caller (not only its own variant)', async () => {
      // Two services on one store, as two processes. The call used to vary by nothing (one entry for everyone);
      // now it reads the tenant. refreshCall under acme must make acme's next call see the refreshed value in
      // every process, as it does without contexts.
      const backend = makeBackend();
      const refresher = new CachingService({ backend, contexts: sessionContexts, logger: quiet() });
      const other = new CachingService({ backend, contexts: sessionContexts, logger: quiet() });
      services.push(refresher, other);
      let perTenant = false;
      class Settings {
        @Cache()
        async theme(): Promise<string> {
          return perTenant ? `theme of ${readContext('tenant') as string}` : 'default theme';
        }
      }
      const viaRefresher = bindCachingService(new Settings(), refresher);
      const viaOther = bindCachingService(new Settings(), other);
      expect(await as({ tenant: 'acme' }, () => viaOther.theme())).toBe('default theme');
      perTenant = true;
      expect(await as({ tenant: 'acme' }, () => refresher.refreshCall(() => viaRefresher.theme()))).toBe('theme of acme');
      expect(await as({ tenant: 'acme' }, () => viaRefresher.theme())).toBe('theme of acme');
      expect(await as({ tenant: 'acme' }, () => viaOther.theme())).toBe('theme of acme');
    });

    it('lets a call that varies by the tenant call itself under another tenant (a tenant tree rolled up), as it can when it declares varyBy', async () => {
      const s = service(sessionContexts);
      const children: Record<string, string[]> = { group: ['acme', 'globex'], acme: [], globex: [] };
      const own: Record<string, number> = { group: 1, acme: 10, globex: 20 };
      class Totals {
        /** Learns that it varies by the tenant (no varyBy). */
        @Cache()
        async total(): Promise<number> {
          const tenant = readContext('tenant') as string;
          let sum = own[tenant]!;
          for (const child of children[tenant]!) sum += await as({ tenant: child }, () => this.total());
          return sum;
        }
        @Cache({ varyBy: ['tenant'] })
        async declaredTotal(): Promise<number> {
          const tenant = readContext('tenant') as string;
          let sum = own[tenant]!;
          for (const child of children[tenant]!) sum += await as({ tenant: child }, () => this.declaredTotal());
          return sum;
        }
      }
      const totals = bindCachingService(new Totals(), s);
      expect(await as({ tenant: 'group' }, () => totals.declaredTotal())).toBe(31);
      expect(await as({ tenant: 'group' }, () => totals.total())).toBe(31);
    });

    it('never serves a variant through a custom key that spells the variant suffix (sound: keys escape U+001F)', async () => {
      const s = service(sessionContexts);
      let runs = 0;
      class Search {
        @Cache({ varyBy: ['tenant'], key: (q: string) => q })
        async find(q: string): Promise<string> {
          runs++;
          return `results of ${readContext('tenant') as string} for ${q}`;
        }
      }
      const search = bindCachingService(new Search(), s);
      expect(await as({ tenant: 'acme' }, () => search.find('x'))).toBe('results of acme for x');
      // The text a variant key appends to the root, sent as a query by a globex user.
      const forged = `x")\u001f"tenant"="acme"`;
      expect(await as({ tenant: 'globex' }, () => search.find(forged))).toBe(`results of globex for ${forged}`);
      expect(await as({ tenant: 'globex' }, () => search.find('x\u001f'))).toBe('results of globex for x\u001f');
      expect(runs).toBe(3);
    });
  });
}

describe('vary-by review: configuration', () => {
  it('rejects, when the service is constructed, service defaults that vary by a context it has no provider for', () => {
    expect(() => new CachingService({ contexts: { tenant: () => 'acme' }, defaults: { varyBy: ['tenantt'] }, logger: quiet() })).toThrow(/tenantt/);
    expect(() => new CachingService({ defaults: { varyBy: ['tenant'] }, logger: quiet() })).toThrow(/no contexts option/);
  });
});
