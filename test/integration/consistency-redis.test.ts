// Randomized, model-based consistency test on real Redis (the model and its invariants:
// ../support/consistency-model.ts): two CachingServices, each with its own RedisBackend on its own ioredis
// connection, sharing one key prefix (as two processes do), on the standalone server (with and without
// `lock`) and on the 3-master cluster. Real, short TTLs; the expiry checks allow SLACK_MS for Redis measuring
// time on its own clock. Seeds are fixed; rerun one with
// CONSISTENCY_SEEDS=1234 npx vitest run --project redis test/integration/consistency-redis.test.ts
import { expect, it } from 'vitest';
import { CachingService } from '../../src/index.js';
import { RedisBackend } from '../../src/redis.js';
import { DataSource, defineModel, ExpiryModel, localActor, ObservedBackend, Rng, runModel, summarize, type MethodOptions, type RunReport, type WriteKind } from '../support/consistency-model.js';
import { startActors, type Child } from './support/consistency-processes.js';
import { realTimeRun, SLACK_MS, TIMED, TIMED_NO_SLIDING } from './support/consistency-real-time.js';
import { purgePrefix } from './support/backend-support.js';
import { clusterClient, describeRedis, ready, redisTopology, standaloneClient, uniquePrefix, type RedisClient } from './support/redis.js';

const SEEDS = process.env.CONSISTENCY_SEEDS ? process.env.CONSISTENCY_SEEDS.split(',').map(Number) : [1, 2];
const OPERATIONS = Number(process.env.CONSISTENCY_OPERATIONS ?? 10_000);
/** CONSISTENCY_CONFIG=no-sliding (TIMED without sliding windows) or plain (no expiry) narrows a failure down. */
const CONFIG: MethodOptions = process.env.CONSISTENCY_CONFIG === 'plain' ? {} : process.env.CONSISTENCY_CONFIG === 'no-sliding' ? TIMED_NO_SLIDING : TIMED;
/** Writers that invalidate (refreshCall left out; see the one-service memory tests for why). */
const INVALIDATING = ['invalidate', 'decorator', 'invalidateCall'] as const;
/** CONSISTENCY_WRITERS=invalidating leaves refreshCall writers out of the two-service runs too. */
const WRITERS: readonly WriteKind[] | undefined = process.env.CONSISTENCY_WRITERS === 'invalidating' ? INVALIDATING : undefined;

async function runRedis(seed: number, connect: () => RedisClient, { lock = false, options = CONFIG, services = 2, writeKinds = WRITERS }: { lock?: boolean; options?: MethodOptions; services?: number; writeKinds?: readonly WriteKind[] } = {}): Promise<RunReport> {
  const keyPrefix = uniquePrefix('consistency');
  const expiry = new ExpiryModel(() => Date.now(), SLACK_MS);
  const ds = new DataSource(new Rng(seed));
  const Model = defineModel(options);
  const env = { read: (r: number) => ds.read(r), write: (r: number) => ds.write(r), now: () => Date.now(), tag: 'p' };
  const clients: RedisClient[] = [];
  const actors = [];
  for (let i = 0; i < services; i++) {
    const client = connect();
    await ready(client);
    clients.push(client);
    const backend = new ObservedBackend(new RedisBackend({ client, keyPrefix, lock }), expiry);
    const service = new CachingService({ backend, telemetry: false });
    service.on('error', () => undefined);
    actors.push(localActor(`service${i}`, service, new Model(env, service), ds));
  }
  try {
    return await runModel(realTimeRun(seed, OPERATIONS, actors, ds, expiry, writeKinds));
  } finally {
    await purgePrefix(clients[0]!, keyPrefix);
  }
}

describeRedis('consistency model, one service on standalone Redis (baseline)', () => {
  it.each(SEEDS)('no violations without expiry, invalidating writers, seed %i', async seed => {
    const report = await runRedis(seed, () => standaloneClient(), { services: 1, options: {}, writeKinds: INVALIDATING });
    expect(report.counts, summarize(report)).toEqual({});
    expect(report.calls).toBeGreaterThan(3_000);
  }, 60_000);
});

describeRedis('consistency model, two services on standalone Redis (separate connections)', () => {
  it.each(SEEDS)('no violations, seed %i', async seed => {
    const report = await runRedis(seed, () => standaloneClient());
    expect(report.counts, summarize(report)).toEqual({});
    expect(report.calls).toBeGreaterThan(3_000);
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

// ---------------------------------------------------------------------------------------------------------------
// Two real Node processes

async function runTwoProcesses(seed: number, { lock = false }: { lock?: boolean } = {}): Promise<RunReport> {
  const topology = redisTopology();
  if (!topology.available) throw new Error('Redis is not available');
  const keyPrefix = uniquePrefix('consistency-ipc');
  const expiry = new ExpiryModel(() => Date.now(), SLACK_MS);
  const ds = new DataSource(new Rng(seed));
  const scope = `ConsistencyIpc${seed}`;
  const children: Child[] = [];
  try {
    const inits = [0, 1].map(i => ({ t: 'init' as const, tag: `c${i}`, keyPrefix, lock, options: CONFIG, scope, standalone: topology.standalone }));
    const actors = await startActors(inits, expiry, ds, children);
    return await runModel(realTimeRun(seed, OPERATIONS, actors, ds, expiry, WRITERS));
  } finally {
    await Promise.all(children.map(child => child.stop()));
    const client = standaloneClient();
    await purgePrefix(client, keyPrefix);
  }
}

describeRedis('consistency model, two Node processes on standalone Redis', () => {
  it.each(SEEDS)('no violations, seed %i', async seed => {
    const report = await runTwoProcesses(seed);
    expect(report.counts, summarize(report)).toEqual({});
    expect(report.calls).toBeGreaterThan(3_000);
  }, 90_000);
});
