// What bench/layered.bench.ts and its second process (bench/layered-child.ts) share: the cached fixture, the
// keys, the instrumented L1 caches that say when an entry stops being served, and the messages the two
// processes exchange over the IPC channel of `child_process.fork`.
import { Redis } from 'ioredis';
import { BentoCache, bentostore } from 'bentocache';
import { MemoryDriver } from 'bentocache/drivers/memory';
import { redisBusDriver, redisDriver } from 'bentocache/drivers/redis';
import { addDependency, Cache, MemoryBackend, type InvalidateOptions, type InvalidationResult } from '../src/index.js';

export const HOST = '127.0.0.1';

/** Warm keys; a power of two so indexes wrap with a mask. 64 consecutive indexes are always distinct keys. */
export const WARM = 1024;
export const MASK = WARM - 1;
export const ids = Array.from({ length: WARM }, (_, i) => `sku-${String(i).padStart(5, '0')}`);
export const priceOf = (id: string): number => id.length * 100 + id.charCodeAt(id.length - 1);
/** bentocache entries live this long (it needs a TTL; aspect-cache's entries have none). */
export const LONG_TTL_MS = 3_600_000;

/** The dependency of `getPrice(id)`, and the tag of the matching bentocache entry: what an update of the price invalidates. */
export const dependencyOf = (id: string): string => `ProductPrice:${id}`;

/** The fixture of every aspect-cache scenario: an async @Cache method of one string argument with one dependency. */
export class PriceCatalogue {
  /** How often the computation ran: a hit scenario fails if it moved while it was measured. */
  computed = 0;

  @Cache()
  async getPrice(id: string): Promise<number> {
    this.computed++;
    addDependency(dependencyOf(id));
    return priceOf(id);
  }
}

/** A bentocache factory that counts its runs, like {@link PriceCatalogue.computed}. */
export function countedFactory(): { compute: (id: string) => () => Promise<number>; readonly runs: () => number } {
  let runs = 0;
  return {
    compute: (id: string) => async () => {
      runs++;
      return priceOf(id);
    },
    runs: () => runs,
  };
}

/** An ioredis connection that does not retry, checked to be the benchmark's own redis-server (by process id). */
export async function connectOwnRedis(port: number, pid: number): Promise<Redis> {
  const client = new Redis({ host: HOST, port, lazyConnect: true, maxRetriesPerRequest: 1, retryStrategy: () => null });
  client.on('error', () => {});
  await client.connect();
  const info = await client.info('server');
  const serverPid = Number(/^process_id:(\d+)/m.exec(info)?.[1]);
  if (serverPid !== pid) {
    client.disconnect();
    throw new Error(`refusing to continue: ${HOST}:${port} answered as pid ${serverPid}, not the redis-server this benchmark started (pid ${pid}).`);
  }
  return client;
}

// ───────────────────────────── instrumented L1 caches ─────────────────────────────

/** Told, synchronously, when an L1 stopped serving keys: the moment the propagation scenario measures. */
export type RemovalHook = (event: { readonly kind: 'invalidate' | 'clear' | 'delete' | 'expire'; readonly keys: readonly string[] }) => void;

/**
 * The aspect-cache L1 of the propagation scenario: a MemoryBackend that reports, right after the removal, which
 * entries an invalidation (from a bus message: nothing else invalidates in that process) or a clear (a resync)
 * removed. Reporting from inside the removal times the moment the entry stops being served, with no polling.
 */
export class ObservedMemoryBackend extends MemoryBackend {
  onRemoval: RemovalHook | undefined;

  override invalidate(keys: readonly string[], options?: InvalidateOptions): InvalidationResult {
    const result = super.invalidate(keys, options);
    if (result.removed.length > 0) this.onRemoval?.({ kind: 'invalidate', keys: result.removed });
    return result;
  }

  override clear(): void {
    super.clear();
    this.onRemoval?.({ kind: 'clear', keys: [] });
  }

