// Single-flight and failures under vary-by contexts (SPEC §11, §7): a computation's failure is shared only with
// callers whose context values agree, as its value is. Found by the vary-by model (../support/vary-by-model.ts):
// a caller of one tenant received another tenant's data-source error, and a caller with a query string the
// E_CONTEXT of a request without one, by joining their computations. Runs in both decorator modes.
import { AsyncLocalStorage } from 'node:async_hooks';
import { afterEach, describe, expect, it } from 'vitest';
import { bindCachingService, Cache, CachingError, CachingService, LayeredBackend, MemoryBackend, readContext, type CachingBackend } from 'aspect-cache';
import { ChaosBackend, TestBusNetwork } from 'aspect-cache/testing';
import { deferred, flush, type Deferred } from '../support/deferred.js';

interface Request {
  readonly tenant: string;
  readonly page?: number;
}
const requests = new AsyncLocalStorage<Request>();
const as = <T>(request: Request, fn: () => T): T => requests.run(request, fn);
const contexts = {
  tenant: () => requests.getStore()?.tenant,
  query: (name?: string) => {
    const page = requests.getStore()?.page;
    if (page === undefined) throw new Error('the request has no query string');
    return name === 'page' ? page : undefined;
  },
};

const services: CachingService[] = [];
afterEach(async () => {
  await Promise.all(services.splice(0).map(s => s.dispose()));
});

const backends: Record<string, () => CachingBackend> = {
  memory: () => new MemoryBackend(),
  'asynchronous (chaos over memory)': () => new ChaosBackend(new MemoryBackend()),
  'layered (memory over memory, test bus)': () => new LayeredBackend({ l2: new MemoryBackend(), bus: new TestBusNetwork({ heartbeatMs: 60_000 }).connect() }),
};

class Shop {
  readonly gates = new Map<string, Deferred<void>>();
  readonly failing = new Set<string>();
  readonly runs = { price: 0, page: 0, listing: 0, home: 0 };

  @Cache({ varyBy: ['tenant'] })
  async price(): Promise<string> {
    this.runs.price++;
    const { tenant } = requests.getStore()!;
    await this.gates.get(tenant)?.promise;
    if (this.failing.has(tenant)) throw new Error(`the price list of ${tenant} is unavailable`);
    return `price of ${tenant}`;
  }

  /** No varyBy: it learns 'tenant' from price(). */
  @Cache()
  async page(): Promise<string> {
    this.runs.page++;
    return `page with ${await this.price()}`;
  }

  /** No varyBy: falls back when price() fails, so its value depends on the tenant even then. */
  @Cache()
  async banner(): Promise<string> {
    try {
      return `banner with ${await this.price()}`;
    } catch {
      return 'banner without a price';
    }
  }

  /** A synchronous child reading the tenant, failing for some tenants. */
  @Cache()
  stock(): string {
    const tenant = readContext('tenant') as string;
    if (this.failing.has(tenant)) throw new Error(`the stock of ${tenant} is unavailable`);
    return `stock of ${tenant}`;
  }

  /** No varyBy, synchronous: falls back when stock() fails. */
  @Cache()
  shelf(): string {
    try {
      return `shelf with ${this.stock()}`;
    } catch {
      return 'shelf without stock';
    }
  }

  @Cache({ varyBy: ['query:page'] })
  async listing(): Promise<string> {
    this.runs.listing++;
    return `listing page ${requests.getStore()!.page}`;
  }

  /** No varyBy: falls back when listing() fails (its provider throws for a request without a query string). */
  @Cache()
  async sidebar(): Promise<string> {
    try {
      return `sidebar with ${await this.listing()}`;
    } catch {
      return 'sidebar without a listing';
    }
  }

  /** No varyBy: a slow first part, then listing(), whose provider throws for a request without a query string. */
  @Cache()
  async home(): Promise<string> {
    this.runs.home++;
    await this.gates.get('home')?.promise;
    return `home with ${await this.listing()}`;
  }
}

for (const [name, makeBackend] of Object.entries(backends)) {
  describe(`single-flight failures under vary-by, on ${name}`, () => {
    const shop = () => {
      const service = new CachingService({ backend: makeBackend(), contexts });
      service.on('error', () => undefined);
      services.push(service);
      return bindCachingService(new Shop(), service);
    };

    it("never hands one tenant's failure to a concurrent caller of another tenant", async () => {
      const s = shop();
      const gate = deferred();
      s.gates.set('acme', gate);
      s.failing.add('acme');
      const acme = as({ tenant: 'acme' }, () => s.page()).then(
        () => 'resolved',
        (error: Error) => error.message,
      );
      await flush();
      const globex = as({ tenant: 'globex' }, () => s.page()).then(
        value => value,
        (error: Error) => `rejected: ${error.message}`,
      );
      await flush();
      gate.resolve();
      expect(await acme).toBe('the price list of acme is unavailable');
      expect(await globex).toBe('page with price of globex');
    });

    it("still shares a failure between callers whose values agree (one computation, one error)", async () => {
      const s = shop();
      const gate = deferred();
      s.gates.set('acme', gate);
      s.failing.add('acme');
      const calls = [0, 1, 2].map(() => as({ tenant: 'acme' }, () => s.page()).then(() => 'resolved', (error: Error) => error.message));
      await flush();
      gate.resolve();
      expect(await Promise.all(calls)).toEqual(Array(3).fill('the price list of acme is unavailable'));
      expect(s.runs.page).toBe(1);
    });

    it("a parent that catches a varying child's failure varies by the child's contexts: its fallback stays the failing tenant's", async () => {
      const s = shop();
      s.failing.add('acme');
      expect(await as({ tenant: 'acme' }, () => s.banner())).toBe('banner without a price');
      expect(await as({ tenant: 'globex' }, () => s.banner())).toBe('banner with price of globex');
      expect(await as({ tenant: 'acme' }, () => s.banner())).toBe('banner without a price');
    });

    if (name === 'memory') {
      it('the same with a synchronous child that read the tenant before it threw', () => {
        const s = shop();
        s.failing.add('acme');
        expect(as({ tenant: 'acme' }, () => s.shelf())).toBe('shelf without stock');
        expect(as({ tenant: 'globex' }, () => s.shelf())).toBe('shelf with stock of globex');
      });
    }

    it("a parent that catches a declared context's failure is not stored: the next request gets its own value", async () => {
      const s = shop();
      expect(await as({ tenant: 'acme' }, () => s.sidebar())).toBe('sidebar without a listing');
      expect(await as({ tenant: 'acme', page: 2 }, () => s.sidebar())).toBe('sidebar with listing page 2');
      expect(await as({ tenant: 'acme', page: 3 }, () => s.sidebar())).toBe('sidebar with listing page 3');
    });

    it("never hands another request's E_CONTEXT to a caller whose own contexts are fine", async () => {
      const s = shop();
      const gate = deferred();
      s.gates.set('home', gate);
      const withoutQuery = as({ tenant: 'acme' }, () => s.home()).then(
        () => undefined,
        (error: unknown) => error,
      );
      await flush();
      const withQuery = as({ tenant: 'acme', page: 2 }, () => s.home()).then(
        value => value,
        (error: Error) => `rejected: ${error.message}`,
      );
      await flush();
      gate.resolve();
      const error = await withoutQuery;
      expect(error).toBeInstanceOf(CachingError);
      expect((error as CachingError).code).toBe('E_CONTEXT');
      expect(await withQuery).toBe('home with listing page 2');
    });
  });
}
