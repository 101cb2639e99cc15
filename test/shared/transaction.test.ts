// Invalidation around database transactions (SPEC §13): `caching.transaction(fn)` removes the entries an
// invalidation inside it names at once and holds their keys (no store depending on them) until it ends, then
// invalidates them again. Each scenario below fails on an implementation that only invalidates before the
// commit (a reader that read the old row after that invalidation stores it) or only after it (a reader stores
// the old row while the transaction runs, and nothing removes it if the process dies before the end).
import { AsyncLocalStorage } from 'node:async_hooks';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { addDependency, bindCachingService, Cache, CachingService, InvalidateCache, LayeredBackend, MemoryBackend, type CachingBackend, type Logger } from 'aspect-cache';
import { ChaosBackend, FakeClock, TestBusNetwork } from 'aspect-cache/testing';
import { deferred, flush, type Deferred } from '../support/deferred.js';

type LogFn = (message: string, data?: unknown) => void;
const quiet = (): Logger => ({ debug: vi.fn<LogFn>(), warn: vi.fn<LogFn>(), error: vi.fn<LogFn>() });

/**
 * A database with transactions: a transaction's writes are visible to its own connection (the code running
 * inside `db.begin`) and to everyone once committed.
 */
class Db {
  readonly committed = new Map<string, number>([['corn', 1], ['wheat', 10]]);
  readonly #connection = new AsyncLocalStorage<Map<string, number>>();
  /** Holds the next reads of a row open, so a reader can be caught between its read and its store. */
  readonly holds = new Map<string, Deferred<void>>();
  reads = 0;

  async read(id: string): Promise<number> {
    this.reads++;
    const value = this.#connection.getStore()?.get(id) ?? this.committed.get(id)!;
    const hold = this.holds.get(id);
    if (hold !== undefined) {
      this.holds.delete(id);
      await hold.promise;
    }
    return value;
  }

  /** Runs `work` as one transaction: its writes are staged, and committed when it resolves. */
  async begin<T>(work: () => Promise<T>): Promise<T> {
    const staged = new Map<string, number>();
    const result = await this.#connection.run(staged, work);
    for (const [id, value] of staged) this.committed.set(id, value);
    return result;
  }

  write(id: string, value: number): void {
    const staged = this.#connection.getStore();
    if (staged === undefined) throw new Error('write outside a transaction');
    staged.set(id, value);
  }
}

const services: CachingService[] = [];
afterEach(async () => {
  await Promise.all(services.splice(0).map(s => s.dispose()));
});

const LEASE = 5_000;

const setups: Record<string, (clock: FakeClock) => CachingBackend> = {
  memory: clock => new MemoryBackend({ clock }),
  'asynchronous (chaos over memory)': clock => new ChaosBackend(new MemoryBackend({ clock })),
  'layered (memory over memory, test bus)': clock =>
    new LayeredBackend({ l1: new MemoryBackend({ clock }), l2: new MemoryBackend({ clock }), bus: new TestBusNetwork({ heartbeatMs: 3_600_000 }).connect() }),
};

