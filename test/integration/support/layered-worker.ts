// A child process for the layered multi-process tests (../layered-processes.test.ts): one CachingService over a
// LayeredBackend (memory L1, RedisBackend L2, RedisInvalidationBus), with a decorated model whose leaf reads a
// versioned row from Redis itself (the "database", under its own prefix) and whose parent groups several rows.
// The test drives it over IPC with requests `{ t: 'req', id, op, args }` answered by `{ t: 'res', id, … }`, and
// hears events `{ t: 'event', … }` (a computation held at its gate). Run with `node --import tsx` (TC39 decorators).
//
// What it observes, so that the test can judge from outside:
// - every read: when it started and ended (wall clock, sub-millisecond), the versions it returned, and whether it
//   was answered without any L2 lookup (an L1 hit: a counting wrapper around the L2 sees every `get`);
// - every message heard from another process: when it was handed to the layered backend (which drops an
//   invalidation's keys from L1 synchronously, so this is the moment of the L1 drop), its type, sender, sequence
//   number and keys;
// - resyncs by reason (the service's `resync` events), stale stores refused (`skip` events), bus errors.
import { Cluster, Redis, type RedisOptions } from 'ioredis';
import { addDependency, bindCachingService, Cache, CachingService, LayeredBackend, type BusReceiver, type CachingBackend, type InvalidationBus, type ResyncReason } from '../../../src/index.js';
import { RedisBackend, RedisInvalidationBus } from '../../../src/redis.js';

export interface Address {
  host: string;
  port: number;
}

export interface OpenOptions {
  tag: string;
  keyPrefix: string;
  dataPrefix: string;
  channel: string;
  heartbeatMs: number;
  publishTimeoutMs: number;
  /** The servers: the cache's and the data's connection. */
  redis: { standalone: Address } | { cluster: Address[] };
  /** The bus's own client, when it is not the cache's: through a proxy, or as another ACL user. */
  bus?: { standalone?: Address; cluster?: Address[]; natMap?: Record<string, Address>; username?: string; password?: string };
  /** The rows of `getGroup()`. */
  groupIds: number[];
}

export interface ReadResult {
  startedAt: number;
  endedAt: number;
  /** The row's version, or each grouped row's. */
  versions: number[];
  /** Answered without any L2 lookup. */
  fromL1: boolean;
  /** Rows and groups this call computed. */
  computed: number;
  /** Whether L1 could be served when the call started, and when it ended. */
  trustedAtStart: boolean;
  trusted: boolean;
  /** Resyncs of this process since the session opened (or its counters were reset). */
  resyncs: number;
}

export interface BumpResult {
  id: number;
  version: number;
  startedAt: number;
  resolvedAt: number;
  pending: boolean;
}

/** A read of the load loop: `id` -1 for the group. */
export interface ReadRecord {
  id: number;
  startedAt: number;
  endedAt: number;
  versions: number[];
  fromL1: boolean;
}

export interface Arrival {
  at: number;
  /** The message type: i(nvalidate), c(lear), h(eartbeat), b(ye). */
  type: string;
  from: string;
  seq: number;
  keys: string[];
}

export interface WorkerState {
  instanceId: string;
  trusted: boolean;
  stalenessBoundMs: number;
  resyncs: Partial<Record<ResyncReason, number>>;
  resyncLog: Array<{ at: number; reason: ResyncReason }>;
  l2Gets: number;
  computedRows: number;
  computedGroups: number;
  staleSkips: number;
  pendingInvalidations: number;
  busErrors: number;
  publishFailures: number;
  connection: Array<{ at: number; state: 'up' | 'down' }>;
}

export interface LoadOptions {
  /** Rows the reader reads at random (and the group, when `groups`). */
  readIds: number[];
  groups: boolean;
  pauseMs: number;
  /** A writer loop: bump a random one of `ids` every `everyMs`. */
  write?: { ids: number[]; everyMs: number };
}

export interface Ops {
  open: [OpenOptions, WorkerState];
  close: [undefined, WorkerState];
  state: [{ reset?: boolean } | undefined, WorkerState];
  read: [{ what: 'row' | 'group'; id?: number }, ReadResult];
  bump: [{ id: number }, BumpResult];
  hold: [{ id: number }, undefined];
  release: [{ id: number }, undefined];
  arrivals: [undefined, Arrival[]];
  load: [LoadOptions, undefined];
  unload: [undefined, { reads: ReadRecord[]; bumps: BumpResult[] }];
}

