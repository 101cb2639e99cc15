// Randomized, model-based consistency test of layered backends on real Redis, across real Node processes (the
// model and its invariants: ../support/consistency-model.ts; the same model in one process on virtual time:
// ../shared/consistency-layered.test.ts). PROCESSES child processes (./support/consistency-worker.ts), each a
// CachingService on its own LayeredBackend — its own memory L1 over a RedisBackend on its own ioredis client —
// share one key prefix and one RedisInvalidationBus channel, on the standalone server and on the 3-master
// cluster. The data source and the driver stay in this process: every data read is an IPC round trip, so reads
// are held open, failed and released across processes exactly as in one.
//
// Read-your-writes across processes, with a bound (`visibleAfter`): a call that starts in the writer's process
// after its invalidation resolved sees the write at once (L1 is invalidated first); a call in another process
// sees it once the write resolved BOUND ms ago. Both times are this (the parent) process's: a write counts from
// when its answer arrived here (after it resolved in the child), a call from when it is sent (before it starts
// in the child), so IPC only makes the rule stricter on the parent's side than the interval the children see.
//
// The bound in real time. With Redis healthy, an L1 copy is stale for the delivery delay: the PUBLISH reaching
// the other process's subscriber socket (sub-ms on loopback; one cluster-bus hop more on the cluster) plus the
// time until that process's event loop runs the message handler — on a loaded 2-core machine, its event-loop
// lag (GC, and the CPU shared by PROCESSES + 1 Node processes and 7 redis-servers). Measured over 32 runs on a
// 2-core box under a load average of 4–6 (other test runs beside this one), with CONSISTENCY_REPORT=1:
//   resolve → drop (the writer's publish resolved → the other process dropped the keys from L1, both on the
//   machine's clock): p50 0–2 ms, p99 8–91 ms, max 12–126 ms on standalone, 30–78 ms on the cluster (it can
//   be negative: Redis may write to the subscribers before its reply reaches the publisher);
//   event-loop delay of the children: p99 14–58 ms, max up to 258 ms;
//   staleness actually tolerated by the check (a value older than a write acknowledged before the call
//   started): at most 27 ms after the acknowledgement, on the parent's clock — less than the delivery delays,
//   because a stalled reader also stalls the call sent to it, and (in these runs) handled the invalidation that
//   reached it first before that call.
// ALLOWANCE_MS = 200 is above the worst delivery delay seen, and seven times the worst tolerated staleness; a
// run that fails by less than a 200 ms stall of one process measures the machine, not the library (no protocol
// bounds staleness below the reader's own event-loop lag). A larger bound only weakens the check
// where a message is late, never where it is lost: a process that never hears an invalidation serves the stale
// copy for good, far past any bound (the broken setup below). And the check is sharp: with ALLOWANCE_MS = 0 the
// healthy cluster run (seed 1) finds 17 ryw violations — the cluster-bus hop between the publisher's master and
// the subscriber's node — while standalone finds none.
//
// Lossy: periodically the subscriber connections are killed on the server(s) — all at once (CLIENT KILL TYPE
// pubsub) or one (CLIENT KILL ID) — so messages are lost while a subscriber reconnects. A process resyncs when
// it sees its connection drop, and detects a lost message of another process as a gap within a heartbeat; the
// bound is then stalenessBoundMs (2 × HEARTBEAT_MS) + gapGraceMs + ALLOWANCE_MS, as on the in-process model.
//
// Expiry: most runs have none (PLAIN), so that a stale L1 copy stays stale until a message removes it (a short
// TTL would end the staleness before the bound and hide a lost message); one scenario runs the real, short TTLs,
// sliding windows and fail-safe of TIMED (sliding entries never enter L1), whose expiry checks allow SLACK_MS
// (Redis's own clock). Sweeps wait the bound out before comparing every value with the data.
//
// Scenarios × topologies, each ≥ 10,000 operations with its own seed (1: healthy, 2: TTLs, 3: lossy), then one
// broken setup: about 65 s on a loaded 2-core box (each run 6–16 s, the lossy ones longest).
//
// Rerun one seed: CONSISTENCY_SEEDS=1234 npx vitest run --project redis test/integration/consistency-layered-redis.test.ts
// CONSISTENCY_REPORT=1 prints each run's numbers; CONSISTENCY_ALLOWANCE_MS and CONSISTENCY_HEARTBEAT_MS change
// the allowance and the heartbeat (to measure what a run needs: a large allowance and the "stale within the
// bound" figure).
import type { Redis } from 'ioredis';
import { expect, it } from 'vitest';
import type { ResyncReason } from '../../src/index.js';
import { DataSource, ExpiryModel, Rng, runModel, summarize, type MethodOptions, type RunReport } from '../support/consistency-model.js';
import { purgePrefix } from './support/backend-support.js';
import { startActors, type Child, type WorkerInit } from './support/consistency-processes.js';
import { realTimeRun, sleep, SLACK_MS, TIMED } from './support/consistency-real-time.js';
import type { WorkerStats } from './support/consistency-worker.js';
import { clusterClient, describeRedis, ready, redisTopology, standaloneClient, uniquePrefix, type RedisClient } from './support/redis.js';

