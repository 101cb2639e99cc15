// Randomized, model-based leak test of vary-by contexts (SPEC §11; the model and its invariants:
// ../support/vary-by-model.ts): no value, at any nesting level, holds data of a tenant, user or role view
// other than the caller's, whatever the interleaving, and values are current at quiet points. On one
// MemoryBackend (one service, and two services sharing it; badge(i) is then a synchronous cached method) and on
// two LayeredBackends over one shared L2 with the in-process test bus. Seeds are fixed so a failure
// reproduces: rerun one with VARY_SEEDS=1234 VARY_OPERATIONS=20000 npx vitest run --project legacy test/shared/vary-by-model.test.ts
import { writeFileSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { LayeredBackend, MemoryBackend, type CachingBackend } from 'aspect-cache';
import { TestBusNetwork } from 'aspect-cache/testing';
import {
  defineVaryModel,
  RequestScope,
  requestContexts,
  Rng,
  runVaryModel,
  summarizeVary,
  VaryDataSource,
  varyActors,
  type VaryActor,
  type VaryModelOptions,
  type VaryRunReport,
} from '../support/vary-by-model.js';

const SEEDS = process.env.VARY_SEEDS ? process.env.VARY_SEEDS.split(',').map(Number) : [1, 2, 3];
/** Per seed and setup; the default 3 seeds × 4,000 give 12,000 operations per setup and decorator mode. */
const OPERATIONS = Number(process.env.VARY_OPERATIONS ?? 4_000);
/** VARY_REPORT=1 prints each run's numbers (calls, values checked, hits, joins, expected failures). */
const REPORT = process.env.VARY_REPORT !== undefined;
/** VARY_TRACE=1 writes the steps of each run with violations to /tmp/vary-by-<setup>-<seed>.txt. */
const TRACE = process.env.VARY_TRACE !== undefined;
const HEARTBEAT_MS = 20;

const running: VaryActor[] = [];
afterEach(async () => {
  await Promise.all(running.splice(0).map(a => a.service.dispose()));
});

interface Setup {
  /** Names the trace file. */
  readonly name?: string;
  readonly services?: number;
  readonly backend?: (i: number) => CachingBackend;
  readonly model?: VaryModelOptions;
  /** Replaces some providers of the correct wiring (to break it on purpose). */
  readonly contexts?: (scope: RequestScope) => Record<string, (param?: string) => unknown>;
  readonly crossActorRyw?: boolean;
  readonly quiesce?: () => Promise<void>;
  readonly operations?: number;
}

async function run(seed: number, setup: Setup = {}): Promise<VaryRunReport> {
  const scope = new RequestScope();
  const ds = new VaryDataSource(new Rng(seed));
  const shared = new MemoryBackend();
  const actors = varyActors(setup.services ?? 1, setup.backend ?? (() => shared), {
    ds,
    scope,
    // badge(i) is a synchronous cached method where the backend is synchronous (the shared MemoryBackend).
    model: defineVaryModel({ syncBadge: setup.backend === undefined, ...setup.model }),
    contexts: { ...requestContexts(scope), ...setup.contexts?.(scope) },
  });
  running.push(...actors);
  const trace: string[] | undefined = TRACE ? [] : undefined;
  const report = await runVaryModel({
    seed,
    operations: setup.operations ?? OPERATIONS,
    concurrency: 24,
    actors,
    ds,
    scope,
    faults: { hold: 0.3, fail: 0.06 },
    ...(setup.crossActorRyw === undefined ? {} : { crossActorRyw: setup.crossActorRyw }),
    ...(setup.quiesce ? { quiesce: setup.quiesce } : {}),
    ...(trace ? { trace } : {}),
  });
  if (REPORT) console.log(summarizeVary(report));
  if (trace && report.violations.length > 0) writeFileSync(`/tmp/vary-by-${setup.name ?? 'run'}-${seed}.txt`, trace.join('\n'));
  return report;
}

/** What every correct run must show besides no violations: the driver did exercise what it claims. */
function expectExercised(report: VaryRunReport): void {
  expect(report.calls, summarizeVary(report)).toBeGreaterThan(OPERATIONS / 2);
  expect(report.writes).toBeGreaterThan(OPERATIONS / 10);
  expect(report.bursts).toBeGreaterThan(0);
  expect(report.failedCalls).toBeGreaterThan(0);
  expect(report.contextErrors).toBeGreaterThan(0);
  expect(report.sweeps).toBeGreaterThan(1);
  expect(report.hits).toBeGreaterThan(report.misses);
  expect(report.joins, 'concurrent calls joined a running computation (single-flight) at least once').toBeGreaterThan(0);
}

const sleep = (ms: number) => new Promise<void>(resolve => setTimeout(resolve, ms));

/** The shared L2 seen by one process: disposing a process leaves it alone. */
function unowned(inner: CachingBackend): CachingBackend {
  return new Proxy(inner, {
    get: (target, p) => {
      if (p === 'dispose') return async () => undefined;
      const value: unknown = Reflect.get(target, p, target);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}

describe('vary-by model: no tenant, user or role leaks', { timeout: 60_000 }, () => {
  describe('MemoryBackend', () => {
    it.each(SEEDS)('one service: no violations, seed %i', async seed => {
      const report = await run(seed);
      expect(report.counts, summarizeVary(report)).toEqual({});
      expectExercised(report);
    });

    it.each(SEEDS)('two services sharing one MemoryBackend: no violations, seed %i', async seed => {
      const report = await run(seed, { services: 2 });
      expect(report.counts, summarizeVary(report)).toEqual({});
      expectExercised(report);
    });
  });

  describe('LayeredBackend over one L2, two processes on the test bus', () => {
    it.each(SEEDS)('no violations, seed %i', async seed => {
      const l2 = new MemoryBackend();
      const network = new TestBusNetwork({ heartbeatMs: HEARTBEAT_MS });
      const layered = [0, 1].map(i => new LayeredBackend({ l2: unowned(l2), bus: network.connect(`p${i}`) }));
      const report = await run(seed, {
        name: 'layered',
        services: 2,
        backend: i => layered[i]!,
        // Another process's L1 hears of an invalidation through the bus: its writes are checked at sweeps,
        // after the messages had time to arrive (a healthy bus: no loss, no delay beyond a timer turn).
        crossActorRyw: false,
        quiesce: () => sleep(3 * HEARTBEAT_MS),
      });
      expect(report.counts, summarizeVary(report)).toEqual({});
      expectExercised(report);
    });
  });

  describe('the checker catches a broken setup', () => {
    // The same seed with the correct wiring (the control) finds nothing: what is found is the break.
    it('the control: seed 7 with the correct wiring finds nothing', async () => {
      const report = await run(7, { operations: 3_000 });
      expect(report.counts, summarizeVary(report)).toEqual({});
    });

    it('a method that reads the roles and tenant from the AsyncLocalStorage directly (not readContext): leaks found', async () => {
      const report = await run(7, { operations: 3_000, model: { readsRequestDirectly: true } });
      expect(report.counts.role ?? 0, summarizeVary(report)).toBeGreaterThan(0);
      expect(report.counts.tenant ?? 0, summarizeVary(report)).toBeGreaterThan(0);
    });

    it("a 'tenant' provider that ignores the request (keys never differ by tenant): leaks found", async () => {
      const report = await run(7, { operations: 3_000, contexts: () => ({ tenant: () => 'everyone' }) });
      expect(report.counts.tenant ?? 0, summarizeVary(report)).toBeGreaterThan(0);
    });

    it("a 'user' provider that ignores the request: another user's preferences found", async () => {
      const report = await run(7, { operations: 3_000, contexts: () => ({ user: () => 'everyone' }) });
      expect(report.counts.user ?? 0, summarizeVary(report)).toBeGreaterThan(0);
    });
  });
});