for (const [name, makeBackend] of Object.entries(setups)) {
  describe(`caching.transaction on ${name}`, () => {
    function setup() {
      const clock = new FakeClock();
      const backend = makeBackend(clock);
      const caching = new CachingService({ backend, clock, logger: quiet() });
      services.push(caching);
      const db = new Db();
      const sets: string[] = [];
      caching.on('set', e => sets.push(e.key));
      class Catalogue {
        @Cache()
        async getPrice(id: string): Promise<number> {
          addDependency(`Price:${id}`);
          return db.read(id);
        }

        @Cache()
        async getTotal(): Promise<number> {
          return (await this.getPrice('corn')) + (await this.getPrice('wheat'));
        }

        @InvalidateCache('getPrice')
        async setPrice(id: string, price: number): Promise<void> {
          db.write(id, price);
        }
      }
      const catalogue = bindCachingService(new Catalogue(), caching);
      const priceKeys = () => sets.filter(k => k.includes('getPrice("corn")'));
      return { clock, backend, caching, db, catalogue, sets, priceKeys, Catalogue };
    }

    /** Starts a transaction that writes corn = `price` and waits at `commit` before committing. */
    function startTransaction(s: ReturnType<typeof setup>, price: number, commit: Deferred<void>, afterCommit: Promise<void> = Promise.resolve()) {
      const written = deferred();
      const done = s.caching.transaction(
        async () => {
          await s.db.begin(async () => {
            await s.catalogue.setPrice('corn', price);
            written.resolve();
            await commit.promise;
          });
          await afterCommit; // the application's own work after COMMIT, still inside the scope
        },
        { leaseMs: LEASE },
      );
      return { done, written: written.promise };
    }

    it('does not store what a reader outside the scope read while the transaction ran, and serves committed data after it', async () => {
      const s = setup();
      expect(await s.catalogue.getPrice('corn')).toBe(1);
      expect(await s.catalogue.getTotal()).toBe(11);
      const commit = deferred();
      const tx = startTransaction(s, 2, commit);
      await tx.written;
      // The invalidation removed the entries at once: a reader computes, from the committed (old) row.
      const storedBefore = s.priceKeys().length;
      const readsBefore = s.db.reads;
      expect(await s.catalogue.getPrice('corn')).toBe(1);
      expect(s.db.reads).toBe(readsBefore + 1); // removed at once, not served from the cache
      expect(await s.catalogue.getTotal()).toBe(11);
      expect(s.priceKeys().length).toBe(storedBefore); // held: not stored (an invalidate-after-commit-only cache would store it)
      // A reader that read the old row before the commit and stores after it is refused too.
      const gate = deferred();
      s.db.holds.set('corn', gate);
      const late = s.catalogue.getPrice('corn');
      await flush();
      commit.resolve();
      await tx.done;
      gate.resolve();
      expect(await late).toBe(1);
      // After the scope resolved: committed data (an invalidate-before-commit-only cache would serve 1).
      expect(await s.catalogue.getPrice('corn')).toBe(2);
      expect(await s.catalogue.getTotal()).toBe(12);
      // And caching works again: the next call is a hit.
      const reads = s.db.reads;
      expect(await s.catalogue.getPrice('corn')).toBe(2);
      expect(s.db.reads).toBe(reads);
    });

    it('holds the keys for every service sharing the backend (another "process" stores nothing either)', async () => {
      const s = setup();
      const other = new CachingService({ backend: s.backend, clock: s.clock, logger: quiet() });
      services.push(other);
      const otherSets: string[] = [];
      other.on('set', e => otherSets.push(e.key));
      const reader = bindCachingService(new s.Catalogue(), other); // the same methods: the same keys
      const commit = deferred();
      const tx = startTransaction(s, 2, commit);
      await tx.written;
      expect(await reader.getPrice('corn')).toBe(1);
      expect(otherSets).toEqual([]);
      commit.resolve();
      await tx.done;
      expect(await reader.getPrice('corn')).toBe(2);
      expect(otherSets.length).toBe(1);
    });

    it('leaves caching working normally after a rolled-back transaction', async () => {
      const s = setup();
      expect(await s.catalogue.getPrice('corn')).toBe(1);
      const error = new Error('deadlock detected');
      await expect(
        s.caching.transaction(async () => {
          await s.db.begin(async () => {
            await s.catalogue.setPrice('corn', 2);
            throw error;
          });
        }),
      ).rejects.toBe(error);
      expect(s.db.committed.get('corn')).toBe(1);
      const reads = s.db.reads;
      expect(await s.catalogue.getPrice('corn')).toBe(1);
      expect(await s.catalogue.getPrice('corn')).toBe(1);
      expect(s.db.reads).toBe(reads + 1); // computed once, then a hit: stores are accepted again
    });

    it('leaves no stale entry when the process "dies" after the commit: the hold ends with its lease', async () => {
      const s = setup();
      expect(await s.catalogue.getPrice('corn')).toBe(1);
      const commit = deferred();
      const never = new Promise<void>(() => undefined); // the scope never ends: its process died after COMMIT
      const tx = startTransaction(s, 2, commit, never);
      void tx.done;
      await tx.written;
      // A reader during the transaction reads the old row: not stored (no later invalidation will ever come).
      expect(await s.catalogue.getPrice('corn')).toBe(1);
      commit.resolve();
      await flush();
      expect(s.db.committed.get('corn')).toBe(2);
      // Still held after the commit (the scope has not ended): readers get committed data, and store nothing.
      expect(await s.catalogue.getPrice('corn')).toBe(2);
      const stored = s.priceKeys().length;
      s.clock.advance(LEASE * 2); // default lease is 30 s; this test uses leaseMs 5 s
      expect(await s.catalogue.getPrice('corn')).toBe(2);
      expect(s.priceKeys().length).toBe(stored + 1); // the lease ran out: caching resumed
      const reads = s.db.reads;
      expect(await s.catalogue.getPrice('corn')).toBe(2);
      expect(s.db.reads).toBe(reads);
    });

    it('acts once for nested scopes (the outermost one)', async () => {
      const s = setup();
      const invalidations: string[][] = [];
      s.caching.on('invalidate', e => invalidations.push([...e.keys]));
      await s.catalogue.getPrice('corn');
      await s.caching.transaction(async () => {
        await s.db.begin(async () => {
          await s.caching.transaction(async () => {
            await s.catalogue.setPrice('corn', 2);
          });
          expect(invalidations.length).toBe(1); // the inner scope did not release anything
          expect(await s.catalogue.getPrice('corn')).toBe(2); // inside: the uncommitted row, not cached
        });
      });
      expect(invalidations.length).toBe(2); // the invalidation, and the outermost scope's release
      expect(await s.catalogue.getPrice('corn')).toBe(2);
    });

    it('runs cached calls inside the scope without reading or storing the cache', async () => {
      const s = setup();
      expect(await s.catalogue.getPrice('corn')).toBe(1);
      const before = s.sets.length;
      await s.caching.transaction(async () => {
        await s.db.begin(async () => {
          s.db.write('corn', 5); // written, not yet invalidated
          const reads = s.db.reads;
          expect(await s.catalogue.getPrice('corn')).toBe(5); // the uncommitted row: the cached 1 is not read
          expect(await s.catalogue.getTotal()).toBe(15);
          expect(s.db.reads).toBe(reads + 3);
          await s.catalogue.setPrice('corn', 5);
        });
      });
      expect(s.sets.length).toBe(before); // nothing computed inside the scope was stored
      expect(await s.catalogue.getPrice('corn')).toBe(5);
    });
  });
}

describe('caching.transaction options', () => {
  it('rejects a non-function and bad options with a clear error', async () => {
    const caching = new CachingService({ logger: quiet() });
    services.push(caching);
    await expect(caching.transaction(42 as never)).rejects.toThrow(/pass a function/);
    await expect(caching.transaction(async () => 1, { leaseMs: -1 })).rejects.toThrow(/leaseMs must be a positive number/);
    await expect(caching.transaction(async () => 1, { lease: 5 } as never)).rejects.toThrow(/unknown option 'lease'; did you mean 'leaseMs'/);
    expect(await caching.transaction(async () => 7)).toBe(7);
  });
});