/** Each scenario runs its own seed; CONSISTENCY_SEEDS=1,2,… runs every scenario with each of those instead. */
const SEEDS = process.env.CONSISTENCY_SEEDS?.split(',').map(Number);
const seeds = (own: number): number[] => SEEDS ?? [own];
const OPERATIONS = Number(process.env.CONSISTENCY_OPERATIONS ?? 10_000);
const REPORT = process.env.CONSISTENCY_REPORT !== undefined;
const PROCESSES = 3;

const HEARTBEAT_MS = Number(process.env.CONSISTENCY_HEARTBEAT_MS ?? 50);
/** BusProtocol.gapGraceMs for HEARTBEAT_MS. */
const GAP_GRACE_MS = Math.min(50, HEARTBEAT_MS / 10);
/** LayeredBackend.stalenessBoundMs for HEARTBEAT_MS. */
const STALENESS_BOUND_MS = 2 * HEARTBEAT_MS;
/** The delivery delay allowed across processes, event-loop lag included (see the header). */
const ALLOWANCE_MS = Number(process.env.CONSISTENCY_ALLOWANCE_MS ?? 200);
const HEALTHY_BOUND_MS = ALLOWANCE_MS;
const LOSSY_BOUND_MS = STALENESS_BOUND_MS + GAP_GRACE_MS + ALLOWANCE_MS;

/** Sweeps wait the bound out: fewer than the default 0.003 keep a run short (≈ 15 per 10,000 operations, plus the last). */
const SWEEP_RATE = Number(process.env.CONSISTENCY_SWEEP_RATE ?? 0.0015);
/** Real time passes anyway (≈ 10 s a run, against TTLs of 300–1,000 ms): fewer idle sleeps than the default 0.015. */
const ADVANCE_RATE = Number(process.env.CONSISTENCY_ADVANCE_RATE ?? 0.005);

/** No expiry: only invalidation decides what is fresh, so a stale L1 copy stays stale until a message removes it. */
const PLAIN: MethodOptions = {};

type Topology = 'standalone' | 'cluster';

interface LayeredRedisRun {
  readonly topology: Topology;
  /** The bound (ms) after which a write by one process shows in every other. */
  readonly boundMs: number;
  /** Kill subscriber connections on the server(s) every 100–600 ms. */
  readonly kills?: boolean;
  /** The channel of process i (default: the run's channel for every process). */
  readonly channelOf?: (i: number, channel: string) => string;
  /** Violations kept in the report (default 50). */
  readonly maxViolations?: number;
  readonly options: MethodOptions;
  readonly operations?: number;
}

/** Percentiles of a list of delays, in ms. */
interface Delays {
  readonly n: number;
  readonly p50: number;
  readonly p99: number;
  readonly max: number;
}