export type Request = { [K in keyof Ops]: { t: 'req'; id: number; op: K; args: Ops[K][0] } }[keyof Ops];
export type WorkerMessage =
  | { t: 'up' }
  | { t: 'res'; id: number; ok: true; value: unknown }
  | { t: 'res'; id: number; ok: false; error: string }
  | { t: 'event'; type: 'held'; id: number; version: number };

const send = (message: WorkerMessage): void => {
  process.send?.(message);
};
// The test is gone (it failed or was killed): never outlive it.
process.on('disconnect', () => process.exit(0));

/** Wall-clock milliseconds with sub-millisecond resolution, comparable across the processes of one machine. */
const now = (): number => performance.timeOrigin + performance.now();

interface Session {
  options: OpenOptions;
  clients: Array<Redis | Cluster>;
  data: Redis | Cluster;
  service: CachingService;
  backend: LayeredBackend;
  rows: Rows;
  counters: { l2Gets: number; computedRows: number; computedGroups: number; staleSkips: number; busErrors: number; publishFailures: number };
  resyncLog: Array<{ at: number; reason: ResyncReason }>;
  connection: Array<{ at: number; state: 'up' | 'down' }>;
  arrivals: Arrival[];
  gates: Map<number, { promise: Promise<void>; release: () => void }>;
  load?: { running: boolean; loops: Promise<void>[]; reads: ReadRecord[]; bumps: BumpResult[] } | undefined;
}

let session: Session | undefined;

function current(): Session {
  if (session === undefined) throw new Error('layered-worker: no open session (send open first)');
  return session;
}

class Rows {
  constructor(private readonly s: Session) {}

  @Cache()
  async getRow(id: number): Promise<{ id: number; version: number }> {
    addDependency(`row:${id}`);
    this.s.counters.computedRows++;
    const version = Number((await this.s.data.get(`${this.s.options.dataPrefix}row:${id}`)) ?? 0);
    const gate = this.s.gates.get(id);
    if (gate !== undefined) {
      send({ t: 'event', type: 'held', id, version });
      await gate.promise;
    }
    return { id, version };
  }

  @Cache()
  async getGroup(): Promise<number[]> {
    this.s.counters.computedGroups++;
    const rows = await Promise.all(this.s.options.groupIds.map(id => this.getRow(id)));
    return rows.map(row => row.version);
  }
}

// ioredis 6.0.0 declares RedisOptions.replyMapping as `ReplyMappingMode | undefined`, which its own constructors
// reject under exactOptionalPropertyTypes; these helpers never set it.
function connect(redis: OpenOptions['redis'], extra: Omit<RedisOptions, 'replyMapping'> = {}, natMap?: Record<string, Address>): Redis | Cluster {
  // Quick reconnections: the tests kill and stall connections and look at how fast the processes recover.
  const retryStrategy = () => 50;
  const client =
    'cluster' in redis
      ? new Cluster(redis.cluster, { redisOptions: extra, clusterRetryStrategy: retryStrategy, ...(natMap ? { natMap: (key: string) => natMap[key] ?? null } : {}) })
      : new Redis({ ...redis.standalone, ...extra, retryStrategy });
  client.on('error', () => undefined); // connection errors are what some tests inject
  return client;
}

function ready(client: Redis | Cluster): Promise<void> {
  if (client.status === 'ready') return Promise.resolve();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`client not ready within 10 s (status ${client.status})`)), 10_000);
    client.once('ready', () => {
      clearTimeout(timer);
      resolve();
    });
  });
}

/** The L2 seen through a wrapper that counts lookups (a call answered without one was an L1 hit). */
function counting(inner: RedisBackend, counters: Session['counters']): CachingBackend {
  return new Proxy(inner, {
    get: (target, property) => {
      const value: unknown = Reflect.get(target, property, target);
      if (typeof value !== 'function') return value;
      if (property === 'get') {
        return (key: string) => {
          counters.l2Gets++;
          return target.get(key);
        };
      }
      return (value as (...args: unknown[]) => unknown).bind(target);
    },
  });
}

