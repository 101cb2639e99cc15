// The second process of bench/layered.bench.ts's propagation scenario, started by it with `child_process.fork`
// (same Node flags, so it also runs the built package through bench/built-library.mjs). It holds entries in its
// L1 caches — aspect-cache's LayeredBackend and a bentocache tiered store, both on the benchmark's Redis — and
// reports over IPC the moment each watched entry stops being served there, as its process.hrtime.bigint().
//
//   argv: <redis port> <redis-server pid>
//
// Per sample: `warm` → it reads the entry until its L1 serves it (checked) and answers `warmed`; the parent then
// invalidates; the instrumented L1 (bench/layered-fixtures.ts) reports the removal synchronously, and this
// process sends `gone` with the time at once, then reads the entry again and answers `verified` only if that
// read recomputed it (so the removal was real and reached L2 first).
import { CachingService, bindCachingService, LayeredBackend } from '../src/index.js';
import { RedisBackend, RedisInvalidationBus } from '../src/redis.js';
import { descriptorOf } from '../src/decorators/method-descriptor.js';
import {
  bentoTagKey,
  connectOwnRedis,
  countedFactory,
  dependencyOf,
  LONG_TTL_MS,
  ObservedMemoryBackend,
  PriceCatalogue,
  priceOf,
  PROPAGATION,
  propagationBento,
  type FromChild,
  type ObservedMemoryDriver,
  type PropagationKind,
  type RemovalHook,
  type ToChild,
} from './layered-fixtures.js';

const send = (message: FromChild): void => {
  process.send?.(message);
};

/** The sample whose entry is watched: the key (or bentocache tag key) whose removal ends it. */
interface Watch {
  readonly seq: number;
  readonly kind: PropagationKind;
  readonly id: string;
  readonly key: string;
  fired: boolean;
}