  /** Whether the entry is in this L1 now (a miss's token is handed back, so the check leaves no state behind). */
  holds(key: string): boolean {
    const lookup = super.get(key);
    if (!lookup.hit) this.abandon(lookup.token);
    return lookup.hit;
  }
}

/**
 * bentocache's L1 driver with the same report: `delete` (a Delete message) and the rewrite of an item by
 * `logicallyExpire` (the Set message that a `deleteByTag` publishes for the tag's key), right after they happen.
 */
export class ObservedMemoryDriver extends MemoryDriver {
  onRemoval: RemovalHook | undefined;
  /** Keys whose next write is the logical expiry under watch (set by the process before it waits for a message). */
  readonly watchWrites = new Set<string>();

  override delete(key: string): boolean {
    const deleted = super.delete(key);
    if (deleted) this.onRemoval?.({ kind: 'delete', keys: [key] });
    return deleted;
  }

  override set(key: string, value: string, ttl?: number): boolean {
    const stored = super.set(key, value, ttl);
    if (this.watchWrites.has(key)) this.onRemoval?.({ kind: 'expire', keys: [key] });
    return stored;
  }

  override clear(): void {
    super.clear();
    this.onRemoval?.({ kind: 'clear', keys: [] });
  }

  holds(key: string): boolean {
    return super.get(key) !== undefined;
  }
}

/** bentocache's key of a tag's invalidation time (its TagSystem's `___bc:t:` prefix; checked by the benchmark). */
export const bentoTagKey = (tag: string): string => `___bc:t:${tag}`;

// ───────────────────────────── the propagation scenario's shared configuration ─────────────────────────────

/** Channel, key prefix and store name both processes use for the propagation scenario. */
export const PROPAGATION = {
  channel: 'bench-layered:propagation',
  keyPrefix: 'bench-lay-prop:',
  bentoStore: 'prop',
  bentoPrefix: 'bench-bento-prop',
} as const;

/**
 * A bentocache tiered store (memory L1 + Redis L2 + Redis bus) as both processes of the propagation scenario
 * build it; `observe` receives its L1 driver. The store (and its bus subscription) is created at once.
 */
export function propagationBento(client: Redis, observe: (l1: ObservedMemoryDriver) => void = () => {}): BentoCache<Record<string, ReturnType<typeof bentostore>>> {
  const bento = new BentoCache({
    default: PROPAGATION.bentoStore,
    prefix: PROPAGATION.bentoPrefix,
    stores: {
      [PROPAGATION.bentoStore]: bentostore()
        .useL1Layer({
          options: { maxItems: 100_000 },
          factory: (config: ConstructorParameters<typeof MemoryDriver>[0]) => {
            const driver = new ObservedMemoryDriver(config);
            observe(driver);
            return driver;
          },
        })
        .useL2Layer(redisDriver({ connection: client }))
        .useBus(redisBusDriver({ connection: client })),
    },
  });
  bento.use();
  return bento;
}

// ───────────────────────────── IPC messages ─────────────────────────────

/** Which library a propagation sample exercises. */
export type PropagationKind = 'aspect-cache' | 'bento-delete' | 'bento-tag';

export type ToChild =
  | { readonly type: 'ping'; readonly n: number }
  | { readonly type: 'warm'; readonly seq: number; readonly kind: PropagationKind; readonly id: string }
  | { readonly type: 'stats' }
  | { readonly type: 'exit' };

export type FromChild =
  | { readonly type: 'ready'; readonly instanceId: string }
  | { readonly type: 'pong'; readonly n: number; readonly now: string }
  | { readonly type: 'warmed'; readonly seq: number; readonly error?: string }
  /** The watched entry stopped being served: `at` is process.hrtime.bigint() there, as a string. */
  | { readonly type: 'gone'; readonly seq: number; readonly at: string; readonly via: string }
  /** After `gone`: the next read recomputed (a real removal), or what happened instead. */
  | { readonly type: 'verified'; readonly seq: number; readonly error?: string }
  | { readonly type: 'stats'; readonly resyncs: number; readonly resyncReasons: readonly string[]; readonly trusted: boolean }
  | { readonly type: 'failed'; readonly error: string };