/** The bus seen through a wrapper that timestamps what it hands to the layered backend. */
function observed(inner: RedisInvalidationBus, s: Pick<Session, 'arrivals' | 'counters' | 'connection'>, ownId: () => string): InvalidationBus {
  return {
    name: inner.name,
    heartbeatMs: inner.heartbeatMs,
    publish: payload =>
      inner.publish(payload).catch((error: unknown) => {
        s.counters.publishFailures++;
        throw error;
      }),
    subscribe: (receiver: BusReceiver) =>
      inner.subscribe({
        onMessage: payload => {
          receiver.onMessage(payload);
          // After the backend handled it: its L1 no longer holds what the message invalidated.
          const at = now();
          let message: { t?: string; f?: string; s?: number; k?: string[] } | undefined;
          try {
            message = JSON.parse(payload) as typeof message;
          } catch {
            return;
          }
          if (message !== undefined && message.f !== ownId() && s.arrivals.length < 100_000) s.arrivals.push({ at, type: message.t ?? '', from: message.f ?? '', seq: message.s ?? 0, keys: message.k ?? [] });
        },
        onConnection: state => {
          s.connection.push({ at: now(), state });
          receiver.onConnection(state);
        },
        onError: (error, operation) => receiver.onError?.(error, operation),
      }),
    dispose: () => inner.dispose(),
  };
}

async function open(options: OpenOptions): Promise<WorkerState> {
  if (session !== undefined) throw new Error('layered-worker: a session is already open');
  const cache = connect(options.redis);
  const clients: Array<Redis | Cluster> = [cache];
  let busClient = cache;
  if (options.bus !== undefined) {
    const { standalone, cluster, natMap, username, password } = options.bus;
    const auth: Omit<RedisOptions, 'replyMapping'> = username === undefined ? {} : { username, password };
    const target: OpenOptions['redis'] = cluster ? { cluster } : standalone ? { standalone } : options.redis;
    busClient = connect(target, auth, natMap);
    clients.push(busClient);
  }
  await Promise.all(clients.map(ready));
  const counters = { l2Gets: 0, computedRows: 0, computedGroups: 0, staleSkips: 0, busErrors: 0, publishFailures: 0 };
  const partial = { arrivals: [] as Arrival[], counters, connection: [] as Session['connection'] };
  let backend: LayeredBackend | undefined;
  const bus = observed(new RedisInvalidationBus({ client: busClient, channel: options.channel, heartbeatMs: options.heartbeatMs, publishTimeoutMs: options.publishTimeoutMs }), partial, () => backend?.instanceId ?? '');
  backend = new LayeredBackend({ l2: counting(new RedisBackend({ client: cache, keyPrefix: options.keyPrefix }), counters), bus });
  const service = new CachingService({ backend, telemetry: false });
  const s: Session = { options, clients, data: cache, service, backend, rows: undefined as unknown as Rows, ...partial, resyncLog: [], gates: new Map() };
  s.rows = bindCachingService(new Rows(s), service);
  service.on('resync', event => s.resyncLog.push({ at: now(), reason: event.reason }));
  service.on('skip', event => {
    if (event.reason === 'stale') counters.staleSkips++;
  });
  service.on('error', () => {
    counters.busErrors++;
  });
  session = s;
  return state(s);
}

function state(s: Session): WorkerState {
  const resyncs: Partial<Record<ResyncReason, number>> = {};
  for (const { reason } of s.resyncLog) resyncs[reason] = (resyncs[reason] ?? 0) + 1;
  return {
    instanceId: s.backend.instanceId,
    trusted: s.backend.trusted,
    stalenessBoundMs: s.backend.stalenessBoundMs,
    resyncs,
    resyncLog: [...s.resyncLog],
    ...s.counters,
    pendingInvalidations: s.backend.pendingInvalidations,
    connection: [...s.connection],
  };
}

async function close(): Promise<WorkerState> {
  const s = current();
  if (s.load !== undefined) await unload(s);
  for (const gate of s.gates.values()) gate.release();
  const final = state(s);
  await s.service.dispose();
  await Promise.all(s.clients.map(client => client.quit().catch(() => undefined)));
  for (const client of s.clients) client.disconnect();
  session = undefined;
  return final;
}

