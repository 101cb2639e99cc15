// A child process for the two-process consistency test (../consistency-redis.test.ts): runs the consistency
// model's cached methods (../../support/consistency-model.ts) on its own RedisBackend, and does what the parent
// asks over IPC. The data source stays in the parent: every data read is a round trip to it, so the parent's
// driver holds reads open, fails them and releases them, exactly as in one process. What the backend stores
// and serves is forwarded to the parent's expiry model. Run with `node --import tsx` (TC39 decorators).
import { Cluster, Redis } from 'ioredis';
import { CachingService } from '../../../src/index.js';
import { RedisBackend } from '../../../src/redis.js';
import { callModel, defineModel, ExpiryModel, ObservedBackend, type MethodName, type MethodOptions, type ModelInstance, type WriteKind } from '../../support/consistency-model.js';

export type ParentMessage =
  | { t: 'init'; tag: string; keyPrefix: string; lock: boolean; options: MethodOptions; scope: string; standalone?: { host: string; port: number }; cluster?: Array<{ host: string; port: number }> }
  | { t: 'call'; id: number; m: MethodName; args: number[] }
  | { t: 'write'; id: number; kind: WriteKind; r: number }
  | { t: 'reply'; id: number; value?: number; error?: string }
  | { t: 'stop' };

export type ChildMessage =
  | { t: 'up' }
  | { t: 'ready' }
  | { t: 'result'; id: number; node?: unknown; error?: string }
  | { t: 'written'; id: number; version?: number; value?: unknown; error?: string }
  | { t: 'read'; id: number; r: number }
  | { t: 'write-row'; id: number; r: number }
  | { t: 'stored'; key: string; nodeId: string; partIds: string[]; expiresAt: number; sliding: number; dependencies: string[]; at: number }
  | { t: 'hit'; key: string; nodeId: string; at: number }
  | { t: 'removed'; keys: string[] };

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
    const nodeId = (value as { id?: string } | undefined)?.id;
    if (nodeId !== undefined) send({ t: 'hit', key, nodeId, at });
  }
  override removed(keys: readonly string[]): void {
    send({ t: 'removed', keys: [...keys] });
  }
}

let service: CachingService | undefined;
let model: ModelInstance | undefined;
let client: Redis | Cluster | undefined;

process.on('message', (message: ParentMessage) => {
  switch (message.t) {
    case 'init': {
      client = message.cluster ? new Cluster(message.cluster) : new Redis(message.standalone!);
      client.on('error', () => undefined);
      const backend = new ObservedBackend(new RedisBackend({ client, keyPrefix: message.keyPrefix, lock: message.lock }), new ForwardingExpiry(() => Date.now(), 0));
      service = new CachingService({ backend, telemetry: false });
      service.on('error', () => undefined);
      const Model = defineModel(message.options, message.scope);
      model = new Model({ read: r => ask(id => ({ t: 'read', id, r })), write: r => ask(id => ({ t: 'write-row', id, r })), now: () => Date.now(), tag: message.tag }, service);
      const onReady = () => send({ t: 'ready' });
      if (client.status === 'ready') onReady();
      else client.once('ready', onReady);
      return;
    }
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
