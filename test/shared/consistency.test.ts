// Randomized, model-based consistency test on the memory backend, under a fake clock (the model and its
// invariants: ../support/consistency-model.ts). Seeds are fixed so a failure reproduces: rerun one with
// CONSISTENCY_SEEDS=1234 npx vitest run --project legacy test/shared/consistency.test.ts
import { describe, expect, it } from 'vitest';
import { CachingService, MemoryBackend, type CachingBackend } from 'aspect-cache';
import { FakeClock } from 'aspect-cache/testing';
import {
  DataSource,
  DeafBackend,
  defineModel,
  ExpiryModel,
  FreshTokenBackend,
  localActor,
  ObservedBackend,
  Rng,
  runModel,
  summarize,
  type MethodOptions,
  type RunReport,
  type WriteKind,
} from '../support/consistency-model.js';

const SEEDS = process.env.CONSISTENCY_SEEDS ? process.env.CONSISTENCY_SEEDS.split(',').map(Number) : [1, 2, 3];
const OPERATIONS = Number(process.env.CONSISTENCY_OPERATIONS ?? 10_000);

/** No expiry: only invalidation decides what is fresh. */
const PLAIN: MethodOptions = {};

/** TTLs, sliding windows (alone and under a TTL), fail-safe with and without a soft timeout. */
const TIMED: MethodOptions = {
  getRow: { ttl: 1_000, failSafe: { maxStaleness: 500 } },
  getPair: { ttl: 2_000, slidingExpiration: 300 },
  getGroup: { ttl: 1_500, failSafe: { maxStaleness: 700, softTimeout: 50 } },
  midA: { slidingExpiration: 400 },
  midB: { ttl: 5_000 },
  top: { ttl: 3_000, failSafe: { maxStaleness: 1_000, softTimeout: 5 } },
};
const TIMED_FAILSAFE = { getRow: 500, getGroup: 700, top: 1_000 };

/** SLIDING's parts of TIMED (case 15 of issue 8) taken out: TTLs and fail-safe only. */
const TIMED_NO_SLIDING: MethodOptions = { ...TIMED, getPair: { ttl: 2_000 }, midA: { ttl: 800 } };
/** Fail-safe only on parents, so that their recomputation fails whenever a leaf's data read fails. */
const PARENT_FAILSAFE: MethodOptions = { ...TIMED_NO_SLIDING, getRow: { ttl: 1_000 } };
const PARENT_FAILSAFE_WINDOWS = { getGroup: 700, top: 1_000 };
/** Writers that invalidate (every kind but refreshCall). */
const INVALIDATING: readonly WriteKind[] = ['invalidate', 'decorator', 'invalidateCall'];

type Wrap = (backend: CachingBackend, expiry: ExpiryModel) => CachingBackend;
const observed: Wrap = (backend, expiry) => new ObservedBackend(backend, expiry);

/** One run on `services` CachingServices sharing one MemoryBackend (wrapped by `wrap`). */
async function runMemory(seed: number, services: number, options: MethodOptions, { wrap = observed, failSafe = {}, faults = { hold: 0.3, fail: 0.05 }, writeKinds }: { wrap?: Wrap; failSafe?: Record<string, number>; faults?: { hold: number; fail: number }; writeKinds?: readonly WriteKind[] } = {}): Promise<RunReport> {
  const clock = new FakeClock();
  const expiry = new ExpiryModel(() => clock.now(), 0);
  const backend = wrap(new MemoryBackend({ clock }), expiry);
  const ds = new DataSource(new Rng(seed));
  const Model = defineModel(options);
  const env = { read: (r: number) => ds.read(r), write: (r: number) => ds.write(r), now: () => clock.now(), tag: 'p' };
  const actors = Array.from({ length: services }, (_, i) => {
    const service = new CachingService({ backend, clock, telemetry: false });
    service.on('error', () => undefined);
    return localActor(`service${i}`, service, new Model(env, service), ds);
  });
  return runModel({
    seed,
    operations: OPERATIONS,
    concurrency: 24,
    actors,
    ds,
    clock: { now: () => clock.now(), advance: async ms => clock.advance(ms) },
    expiry,
    failSafe,
    faults,
    clockSteps: [1, 50, 200, 450, 900],
    settleMs: 2_000,
    ...(writeKinds ? { writeKinds } : {}),
  });
}