async function read(s: Session, what: 'row' | 'group', id = 0): Promise<ReadResult> {
  const gets = s.counters.l2Gets;
  const computed = s.counters.computedRows + s.counters.computedGroups;
  const trustedAtStart = s.backend.trusted;
  const startedAt = now();
  const versions = what === 'row' ? [(await s.rows.getRow(id)).version] : await s.rows.getGroup();
  const endedAt = now();
  const fromL1 = s.counters.l2Gets === gets;
  return { startedAt, endedAt, versions, fromL1, computed: s.counters.computedRows + s.counters.computedGroups - computed, trustedAtStart, trusted: s.backend.trusted, resyncs: s.resyncLog.length };
}

async function bump(s: Session, id: number): Promise<BumpResult> {
  const startedAt = now();
  const version = await s.data.incr(`${s.options.dataPrefix}row:${id}`);
  const { pending } = await s.service.invalidate(`row:${id}`);
  return { id, version, startedAt, resolvedAt: now(), pending };
}

const sleep = (ms: number) => new Promise<void>(resolve => setTimeout(resolve, ms));

function load(s: Session, options: LoadOptions): void {
  if (s.load !== undefined) throw new Error('layered-worker: a load is already running');
  const run: NonNullable<Session['load']> = { running: true, loops: [], reads: [], bumps: [] };
  s.load = run;
  const pick = (ids: number[]) => ids[Math.floor(Math.random() * ids.length)]!;
  // One reader loop: reads never overlap, so "no L2 lookup during the call" is exact.
  run.loops.push(
    (async () => {
      while (run.running) {
        const group = options.groups && Math.random() < 1 / (options.readIds.length + 1);
        const id = group ? -1 : pick(options.readIds);
        const r = await read(s, group ? 'group' : 'row', id);
        run.reads.push({ id, startedAt: r.startedAt, endedAt: r.endedAt, versions: r.versions, fromL1: r.fromL1 });
        await sleep(options.pauseMs);
      }
    })(),
  );
  const write = options.write;
  if (write !== undefined) {
    run.loops.push(
      (async () => {
        while (run.running) {
          run.bumps.push(await bump(s, pick(write.ids)));
          await sleep(write.everyMs);
        }
      })(),
    );
  }
}

async function unload(s: Session): Promise<{ reads: ReadRecord[]; bumps: BumpResult[] }> {
  const run = s.load;
  if (run === undefined) throw new Error('layered-worker: no load is running');
  run.running = false;
  await Promise.all(run.loops);
  s.load = undefined;
  return { reads: run.reads, bumps: run.bumps };
}

async function handle(request: Request): Promise<unknown> {
  switch (request.op) {
    case 'open':
      return open(request.args);
    case 'close':
      return close();
    case 'state': {
      const s = current();
      const result = state(s);
      if (request.args?.reset === true) {
        s.resyncLog.length = 0;
        s.connection.length = 0;
        for (const key of Object.keys(s.counters) as Array<keyof Session['counters']>) s.counters[key] = 0;
      }
      return result;
    }
    case 'read':
      return read(current(), request.args.what, request.args.id);
    case 'bump':
      return bump(current(), request.args.id);
    case 'hold': {
      let release!: () => void;
      const promise = new Promise<void>(resolve => {
        release = resolve;
      });
      current().gates.set(request.args.id, { promise, release });
      return undefined;
    }
    case 'release': {
      const s = current();
      const gate = s.gates.get(request.args.id);
      s.gates.delete(request.args.id);
      gate?.release();
      return undefined;
    }
    case 'arrivals': {
      const s = current();
      return s.arrivals.splice(0);
    }
    case 'load':
      load(current(), request.args);
      return undefined;
    case 'unload':
      return unload(current());
  }
}

process.on('message', (request: Request) => {
  handle(request).then(
    value => send({ t: 'res', id: request.id, ok: true, value }),
    (error: unknown) => send({ t: 'res', id: request.id, ok: false, error: String(error instanceof Error ? error.stack : error) }),
  );
});

send({ t: 'up' });