async function main(): Promise<void> {
  const [port, pid] = process.argv.slice(2).map(Number);
  if (!port || !pid) throw new Error('usage: layered-child.ts <redis port> <redis-server pid>');
  if (process.send === undefined) throw new Error('layered-child.ts runs as a forked child of bench/layered.bench.ts (it needs the IPC channel).');

  const client = await connectOwnRedis(port, pid);
  const bentoClient = await connectOwnRedis(port, pid);

  // aspect-cache: LayeredBackend with the default heartbeat (nothing blocks this process's event loop).
  const l1 = new ObservedMemoryBackend();
  const backend = new LayeredBackend({
    l1,
    l2: new RedisBackend({ client, keyPrefix: PROPAGATION.keyPrefix }),
    bus: new RedisInvalidationBus({ client, channel: PROPAGATION.channel }),
  });
  const service = new CachingService({ backend });
  const resyncReasons: string[] = [];
  service.on('resync', event => resyncReasons.push(event.reason));
  const catalogue = bindCachingService(new PriceCatalogue(), service);
  const descriptor = descriptorOf(PriceCatalogue.prototype.getPrice);
  if (descriptor === undefined) throw new Error('bench bug: no descriptor for PriceCatalogue.getPrice');
  const keyOf = (id: string) => service.keyPrefix + descriptor.keyFor(catalogue, [id]);

  // bentocache: the same tiered store as the parent's, with an instrumented L1 driver.
  let driver: ObservedMemoryDriver | undefined;
  const bento = propagationBento(bentoClient, d => (driver = d));
  if (driver === undefined) throw new Error('bench bug: bentocache did not build its L1 driver.');
  const l1Driver: ObservedMemoryDriver = driver;
  const factory = countedFactory();
  const bentoKey = (kind: PropagationKind, id: string) => (kind === 'bento-tag' ? `tagged:${id}` : `price:${id}`);
  const bentoRead = (kind: PropagationKind, id: string) =>
    bento.getOrSet({ key: bentoKey(kind, id), factory: factory.compute(id), ttl: LONG_TTL_MS, ...(kind === 'bento-tag' ? { tags: [dependencyOf(id)] } : {}) });

  let watch: Watch | undefined;
  const onRemoval: RemovalHook = event => {
    // First thing: the time. This runs synchronously inside the removal, while the bus message is handled.
    const at = process.hrtime.bigint();
    const w = watch;
    if (w === undefined || w.fired) return;
    if (event.kind === 'clear') {
      // A resync (or a bentocache clear) dropped everything: not the propagation being measured.
      w.fired = true;
      send({ type: 'gone', seq: w.seq, at: String(at), via: 'clear' });
      return;
    }
    if (!event.keys.includes(w.key)) return;
    w.fired = true;
    send({ type: 'gone', seq: w.seq, at: String(at), via: event.kind });
    void verify(w);
  };
  l1.onRemoval = onRemoval;
  l1Driver.onRemoval = onRemoval;

  /** Reads the entry again: it must recompute (not be served by L1, nor by L2: the invalidation landed there first). */
  async function verify(w: Watch): Promise<void> {
    try {
      if (w.kind === 'aspect-cache') {
        const before = catalogue.computed;
        const value = await catalogue.getPrice(w.id);
        if (value !== priceOf(w.id) || catalogue.computed !== before + 1) throw new Error(`aspect-cache served ${w.id} after its invalidation (computed ${catalogue.computed - before}×).`);
      } else {
        l1Driver.watchWrites.delete(w.key);
        const before = factory.runs();
        const value = await bentoRead(w.kind, w.id);
        if (value !== priceOf(w.id) || factory.runs() !== before + 1) throw new Error(`bentocache served ${bentoKey(w.kind, w.id)} after ${w.kind === 'bento-tag' ? 'deleteByTag' : 'delete'} (factory ran ${factory.runs() - before}×).`);
      }
      send({ type: 'verified', seq: w.seq });
    } catch (error) {
      send({ type: 'verified', seq: w.seq, error: error instanceof Error ? error.message : String(error) });
    }
  }

  /** Reads the entry until this process's L1 serves it, and arms the watch. */
  async function warm(seq: number, kind: PropagationKind, id: string): Promise<void> {
    watch = undefined;
    if (kind === 'aspect-cache') {
      const key = keyOf(id);
      await catalogue.getPrice(id); // a miss: computed, stored in L2, copied into L1
      const hits = service.stats().hits;
      const computed = catalogue.computed;
      if ((await catalogue.getPrice(id)) !== priceOf(id) || service.stats().hits !== hits + 1 || catalogue.computed !== computed) throw new Error(`the second read of ${key} was not a hit.`);
      if (!backend.trusted) throw new Error('the layered backend does not trust its L1 (no recent echo of its heartbeat).');
      if (!l1.holds(key)) throw new Error(`${key} is not in L1 after two reads.`);
      watch = { seq, kind, id, key, fired: false };
      return;
    }
    const key = bentoKey(kind, id);
    await bentoRead(kind, id); // a miss: computed, stored in L1 and L2
    const runs = factory.runs();
    // The second read is an L1 hit; for a tagged entry it also loads the tag's invalidation time into L1.
    if ((await bentoRead(kind, id)) !== priceOf(id) || factory.runs() !== runs) throw new Error(`the second read of ${key} was not a hit.`);
    if (!l1Driver.holds(key)) throw new Error(`${key} is not in bentocache's L1 after two reads.`);
    if (kind === 'bento-tag') {
      const tagKey = bentoTagKey(dependencyOf(id));
      if (!l1Driver.holds(tagKey)) throw new Error(`bentocache's L1 does not hold the tag key ${tagKey} after a hit of a tagged entry (did its TagSystem change?).`);
      l1Driver.watchWrites.add(tagKey);
      watch = { seq, kind, id, key: tagKey, fired: false };
      return;
    }
    watch = { seq, kind, id, key, fired: false };
  }

  process.on('message', (raw: unknown) => {
    const message = raw as ToChild;
    switch (message.type) {
      case 'ping':
        send({ type: 'pong', n: message.n, now: String(process.hrtime.bigint()) });
        break;
      case 'warm':
        warm(message.seq, message.kind, message.id).then(
          () => send({ type: 'warmed', seq: message.seq }),
          (error: unknown) => send({ type: 'warmed', seq: message.seq, error: error instanceof Error ? error.message : String(error) }),
        );
        break;
      case 'stats':
        send({ type: 'stats', resyncs: backend.resyncs, resyncReasons, trusted: backend.trusted });
        break;
      case 'exit':
        void shutdown();
        break;
    }
  });

  let closing = false;
  async function shutdown(): Promise<void> {
    if (closing) return;
    closing = true;
    await Promise.allSettled([service.dispose(), bento.disconnect()]);
    client.disconnect();
    bentoClient.disconnect();
    process.disconnect?.();
    process.exit(0);
  }
  // The parent went away (crashed or was killed): do not linger.
  process.on('disconnect', () => void shutdown());

  const deadline = Date.now() + 10_000;
  while (!backend.trusted) {
    if (Date.now() > deadline) throw new Error('the layered backend was not trusted 10 s after start (no echo of its heartbeat on the bus).');
    await new Promise(resolve => setTimeout(resolve, 10));
  }
  send({ type: 'ready', instanceId: backend.instanceId });
}

main().catch((error: unknown) => {
  send({ type: 'failed', error: error instanceof Error ? (error.stack ?? error.message) : String(error) });
  process.exitCode = 1;
  setTimeout(() => process.exit(1), 100).unref();
});