interface LayeredRedisReport {
  readonly report: RunReport;
  readonly stats: readonly WorkerStats[];
  readonly resyncs: Partial<Record<ResyncReason, number>>;
  readonly l1Hits: number;
  readonly l2Hits: number;
  /** Another process's invalidation: its publish resolving → this process's L1 drop. */
  readonly resolveToDrop: Delays;
  /** Another process's invalidation: its message built → this process's L1 drop. */
  readonly sendToDrop: Delays;
  /** Deliveries of invalidations to other processes that never happened (lost while a subscriber reconnected). */
  readonly lost: number;
  /** Subscriber connections killed (lossy runs). */
  readonly killed: number;
  readonly realMs: number;
}

function delays(values: number[]): Delays {
  const sorted = values.sort((a, b) => a - b);
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? NaN;
  return { n: sorted.length, p50: at(0.5), p99: at(0.99), max: sorted.at(-1) ?? NaN };
}

/** Delivery delays of every invalidation one process heard from another, from the children's notes. */
function deliveryDelays(stats: readonly WorkerStats[]): { resolveToDrop: Delays; sendToDrop: Delays; lost: number } {
  const published = new Map<string, Map<number, number>>();
  for (const s of stats) if (s.instanceId !== undefined) published.set(s.instanceId, new Map(s.timings?.published ?? []));
  const resolveToDrop: number[] = [];
  const sendToDrop: number[] = [];
  for (const s of stats) {
    for (const [from, seq, sentAt, heardAt] of s.timings?.heard ?? []) {
      sendToDrop.push(heardAt - sentAt);
      const resolvedAt = published.get(from)?.get(seq);
      if (resolvedAt !== undefined) resolveToDrop.push(heardAt - resolvedAt);
    }
  }
  // Each invalidation published should be heard by every other process.
  const lost = stats.reduce((n, s) => n + (s.timings?.published.length ?? 0), 0) * (stats.length - 1) - sendToDrop.length;
  return { resolveToDrop: delays(resolveToDrop), sendToDrop: delays(sendToDrop), lost };
}

function numbers(label: string, r: LayeredRedisReport): void {
  if (!REPORT) return;
  const resyncs = Object.entries(r.resyncs)
    .map(([k, n]) => `${k}=${n}`)
    .join(' ');
  const d = (x: Delays) => `p50 ${x.p50} p99 ${x.p99} max ${x.max} (n=${x.n})`;
  const loop = r.stats.map(s => `${s.loopDelayMs.p99}/${s.loopDelayMs.max}`).join(' ');
  const each = r.stats.map(s => JSON.stringify(s.resyncs)).join(' ');
  console.log(
    `${label}, seed ${r.report.seed}: violations ${JSON.stringify(r.report.counts)}, ${r.report.operations} operations, ${r.report.calls} calls, ${r.report.writes} writes, ${r.report.sweeps} sweeps, ` +
      `${r.l1Hits} L1 hits, ${r.l2Hits} L2 hits, ${r.report.withinBound} stale values within the bound (up to ${r.report.withinBoundMaxMs} ms after the write), ` +
      `resyncs: ${resyncs || 'none'} (per process ${each}), ${r.killed} subscribers killed, ${r.lost} invalidation deliveries lost; resolve → drop ${d(r.resolveToDrop)}; send → drop ${d(r.sendToDrop)}; event-loop delay p99/max ${loop} ms; ${r.realMs} ms`,
  );
}

/** The servers to kill subscribers on: the standalone one, or every node of the cluster. */
function serverClients(topology: Topology): Redis[] {
  const t = redisTopology();
  if (!t.available) throw new Error('Redis is not available');
  return topology === 'standalone' ? [standaloneClient()] : t.cluster.nodes.map(node => standaloneClient({ host: node.host, port: node.port }));
}

/**
 * Every 100–600 ms, kills subscriber connections: all of them (CLIENT KILL TYPE pubsub on every server) or, as
 * often, one (CLIENT KILL ID). Returns a stop function that resolves with how many connections were killed.
 */
