// A child process for the multi-process consistency tests (../consistency-redis.test.ts,
// ../consistency-layered-redis.test.ts): runs the consistency model's cached methods
// (../../support/consistency-model.ts) on its own RedisBackend — or, with `layered`, on its own LayeredBackend
// (its own memory L1 over that RedisBackend, a RedisInvalidationBus on the given channel) — and does what the
// parent asks over IPC. The data source stays in the parent: every data read is a round trip to it, so the
// parent's driver holds reads open, fails them and releases them, exactly as in one process. What the backend
// stores and serves (L1 hits included) is forwarded to the parent's expiry model. Run with `node --import tsx`
// (TC39 decorators).
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { Cluster, Redis } from 'ioredis';
import { CachingService, LayeredBackend, type CachingBackend, type ResyncReason } from '../../../src/index.js';
import { RedisBackend, RedisInvalidationBus } from '../../../src/redis.js';
import { callModel, defineModel, ExpiryModel, ObservedBackend, type MethodName, type MethodOptions, type ModelInstance, type WriteKind } from '../../support/consistency-model.js';
import { TimingBus, type BusTimings } from './timing-bus.js';

/** A layered backend per process: all processes of a deployment use one channel (the broken setup gives one its own). */
export interface LayeredInit {
  readonly channel: string;
  readonly heartbeatMs: number;
}

export type ParentMessage =
  | { t: 'init'; tag: string; keyPrefix: string; lock: boolean; options: MethodOptions; scope: string; standalone?: { host: string; port: number }; cluster?: Array<{ host: string; port: number }>; layered?: LayeredInit }
  | { t: 'call'; id: number; m: MethodName; args: number[] }
  | { t: 'write'; id: number; kind: WriteKind; r: number }
  | { t: 'reply'; id: number; value?: number; error?: string }
  | { t: 'stats' }
  | { t: 'stop' };

/** What a child measured during a run (layered fields only with `layered`). */
export interface WorkerStats {
  /** Hits the service was served (L1 and L2). */
  readonly hits: number;
  /** Hits L2 answered (the rest came from L1). */
  readonly l2Hits: number;
  readonly instanceId?: string;
  readonly resyncs: Partial<Record<ResyncReason, number>>;
  readonly timings?: BusTimings;
  /** This process's event-loop delay over the run, in ms (perf_hooks, 10 ms resolution). */
  readonly loopDelayMs: { readonly p50: number; readonly p99: number; readonly max: number };
}

export type ChildMessage =
  | { t: 'up' }
  | { t: 'ready' }
  | { t: 'result'; id: number; node?: unknown; error?: string }
  | { t: 'written'; id: number; version?: number; value?: unknown; error?: string }
  | { t: 'read'; id: number; r: number }
  | { t: 'write-row'; id: number; r: number }
  | { t: 'stored'; key: string; nodeId: string; partIds: string[]; expiresAt: number; sliding: number; dependencies: string[]; at: number }
  | { t: 'hit'; key: string; nodeId: string; at: number }
  | { t: 'removed'; keys: string[] }
  | { t: 'stats'; stats: WorkerStats };

const send = (message: ChildMessage) => process.send!(message);
let next = 0;
const waiting = new Map<number, { resolve: (v: number) => void; reject: (e: Error) => void }>();
const ask = (message: (id: number) => ChildMessage): Promise<number> =>
  new Promise((resolve, reject) => {
    const id = next++;
    waiting.set(id, { resolve, reject });
    send(message(id));
  });

/** Forwards what the backend did to the parent, which owns the expiry model. */
class ForwardingExpiry extends ExpiryModel {
  override stored(key: string, entry: { value: unknown; expiresAt: number; sliding: number; dependencies: readonly string[] }, at: number): void {
    const nodeId = (entry.value as { id?: string } | undefined)?.id;
    if (nodeId !== undefined) send({ t: 'stored', key, nodeId, partIds: ((entry.value as { parts?: Array<{ id: string }> }).parts ?? []).map(p => p.id), expiresAt: entry.expiresAt, sliding: entry.sliding, dependencies: [...entry.dependencies], at });
  }
  override hit(key: string, value: unknown, at: number): void {
    servedHits++;
    const nodeId = (value as { id?: string } | undefined)?.id;
    if (nodeId !== undefined) send({ t: 'hit', key, nodeId, at });
  }
  override removed(keys: readonly string[]): void {
    send({ t: 'removed', keys: [...keys] });
  }
}

/** Counts the hits the backend under it answers (L2, below a layered backend). */
class CountingHits extends ExpiryModel {
  hits = 0;
  override stored(): void {}
  override hit(): void {
    this.hits++;
  }
  override removed(): void {}
}

let service: CachingService | undefined;
let model: ModelInstance | undefined;
let client: Redis | Cluster | undefined;
let layered: LayeredBackend | undefined;
let timing: TimingBus | undefined;
/** Hits the service was served (every one is forwarded to the parent's expiry model). */
let servedHits = 0;
const l2Hits = new CountingHits(() => Date.now(), 0);
const resyncs: Partial<Record<ResyncReason, number>> = {};
const loopDelay = monitorEventLoopDelay({ resolution: 10 });

