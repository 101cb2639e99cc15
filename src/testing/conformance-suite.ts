import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import type * as Vitest from 'vitest';
import type { CacheEntryInput, CacheHit, CacheLookup, CacheMiss, CachingBackend, StoreOutcome } from '../backends/backend.js';
import { CachingError, errors } from '../errors.js';
import { FakeClock } from './fake-clock.js';

/** The part of vitest's API the suite uses. */
type VitestApi = Pick<typeof Vitest, 'afterEach' | 'beforeEach' | 'describe' | 'expect' | 'it'>;

const VITEST_HINT =
  'describeBackendConformance needs vitest (>= 3.2) as a dev dependency of the project that runs it ' +
  '(npm i -D vitest), and must be called at the top level of a test file run by vitest. FakeClock, ChaosBackend ' +
  'and TestBusNetwork from aspect-cache/testing work without vitest.';

/**
 * Loads vitest when the suite is defined, not when `aspect-cache/testing` is imported, so that FakeClock,
 * ChaosBackend and the test bus work in projects without vitest.
 *
 * Why this way: the suite must call `describe`/`it` synchronously while vitest collects the test file, so a
 * dynamic `import()` is too late, and a top-level `await import()` would stop CommonJS projects from
 * `require()`-ing this module. `require('vitest')` picks vitest's CommonJS entry, which only throws. So the
 * ES module entry is located with `import.meta.resolve` (the same resolution a static import would do) and
 * loaded with `require()` of an ES module (Node >= 20.19). In vitest's default pools (`forks`, `threads`) the
 * test file has already loaded that module, so `require()` returns the very instance that is collecting tests.
 *
 * vitest's `vmThreads` / `vmForks` pools run test files and their imports in a VM context with its own copy
 * of vitest, which no synchronous call can reach (the `require()` they provide cannot load ES modules). There
 * the suite uses vitest's globals (`test.globals: true`), and without them it throws an error that says so.
 */
function loadVitest(): VitestApi {
  let entry: string;
  try {
    entry = fileURLToPath(import.meta.resolve('vitest'));
  } catch (cause) {
    throw new CachingError(errors.E_MISSING_PEER, `describeBackendConformance: vitest is not installed. ${VITEST_HINT}`, { cause });
  }
  let loaded: VitestApi | undefined;
  let failure: unknown;
  try {
    loaded = createRequire(import.meta.url)(entry) as VitestApi;
  } catch (cause) {
    failure = cause;
  }
  if (loaded !== undefined) return loaded;
  // In a vm pool, `require()` (vitest's own, for the VM context) cannot load the ES module: use the globals.
  const globals = globalThis as { __vitest_worker__?: unknown } & Partial<VitestApi>;
  const { afterEach, beforeEach, describe, expect, it } = globals;
  if (globals.__vitest_worker__ !== undefined && afterEach && beforeEach && describe && expect && it) return { afterEach, beforeEach, describe, expect, it };
  throw new CachingError(
    errors.E_MISSING_PEER,
    `describeBackendConformance: vitest (${entry}) could not be loaded where the test file runs. In vitest's vmThreads or vmForks pool, ` +
      `enable vitest's globals (test.globals: true in the vitest config, or --globals), or run the file in the forks or threads pool. ${VITEST_HINT}`,
    { cause: failure },
  );
}

/**
 * How {@link describeBackendConformance} builds, drives and tears down the backend under test.
 */
export interface ConformanceOptions {
  /**
   * Creates a fresh, **empty** backend for one test (a new instance, or a shared server with a fresh key
   * prefix). Called before every test. When {@link supportsFakeClock} is true (the default), the backend must
   * use `ctx.clock` as its clock so that the suite can move time without sleeping.
   */
  create(ctx: { clock: FakeClock }): CachingBackend | Promise<CachingBackend>;
  /**
   * Whether the backend measures expiry on the injected {@link FakeClock}. Default `true`: expiry tests advance
   * `ctx.clock`. A backend whose time lives elsewhere (Redis expires keys on its own clock) sets `false`; the
   * expiry tests then use real, short TTLs built from {@link realTimeUnitMs} and wait for real.
   * @default true
   */
  supportsFakeClock?: boolean;
  /**
   * The time unit of the expiry tests when {@link supportsFakeClock} is `false`, in ms. An expiry test spans at
   * most about 10 units; a read expected to hit tolerates at least 2 units of delay (scheduling, round
   * trips), and one expected to miss waits at least half a unit past the expiry.
   * @default 100
   */
  realTimeUnitMs?: number;
  /**
   * Whether values keep their types beyond JSON: `Date`, `Map`, `Set` and `BigInt` round-trip as themselves
   * (memory keeps references; a Redis backend serializing with superjson does too). Plain JSON-like values and
   * a top-level `undefined` are always tested.
   * @default false
   */
  richValues?: boolean;
  /**
   * Tears the backend down after each test, instead of the default `backend.dispose()` (close the connections
   * the test created, delete the test's key prefix…). It is also called after the test that exercises
   * `dispose()` itself, so it must tolerate a backend that was already disposed.
   */
  dispose?(backend: CachingBackend): Promise<void> | void;
}

/** The entry fields a test cares about; the rest default to a plain, non-expiring, dependency-free entry. */
interface EntrySpec {
  value?: unknown;
  async?: boolean;
  dependencies?: readonly string[];
  expiresAt?: number;
  sliding?: number;
  staleFor?: number;
  refreshAt?: number;
}

const FAKE_UNIT_MS = 1_000;
const HEAVY_TEST = { timeout: 120_000 };

