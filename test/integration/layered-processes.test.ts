// The layered backend across three real Node processes on Redis (standalone and the 3-master cluster of the
// global setup): each process is a CachingService over LayeredBackend({ l2: RedisBackend, bus:
// RedisInvalidationBus }) with heartbeats every HEARTBEAT_MS, all on one key prefix and one channel (new for each
// test), running the model of ./support/layered-worker.ts — a leaf `getRow(id)` (dependency `row:<id>`) that
// reads a versioned row from Redis, and a parent `getGroup()` over every row. Rows are bumped (INCR) and then
// invalidated by a writer process; a read is stale when it returns a version older than one whose invalidation
// had resolved, in any process, long enough before the read started: the delivery allowance when messages are
// delivered, the staleness bound when they may be lost. Each test prints one line of what it counted (reads and
// versions checked, L1 hits, stale reads, resyncs per reason, and scenario 2's propagation delay).
import { fork, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { Cluster, type Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { ResyncReason } from '../../src/index.js';
import type { Address, BumpResult, OpenOptions, Ops, ReadRecord, ReadResult, Request, WorkerMessage, WorkerState } from './support/layered-worker.js';
import { purgePrefix } from './support/backend-support.js';
import { sleep, waitUntil } from './support/redis-process.js';
import { clusterClient, describeRedis, ready, redisTopology, standaloneClient, uniquePrefix, type RedisClient } from './support/redis.js';
import { startTcpProxy, type TcpProxy } from './support/tcp-proxy.js';

type Topology = 'standalone' | 'cluster';

const WORKER = fileURLToPath(new URL('./support/layered-worker.ts', import.meta.url));
const HEARTBEAT_MS = 100;
/** The rows; `getGroup()` groups all of them. */
const ROWS = [0, 1, 2, 3];
/**
 * How long after `invalidate()` resolved a read may still return the old value when nothing is lost: the time
 * the message takes to reach the other processes and be handled there. Measured by scenario 2 (resolve → L1
 * drop in the other process): on standalone p50 ≈ 0 ms, p99 ≈ 3 ms; on the cluster p50 ≈ 0.7 ms but p99 30–45 ms:
 * a PUBLISH reaches a subscriber on another node over the cluster bus, and there (Redis 7.0, loopback) about one
 * message in four takes 10–41 ms — the TCP delayed-ACK time, as if Nagle's algorithm held small writes on those
 * links. The allowances leave room for a loaded 2-core CI machine.
 */
const ALLOWANCE_MS: Record<Topology, number> = { standalone: 25, cluster: 60 };
/** The protocol waits this long for a skipped sequence number before it resyncs (a tenth of a heartbeat, ≤ 50 ms). */
const GAP_GRACE_MS = Math.min(50, HEARTBEAT_MS / 10);
/** The bound when messages may be lost silently: two heartbeats (stalenessBoundMs) plus the gap grace, plus delivery. */
const lossBound = (topology: Topology) => 2 * HEARTBEAT_MS + GAP_GRACE_MS + ALLOWANCE_MS[topology];
const PUBLISH_TIMEOUT_MS = 300;

// ---------------------------------------------------------------------------------------------------------------
// The processes

type WorkerEvent = Extract<WorkerMessage, { t: 'event' }>;

class Proc {
  readonly #child: ChildProcess;
  readonly #calls = new Map<number, { resolve: (value: unknown) => void; reject: (error: Error) => void; timer: NodeJS.Timeout }>();
  readonly #events: WorkerEvent[] = [];
  readonly #waiters: Array<{ match: (e: WorkerEvent) => boolean; resolve: (e: WorkerEvent) => void }> = [];
  #next = 0;
  #exited: Error | undefined;
  /** The instance id of the session open now (the sender id on the bus). */
  instanceId = '';

  private constructor(
    readonly name: string,
    child: ChildProcess,
  ) {
    this.#child = child;
    child.on('message', (message: WorkerMessage) => {
      if (message.t === 'res') {
        const call = this.#calls.get(message.id);
        if (call === undefined) return;
        this.#calls.delete(message.id);
        clearTimeout(call.timer);
        if (message.ok) call.resolve(message.value);
        else call.reject(new Error(`${name}: ${message.error}`));
      } else if (message.t === 'event') {
        const i = this.#waiters.findIndex(w => w.match(message));
        if (i >= 0) this.#waiters.splice(i, 1)[0]!.resolve(message);
        else this.#events.push(message);
      }
    });
    child.on('exit', (code, signal) => {
      this.#exited = new Error(`${name} exited (code ${code}, signal ${signal})`);
      for (const call of this.#calls.values()) call.reject(this.#exited);
      this.#calls.clear();
    });
  }

  static start(name: string): Promise<Proc> {
    const child = fork(WORKER, [], { execArgv: ['--import', 'tsx'], serialization: 'advanced', stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${name} did not start within 30 s`)), 30_000);
      child.once('exit', code => reject(new Error(`${name} exited with ${code} while starting`)));
      child.once('message', (message: WorkerMessage) => {
        clearTimeout(timer);
        if (message.t === 'up') resolve(new Proc(name, child));
        else reject(new Error(`${name}: unexpected first message ${JSON.stringify(message)}`));
      });
    });
  }

  call<K extends keyof Ops>(op: K, args: Ops[K][0], timeoutMs = 15_000): Promise<Ops[K][1]> {
    if (this.#exited) return Promise.reject(this.#exited);
    const id = this.#next++;
    return new Promise<Ops[K][1]>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#calls.delete(id);
        reject(new Error(`${this.name}: no answer to ${op} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.#calls.set(id, { resolve: resolve as (value: unknown) => void, reject, timer });
      this.#child.send({ t: 'req', id, op, args } as Request);
    });
  }

  read(what: 'row' | 'group', id?: number): Promise<ReadResult> {
    return this.call('read', id === undefined ? { what } : { what, id });
  }

  /** The next event matching `match` (one that already arrived included). */
  event(match: (e: WorkerEvent) => boolean, timeoutMs = 5_000): Promise<WorkerEvent> {
    const i = this.#events.findIndex(match);
    if (i >= 0) return Promise.resolve(this.#events.splice(i, 1)[0]!);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${this.name}: no matching event within ${timeoutMs} ms`)), timeoutMs);
      this.#waiters.push({
        match,
        resolve: e => {
          clearTimeout(timer);
          resolve(e);
        },
      });
    });
  }

  async stop(): Promise<void> {
    if (this.#exited) return;
    const exited = new Promise<void>(resolve => this.#child.once('exit', () => resolve()));
    this.#child.disconnect();
    const timer = setTimeout(() => this.#child.kill('SIGKILL'), 3_000);
    await exited;
    clearTimeout(timer);
  }
}

// ---------------------------------------------------------------------------------------------------------------
// One test's world: the three processes on a new prefix and channel

interface World {
  readonly topology: Topology;
  readonly procs: readonly [Proc, Proc, Proc];
  readonly admin: RedisClient;
  readonly keyPrefix: string;
  readonly dataPrefix: string;
}

let pool: [Proc, Proc, Proc] | undefined;
let world: World | undefined;
const cleanups: Array<() => Promise<void>> = [];

function addresses(topology: Topology): OpenOptions['redis'] {
  const t = redisTopology();
  if (!t.available) throw new Error('Redis is not available');
  return topology === 'cluster' ? { cluster: t.cluster.nodes } : { standalone: t.standalone };
}

/** Opens a session in each process (options per process through `custom`) and waits until every one trusts its L1. */
async function openWorld(topology: Topology, custom: (i: number, base: OpenOptions) => OpenOptions = (_, base) => base): Promise<World> {
  const procs = pool!;
  const admin = topology === 'cluster' ? clusterClient() : standaloneClient();
  await ready(admin);
  const keyPrefix = uniquePrefix('layered');
  const dataPrefix = uniquePrefix('layered-db');
  const channel = uniquePrefix('layered-bus');
  const base = (tag: string): OpenOptions => ({ tag, keyPrefix, dataPrefix, channel, heartbeatMs: HEARTBEAT_MS, publishTimeoutMs: PUBLISH_TIMEOUT_MS, redis: addresses(topology), groupIds: ROWS });
  world = { topology, procs, admin, keyPrefix, dataPrefix };
  const states = await Promise.all(procs.map((p, i) => p.call('open', custom(i, base(p.name)))));
  states.forEach((s, i) => {
    procs[i]!.instanceId = s.instanceId;
  });
  await waitUntil(async () => (await Promise.all(procs.map(p => p.call('state', undefined)))).every(s => s.trusted), 10_000, () => 'the processes do not trust their L1');
  // Every process has heard every other one (a sender first heard mid-sequence is a gap: resynced by now).
  await sleep(3 * HEARTBEAT_MS);
  await Promise.all(procs.map(p => p.call('state', { reset: true })));
  return world;
}

/** Closes the sessions (returning their final states), then undoes what the test set up, then removes its keys. */
async function closeWorld(): Promise<WorkerState[] | undefined> {
  const w = world;
  world = undefined;
  const states = w === undefined ? undefined : await Promise.all(w.procs.map(p => p.call('close', undefined).catch(() => undefined)));
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => undefined);
  if (w === undefined) return undefined;
  await purgePrefix(w.admin, w.keyPrefix);
  await purgePrefix(w.admin, w.dataPrefix);
  return states!.filter((s): s is WorkerState => s !== undefined);
}

/**
 * A bus client whose connections go through TCP proxies, one per server (on the cluster, the addresses the
 * nodes announce are mapped to the proxies with natMap), so that the test can stall that process's subscriber.
 * The proxies are closed after the test.
 */
async function proxiedBus(topology: Topology): Promise<{ proxies: TcpProxy[]; bus: NonNullable<OpenOptions['bus']> }> {
  const t = redisTopology();
  if (!t.available) throw new Error('Redis is not available');
  const targets = topology === 'cluster' ? t.cluster.nodes : [t.standalone];
  const proxies = await Promise.all(targets.map(target => startTcpProxy(target)));
  cleanups.push(async () => {
    await Promise.all(proxies.map(proxy => proxy.close()));
  });
  const at = (proxy: TcpProxy): Address => ({ host: proxy.host, port: proxy.port });
  const bus: NonNullable<OpenOptions['bus']> =
    topology === 'cluster'
      ? { cluster: proxies.map(at), natMap: Object.fromEntries(targets.map((target, i) => [`${target.host}:${target.port}`, at(proxies[i]!)])) }
      : { standalone: at(proxies[0]!) };
  return { proxies, bus };
}

/** Every process reads the group twice: all rows and the group in every L1. */
async function warm(w: World): Promise<void> {
  for (const p of w.procs) {
    await p.read('group');
    expectL1(p, await p.read('group'), 'the group, again');
    for (const id of ROWS) await p.read('row', id);
  }
}

/**
 * A read the test expects to be an L1 hit. A miss is excused only when that process resynced during the test
 * or did not trust its L1 at the start of the call: the protocol's answer to lateness (on a loaded machine a
 * process that gets no CPU for a few heartbeats hears its own echoes late, and drops its L1), reported, not a
 * failure. Returns whether it was a hit.
 */
function expectL1(p: Proc, read: ReadResult, what: string): boolean {
  if (!read.fromL1 && read.resyncs === 0 && read.trustedAtStart) expect.fail(`${p.name}: ${what} should be an L1 hit (no resync, L1 trusted)`);
  return read.fromL1;
}

/**
 * Nothing was lost: no process lost its subscription or heard a foreign payload, and a gap was only ever the
 * return of a sender it had forgotten. Resyncs for lateness ('silence', 'sender-silent') may happen on a loaded
 * machine.
 */
function expectNoLossResyncs(states: readonly WorkerState[]): void {
  for (const s of states) {
    expect({ disconnected: s.resyncs.disconnected ?? 0, foreign: s.resyncs.foreign ?? 0 }).toEqual({ disconnected: 0, foreign: 0 });
    expect(s.resyncs.gap ?? 0, 'gaps only after a sender was forgotten').toBeLessThanOrEqual(s.resyncs['sender-silent'] ?? 0);
  }
}

/** Until the process serves from L1 again: trusted, and a second read of the row is an L1 hit. */
async function recovered(p: Proc, id: number): Promise<void> {
  await waitUntil(
    async () => {
      await p.read('row', id);
      return (await p.read('row', id)).fromL1;
    },
    5_000,
    () => `${p.name} does not serve from L1 again`,
  );
}

// ---------------------------------------------------------------------------------------------------------------
// Judging reads

interface Verdict {
  reads: number;
  /** Row versions checked (a group read checks each of its rows). */
  checked: number;
  l1Hits: number;
  stale: number;
  /** Old values read after an invalidation had resolved, but within the bound. */
  oldWithinBound: number;
  /** The longest a read started after the invalidation that made its value old had resolved, in ms. */
  maxAgeMs: number;
  examples: string[];
}

/**
 * A read of row r returning version v is stale if some bump of r to a version above v had resolved at least
 * `boundOf(bump)` before the read started. Versions only grow (INCR), so the bump that matters is the first one
 * above v.
 */
function judge(reads: ReadonlyArray<{ proc: string; read: ReadRecord }>, bumps: readonly BumpResult[], boundOf: (bump: BumpResult) => number): Verdict {
  const byRow = new Map<number, BumpResult[]>();
  for (const bump of bumps) {
    const list = byRow.get(bump.id) ?? [];
    list.push(bump);
    byRow.set(bump.id, list);
  }
  const verdict: Verdict = { reads: reads.length, checked: 0, l1Hits: 0, stale: 0, oldWithinBound: 0, maxAgeMs: 0, examples: [] };
  for (const { proc, read } of reads) {
    if (read.fromL1) verdict.l1Hits++;
    const rows = read.id === -1 ? ROWS : [read.id];
    rows.forEach((row, i) => {
      const version = read.versions[i]!;
      verdict.checked++;
      let age = -Infinity;
      let stale: BumpResult | undefined;
      for (const bump of byRow.get(row) ?? []) {
        if (bump.version <= version || bump.resolvedAt > read.startedAt) continue;
        age = Math.max(age, read.startedAt - bump.resolvedAt);
        if (bump.resolvedAt + boundOf(bump) <= read.startedAt) stale = bump;
      }
      if (age === -Infinity) return;
      verdict.maxAgeMs = Math.max(verdict.maxAgeMs, age);
      if (stale === undefined) {
        verdict.oldWithinBound++;
        return;
      }
      verdict.stale++;
      if (verdict.examples.length < 5) {
        verdict.examples.push(`${proc} read row ${row} = ${version} (${read.fromL1 ? 'L1' : 'L2'}) ${(read.startedAt - stale.resolvedAt).toFixed(1)} ms after version ${stale.version} was resolved${stale.pending ? ' (pending)' : ''}`);
      }
    });
  }
  return verdict;
}

const readsOf = (proc: Proc, reads: readonly ReadRecord[]) => reads.map(read => ({ proc: proc.name, read }));

function resyncsOf(states: readonly WorkerState[]): Partial<Record<ResyncReason, number>> {
  const total: Partial<Record<ResyncReason, number>> = {};
  for (const s of states) for (const [reason, n] of Object.entries(s.resyncs)) total[reason as ResyncReason] = (total[reason as ResyncReason] ?? 0) + n;
  return total;
}

function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

/** Prints what a test counted: one line per scenario and topology (the numbers the README quotes). */
function record(scenario: string, topology: Topology, verdict: Pick<Verdict, 'reads' | 'checked' | 'l1Hits' | 'stale'>, states: readonly WorkerState[], notes = ''): void {
  const resyncs = Object.entries(resyncsOf(states))
    .map(([reason, n]) => `${reason} ${n}`)
    .join(', ');
  console.log(`[layered-processes] ${scenario} on ${topology}: ${verdict.reads} reads (${verdict.checked} versions checked, ${verdict.l1Hits} L1 hits), stale ${verdict.stale}; resyncs: ${resyncs || 'none'}${notes ? `; ${notes}` : ''}`);
}

/** Reads of parent-driven steps, each checked at once against the exact versions it must see, and counted. */
class Tally {
  reads = 0;
  checked = 0;
  l1Hits = 0;
  /** Always 0: a stale read fails the test on the spot. */
  readonly stale = 0;

  /** A read that must return exactly these versions (one per row read). */
  expect(proc: Proc, read: ReadResult, versions: readonly number[], what: string): void {
    this.reads++;
    this.checked += versions.length;
    if (read.fromL1) this.l1Hits++;
    expect(read.versions, `${proc.name}: ${what}`).toEqual(versions);
  }
}

// ---------------------------------------------------------------------------------------------------------------

describeRedis('LayeredBackend across three Node processes', () => {
  beforeAll(async () => {
    pool = (await Promise.all(['P1', 'P2', 'P3'].map(name => Proc.start(name)))) as [Proc, Proc, Proc];
  }, 60_000);

  afterAll(async () => {
    await closeWorld();
    await Promise.all((pool ?? []).map(p => p.stop()));
    pool = undefined;
  });

  afterEach(async () => {
    await closeWorld();
  });

  for (const topology of ['standalone', 'cluster'] as const) {
    describe(`on ${topology}`, () => {
      it('1. a parent computed in P1 from a child that was an L1 hit is invalidated by that child’s dependency invalidated in P2, and in P3', async () => {
        const w = await openWorld(topology);
        const [p1, p2, p3] = w.procs;
        const tally = new Tally();
        for (const id of ROWS) await p1.read('row', id);
        for (const id of ROWS) {
          const again = await p1.read('row', id);
          tally.expect(p1, again, [0], `row ${id} again`);
          expectL1(p1, again, `row ${id} again`);
        }
        // The group: one L2 lookup (its own), one computation (its own): every child was an L1 hit.
        const first = await p1.read('group');
        tally.expect(p1, first, [0, 0, 0, 0], 'group');
        if (first.resyncs === 0) {
          expect(first.computed, 'P1 computes the group only').toBe(1);
          expect((await p1.call('state', undefined)).l2Gets, 'and looks up nothing else in L2').toBe(ROWS.length + 1);
        }
        // P1 built the group from rows served by its L1, so it kept the group in its L1 only (a served copy may be
        // stale for the delivery delay, which L2 cannot see). P2 builds it from rows it reads from L2, and shares it
        // through L2: P3 computes nothing. Both then serve it from their L1.
        const inP2 = await p2.read('group');
        tally.expect(p2, inP2, [0, 0, 0, 0], 'group in P2');
        if (inP2.resyncs === 0) expect(inP2.computed, 'P2 computes the group only (its rows come from L2)').toBe(1);
        const inP3 = await p3.read('group');
        tally.expect(p3, inP3, [0, 0, 0, 0], 'group from L2');
        if (inP3.resyncs === 0) expect(inP3.computed, 'P3 computes nothing').toBe(0);
        for (const p of [p2, p3]) {
          const again = await p.read('group');
          tally.expect(p, again, [0, 0, 0, 0], 'group again');
          expectL1(p, again, 'the group, again');
        }
        const again = await p1.read('group');
        tally.expect(p1, again, [0, 0, 0, 0], 'group again');
        expectL1(p1, again, 'the group, again');

        const byP2 = await p2.call('bump', { id: 1 });
        expect(byP2).toMatchObject({ version: 1, pending: false });
        await sleep(ALLOWANCE_MS[topology]);
        for (const p of [p1, p3]) {
          const read = await p.read('group');
          tally.expect(p, read, [0, 1, 0, 0], 'group after P2 invalidated row 1');
          expect(read.fromL1, `${p.name} no longer serves the group from L1`).toBe(false);
        }
        const byP3 = await p3.call('bump', { id: 3 });
        expect(byP3).toMatchObject({ version: 1, pending: false });
        await sleep(ALLOWANCE_MS[topology]);
        for (const p of [p1, p2]) tally.expect(p, await p.read('group'), [0, 1, 0, 1], 'group after P3 invalidated row 3');
        for (const p of [p1, p2, p3]) {
          await p.read('group');
          const again = await p.read('group');
          tally.expect(p, again, [0, 1, 0, 1], 'group, again');
          expectL1(p, again, 'the new group, again');
        }
        const states = (await closeWorld())!;
        expectNoLossResyncs(states);
        record('1 parent from L1 child', topology, tally, states);
      });

      it('2. many rounds: once a writer’s invalidate() resolved (plus the delivery allowance) no other process reads the old row or group', { timeout: 30_000 }, async () => {
        const w = await openWorld(topology);
        const ROUNDS = 80;
        const bumps: BumpResult[] = [];
        const reads: Array<{ proc: string; read: ReadRecord }> = [];
        const asRecord = (id: number, r: ReadResult): ReadRecord => ({ id, startedAt: r.startedAt, endedAt: r.endedAt, versions: r.versions, fromL1: r.fromL1 });
        await warm(w);
        let droppedFromL1 = 0;
        for (let round = 0; round < ROUNDS; round++) {
          const writer = w.procs[round % 3]!;
          const others = w.procs.filter(p => p !== writer);
          const id = ROWS[round % ROWS.length]!;
          // The readers hold the row in L1: what must be dropped.
          for (const p of others) {
            const before = await p.read('row', id);
            reads.push({ proc: p.name, read: asRecord(id, before) });
            expectL1(p, before, `row ${id} before round ${round}`);
          }
          const bump = await writer.call('bump', { id });
          bumps.push(bump);
          expect(bump.pending).toBe(false);
          // The writer itself: at once (it dropped its own L1 before L2 and the publish).
          const own = await writer.read('row', id);
          reads.push({ proc: writer.name, read: asRecord(id, own) });
          expect(own.versions).toEqual([bump.version]);
          await sleep(Math.max(0, bump.resolvedAt + ALLOWANCE_MS[topology] - (performance.timeOrigin + performance.now())));
          // One read at a time in each process (so that "no L2 lookup during the call" is exact), both at once.
          const answers = await Promise.all(others.map(async p => ({ p, row: await p.read('row', id), group: await p.read('group') })));
          for (const { p, row, group } of answers) {
            reads.push({ proc: p.name, read: asRecord(id, row) }, { proc: p.name, read: asRecord(-1, group) });
            if (!row.fromL1) droppedFromL1++;
          }
        }
        const verdict = judge(reads, bumps, () => ALLOWANCE_MS[topology]);
        // Propagation: from the writer's resolve to the moment each other process's backend had handled the message.
        const delays: number[] = [];
        const arrivals = new Map(await Promise.all(w.procs.map(async p => [p.name, await p.call('arrivals', undefined)] as const)));
        bumps.forEach((bump, round) => {
          const writer = w.procs[round % 3]!;
          for (const p of w.procs) {
            if (p === writer) continue;
            const heard = arrivals.get(p.name)!.find(a => a.from === writer.instanceId && a.keys.includes(`row:${bump.id}`) && a.at >= bump.startedAt);
            if (heard !== undefined) delays.push(heard.at - bump.resolvedAt);
          }
        });
        const states = (await closeWorld())!;
        const delay = `propagation resolve→L1 drop p50 ${percentile(delays, 50).toFixed(2)} ms, p99 ${percentile(delays, 99).toFixed(2)} ms, max ${Math.max(...delays).toFixed(2)} ms (${delays.length} deliveries); max age of an old value read ${verdict.maxAgeMs.toFixed(1)} ms`;
        record('2 rounds', topology, verdict, states, delay);
        expect(verdict.examples).toEqual([]);
        expect(verdict.stale).toBe(0);
        expect(delays).toHaveLength(2 * ROUNDS);
        expect(droppedFromL1, 'every reader dropped the row from L1 in every round').toBe(2 * ROUNDS);
        expect(verdict.checked).toBe(ROUNDS * (1 + 2 * (2 + ROWS.length)));
        expectNoLossResyncs(states);
      });

      it('3. a value computed while another process invalidated its data is returned, but stored neither in L2 nor in any L1', async () => {
        const w = await openWorld(topology);
        const [p1, p2, p3] = w.procs;
        const tally = new Tally();
        // A leaf: P1 reads version 0 of row 2 and is held there while P2 bumps and invalidates it.
        await p1.call('hold', { id: 2 });
        const held = p1.read('row', 2);
        expect(await p1.event(e => e.type === 'held' && e.id === 2)).toMatchObject({ version: 0 });
        expect(await p2.call('bump', { id: 2 })).toMatchObject({ version: 1, pending: false });
        await sleep(ALLOWANCE_MS[topology]);
        await p1.call('release', { id: 2 });
        tally.expect(p1, await held, [0], 'the held computation returns what it computed');
        expect((await p1.call('state', undefined)).staleSkips).toBe(1);
        // Not in L2: P3 computes it; not in P1's L1: P1 gets P3's value from L2.
        const inP3 = await p3.read('row', 2);
        tally.expect(p3, inP3, [1], 'row 2 in P3');
        expect(inP3.computed).toBe(1);
        const inP1 = await p1.read('row', 2);
        tally.expect(p1, inP1, [1], 'row 2 in P1');
        expect(inP1).toMatchObject({ fromL1: false, computed: 0 });

        // A parent: P1 computes the group from L1 children while row 3 is held; P2 invalidates row 0, a child
        // P1 already took from its L1 for this computation.
        await warm(w);
        await p2.call('bump', { id: 3 }); // row 3 leaves every L1: P1 computes it, and is held there
        await sleep(ALLOWANCE_MS[topology]);
        await p1.call('hold', { id: 3 });
        const group = p1.read('group');
        expect(await p1.event(e => e.type === 'held' && e.id === 3)).toMatchObject({ version: 1 });
        expect(await p2.call('bump', { id: 0 })).toMatchObject({ version: 1, pending: false });
        await sleep(ALLOWANCE_MS[topology]);
        await p1.call('release', { id: 3 });
        tally.expect(p1, await group, [0, 0, 1, 1], 'the held group returns what it computed');
        expect((await p1.call('state', undefined)).staleSkips).toBe(2);
        const groupInP3 = await p3.read('group');
        tally.expect(p3, groupInP3, [1, 0, 1, 1], 'group in P3');
        expect(groupInP3.computed, 'P3 computes the group (and row 0)').toBeGreaterThanOrEqual(1);
        const groupInP1 = await p1.read('group');
        tally.expect(p1, groupInP1, [1, 0, 1, 1], 'group in P1');
        expect(groupInP1.fromL1).toBe(false);
        const states = (await closeWorld())!;
        expectNoLossResyncs(states);
        record('3 stale writes refused', topology, tally, states);
      });

      it('4. a process’s own invalidation, echoed back by the bus, clears nothing more in its L1', async () => {
        const w = await openWorld(topology);
        const [p1, p2] = w.procs;
        const tally = new Tally();
        await warm(w);
        let refreshedHits = 0;
        const ROUNDS = 8;
        for (let round = 0; round < ROUNDS; round++) {
          const before = await p1.call('state', undefined);
          // Bump row 0 and read it back at once: the copy of the new version is taken before the echo comes back.
          const bump = await p1.call('bump', { id: 0 });
          tally.expect(p1, await p1.read('row', 0), [bump.version], 'row 0 right after its invalidation');
          await sleep(2 * HEARTBEAT_MS); // the echo, and heartbeats after it, are heard
          const after = await p1.call('state', undefined);
          expect(after.l2Gets - before.l2Gets, 'one L2 lookup: the invalidated row, read back').toBe(1);
          for (const id of [1, 2, 3]) {
            const read = await p1.read('row', id);
            tally.expect(p1, read, [0], `row ${id}, not invalidated`);
            expectL1(p1, read, `round ${round}: row ${id}, not invalidated`);
          }
          const again = await p1.read('row', 0);
          tally.expect(p1, again, [bump.version], 'row 0 again');
          // The copy of the new version, taken right after the invalidation resolved, survives the echo.
          if (expectL1(p1, again, `round ${round}: row 0, read back after its invalidation`)) refreshedHits++;
          // Another process did drop it.
          const elsewhere = await p2.read('row', 0);
          tally.expect(p2, elsewhere, [bump.version], 'row 0 in P2');
          expect(elsewhere.fromL1).toBe(false);
        }
        const states = (await closeWorld())!;
        expectNoLossResyncs(states);
        record('4 own echoes', topology, tally, states, `${refreshedHits} of ${ROUNDS} copies of the new version taken right after the invalidation were still L1 hits after the echo`);
      });

      it('5. CLIENT KILL TYPE pubsub while writers keep invalidating: no read older than the bound, then every process resyncs and serves from L1 again', { timeout: 30_000 }, async () => {
        const w = await openWorld(topology);
        const [p1, p2, p3] = w.procs;
        await warm(w);
        // Groups too, here and in 6 and 7: a group computed under load from an L1 row that another process had just
        // invalidated must not be kept in L2 (the regression below and in test/shared/layered.test.ts).
        const reader = { readIds: ROWS, groups: true, pauseMs: 2 };
        await p1.call('load', { ...reader, write: { ids: ROWS, everyMs: 15 } });
        await p2.call('load', { ...reader, write: { ids: ROWS, everyMs: 15 } });
        await p3.call('load', reader);
        const KILLS = 3;
        const servers = w.admin instanceof Cluster ? w.admin.nodes('all') : [w.admin as Redis];
        await sleep(400);
        for (let i = 0; i < KILLS; i++) {
          const killed = await Promise.all(servers.map(server => server.call('CLIENT', 'KILL', 'TYPE', 'pubsub') as Promise<number>));
          expect(killed.reduce((a, b) => a + b, 0), 'one subscriber per process').toBeGreaterThanOrEqual(3);
          await sleep(600);
        }
        const loads = await Promise.all(w.procs.map(p => p.call('unload', undefined)));
        const bumps = loads.flatMap(l => l.bumps);
        const verdict = judge(
          w.procs.flatMap((p, i) => readsOf(p, loads[i]!.reads)),
          bumps,
          () => lossBound(topology),
        );
        // Recovered: trusted again, and L1 hits.
        for (const p of w.procs) await recovered(p, 0);
        const states = (await closeWorld())!;
        record('5 CLIENT KILL pubsub', topology, verdict, states, `${bumps.length} invalidations (${bumps.filter(b => b.pending).length} pending), max age of an old value read ${verdict.maxAgeMs.toFixed(1)} ms (bound ${lossBound(topology)} ms)`);
        expect(verdict.examples).toEqual([]);
        expect(verdict.stale).toBe(0);
        expect(bumps.filter(b => b.pending)).toEqual([]);
        expect(verdict.l1Hits, 'L1 was serving').toBeGreaterThan(verdict.reads / 4);
        for (const s of states) expect(s.resyncs.disconnected ?? 0, 'one resync per lost subscription').toBeGreaterThanOrEqual(KILLS);
      });

      it('6. a stalled subscriber (its connection silently paused): that process stops serving L1 within the bound, and serves it again once resumed', { timeout: 30_000 }, async () => {
        const { proxies, bus: viaProxy } = await proxiedBus(topology);
        const w = await openWorld(topology, (i, base) => (i === 2 ? { ...base, bus: viaProxy } : base));
        const [p1, p2, p3] = w.procs;
        expect(proxies.reduce((n, p) => n + p.subscribers, 0), 'P3 subscribes through a proxy').toBe(1);
        await warm(w);
        const reader = { readIds: ROWS, groups: true, pauseMs: 2 };
        await p1.call('load', { ...reader, write: { ids: ROWS, everyMs: 15 } });
        await p2.call('load', { ...reader, write: { ids: ROWS, everyMs: 15 } });
        await p3.call('load', reader);
        await sleep(400);
        const now = () => performance.timeOrigin + performance.now();
        const pausedAt = now();
        for (const proxy of proxies) proxy.pauseSubscribers();
        await sleep(5 * HEARTBEAT_MS);
        const during = await p3.call('state', undefined);
        await sleep(5 * HEARTBEAT_MS);
        const heldBytes = proxies.reduce((n, p) => n + p.heldBytes, 0);
        const resumedAt = now();
        for (const proxy of proxies) proxy.resume();
        await sleep(600);
        const loads = await Promise.all(w.procs.map(p => p.call('unload', undefined)));
        const bumps = loads.flatMap(l => l.bumps);
        const all = w.procs.flatMap((p, i) => readsOf(p, loads[i]!.reads));
        const verdict = judge(all, bumps, () => lossBound(topology));
        const stalledReads = loads[2]!.reads.filter(r => r.startedAt >= pausedAt + 2 * HEARTBEAT_MS + ALLOWANCE_MS[topology] && r.endedAt <= resumedAt);
        // Its own echoes and the others' messages stop together: whichever silence it notices first drops L1.
        const firstSilence = during.resyncLog.find(r => (r.reason === 'silence' || r.reason === 'sender-silent') && r.at >= pausedAt);
        await recovered(p3, 1);
        const states = (await closeWorld())!;
        const lapse = firstSilence === undefined ? 'none' : `${(firstSilence.at - pausedAt).toFixed(0)} ms`;
        record('6 stalled subscriber', topology, verdict, states, `P3 resynced (silence or sender-silent) ${lapse} after the pause, served ${stalledReads.filter(r => r.fromL1).length} of ${stalledReads.length} reads from L1 while stalled; ${(heldBytes / 1024).toFixed(0)} KiB held; max age of an old value read ${verdict.maxAgeMs.toFixed(1)} ms (bound ${lossBound(topology)} ms)`);
        expect(verdict.examples).toEqual([]);
        expect(verdict.stale).toBe(0);
        expect(heldBytes, 'the proxy did hold messages back').toBeGreaterThan(0);
        expect(stalledReads.length).toBeGreaterThan(20);
        expect(stalledReads.filter(r => r.fromL1)).toEqual([]);
        expect(during.trusted, 'P3 distrusts its L1 while stalled').toBe(false);
        expect(firstSilence, 'P3 resynced for silence (its own or the others’)').toBeDefined();
        expect(firstSilence!.at - pausedAt).toBeLessThanOrEqual(3 * HEARTBEAT_MS + ALLOWANCE_MS[topology]);
        // P1 and P2 kept their subscriptions: no resync but the ones P3's silence caused, if any.
        expect(states[0]!.resyncs.disconnected ?? 0).toBe(0);
        expect(states[1]!.resyncs.disconnected ?? 0).toBe(0);
      });

      /**
       * The writer P1's bus runs as an ACL user; `-publish` makes each of its PUBLISHes fail at once (NOPERM) while
       * its subscription stays, `+publish` gives them back. On the cluster, ACLs are per node: every node. P1 keeps
       * bumping and invalidating rows every 30 ms; the three processes keep reading.
       */
      async function failingPublishes(failForMs: number) {
        const user = `layered-${randomBytes(4).toString('hex')}`;
        const admin = topology === 'cluster' ? clusterClient() : standaloneClient();
        await ready(admin);
        const servers = admin instanceof Cluster ? admin.nodes('all') : [admin as Redis];
        const acl = (...rules: string[]) => Promise.all(servers.map(server => server.call('ACL', 'SETUSER', user, ...rules)));
        await acl('on', '>secret', '~*', '&*', '+@all');
        cleanups.push(async () => {
          await Promise.all(servers.map(server => server.call('ACL', 'DELUSER', user)));
        });
        const w = await openWorld(topology, (i, base) => (i === 0 ? { ...base, bus: { username: user, password: 'secret' } } : base));
        const [p1, p2, p3] = w.procs;
        await warm(w);
        const reader = { readIds: ROWS, groups: true, pauseMs: 2 };
        await p1.call('load', { ...reader, write: { ids: ROWS, everyMs: 30 } });
        await p2.call('load', reader);
        await p3.call('load', reader);
        await sleep(400);
        const failedAt = performance.timeOrigin + performance.now();
        await acl('-publish');
        await sleep(failForMs);
        const during = await p1.call('state', undefined);
        await acl('+publish');
        await waitUntil(async () => (await p1.call('state', undefined)).pendingInvalidations === 0, 5_000, () => 'the queued invalidations did not land');
        await sleep(400);
        const loads = await Promise.all(w.procs.map(p => p.call('unload', undefined)));
        const bumps = loads[0]!.bumps;
        // Without any further invalidation, the others end up with the last version of every row.
        const last = ROWS.map(id => Math.max(0, ...bumps.filter(b => b.id === id).map(b => b.version)));
        await sleep(ALLOWANCE_MS[topology]);
        for (const p of [p2, p3]) expect((await p.read('group')).versions, `${p.name} has the last version of every row`).toEqual(last);
        const states = (await closeWorld())!;
        expect(bumps.filter(b => b.pending).length, 'invalidations resolved pending while publishing failed').toBeGreaterThan(0);
        expect(during.publishFailures).toBeGreaterThan(0);
        expect(during.pendingInvalidations).toBeGreaterThan(0);
        return { w, loads, bumps, states, failedAt };
      }

      it('7a. a writer’s publishes fail briefly: invalidate() resolves pending; the gap in its sequence makes the others resync within the bound; the queued publish lands', { timeout: 30_000 }, async () => {
        const { w, loads, bumps, states } = await failingPublishes(120);
        const all = w.procs.flatMap((p, i) => readsOf(p, loads[i]!.reads));
        const verdict = judge(all, bumps, bump => (bump.pending ? lossBound(topology) : ALLOWANCE_MS[topology]));
        const pending = bumps.filter(b => b.pending);
        record('7a publishes fail 120 ms', topology, verdict, states, `${bumps.length} invalidations, ${pending.length} resolved pending; max age of an old value read ${verdict.maxAgeMs.toFixed(1)} ms (bound ${lossBound(topology)} ms after a pending resolve)`);
        expect(verdict.examples).toEqual([]);
        expect(verdict.stale).toBe(0);
        for (const s of states.slice(1)) expect(s.resyncs.gap ?? 0, 'the others saw the hole in the writer’s sequence').toBeGreaterThanOrEqual(1);
      });

      it('7b. a writer’s publishes fail for long: the others forget it (sender-silent) and resync; once it publishes again they resync (gap) and its queued publish lands', { timeout: 30_000 }, async () => {
        const { w, loads, bumps, states, failedAt } = await failingPublishes(800);
        // What each reader may be judged on: the invalidations that resolved before it forgot the writer (its
        // silence resync covers them). Those the writer made afterwards resolved pending: other processes may serve
        // the old values until the queued publish lands (README, Layered), so they are counted, not judged.
        let covered: Verdict | undefined;
        let uncovered = 0;
        let uncoveredAge = 0;
        let strict = 0;
        const forgotAfter: string[] = [];
        w.procs.forEach((p, i) => {
          const forgot = states[i]!.resyncLog.find(r => r.reason === 'sender-silent' && r.at >= failedAt)?.at ?? Infinity;
          if (i > 0) forgotAfter.push(`${p.name} ${(forgot - failedAt).toFixed(0)} ms`);
          const reads = readsOf(p, loads[i]!.reads);
          const heard = bumps.filter(b => !(b.pending && b.resolvedAt > forgot));
          const bound = (b: BumpResult) => (b.pending ? lossBound(topology) : ALLOWANCE_MS[topology]);
          const v = judge(reads, heard, bound);
          const everything = judge(reads, bumps, bound);
          uncovered += everything.stale - v.stale;
          uncoveredAge = Math.max(uncoveredAge, everything.maxAgeMs);
          strict += judge(reads, heard, b => (b.pending ? lossBound(topology) : ALLOWANCE_MS[topology])).stale;
          covered = covered === undefined ? v : { ...v, reads: covered.reads + v.reads, checked: covered.checked + v.checked, l1Hits: covered.l1Hits + v.l1Hits, stale: covered.stale + v.stale, maxAgeMs: Math.max(covered.maxAgeMs, v.maxAgeMs), examples: [...covered.examples, ...v.examples] };
        });
        const pending = bumps.filter(b => b.pending);
        record(
          '7b publishes fail 800 ms',
          topology,
          covered!,
          states,
          `${bumps.length} invalidations, ${pending.length} resolved pending; the others forgot the writer ${forgotAfter.join(', ')} after its publishes began to fail; ` +
            `max age of an old value read ${covered!.maxAgeMs.toFixed(1)} ms (bound enforced ${lossBound(topology)} ms; ${strict} reads older than ${lossBound(topology)} ms); ` +
            `pending (documented): ${uncovered} reads of values whose invalidation resolved pending after the writer was forgotten, up to ${uncoveredAge.toFixed(0)} ms old`,
        );
        expect(covered!.examples).toEqual([]);
        expect(covered!.stale).toBe(0);
        for (const s of states.slice(1)) {
          expect(s.resyncs['sender-silent'] ?? 0, 'the others forgot the silent writer').toBeGreaterThanOrEqual(1);
          expect(s.resyncs.gap ?? 0, 'and resynced when it came back mid-sequence').toBeGreaterThanOrEqual(1);
        }
        expect(states[0]!.resyncs.silence ?? 0, 'the writer stopped hearing itself').toBeGreaterThanOrEqual(1);
      });

      it('regression: a group P3 computed from its L1 rows before it heard an invalidation is not kept in L2: every process reads the new group after the bound', async () => {
        const { proxies, bus } = await proxiedBus(topology);
        const w = await openWorld(topology, (i, base) => (i === 2 ? { ...base, bus } : base));
        const [p1, p2, p3] = w.procs;
        await warm(w);
        const versions = [0, 0, 0, 0];
        // The race as intended: P3 builds the group from its L1 rows only, row 0 at its old version, while it
        // trusts its L1. A loaded machine may spoil an attempt; after three, the race was not set up and there is
        // nothing to check (said on the console).
        let raced = false;
        for (let attempt = 0; attempt < 3 && !raced; attempt++) {
          // The group leaves every L1 and L2; P3 keeps every row in L1.
          versions[3] = (await p1.call('bump', { id: 3 })).version;
          await sleep(ALLOWANCE_MS[topology]);
          await p3.read('row', 3);
          // P3 does not hear the next invalidation for a while (a stalled subscriber, or just the delivery delay).
          for (const proxy of proxies) proxy.pauseSubscribers();
          const old = versions[0]!;
          versions[0] = (await p1.call('bump', { id: 0 })).version;
          const inP3 = await p3.read('group');
          for (const proxy of proxies) proxy.resume();
          raced = inP3.computed === 1 && inP3.trustedAtStart && inP3.trusted && inP3.versions[0] === old;
          if (!raced) await recovered(p3, 1);
        }
        if (!raced) {
          console.warn(`layered-processes (${topology}): the group race could not be set up in 3 attempts; nothing checked`);
          return;
        }
        await sleep(lossBound(topology) + HEARTBEAT_MS);
        for (const p of [p1, p2, p3]) expect((await p.read('group')).versions, `${p.name} reads the group`).toEqual(versions);
      });
    });
  }
});
