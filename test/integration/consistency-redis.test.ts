// Randomized, model-based consistency test on real Redis (the model and its invariants:
// ../support/consistency-model.ts): two CachingServices, each with its own RedisBackend on its own ioredis
// connection, sharing one key prefix (as two processes do), on the standalone server (with and without
// `lock`) and on the 3-master cluster. Real, short TTLs; the expiry checks allow SLACK_MS for Redis measuring
// time on its own clock. Seeds are fixed; rerun one with
// CONSISTENCY_SEEDS=1234 npx vitest run --project redis test/integration/consistency-redis.test.ts
import { expect, it } from 'vitest';
import { CachingService } from '../../src/index.js';
import { RedisBackend } from '../../src/redis.js';
import { DataSource, defineModel, ExpiryModel, localActor, ObservedBackend, Rng, runModel, summarize, type MethodOptions, type RunReport } from '../support/consistency-model.js';
import { purgePrefix } from './support/backend-support.js';
import { clusterClient, describeRedis, ready, standaloneClient, uniquePrefix, type RedisClient } from './support/redis.js';

const SEEDS = process.env.CONSISTENCY_SEEDS ? process.env.CONSISTENCY_SEEDS.split(',').map(Number) : [1, 2];
const OPERATIONS = Number(process.env.CONSISTENCY_OPERATIONS ?? 10_000);
const SLACK_MS = 30;

/** Real, short TTLs; sliding windows; fail-safe with and without a soft timeout. */
const TIMED: MethodOptions = {
  getRow: { ttl: 300, failSafe: { maxStaleness: 200 } },
  getPair: { ttl: 500, slidingExpiration: 120 },
  getGroup: { ttl: 400 },
  midA: { slidingExpiration: 150 },
  midB: { ttl: 1_000 },
  top: { ttl: 700, failSafe: { maxStaleness: 300, softTimeout: 5 } },
};
const TIMED_FAILSAFE = { getRow: 200, top: 300 };

async function runRedis(seed: number, connect: () => RedisClient, { lock = false, options = TIMED }: { lock?: boolean; options?: MethodOptions } = {}): Promise<RunReport> {
  const keyPrefix = uniquePrefix('consistency');
  const expiry = new ExpiryModel(() => Date.now(), SLACK_MS);
  const ds = new DataSource(new Rng(seed));
  const Model = defineModel(options);
  const env = { read: (r: number) => ds.read(r), write: (r: number) => ds.write(r), now: () => Date.now(), tag: 'p' };
  const clients: RedisClient[] = [];
  const actors = [];
  for (let i = 0; i < 2; i++) {
    const client = connect();
    await ready(client);
    clients.push(client);
    const backend = new ObservedBackend(new RedisBackend({ client, keyPrefix, lock }), expiry);
    const service = new CachingService({ backend, telemetry: false });
    service.on('error', () => undefined);
    actors.push(localActor(`service${i}`, service, new Model(env, service), ds));
  }
  try {
    return await runModel({
      seed,
      operations: OPERATIONS,
      concurrency: 32,
      actors,
      ds,
      clock: { now: () => Date.now(), advance: ms => new Promise(resolve => setTimeout(resolve, ms)) },
      expiry,
      failSafe: TIMED_FAILSAFE,
      faults: { hold: 0.3, fail: 0.05 },
      clockSteps: [1, 5, 20, 60],
      advanceRate: 0.015,
      slack: SLACK_MS,
    });
  } finally {
    await purgePrefix(clients[0]!, keyPrefix);
  }
}

describeRedis('consistency model, two services on standalone Redis (separate connections)', () => {
  it.each(SEEDS)('no violations, seed %i', async seed => {
    const report = await runRedis(seed, () => standaloneClient());
    expect(report.counts, summarize(report)).toEqual({});
    expect(report.calls).toBeGreaterThan(5_000);
  }, 60_000);

  it.each(SEEDS)('no violations with lock: true, seed %i', async seed => {
    const report = await runRedis(seed, () => standaloneClient(), { lock: true });
    expect(report.counts, summarize(report)).toEqual({});
  }, 60_000);
});

describeRedis('consistency model, two services on the 3-master cluster', () => {
  it.each(SEEDS)('no violations, seed %i', async seed => {
    const report = await runRedis(seed, () => clusterClient());
    expect(report.counts, summarize(report)).toEqual({});
  }, 60_000);
});
