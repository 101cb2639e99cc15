// No stale write after a concurrent invalidation (SPEC §6): if a dependency, or the entry's own key, is
// invalidated after a computation started and before its result is stored, the result is returned to its
// caller but not stored. Computations are held open with deferred promises.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { addDependency, bindCachingService, Cache, CachingService, MemoryBackend, StringDependency } from 'aspect-cache';
import { deferred, flush, type Deferred } from '../support/deferred.js';

class Runs {
  readonly #counts = new Map<string, number>();
  count(name: string): void {
    this.#counts.set(name, (this.#counts.get(name) ?? 0) + 1);
  }
  of(name: string): number {
    return this.#counts.get(name) ?? 0;
  }
}

/** Named gates; a gate is open unless the test holds it first. */
class Gates {
  readonly #held = new Map<string, Deferred<void>>();
  hold(...names: string[]): void {
    for (const name of names) this.#held.set(name, deferred());
  }
  wait(name: string): Promise<void> {
    return this.#held.get(name)?.promise ?? Promise.resolve();
  }
  open(name: string): void {
    const gate = this.#held.get(name);
    if (gate === undefined) throw new Error(`gate ${name} was not held`);
    gate.resolve();
  }
}

class Store {
  readonly runs = new Runs();
  readonly data = new Map<string, number>([
    ['a', 1],
    ['b', 1],
    ['x', 1],
    ['y', 1],
  ]);

  constructor(
    readonly caching: CachingService,
    readonly gates: Gates,
  ) {
    bindCachingService(this, caching);
  }

  /** Reads the data, then waits at its gate: the value it returns is the one read before the wait. */
  @Cache()
  async load(id: string): Promise<number> {
    this.runs.count(`load:${id}`);
    const value = this.data.get(id)!;
    addDependency(`Data:${id}`);
    await this.gates.wait(`load:${id}`);
    addDependency(`Late:${id}`);
    return value;
  }

  @Cache()
  async child(id: string): Promise<number> {
    this.runs.count(`child:${id}`);
    addDependency(`ChildData:${id}`);
    return this.data.get(id)!;
  }

  /** Calls its child first, then waits at its gate. */
  @Cache()
  async parent(id: string): Promise<string> {
    this.runs.count(`parent:${id}`);
    const value = await this.child(id);
    await this.gates.wait(`parent:${id}`);
    return `parent ${value}`;
  }

  /** A synchronous method whose own computation triggers an invalidation of its dependency. */
  @Cache()
  selfInvalidating(id: string): number {
    this.runs.count(`selfInvalidating:${id}`);
    addDependency(`Sync:${id}`);
    void this.caching.invalidate(`Sync:${id}`);
    return this.data.get(id)!;
  }
}