function killSubscribers(rng: Rng, servers: readonly Redis[]): () => Promise<number> {
  let killed = 0;
  let stopped = false;
  const kill = async (): Promise<void> => {
    if (rng.chance(0.5)) {
      for (const n of await Promise.all(servers.map(server => server.call('CLIENT', 'KILL', 'TYPE', 'pubsub')))) killed += Number(n);
      return;
    }
    const ids: Array<[Redis, string]> = [];
    for (const server of servers) {
      const list = String(await server.call('CLIENT', 'LIST', 'TYPE', 'pubsub'));
      for (const match of list.matchAll(/^id=(\d+) /gm)) ids.push([server, match[1]!]);
    }
    if (ids.length === 0) return;
    const [server, id] = rng.pick(ids);
    killed += Number(await server.call('CLIENT', 'KILL', 'ID', id));
  };
  const loop = (async () => {
    while (!stopped) {
      await sleep(100 + rng.int(500));
      if (!stopped) await kill().catch(() => undefined);
    }
  })();
  return async () => {
    stopped = true;
    await loop;
    return killed;
  };
}

/** The resyncs counted after `before`. */
function since(before: WorkerStats['resyncs'], after: WorkerStats['resyncs']): WorkerStats['resyncs'] {
  const out: Partial<Record<ResyncReason, number>> = {};
  for (const [reason, n] of Object.entries(after) as Array<[ResyncReason, number]>) if (n > (before[reason] ?? 0)) out[reason] = n - (before[reason] ?? 0);
  return out;
}

/** One run: PROCESSES child processes with layered backends over one Redis prefix and one channel. */
async function runLayeredRedis(seed: number, run: LayeredRedisRun): Promise<LayeredRedisReport> {
  const startedAt = Date.now();
  const topology = redisTopology();
  if (!topology.available) throw new Error('Redis is not available');
  const keyPrefix = uniquePrefix(`consistency-layered-${run.topology}`);
  const channel = `${keyPrefix}bus`;
  const expiry = new ExpiryModel(() => Date.now(), SLACK_MS);
  const ds = new DataSource(new Rng(seed));
  const scope = `ConsistencyLayered${seed}`;
  const children: Child[] = [];
  let stopKilling: (() => Promise<number>) | undefined;
  try {
    const where = run.topology === 'standalone' ? { standalone: topology.standalone } : { cluster: topology.cluster.nodes };
    const inits: WorkerInit[] = Array.from({ length: PROCESSES }, (_, i) => ({
      t: 'init',
      tag: `c${i}`,
      keyPrefix,
      lock: false,
      options: run.options,
      scope,
      ...where,
      layered: { channel: run.channelOf?.(i, channel) ?? channel, heartbeatMs: HEARTBEAT_MS },
    }));
    const actors = await startActors(inits, expiry, ds, children);
    // Processes started one after the other: a later one first hears an earlier one past its first message
    // (a gap, so a resync). Those resyncs are the start's, not the run's.
    await sleep(STALENESS_BOUND_MS + GAP_GRACE_MS);
    const before = await Promise.all(children.map(child => child.stats()));
    if (run.kills) stopKilling = killSubscribers(new Rng(seed * 7 + 1), serverClients(run.topology));
    const report = await runModel({
      ...realTimeRun(seed, run.operations ?? OPERATIONS, actors, ds, expiry, undefined),
      sweepRate: SWEEP_RATE,
      advanceRate: ADVANCE_RATE,
      visibleAfter: (writer, reader) => (writer === reader ? 0 : run.boundMs),
      quiesce: () => sleep(run.boundMs + 1),
      ...(run.maxViolations ? { maxViolations: run.maxViolations } : {}),
    });
    const killed = (await stopKilling?.()) ?? 0;
    stopKilling = undefined;
    const stats = (await Promise.all(children.map(child => child.stats()))).map((s, i) => ({ ...s, resyncs: since(before[i]!.resyncs, s.resyncs) }));
    const resyncs: Partial<Record<ResyncReason, number>> = {};
    for (const s of stats) for (const [reason, n] of Object.entries(s.resyncs) as Array<[ResyncReason, number]>) resyncs[reason] = (resyncs[reason] ?? 0) + n;
    const hits = stats.reduce((n, s) => n + s.hits, 0);
    const l2Hits = stats.reduce((n, s) => n + s.l2Hits, 0);
    return { report, stats, resyncs, l1Hits: hits - l2Hits, l2Hits, ...deliveryDelays(stats), killed, realMs: Date.now() - startedAt };
  } finally {
    await stopKilling?.();
    await Promise.all(children.map(child => child.stop()));
    const client: RedisClient = run.topology === 'standalone' ? standaloneClient() : clusterClient();
    await ready(client);
    await purgePrefix(client, keyPrefix);
  }
}