/** The backend of this process: Redis itself, or a layered backend over it (resolves once it trusts its L1). */
async function createBackend(message: Extract<ParentMessage, { t: 'init' }>): Promise<CachingBackend> {
  const redis = new RedisBackend({ client: client!, keyPrefix: message.keyPrefix, lock: message.lock });
  if (message.layered === undefined) return redis;
  timing = new TimingBus(new RedisInvalidationBus({ client: client!, channel: message.layered.channel, heartbeatMs: message.layered.heartbeatMs }));
  layered = new LayeredBackend({ l2: new ObservedBackend(redis, l2Hits), bus: timing });
  timing.ownId = layered.instanceId;
  layered.subscribe({
    onEvent: event => {
      if (event.type === 'resync') resyncs[event.reason] = (resyncs[event.reason] ?? 0) + 1;
    },
  });
  // As a process does before it serves from L1: subscribed, and its first heartbeat heard.
  const deadline = Date.now() + 10_000;
  while (!layered.trusted) {
    if (Date.now() > deadline) throw new Error(`${message.tag}: the layered backend did not trust its L1 within 10 s (bus not up?)`);
    await new Promise(resolve => setTimeout(resolve, 5));
  }
  return layered;
}

function stats(): WorkerStats {
  const ms = (ns: number) => Math.round(ns / 1e5) / 10;
  return {
    hits: servedHits,
    l2Hits: l2Hits.hits,
    ...(layered ? { instanceId: layered.instanceId } : {}),
    resyncs,
    ...(timing ? { timings: timing.timings } : {}),
    loopDelayMs: { p50: ms(loopDelay.percentile(50)), p99: ms(loopDelay.percentile(99)), max: ms(loopDelay.max) },
  };
}

process.on('message', (message: ParentMessage) => {
  switch (message.t) {
    case 'init':
      void init(message).then(
        () => {
          loopDelay.enable();
          send({ t: 'ready' });
        },
        (error: unknown) => {
          console.error(error);
          process.exit(1);
        },
      );
      return;
    case 'stats':
      send({ t: 'stats', stats: stats() });
      return;
    case 'reply': {
      const w = waiting.get(message.id);
      waiting.delete(message.id);
      if (message.error !== undefined) w?.reject(new Error(message.error));
      else w?.resolve(message.value!);
      return;
    }
    case 'call':
      callModel(model!, message.m, message.args).then(
        node => send({ t: 'result', id: message.id, node }),
        (error: unknown) => send({ t: 'result', id: message.id, error: String((error as Error)?.message ?? error) }),
      );
      return;
    case 'write':
      void write(message.kind, message.r).then(
        ({ version, value }) => send({ t: 'written', id: message.id, ...(version !== undefined ? { version } : {}), ...(value !== undefined ? { value } : {}) }),
        (error: unknown) => send({ t: 'written', id: message.id, error: String((error as Error)?.message ?? error) }),
      );
      return;
    case 'stop':
      void (async () => {
        await service?.dispose();
        await client?.quit().catch(() => undefined);
        process.exit(0);
      })();
  }
});

async function init(message: Extract<ParentMessage, { t: 'init' }>): Promise<void> {
  const c = (client = message.cluster ? new Cluster(message.cluster) : new Redis(message.standalone!));
  c.on('error', () => undefined);
  if (c.status !== 'ready') await new Promise(resolve => c.once('ready', resolve));
  // Every hit the service is served, L1 hits included, is checked against expiry; so is every store.
  const backend = new ObservedBackend(await createBackend(message), new ForwardingExpiry(() => Date.now(), 0));
  service = new CachingService({ backend, telemetry: false });
  service.on('error', () => undefined);
  const Model = defineModel(message.options, message.scope);
  model = new Model({ read: r => ask(id => ({ t: 'read', id, r })), write: r => ask(id => ({ t: 'write-row', id, r })), now: () => Date.now(), tag: message.tag }, service);
}

/** Makes a write the parent did visible (for 'decorator' the write happens in the method, via the parent). */
async function write(kind: WriteKind, r: number): Promise<{ version?: number | undefined; value?: unknown }> {
  const m = model!;
  const s = service!;
  const ok = (result: unknown) => (result as { pending?: boolean } | undefined)?.pending !== true;
  switch (kind) {
    case 'decorator':
      return { version: await m.updateRow(r) };
    case 'invalidate':
      return ok(await s.invalidate(`row:${r}`)) ? { version: -1 } : {};
    case 'invalidateCall':
      return ok(await s.invalidateCall(() => m.getRow(r))) ? { version: -1 } : {};
    case 'refreshCall':
      try {
        return { version: -1, value: await s.refreshCall(() => m.getRow(r)) };
      } catch {
        return ok(await s.invalidate(`row:${r}`)) ? { version: -1 } : {};
      }
  }
}

send({ t: 'up' });