describe('no stale write after a concurrent invalidation', () => {
  let caching: CachingService;
  let gates: Gates;
  let store: Store;

  beforeEach(() => {
    caching = new CachingService();
    gates = new Gates();
    store = new Store(caching, gates);
  });

  afterEach(async () => {
    await caching.dispose();
  });

  it('a result whose dependency was invalidated mid-computation is returned to its caller but not stored', async () => {
    gates.hold('load:a');
    const pending = store.load('a');
    await flush();
    store.data.set('a', 2);
    await caching.invalidate('Data:a');
    gates.open('load:a');

    expect(await pending).toBe(1);
    expect(await store.load('a')).toBe(2);
    expect(store.runs.of('load:a')).toBe(2);
    expect(await store.load('a')).toBe(2); // the fresh computation is stored
    expect(store.runs.of('load:a')).toBe(2);
  });

  it('a dependency the computation adds only after the invalidation still prevents the store', async () => {
    gates.hold('load:a');
    const pending = store.load('a');
    await flush();
    await caching.invalidate('Late:a');
    gates.open('load:a');

    expect(await pending).toBe(1);
    await store.load('a');
    expect(store.runs.of('load:a')).toBe(2);
  });

  it('invalidateCall of the entry itself mid-computation prevents the store', async () => {
    gates.hold('load:a');
    const pending = store.load('a');
    await flush();
    store.data.set('a', 2);
    await caching.invalidateCall(() => store.load('a'));
    gates.open('load:a');

    expect(await pending).toBe(1);
    expect(await store.load('a')).toBe(2);
    expect(store.runs.of('load:a')).toBe(2);
  });

  it('a cascade reaching the dependency mid-computation prevents the store', async () => {
    gates.hold('load:a');
    const pending = store.load('a');
    await flush();
    await caching.invalidate(new StringDependency('Warehouse', [new StringDependency('Data:a')]));
    gates.open('load:a');

    await pending;
    await store.load('a');
    expect(store.runs.of('load:a')).toBe(2);
  });

  it('a parent whose child was a hit before the invalidation of its dependency is not stored', async () => {
    expect(await store.child('a')).toBe(1);
    gates.hold('parent:a');
    const pending = store.parent('a'); // the child is a hit: its dependency comes from the stored entry
    await flush();
    expect(store.runs.of('child:a')).toBe(1);
    store.data.set('a', 2);
    await caching.invalidate('ChildData:a');
    gates.open('parent:a');

    expect(await pending).toBe('parent 1');
    expect(await store.parent('a')).toBe('parent 2');
    expect(store.runs.of('parent:a')).toBe(2);
  });

  it('a parent whose child was computed and then invalidated while the parent still ran is not stored', async () => {
    gates.hold('parent:a');
    const pending = store.parent('a');
    await flush();
    expect(store.runs.of('child:a')).toBe(1);
    store.data.set('a', 2);
    await caching.invalidateCall(() => store.child('a'));
    gates.open('parent:a');

    expect(await pending).toBe('parent 1');
    expect(await store.parent('a')).toBe('parent 2');
    expect(store.runs.of('parent:a')).toBe(2);
    expect(store.runs.of('child:a')).toBe(2);
  });

  it('a caller that joined a computation refused as stale computes again instead of taking the old value; the stale value is not stored', async () => {
    gates.hold('load:a');
    const first = store.load('a');
    const second = store.load('a');
    await flush();
    store.data.set('a', 2);
    await caching.invalidate('Data:a');
    gates.open('load:a');

    // The joiner cannot tell whether it started before or after the invalidation (made by another process,
    // say): it recomputes. The caller that ran the computation gets what it computed.
    expect(await Promise.all([first, second])).toEqual([1, 2]);
    expect(store.runs.of('load:a')).toBe(2);
    expect(await store.load('a')).toBe(2);
    expect(store.runs.of('load:a')).toBe(2);
  });

  it("emits a 'skip' event with reason 'stale' for the result it did not store", async () => {
    const skips: Array<{ key: string; reason: string }> = [];
    caching.on('skip', event => skips.push(event));
    gates.hold('load:a');
    const pending = store.load('a');
    await flush();
    await caching.invalidate('Data:a');
    gates.open('load:a');
    await pending;

    expect(skips).toHaveLength(1);
    expect(skips[0]!.reason).toBe('stale');
    expect(skips[0]!.key).toContain('load');
  });

  it('an unrelated invalidation mid-computation does not prevent the store', async () => {
    gates.hold('load:a');
    const pending = store.load('a');
    await flush();
    await caching.invalidate('Data:b', 'Late:b');
    await caching.invalidateCall(() => store.load('b'));
    gates.open('load:a');

    expect(await pending).toBe(1);
    expect(await store.load('a')).toBe(1);
    expect(store.runs.of('load:a')).toBe(1);
  });

  it('an invalidation that finished before the computation started does not prevent the store', async () => {
    await caching.invalidate('Data:a');
    gates.hold('load:a');
    const pending = store.load('a');
    await flush();
    gates.open('load:a');
    await pending;
    await store.load('a');
    expect(store.runs.of('load:a')).toBe(1);
  });

  it('a stale result does not prevent a later computation of the same key from being stored', async () => {
    gates.hold('load:a');
    const stale = store.load('a');
    await flush();
    await caching.invalidate('Data:a');
    gates.open('load:a');
    await stale;

    await store.load('a'); // recomputed
    await store.load('a'); // hit
    await store.load('a'); // hit
    expect(store.runs.of('load:a')).toBe(2);
  });

  it('a call started after the invalidation does not get the value computed before it', async () => {
    gates.hold('load:a');
    const before = store.load('a');
    await flush();
    store.data.set('a', 2);
    await caching.invalidate('Data:a');
    const after = store.load('a'); // a reader that starts after the write must see it
    await flush();
    gates.open('load:a');

    expect(await before).toBe(1);
    expect(await after).toBe(2);
    expect(await store.load('a')).toBe(2);
  });

  it('a synchronous computation that invalidates its own dependency is not served afterwards', () => {
    expect(store.selfInvalidating('a')).toBe(1);
    expect(store.selfInvalidating('a')).toBe(1);
    expect(store.runs.of('selfInvalidating:a')).toBe(2);
  });

  it('refreshCall returns its result but does not store it when a dependency is invalidated meanwhile', async () => {
    expect(await store.load('a')).toBe(1);
    gates.hold('load:a');
    store.data.set('a', 2);
    const refreshing = caching.refreshCall(() => store.load('a'));
    await flush();
    store.data.set('a', 3);
    await caching.invalidate('Data:a');
    gates.open('load:a');

    expect(await refreshing).toBe(2);
    expect(await store.load('a')).toBe(3);
    expect(store.runs.of('load:a')).toBe(3);
  });

  it("a parent whose child was a hit, then evicted, is not stored after the child's dependency is invalidated", async () => {
    const small = new CachingService({ backend: new MemoryBackend({ maxEntries: 2 }) });
    try {
      const evicted: string[] = [];
      small.on('evict', event => evicted.push(event.key));
      const bounded = new Store(small, gates);
      await bounded.child('a');
      gates.hold('parent:a');
      const pending = bounded.parent('a'); // the child is a hit
      await flush();
      await bounded.child('x');
      await bounded.child('y'); // evicts child('a'): only the parent's own record of its dependencies is left
      expect(evicted).toHaveLength(1);
      bounded.data.set('a', 2);
      await small.invalidate('ChildData:a');
      gates.open('parent:a');

      expect(await pending).toBe('parent 1');
      expect(await bounded.parent('a')).toBe('parent 2');
      expect(bounded.runs.of('parent:a')).toBe(2);
    } finally {
      await small.dispose();
    }
  });
});