function layeredConsistency(topology: Topology): void {
  describeRedis(`consistency model, ${PROCESSES} Node processes with layered backends on ${topology} Redis (one prefix, one channel)`, () => {
    it.each(seeds(1))('healthy Redis, no expiry: no violations, seed %i', async seed => {
      const r = await runLayeredRedis(seed, { topology, boundMs: HEALTHY_BOUND_MS, options: PLAIN });
      numbers(`${topology} healthy`, r);
      expect(r.report.counts, summarize(r.report)).toEqual({});
      expect(r.report.operations).toBeGreaterThanOrEqual(OPERATIONS);
      expect(r.l1Hits, 'L1 served').toBeGreaterThan(1_000);
      expect(r.resolveToDrop.n, 'the processes heard each other').toBeGreaterThan(100);
    }, 60_000);

    it.each(seeds(2))('healthy Redis, TTLs, sliding expiration and fail-safe: no violations, seed %i', async seed => {
      const r = await runLayeredRedis(seed, { topology, boundMs: HEALTHY_BOUND_MS, options: TIMED });
      numbers(`${topology} timed`, r);
      expect(r.report.counts, summarize(r.report)).toEqual({});
      expect(r.l1Hits, 'L1 served').toBeGreaterThan(500);
    }, 60_000);

    it.each(seeds(3))('subscriber connections killed periodically (messages lost), no expiry: no violations, seed %i', async seed => {
      const r = await runLayeredRedis(seed, { topology, boundMs: LOSSY_BOUND_MS, kills: true, options: PLAIN });
      numbers(`${topology} lossy`, r);
      expect(r.report.counts, summarize(r.report)).toEqual({});
      expect(r.killed, 'the faults were in effect').toBeGreaterThan(5);
      expect(r.resyncs.disconnected ?? 0).toBeGreaterThan(5);
      expect(r.lost, 'invalidations were lost').toBeGreaterThan(0);
      expect(r.resyncs.gap ?? 0).toBeGreaterThan(0);
      expect(r.l1Hits, 'L1 served between the faults').toBeGreaterThan(500);
    }, 60_000);
  });
}

layeredConsistency('standalone');
layeredConsistency('cluster');

describeRedis(`consistency model, layered backends on standalone Redis: the checker catches a broken setup`, () => {
  // The control is the healthy and lossy runs above (other seeds, same settings): what is found here is the break.
  it("one process's bus on another channel (it hears only itself): its L1 and the others' miss each other's invalidations", async () => {
    const r = await runLayeredRedis(1, { topology: 'standalone', boundMs: LOSSY_BOUND_MS, channelOf: (i, channel) => (i === 1 ? `${channel}:elsewhere` : channel), options: PLAIN, operations: 3_000, maxViolations: 100_000 });
    numbers('broken: own channel', r);
    expect(r.stats[1]!.timings!.heard, 'process1 heard no other process').toEqual([]);
    expect(r.stats[1]!.resyncs.gap ?? r.stats[1]!.resyncs['sender-silent'], 'and noticed nothing').toBeUndefined();
    expect(r.report.counts.ryw ?? 0, summarize(r.report)).toBeGreaterThan(0);
    expect(r.report.counts.sweep ?? 0, summarize(r.report)).toBeGreaterThan(0);
    expect(r.report.violations.some(v => v.detail.startsWith('process1: ')), 'process1 serves values the others invalidated').toBe(true);
    // process0 and process2 hear each other: what they serve stale was invalidated by process1.
    expect(r.report.violations.some(v => !v.detail.startsWith('process1')), 'the others serve values process1 invalidated').toBe(true);
  }, 60_000);
});