// Each run takes about a second; one that finds calls that never settle waits settleMs for them.
describe('consistency model, memory backend', { timeout: 30_000 }, () => {
  describe('one service (baseline)', () => {
    it.each(SEEDS)('no violations without expiry, seed %i', async seed => {
      const report = await runMemory(seed, 1, PLAIN, { writeKinds: INVALIDATING });
      expect(report.counts, summarize(report)).toEqual({});
      expect(report.calls).toBeGreaterThan(5_000);
      expect(report.writes).toBeGreaterThan(1_000);
      expect(report.failedCalls).toBeGreaterThan(0);
    });

    it.each(SEEDS)('no violations with TTLs and fail-safe, seed %i', async seed => {
      const report = await runMemory(seed, 1, TIMED_NO_SLIDING, { failSafe: TIMED_FAILSAFE, writeKinds: INVALIDATING });
      expect(report.counts, summarize(report)).toEqual({});
    });

    it.each(SEEDS)('no violations with fail-safe parents over failing leaves, seed %i', async seed => {
      const report = await runMemory(seed, 1, PARENT_FAILSAFE, { failSafe: PARENT_FAILSAFE_WINDOWS, writeKinds: INVALIDATING, faults: { hold: 0.3, fail: 0.1 } });
      expect(report.counts, summarize(report)).toEqual({});
    });

    it.each(SEEDS)('no violations with sliding expiration, seed %i', async seed => {
      const report = await runMemory(seed, 1, TIMED, { failSafe: TIMED_FAILSAFE, writeKinds: INVALIDATING });
      expect(report.counts, summarize(report)).toEqual({});
    });

    it.each(SEEDS)('no violations with refreshCall writers, seed %i', async seed => {
      const report = await runMemory(seed, 1, PLAIN);
      expect(report.counts, summarize(report)).toEqual({});
    });

    it('a refreshCall racing an older computation of the same key leaves the refreshed value stored (shrunk from the model)', async () => {
      const ds = new DataSource(new Rng(1));
      const Model = defineModel({});
      const service = new CachingService({ backend: new MemoryBackend(), telemetry: false });
      const model = new Model({ read: r => ds.read(r), write: r => ds.write(r), now: () => 0, tag: 'p' }, service);
      ds.faults = { hold: 1, fail: 0 };
      const old = model.getRow(4); // reads version 1 and is held open
      await Promise.resolve();
      ds.faults = { hold: 0, fail: 0 };
      ds.write(4); // version 2
      const refreshed = service.refreshCall(() => model.getRow(4));
      ds.releaseAll();
      expect((await old).row).toEqual({ r: 4, v: 1 }); // a call that was running returns what it computed
      expect((await refreshed).row).toEqual({ r: 4, v: 2 });
      expect((await model.getRow(4)).row).toEqual({ r: 4, v: 2 });
    });
  });

  describe('two services sharing one MemoryBackend', () => {
    it.each(SEEDS)('no violations without expiry, invalidating writers, seed %i', async seed => {
      const report = await runMemory(seed, 2, PLAIN, { writeKinds: INVALIDATING });
      expect(report.counts, summarize(report)).toEqual({});
    });

    it.each(SEEDS)('no violations without expiry, all writers, seed %i', async seed => {
      const report = await runMemory(seed, 2, PLAIN);
      expect(report.counts, summarize(report)).toEqual({});
    });

    it.each(SEEDS)('no violations with TTLs, sliding expiration and fail-safe, seed %i', async seed => {
      const report = await runMemory(seed, 2, TIMED, { failSafe: TIMED_FAILSAFE });
      expect(report.counts, summarize(report)).toEqual({});
    });
  });

  describe('the checker catches a broken setup', () => {
    // The same seed and setup with a correct backend (the control) finds nothing: what is found is the break.
    it('the control: seed 7 on a correct backend finds nothing', async () => {
      const report = await runMemory(7, 1, PLAIN, { writeKinds: INVALIDATING });
      expect(report.counts, summarize(report)).toEqual({});
    });

    it('a backend that stores with a fresh token (taken at store time): stale values stored', async () => {
      const report = await runMemory(7, 1, PLAIN, { wrap: (b, e) => new FreshTokenBackend(b, e), writeKinds: INVALIDATING });
      expect(report.counts.ryw ?? 0, summarize(report)).toBeGreaterThan(0);
      expect(report.counts.sweep ?? 0, summarize(report)).toBeGreaterThan(0);
    });

    it('a backend that ignores invalidations: writes never show', async () => {
      const report = await runMemory(7, 1, PLAIN, { wrap: (b, e) => new DeafBackend(b, e), writeKinds: INVALIDATING });
      expect(report.counts.ryw ?? 0, summarize(report)).toBeGreaterThan(0);
      expect(report.counts.sweep ?? 0, summarize(report)).toBeGreaterThan(0);
    });

    it('a model that serves values past their TTL is reported', async () => {
      // Expiry checks against a model that believes TTLs are 10× shorter than the ones the methods use.
      const clock = new FakeClock();
      const expiry = new ExpiryModel(() => clock.now(), 0);
      const shrink: Wrap = (b, e) =>
        new (class extends ObservedBackend {
          override set(key: string, entry: Parameters<CachingBackend['set']>[1], token: unknown) {
            e.stored(key, { ...entry, expiresAt: clock.now() + (entry.expiresAt - clock.now()) / 10 }, clock.now());
            return this.inner.set(key, entry, token);
          }
        })(b, e);
      const backend = shrink(new MemoryBackend({ clock }), expiry);
      const ds = new DataSource(new Rng(7));
      const Model = defineModel({ getRow: { ttl: 1_000 } });
      const service = new CachingService({ backend, clock, telemetry: false });
      const env = { read: (r: number) => ds.read(r), write: (r: number) => ds.write(r), now: () => clock.now(), tag: 'p' };
      const report = await runModel({
        seed: 7,
        operations: 3_000,
        concurrency: 8,
        actors: [localActor('service0', service, new Model(env, service), ds)],
        ds,
        clock: { now: () => clock.now(), advance: async ms => clock.advance(ms) },
        expiry,
        faults: { hold: 0.2, fail: 0 },
        clockSteps: [50, 200],
      });
      expect(report.counts.expiry ?? 0, summarize(report)).toBeGreaterThan(0);
      expect(report.counts.ryw ?? 0, summarize(report)).toBe(0);
    });
  });
});