/**
 * Defines the conformance suite of the {@link CachingBackend} contract under `describe(name)`: every backend
 * (memory, Redis, layered, your own) must pass it. It is written against the contract only, so it works with
 * backends that answer synchronously or with promises.
 *
 * It covers: lookups (miss with a token; hit with value, `async` flag, dependencies and expiry), overwrites,
 * absolute and sliding expiry, invalidation by dependency key and by entry key, transitive invalidation
 * (chains of depth 50, cycles, a fan-out of 10,000 entries, cascades; stored with closed dependency lists, as
 * {@link CacheEntryInput.dependencies} requires), `preserveRoots`, race-free stores
 * (a token issued before an invalidation of the key or of a dependency cannot store; `begin()` tokens
 * behave the same; `abandon()`), holds (`holdMs`, `release`), the eager-refresh deadline (`refreshAt`)
 * round-tripping, `clear()`, `dispose()` and value round-trips.
 *
 * Requirements on the backend under test: it starts empty, holds at least 10,200 entries without evicting,
 * and has no size limit that the test values (a few hundred bytes) would exceed.
 *
 * Call it at the top level of a vitest test file. vitest (>= 3.2) is an optional peer dependency needed by this
 * function only: it is loaded when the function is called, so the rest of `aspect-cache/testing` works without
 * it. Without vitest the call throws a {@link CachingError} with code `E_MISSING_PEER`. In vitest's `vmThreads` and
 * `vmForks` pools it needs vitest's globals (`test.globals: true`); the default pools need nothing.
 *
 * @param name - the title of the `describe` block, e.g. the backend's class name.
 * @param options - how to create and dispose of the backend, and what it supports.
 *
 * @example
 * // test/my-backend.conformance.test.ts
 * import { describeBackendConformance } from 'aspect-cache/testing';
 * import { MyBackend } from '../src/my-backend.js';
 *
 * // A backend that takes an injectable clock: expiry is tested on the fake clock, without sleeping.
 * describeBackendConformance('MyBackend', {
 *   create: ({ clock }) => new MyBackend({ clock }),
 *   richValues: true,
 * });
 *
 * // A backend whose expiry runs on a server clock: real, short TTLs; a fresh key prefix per test.
 * describeBackendConformance('RedisBackend', {
 *   create: () => new RedisBackend({ client: new Redis(), prefix: `conformance:${crypto.randomUUID()}:` }),
 *   supportsFakeClock: false,
 *   realTimeUnitMs: 100,
 *   dispose: async backend => {
 *     await backend.clear();
 *     await backend.dispose();
 *   },
 * });
 */
export function describeBackendConformance(name: string, options: ConformanceOptions): void {
  const fakeTime = options.supportsFakeClock !== false;
  const unit = fakeTime ? FAKE_UNIT_MS : (options.realTimeUnitMs ?? 100);
  const vitest = loadVitest();
  const { afterEach, beforeEach, describe, it } = vitest;
  // Annotated so that `expect.fail(…)` (which returns `never`) narrows types, as with a static import.
  const expect: VitestApi['expect'] = vitest.expect;

  describe(name, () => {
    let clock: FakeClock;
    let backend: CachingBackend;
    let disposedByTest = false;

    beforeEach(async () => {
      clock = new FakeClock();
      disposedByTest = false;
      backend = await options.create({ clock });
    });

    afterEach(async () => {
      if (backend === undefined) return;
      if (options.dispose !== undefined) await options.dispose(backend);
      else if (!disposedByTest) await backend.dispose();
    });

    // ---- helpers (contract-only; every answer is awaited) ----

    const now = (): number => backend.clock.now();

    /** Lets `ms` pass on the backend's clock: advances the fake clock, or waits for real. */
    const elapse = async (ms: number): Promise<void> => {
      if (fakeTime) clock.advance(ms);
      else await new Promise(resolve => setTimeout(resolve, ms));
    };

    const entry = (spec: EntrySpec = {}): CacheEntryInput => ({
      value: 'value' in spec ? spec.value : 'v',
      async: spec.async ?? false,
      dependencies: spec.dependencies ?? [],
      expiresAt: spec.expiresAt ?? Infinity,
      sliding: spec.sliding ?? 0,
      ...(spec.staleFor !== undefined ? { staleFor: spec.staleFor } : {}),
      ...(spec.refreshAt !== undefined ? { refreshAt: spec.refreshAt } : {}),
    });

    const lookup = async (key: string): Promise<CacheLookup> => await backend.get(key);

    /** Looks a key up, expects a hit and returns it. */
    const expectHit = async (key: string): Promise<CacheHit> => {
      const result = await lookup(key);
      if (!result.hit) {
        backend.abandon(result.token);
        expect.fail(`expected a hit for ${key}, got a miss`);
      }
      expect(result.hit).toBe(true);
      return result;
    };

    /** Looks a key up, expects a miss and releases its token. */
    const expectMiss = async (key: string): Promise<void> => {
      const result = await lookup(key);
      expect(result.hit, `expected a miss for ${key}`).toBe(false);
      if (!result.hit) backend.abandon(result.token);
    };

    /** Takes a token the way the service does on a miss (expects the key to be missing). */
    const missToken = async (key: string): Promise<unknown> => {
      const result = await lookup(key);
      expect(result.hit, `expected a miss for ${key}`).toBe(false);
      return (result as CacheMiss).token;
    };

    const set = async (key: string, spec: EntrySpec, token: unknown): Promise<StoreOutcome> => await backend.set(key, entry(spec), token);

    /** Stores an entry after a miss on its key and expects it to be stored. */
    const store = async (key: string, spec: EntrySpec = {}): Promise<void> => {
      const token = await missToken(key);
      expect(await set(key, spec, token)).toBe('stored');
    };

    /** Stores an entry with a `begin()` token (works whether the key is present or not). */
    const storeWithBegin = async (key: string, spec: EntrySpec = {}): Promise<void> => {
      const token = await backend.begin(key);
      expect(await set(key, spec, token)).toBe('stored');
    };

    const invalidate = async (keys: readonly string[], preserveRoots?: boolean): Promise<string[]> => {
      const result = await backend.invalidate(keys, preserveRoots === undefined ? undefined : { preserveRoots });
      return [...result.removed];
    };

    const sorted = (keys: Iterable<string>): string[] => [...keys].sort();

    /**
     * The expiry a hit reports: exactly the stored one on a fake clock; on a real-time backend (another machine's
     * clock) never later than stored, and earlier by at most a fraction of a unit (clock conversion).
     */
    const expectExpiry = (reported: number, stored: number): void => {
      if (fakeTime) expect(reported).toBe(stored);
      else {
        expect(reported).toBeLessThanOrEqual(stored);
        expect(reported).toBeGreaterThan(stored - unit / 2);
      }
    };

    const isThenable = (value: unknown): boolean =>
      value !== null && (typeof value === 'object' || typeof value === 'function') && typeof (value as { then?: unknown }).then === 'function';

    // ---- the suite ----

    describe('identity', () => {
      it('has a non-empty name, a boolean isSync and a clock', () => {
        expect(typeof backend.name).toBe('string');
        expect(backend.name.length).toBeGreaterThan(0);
        expect(typeof backend.isSync).toBe('boolean');
        expect(typeof backend.clock.now()).toBe('number');
        expect(Number.isFinite(backend.clock.now())).toBe(true);
      });

      if (fakeTime) {
        it('measures time on the clock it was created with', () => {
          expect(backend.clock.now()).toBe(clock.now());
          clock.advance(12_345);
          expect(backend.clock.now()).toBe(clock.now());
        });
      }

      it('answers every method without a promise when it declares isSync', async () => {
        if (!backend.isSync) {
          // Asynchronous backends may answer either way; the other tests await every answer.
          expect(backend.isSync).toBe(false);
          return;
        }
        const miss = backend.get('sync:a');
        expect(isThenable(miss)).toBe(false);
        const set = backend.set('sync:a', entry(), (miss as CacheMiss).token);
        expect(isThenable(set)).toBe(false);
        expect(set).toBe('stored');
        const hit = backend.get('sync:a');
        expect(isThenable(hit)).toBe(false);
        expect((hit as CacheLookup).hit).toBe(true);
        const token = backend.begin('sync:a');
        expect(isThenable(token)).toBe(false);
        backend.abandon(token);
        expect(isThenable(backend.invalidate(['sync:a']))).toBe(false);
        expect(isThenable(backend.clear())).toBe(false);
      });
    });

    describe('get and set', () => {
      it('answers a miss with hit: false and a token for an unknown key', async () => {
        const result = await lookup('k:unknown');
        expect(result.hit).toBe(false);
        expect(Object.keys(result)).toContain('token');
        backend.abandon((result as CacheMiss).token);
      });

      it('serves a stored entry with its value, async flag, dependencies and expiry', async () => {
        const expiresAt = now() + 60 * unit;
        await store('k:1', { value: { id: 1, name: 'one' }, async: true, dependencies: ['dep:a', 'dep:b'], expiresAt });
        const hit = await expectHit('k:1');
        expect(hit.value).toEqual({ id: 1, name: 'one' });
        expect(hit.async).toBe(true);
        expect(sorted(hit.dependencies)).toEqual(['dep:a', 'dep:b']);
        expectExpiry(hit.expiresAt, expiresAt);
      });

      it('serves a synchronous entry without dependencies and without expiry as async: false, [] and Infinity', async () => {
        await store('k:2', { value: 42, async: false });
        const hit = await expectHit('k:2');
        expect(hit.value).toBe(42);
        expect(hit.async).toBe(false);
        expect([...hit.dependencies]).toEqual([]);
        expect(hit.expiresAt).toBe(Infinity);
      });

      it('serves the same entry on repeated lookups', async () => {
        await store('k:3', { value: 'same', dependencies: ['dep:x'] });
        for (let i = 0; i < 3; i++) {
          const hit = await expectHit('k:3');
          expect(hit.value).toBe('same');
          expect([...hit.dependencies]).toEqual(['dep:x']);
        }
      });

      it('keeps entries of different keys apart', async () => {
        await store('k:a', { value: 'A', dependencies: ['dep:a'] });
        await store('k:b', { value: 'B', dependencies: ['dep:b'] });
        expect((await expectHit('k:a')).value).toBe('A');
        expect((await expectHit('k:b')).value).toBe('B');
        expect([...(await expectHit('k:a')).dependencies]).toEqual(['dep:a']);
        await expectMiss('k:c');
      });

      it('replaces an entry on a second set: value, flag, dependencies and expiry all change', async () => {
        await store('k:4', { value: 'old', async: false, dependencies: ['dep:old'] });
        const expiresAt = now() + 30 * unit;
        await storeWithBegin('k:4', { value: 'new', async: true, dependencies: ['dep:new'], expiresAt });
        const hit = await expectHit('k:4');
        expect(hit.value).toBe('new');
        expect(hit.async).toBe(true);
        expect([...hit.dependencies]).toEqual(['dep:new']);
        expectExpiry(hit.expiresAt, expiresAt);
      });

      it('forgets the dependencies of a replaced entry: invalidating an old dependency keeps the new entry', async () => {
        await store('k:5', { value: 'old', dependencies: ['dep:old', 'dep:both'] });
        await storeWithBegin('k:5', { value: 'new', dependencies: ['dep:new', 'dep:both'] });
        expect(await invalidate(['dep:old'])).toEqual([]);
        expect((await expectHit('k:5')).value).toBe('new');
        expect(await invalidate(['dep:new'])).toEqual(['k:5']);
        await expectMiss('k:5');
      });

      it('does not let an older computation that finishes last replace the entry of a newer one', async () => {
        const older = await missToken('k:7');
        const newer = await backend.begin('k:7');
        expect(await set('k:7', { value: 'newer' }, newer)).toBe('stored');
        expect(await set('k:7', { value: 'older' }, older)).toBe('stale');
        expect((await expectHit('k:7')).value).toBe('newer');
      });

      it('stores the second of two computations of the same key when both finish without invalidation', async () => {
        const first = await missToken('k:6');
        const second = await backend.begin('k:6');
        expect(await set('k:6', { value: 'first' }, first)).toBe('stored');
        expect(await set('k:6', { value: 'second' }, second)).toBe('stored');
        expect((await expectHit('k:6')).value).toBe('second');
      });
    });

    describe('refresh deadline (refreshAt)', () => {
      it('returns the refreshAt an entry was stored with on every hit, and none for an entry stored without', async () => {
        const refreshAt = now() + 30 * unit;
        await store('k:refresh', { value: 'r', dependencies: ['dep:r'], expiresAt: now() + 60 * unit, refreshAt });
        for (let i = 0; i < 2; i++) expectExpiry((await expectHit('k:refresh')).refreshAt!, refreshAt);
        await store('k:plain', { value: 'p', expiresAt: now() + 60 * unit });
        expect((await expectHit('k:plain')).refreshAt).toBeUndefined();
      });

      it('replaces or drops refreshAt with the entry', async () => {
        const first = now() + 20 * unit;
        await store('k:refresh2', { value: 'old', expiresAt: now() + 60 * unit, refreshAt: first });
        const second = now() + 40 * unit;
        await storeWithBegin('k:refresh2', { value: 'new', expiresAt: now() + 60 * unit, refreshAt: second });
        const hit = await expectHit('k:refresh2');
        expect(hit.value).toBe('new');
        expectExpiry(hit.refreshAt!, second);
        await storeWithBegin('k:refresh2', { value: 'newer', expiresAt: now() + 60 * unit });
        expect((await expectHit('k:refresh2')).refreshAt).toBeUndefined();
      });

      it('keeps serving an entry past its refreshAt until its expiry (refreshAt is not an expiry)', async () => {
        const expiresAt = now() + 6 * unit;
        await store('k:refresh3', { value: 'kept', expiresAt, refreshAt: now() + 2 * unit });
        await elapse(3 * unit);
        expect((await expectHit('k:refresh3')).value).toBe('kept');
      });
    });

    describe('expiry', () => {
      it('serves an entry until its absolute expiresAt, then misses', async () => {
        const start = now();
        await store('e:1', { value: 'x', expiresAt: start + 4 * unit });
        await elapse(2 * unit);
        expect((await expectHit('e:1')).value).toBe('x');
        await elapse(3 * unit);
        await expectMiss('e:1');
      });

      if (fakeTime) {
        it('serves an entry one millisecond before expiresAt and not at expiresAt', async () => {
          const expiresAt = now() + 10 * unit;
          await store('e:2', { expiresAt });
          clock.set(expiresAt - 1);
          await expectHit('e:2');
          clock.set(expiresAt);
          await expectMiss('e:2');
        });
      }

      it('keeps an entry without expiry however much time passes', async () => {
        await store('e:3', { value: 'forever' });
        await elapse(fakeTime ? 365 * 24 * 3_600_000 : 5 * unit);
        expect((await expectHit('e:3')).value).toBe('forever');
      });

      it('does not serve an entry stored already expired', async () => {
        const outcome = await set('e:4', { value: 'late', expiresAt: now() - 1 }, await missToken('e:4'));
        // The token is fresh, so the write is not stale; whether the backend reports it 'stored' or skips it is its call.
        expect(outcome).not.toBe('stale');
        expect(outcome).not.toBe('backend-error');
        await expectMiss('e:4');
      });

      it('does not serve the previous entry after an already-expired entry replaced it', async () => {
        await store('e:5', { value: 'previous' });
        const token = await backend.begin('e:5');
        const outcome = await set('e:5', { value: 'recomputed', expiresAt: now() - 1 }, token);
        expect(outcome).not.toBe('stale');
        expect(outcome).not.toBe('backend-error');
        await expectMiss('e:5');
      });

      it('lets an entry expire while other entries of the same dependency stay', async () => {
        await store('e:short', { dependencies: ['dep:e'], expiresAt: now() + 2 * unit });
        await store('e:long', { dependencies: ['dep:e'], expiresAt: now() + 20 * unit });
        await elapse(3 * unit);
        await expectMiss('e:short');
        await expectHit('e:long');
        expect(await invalidate(['dep:e'])).toEqual(['e:long']);
      });

      it('reports a sliding entry as expiring one window after it was stored', async () => {
        const start = now();
        await store('s:0', { sliding: 3 * unit, expiresAt: start + 10 * unit });
        const hit = await expectHit('s:0');
        if (fakeTime) expect(hit.expiresAt).toBe(start + 3 * unit);
        else {
          expect(hit.expiresAt).toBeGreaterThan(now());
          expect(hit.expiresAt).toBeLessThanOrEqual(now() + 3 * unit);
        }
      });

      it('pushes a sliding expiry on every hit, capped by the absolute expiry', async () => {
        const sliding = 4 * unit;
        const absolute = now() + 9 * unit;
        await store('s:1', { value: 'slide', sliding, expiresAt: absolute });
        // A hit every unit keeps it alive past its first window (4 units) up to the absolute cap (9 units).
        for (let i = 0; i < 7; i++) {
          await elapse(unit);
          const hit = await expectHit('s:1');
          expect(hit.value).toBe('slide');
          expect(hit.expiresAt).toBeGreaterThan(now());
          expect(hit.expiresAt).toBeLessThanOrEqual(Math.min(absolute, now() + sliding));
        }
        // 9.5 units in: the last hit was 2.5 units ago, within the window, but the absolute expiry has passed.
        await elapse(2.5 * unit);
        await expectMiss('s:1');
      });

      it('expires a sliding entry that is not read within its window', async () => {
        await store('s:2', { sliding: 3 * unit });
        await elapse(unit);
        await expectHit('s:2');
        await elapse(3.5 * unit);
        await expectMiss('s:2');
      });

      it('keeps a sliding entry without absolute expiry alive as long as it is read', async () => {
        await store('s:3', { value: 'alive', sliding: 3 * unit });
        for (let i = 0; i < 8; i++) {
          await elapse(unit);
          expect((await expectHit('s:3')).value).toBe('alive');
        }
      });
    });

    describe('fail-safe window (staleFor)', () => {
      it('offers an expired entry as stale on a miss within staleFor, with a token, and not after', async () => {
        const start = now();
        await store('fs:1', { value: 'old', dependencies: ['fs:dep'], expiresAt: start + 2 * unit, staleFor: 4 * unit });
        await elapse(3 * unit);
        const within = await lookup('fs:1');
        expect(within.hit).toBe(false);
        const miss = within as CacheMiss;
        expect(miss.stale?.value).toBe('old');
        expect(miss.stale?.dependencies).toEqual(['fs:dep']);
        expect(await set('fs:1', { value: 'new', expiresAt: now() + 10 * unit }, miss.token)).toBe('stored');
        expect((await expectHit('fs:1')).value).toBe('new');
      });

      it('stops offering the expired entry when the window has passed', async () => {
        await store('fs:2', { value: 'old', expiresAt: now() + 2 * unit, staleFor: 2 * unit });
        await elapse(5 * unit);
        const after = await lookup('fs:2');
        expect(after.hit).toBe(false);
        expect((after as CacheMiss).stale).toBeUndefined();
        if (!after.hit) backend.abandon(after.token);
      });

      it('never offers an invalidated entry as stale', async () => {
        await store('fs:3', { value: 'old', dependencies: ['fs:dep3'], expiresAt: now() + 2 * unit, staleFor: 10 * unit });
        await invalidate(['fs:dep3']);
        await elapse(3 * unit);
        const result = await lookup('fs:3');
        expect(result.hit).toBe(false);
        expect((result as CacheMiss).stale).toBeUndefined();
        if (!result.hit) backend.abandon(result.token);
      });

      it('an entry without staleFor is not offered as stale after expiry', async () => {
        await store('fs:4', { value: 'old', expiresAt: now() + 2 * unit });
        await elapse(3 * unit);
        const result = await lookup('fs:4');
        expect((result as CacheMiss).stale).toBeUndefined();
        if (!result.hit) backend.abandon(result.token);
      });
    });

    describe('invalidation', () => {
      it('removes every entry that depends on an invalidated dependency key, and no other', async () => {
        await store('i:1', { dependencies: ['dep:user:1'] });
        await store('i:2', { dependencies: ['dep:user:1', 'dep:user:2'] });
        await store('i:3', { dependencies: ['dep:user:2'] });
        await store('i:4');
        const removed = await invalidate(['dep:user:1']);
        expect(sorted(removed)).toEqual(['i:1', 'i:2']);
        await expectMiss('i:1');
        await expectMiss('i:2');
        await expectHit('i:3');
        await expectHit('i:4');
      });

      it('removes an invalidated entry key and every entry that recorded it as a dependency', async () => {
        await store('child', { dependencies: ['dep:c'] });
        await store('parent', { dependencies: ['child', 'dep:c'] });
        await store('other-parent', { dependencies: ['child'] });
        await store('unrelated', { dependencies: ['dep:u'] });
        const removed = await invalidate(['child']);
        expect(sorted(removed)).toEqual(['child', 'other-parent', 'parent']);
        await expectMiss('child');
        await expectMiss('parent');
        await expectMiss('other-parent');
        await expectHit('unrelated');
      });

      it('does not remove what an invalidated entry depends on, nor siblings sharing its dependencies', async () => {
        await store('leaf', { dependencies: ['dep:shared'] });
        await store('middle', { dependencies: ['leaf', 'dep:shared'] });
        await store('sibling', { dependencies: ['dep:shared'] });
        expect(await invalidate(['middle'])).toEqual(['middle']);
        await expectHit('leaf');
        await expectHit('sibling');
      });

      it('invalidates several keys at once', async () => {
        await store('m:1', { dependencies: ['dep:1'] });
        await store('m:2', { dependencies: ['dep:2'] });
        await store('m:3', { dependencies: ['dep:3'] });
        await store('m:4');
        expect(sorted(await invalidate(['dep:1', 'dep:2', 'm:4']))).toEqual(['m:1', 'm:2', 'm:4']);
        await expectHit('m:3');
      });

      it('answers removed: [] for keys nothing depends on, and for no keys', async () => {
        await store('n:1', { dependencies: ['dep:n'] });
        expect(await invalidate(['dep:nothing', 'no-such-entry'])).toEqual([]);
        expect(await invalidate([])).toEqual([]);
        await expectHit('n:1');
      });

      it('lists each removed entry once even when it is reached by several paths', async () => {
        await store('p:a', { dependencies: ['dep:p'] });
        await store('p:b', { dependencies: ['dep:p'] });
        await store('p:top', { dependencies: ['p:a', 'p:b', 'dep:p'] });
        const removed = await invalidate(['dep:p', 'p:a']);
        expect(sorted(removed)).toEqual(['p:a', 'p:b', 'p:top']);
      });

      it('removes an entry once: a second invalidation of the same key removes nothing', async () => {
        await store('o:1', { dependencies: ['dep:o'] });
        expect(await invalidate(['dep:o'])).toEqual(['o:1']);
        expect(await invalidate(['dep:o'])).toEqual([]);
      });

      it('lets an entry be stored again after its invalidation', async () => {
        await store('r:1', { value: 'before', dependencies: ['dep:r'] });
        await invalidate(['dep:r']);
        await store('r:1', { value: 'after', dependencies: ['dep:r'] });
        expect((await expectHit('r:1')).value).toBe('after');
      });
    });

    describe('transitive invalidation', () => {
      const depth = 50;
      const chainKey = (i: number) => `chain:${i}`;
      const storeChain = async (): Promise<void> => {
        // chain:0 depends on dep:root; chain:i on chain:(i-1) and what it depends on (a closed list, as a caller
        // records its child's key and the child's dependencies).
        for (let i = 0; i < depth; i++) await store(chainKey(i), { value: i, dependencies: [...Array.from({ length: i }, (_, j) => chainKey(j)), 'dep:root'] });
      };

      it(`removes a whole chain of depth ${depth} when its root dependency is invalidated`, async () => {
        await storeChain();
        await store('chain:bystander', { dependencies: ['dep:other'] });
        const removed = await invalidate(['dep:root']);
        expect(removed).toHaveLength(depth);
        expect(sorted(removed)).toEqual(sorted(Array.from({ length: depth }, (_, i) => chainKey(i))));
        for (let i = 0; i < depth; i++) await expectMiss(chainKey(i));
        await expectHit('chain:bystander');
      });

      it('removes a chain from the invalidated link upwards and keeps the links below it', async () => {
        await storeChain();
        const removed = await invalidate([chainKey(25)]);
        expect(sorted(removed)).toEqual(sorted(Array.from({ length: depth - 25 }, (_, i) => chainKey(25 + i))));
        for (let i = 0; i < 25; i++) expect((await expectHit(chainKey(i))).value).toBe(i);
        for (let i = 25; i < depth; i++) await expectMiss(chainKey(i));
      });

      it('terminates on a cycle (A depends on B, B on A) and removes both', async () => {
        await store('cycle:a', { dependencies: ['cycle:b', 'cycle:a'] });
        await store('cycle:b', { dependencies: ['cycle:a', 'cycle:b'] });
        await store('cycle:outside', { dependencies: ['dep:outside'] });
        expect(sorted(await invalidate(['cycle:a']))).toEqual(['cycle:a', 'cycle:b']);
        await expectMiss('cycle:a');
        await expectMiss('cycle:b');
        await expectHit('cycle:outside');
      });

      it('terminates on a cycle reached through an outside dependency and removes the whole cycle', async () => {
        // Closed lists: each member of the ring names the others and what they depend on.
        const ring = ['ring:1', 'ring:2', 'ring:3', 'dep:ring'];
        await store('ring:1', { dependencies: ring });
        await store('ring:2', { dependencies: ring });
        await store('ring:3', { dependencies: ring });
        await store('ring:tail', { dependencies: ring });
        expect(sorted(await invalidate(['dep:ring']))).toEqual(['ring:1', 'ring:2', 'ring:3', 'ring:tail']);
        for (const key of ['ring:1', 'ring:2', 'ring:3', 'ring:tail']) await expectMiss(key);
      });

      it('terminates on an entry that depends on its own key', async () => {
        await store('self', { dependencies: ['self', 'dep:self'] });
        expect(await invalidate(['dep:self'])).toEqual(['self']);
        await expectMiss('self');
      });

      it('removes a fan-out of 10,000 entries sharing one dependency and lists them all', HEAVY_TEST, async () => {
        const count = 10_000;
        const keys = Array.from({ length: count }, (_, i) => `fan:${i}`);
        for (const key of keys) await store(key, { dependencies: ['dep:fan'] });
        await store('fan:bystander', { dependencies: ['dep:not-fan'] });
        const removed = await invalidate(['dep:fan']);
        expect(removed).toHaveLength(count);
        expect(new Set(removed).size).toBe(count);
        expect(sorted(removed)).toEqual(sorted(keys));
        for (const key of keys) {
          const result = await lookup(key);
          if (result.hit) expect.fail(`${key} survived the invalidation`);
          backend.abandon(result.token);
        }
        await expectHit('fan:bystander');
      });

      it('cascades through a fan-out whose members have dependents of their own', HEAVY_TEST, async () => {
        const expected: string[] = [];
        for (let i = 0; i < 100; i++) {
          await store(`tree:${i}`, { dependencies: ['dep:tree'] });
          expected.push(`tree:${i}`);
          for (let j = 0; j < 10; j++) {
            await store(`tree:${i}:${j}`, { dependencies: [`tree:${i}`, 'dep:tree'] });
            expected.push(`tree:${i}:${j}`);
          }
        }
        const removed = await invalidate(['dep:tree']);
        expect(sorted(removed)).toEqual(sorted(expected));
        await expectMiss('tree:0:0');
        await expectMiss('tree:99:9');
      });
    });

    describe('invalidation with preserveRoots', () => {
      it('keeps the root entries but removes their dependents, transitively', async () => {
        await store('root', { value: 'fresh', dependencies: ['dep:root'] });
        await store('root:parent', { dependencies: ['root', 'dep:root'] });
        await store('root:grandparent', { dependencies: ['root:parent', 'root', 'dep:root'] });
        await store('root:unrelated', { dependencies: ['dep:unrelated'] });
        const removed = await invalidate(['root'], true);
        expect(sorted(removed)).toEqual(['root:grandparent', 'root:parent']);
        expect((await expectHit('root')).value).toBe('fresh');
        await expectMiss('root:parent');
        await expectMiss('root:grandparent');
        await expectHit('root:unrelated');
      });

      it('keeps a root that is part of a cycle while removing the rest of the cycle', async () => {
        await store('pr:a', { dependencies: ['pr:b', 'pr:a'] });
        await store('pr:b', { dependencies: ['pr:a', 'pr:b'] });
        expect(await invalidate(['pr:a'], true)).toEqual(['pr:b']);
        await expectHit('pr:a');
        await expectMiss('pr:b');
      });

      it('still refuses an in-flight write that depends on a preserved root', async () => {
        await store('pr:root');
        const token = await missToken('pr:dependent');
        await invalidate(['pr:root'], true);
        expect(await set('pr:dependent', { dependencies: ['pr:root'] }, token)).toBe('stale');
        await expectMiss('pr:dependent');
        await expectHit('pr:root');
      });
    });

    describe('check (certifying a value that is not stored)', () => {
      const check = async (token: unknown, key: string, dependencies: readonly string[]): Promise<boolean> => {
        expect(backend.check, `${name} must implement check() to let joiners share unstored values and fail-safe serve`).toBeTypeOf('function');
        return await backend.check!(token, key, dependencies);
      };

      it('certifies a token when nothing it depends on was invalidated, and the token stays usable', async () => {
        const token = await missToken('check:1');
        await invalidate(['dep:unrelated-to-check']);
        expect(await check(token, 'check:1', ['dep:c1'])).toBe(true);
        expect(await set('check:1', { dependencies: ['dep:c1'] }, token)).toBe('stored');
      });

      it('refuses a token whose dependency or own key was invalidated since it was issued, and writes nothing', async () => {
        const token = await missToken('check:2');
        await invalidate(['dep:c2']);
        expect(await check(token, 'check:2', ['dep:c2'])).toBe(false);
        const other = await missToken('check:3');
        await invalidate(['check:3']);
        expect(await check(other, 'check:3', [])).toBe(false);
        backend.abandon(token);
        backend.abandon(other);
        await expectMiss('check:2');
      });

      it('refuses a token issued before clear()', async () => {
        const token = await missToken('check:4');
        await backend.clear();
        expect(await check(token, 'check:4', [])).toBe(false);
        backend.abandon(token);
      });

      it('does not certify a token of another backend instance', async () => {
        expect(await check({ foreign: true }, 'check:5', [])).toBe(false);
      });
    });

    describe('holds (InvalidateOptions.holdMs and release, used by transactions)', () => {
      const hold = async (keys: readonly string[], holdMs: number) => [...(await backend.invalidate(keys, { holdMs })).removed];
      const release = async (keys: readonly string[]) => [...(await backend.invalidate(keys, { release: true })).removed];

      it('removes the entries at once and refuses stores that depend on a held key, even with tokens taken after it', async () => {
        await store('hold:a', { dependencies: ['dep:held'] });
        expect(await hold(['dep:held'], 20 * unit)).toEqual(['hold:a']);
        await expectMiss('hold:a');
        const token = await missToken('hold:a');
        if (backend.check !== undefined) expect(await backend.check(token, 'hold:a', ['dep:held'])).toBe(false);
        expect(await set('hold:a', { dependencies: ['dep:held'] }, token)).toBe('stale');
        // The held key itself, as an entry key.
        await hold(['hold:self'], 20 * unit);
        expect(await set('hold:self', {}, await missToken('hold:self'))).toBe('stale');
        // Unrelated keys are not held.
        await store('hold:bystander', { dependencies: ['dep:other'] });
      });

      it('keeps the hold through a later invalidation without release, and ends it on release', async () => {
        await hold(['dep:h2'], 20 * unit);
        await invalidate(['dep:h2']);
        expect(await set('hold:b', { dependencies: ['dep:h2'] }, await missToken('hold:b'))).toBe('stale');
        const during = await missToken('hold:c');
        await release(['dep:h2']);
        // A token taken while held is refused after the release too (the release invalidates again)…
        expect(await set('hold:c', { dependencies: ['dep:h2'] }, during)).toBe('stale');
        // …and one taken after it stores.
        await store('hold:b', { dependencies: ['dep:h2'] });
        await expectHit('hold:b');
      });

      it('ends a hold by itself after holdMs (a transaction whose process died)', async () => {
        await hold(['dep:h3'], 2 * unit);
        expect(await set('hold:d', { dependencies: ['dep:h3'] }, await missToken('hold:d'))).toBe('stale');
        await elapse(3 * unit);
        await store('hold:d', { dependencies: ['dep:h3'] });
        await expectHit('hold:d');
      });
    });

    describe('race-free stores', () => {
      it('refuses a store whose dependency was invalidated after the miss, and stores nothing', async () => {
        const token = await missToken('race:1');
        await invalidate(['dep:race']);
        expect(await set('race:1', { value: 'stale', dependencies: ['dep:race'] }, token)).toBe('stale');
        await expectMiss('race:1');
      });

      it('refuses a store whose own key was invalidated after the miss', async () => {
        const token = await missToken('race:2');
        await invalidate(['race:2']);
        expect(await set('race:2', { value: 'stale' }, token)).toBe('stale');
        await expectMiss('race:2');
      });

      it('refuses a store whose dependency entry was removed by a cascade after the miss', async () => {
        await store('race:child', { dependencies: ['dep:deep'] });
        const token = await missToken('race:3');
        await invalidate(['dep:deep']);
        expect(await set('race:3', { dependencies: ['race:child', 'dep:deep'] }, token)).toBe('stale');
        await expectMiss('race:3');
      });

      it('refuses a store when one of several dependencies was invalidated', async () => {
        const token = await missToken('race:4');
        await invalidate(['dep:b']);
        expect(await set('race:4', { dependencies: ['dep:a', 'dep:b', 'dep:c'] }, token)).toBe('stale');
        await expectMiss('race:4');
      });

      it('stores when only an unrelated key was invalidated after the miss', async () => {
        await store('race:bystander', { dependencies: ['dep:unrelated'] });
        const token = await missToken('race:5');
        expect(await invalidate(['dep:unrelated'])).toEqual(['race:bystander']);
        expect(await set('race:5', { value: 'ok', dependencies: ['dep:mine'] }, token)).toBe('stored');
        expect((await expectHit('race:5')).value).toBe('ok');
      });

      it('stores with a token issued after the invalidation of its dependency', async () => {
        await invalidate(['dep:before']);
        const token = await missToken('race:6');
        expect(await set('race:6', { dependencies: ['dep:before'] }, token)).toBe('stored');
        await expectHit('race:6');
      });

      it('refuses the older of two overlapping computations and keeps the newer one', async () => {
        const older = await missToken('race:7');
        await invalidate(['dep:7']);
        const newer = await backend.begin('race:7');
        expect(await set('race:7', { value: 'newer', dependencies: ['dep:7'] }, newer)).toBe('stored');
        expect(await set('race:7', { value: 'older', dependencies: ['dep:7'] }, older)).toBe('stale');
        expect((await expectHit('race:7')).value).toBe('newer');
      });

      it('does not let a stale write remove or replace the current entry', async () => {
        await store('race:8', { value: 'current', dependencies: ['dep:8'] });
        const token = await backend.begin('race:8');
        await invalidate(['race:8']);
        await store('race:8', { value: 'recomputed', dependencies: ['dep:8'] });
        expect(await set('race:8', { value: 'late' }, token)).toBe('stale');
        expect((await expectHit('race:8')).value).toBe('recomputed');
      });

      it('keeps refusing a stale write after other computations finished in between', async () => {
        const slow = await missToken('race:slow');
        const fast = await missToken('race:fast');
        await invalidate(['dep:slow']);
        expect(await set('race:fast', {}, fast)).toBe('stored');
        const other = await backend.begin('race:other');
        backend.abandon(other);
        expect(await set('race:slow', { dependencies: ['dep:slow'] }, slow)).toBe('stale');
        await expectMiss('race:slow');
      });

      it('judges each in-flight token against the invalidations that happened after it was issued', async () => {
        const t1 = await missToken('race:t1');
        await invalidate(['dep:first']);
        const t2 = await missToken('race:t2');
        await invalidate(['dep:second']);
        const t3 = await missToken('race:t3');
        expect(await set('race:t3', { dependencies: ['dep:first', 'dep:second'] }, t3)).toBe('stored');
        expect(await set('race:t2', { dependencies: ['dep:first'] }, t2)).toBe('stored');
        expect(await set('race:t1', { dependencies: ['dep:second'] }, t1)).toBe('stale');
        await expectHit('race:t2');
        await expectMiss('race:t1');
      });

      it('treats a begin() token like a miss token: stale after an invalidation of a dependency', async () => {
        await store('begin:1', { value: 'cached', dependencies: ['dep:begin'] });
        const token = await backend.begin('begin:1');
        await invalidate(['dep:begin']);
        expect(await set('begin:1', { value: 'refreshed', dependencies: ['dep:begin'] }, token)).toBe('stale');
        await expectMiss('begin:1');
      });

      it('treats a begin() token like a miss token: stale after an invalidation of its key', async () => {
        const token = await backend.begin('begin:2');
        await invalidate(['begin:2']);
        expect(await set('begin:2', {}, token)).toBe('stale');
        await expectMiss('begin:2');
      });

      it('stores with a begin() token over a live entry when nothing related was invalidated', async () => {
        await store('begin:3', { value: 'cached', dependencies: ['dep:b3'] });
        const token = await backend.begin('begin:3');
        await invalidate(['dep:unrelated']);
        expect(await set('begin:3', { value: 'refreshed', dependencies: ['dep:b3'] }, token)).toBe('stored');
        expect((await expectHit('begin:3')).value).toBe('refreshed');
      });
    });

    describe('abandon', () => {
      it('releases a miss token without storing anything', async () => {
        const token = await missToken('ab:1');
        backend.abandon(token);
        await expectMiss('ab:1');
      });

      it('releases a begin() token and leaves the live entry as it was', async () => {
        await store('ab:2', { value: 'kept' });
        backend.abandon(await backend.begin('ab:2'));
        expect((await expectHit('ab:2')).value).toBe('kept');
      });

      it('does not affect other tokens in flight: they still store, or are still refused when stale', async () => {
        const abandoned = await missToken('ab:3');
        const fresh = await missToken('ab:4');
        const stale = await missToken('ab:5');
        await invalidate(['dep:ab']);
        backend.abandon(abandoned);
        expect(await set('ab:4', { dependencies: ['dep:other'] }, fresh)).toBe('stored');
        expect(await set('ab:5', { dependencies: ['dep:ab'] }, stale)).toBe('stale');
        await expectHit('ab:4');
        await expectMiss('ab:5');
        await expectMiss('ab:3');
      });
    });

    describe('clear', () => {
      it('removes every entry', async () => {
        await store('c:1', { dependencies: ['dep:c'] });
        await store('c:2', { expiresAt: now() + 100 * unit });
        await store('c:3', { sliding: 50 * unit });
        await backend.clear();
        await expectMiss('c:1');
        await expectMiss('c:2');
        await expectMiss('c:3');
        expect(await invalidate(['dep:c'])).toEqual([]);
      });

      it('makes tokens issued before it stale', async () => {
        const missed = await missToken('c:4');
        const begun = await backend.begin('c:5');
        await backend.clear();
        expect(await set('c:4', {}, missed)).toBe('stale');
        expect(await set('c:5', {}, begun)).toBe('stale');
        await expectMiss('c:4');
        await expectMiss('c:5');
      });

      it('lets tokens issued after it store', async () => {
        await store('c:6', { value: 'before' });
        await backend.clear();
        await store('c:6', { value: 'after', dependencies: ['dep:c6'] });
        expect((await expectHit('c:6')).value).toBe('after');
        expect(await invalidate(['dep:c6'])).toEqual(['c:6']);
      });

      it('clears an empty backend without error', async () => {
        await backend.clear();
        await expectMiss('c:7');
      });
    });

    describe('dispose', () => {
      it('disposes of a backend holding entries and tokens in flight', async () => {
        await store('d:1', { dependencies: ['dep:d'], expiresAt: now() + 10 * unit });
        await store('d:2', { sliding: 5 * unit });
        const pending = await missToken('d:3');
        disposedByTest = true;
        await backend.dispose();
        // The token's computation finishes after dispose: releasing it must not throw.
        expect(() => backend.abandon(pending)).not.toThrow();
      });
    });

    describe('values', () => {
      const baseline: [label: string, value: unknown][] = [
        ['a plain object', { id: 7, name: 'seven', active: true, score: -1.25, tags: ['a', 'b'] }],
        ['a nested object', { a: { b: { c: { d: [1, { e: 'deep' }] } } } }],
        ['an array of mixed values', [1, 'two', null, true, { three: 3 }, [4]]],
        ['an empty object', {}],
        ['an empty array', []],
        ['null', null],
        ['undefined', undefined],
        ['zero', 0],
        ['a negative float', -123.456],
        ['a large integer', Number.MAX_SAFE_INTEGER],
        ['false', false],
        ['an empty string', ''],
        ['a unicode string', 'naïve café — 日本語 🎉'],
        ['a 100 kB string', 'x'.repeat(100_000)],
      ];

      it.each(baseline)('round-trips %s', async (_label, value) => {
        await store('val', { value, async: true });
        const hit = await expectHit('val');
        expect(hit.value).toStrictEqual(value);
        expect(hit.async).toBe(true);
      });

      if (options.richValues === true) {
        const rich: [label: string, value: unknown][] = [
          ['a Date', new Date('2024-02-29T12:34:56.789Z')],
          ['a Map', new Map<string, unknown>([['a', 1], ['b', { c: 2 }]])],
          ['a Set', new Set([1, 'two', 3])],
          ['a BigInt', 12_345_678_901_234_567_890n],
          ['an object holding a Date and undefined', { at: new Date(0), missing: undefined, list: [new Date(1)] }],
        ];

        it.each(rich)('round-trips %s with its type', async (_label, value) => {
          await store('rich', { value });
          const hit = await expectHit('rich');
          expect(hit.value).toStrictEqual(value);
          if (value instanceof Date) expect(hit.value).toBeInstanceOf(Date);
        });
      }
    });
  });
}
