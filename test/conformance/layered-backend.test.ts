import { afterEach, describe, expect, it } from 'vitest';
import type { BackendEvent, CacheEntryInput, CacheHit, CacheLookup, CacheMiss, CachingBackend } from '../../src/backends/backend.js';
import { LayeredBackend, type LayeredBackendOptions } from '../../src/backends/layered/layered-backend.js';
import { MemoryBackend } from '../../src/backends/memory/memory-backend.js';
import { CachingError } from '../../src/errors.js';
import { ChaosBackend } from '../../src/testing/chaos-backend.js';
import { FakeClock } from '../../src/testing/fake-clock.js';
import { TestBusNetwork, type TestBus } from '../../src/testing/test-bus.js';
import type { Clock } from '../../src/types.js';
import { deferred, type Deferred } from '../support/deferred.js';

// Behaviour specific to LayeredBackend: what L1 serves and when, the bus protocol's resyncs, queued
// invalidations. (The shared contract is covered by layered.test.ts through the conformance suite.)
// Two or three "processes" are LayeredBackends with their own L1 over one shared L2 and one TestBusNetwork.

const HEARTBEAT = 20;
const created: LayeredBackend[] = [];

afterEach(async () => {
  await Promise.all(created.splice(0).map(b => b.dispose()));
});

interface Process {
  readonly backend: LayeredBackend;
  readonly bus: TestBus;
  readonly events: BackendEvent[];
}

/** Processes over one shared L2 (counting its calls) and one network. */
// Every process runs on one FakeClock that only moves when a test says so: trust (judged on the backend's clock)
// never lapses by accident when the machine is loaded, and a test that wants a lapse advances the clock.
// Heartbeats and deliveries still run on real timers.
function cluster(count: number, { clock = new FakeClock() as Clock, l1Ttl, shared }: { clock?: Clock; l1Ttl?: number; shared?: CachingBackend } = {}) {
  const network = new TestBusNetwork({ heartbeatMs: HEARTBEAT });
  const l2 = new ChaosBackend(shared ?? new MemoryBackend({ clock }));
  const processes: Process[] = Array.from({ length: count }, (_, i) => {
    const bus = network.connect(`p${i}`);
    const options: LayeredBackendOptions = { l1: new MemoryBackend({ clock }), l2: sharedView(l2), bus, ...(l1Ttl !== undefined ? { l1Ttl } : {}) };
    const backend = new LayeredBackend(options);
    created.push(backend);
    const events: BackendEvent[] = [];
    backend.subscribe({ onEvent: e => events.push(e) });
    return { backend, bus, events };
  });
  return { network, l2, processes, clock: clock as FakeClock };
}

/** One L2 shared by several layered backends: each disposes its view, not the shared store. */
function sharedView(inner: CachingBackend): CachingBackend {
  return new Proxy(inner, {
    get: (target, p) => {
      if (p === 'dispose') return async () => undefined;
      const value: unknown = Reflect.get(target, p, target);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}

function entry(spec: Partial<CacheEntryInput> = {}): CacheEntryInput {
  return { value: 'v', async: false, dependencies: [], expiresAt: Infinity, sliding: 0, ...spec };
}

async function put(backend: CachingBackend, key: string, spec: Partial<CacheEntryInput> = {}) {
  const lookup = await backend.get(key);
  expect(lookup.hit, `expected a miss for ${key}`).toBe(false);
  return backend.set(key, entry(spec), (lookup as CacheMiss).token);
}

async function lookup(backend: CachingBackend, key: string): Promise<CacheLookup> {
  const result = await backend.get(key);
  if (!result.hit) backend.abandon(result.token);
  return result;
}

const sleep = (ms: number) => new Promise<void>(resolve => setTimeout(resolve, ms));

async function until(condition: () => boolean, what: string, timeoutMs = 2_000): Promise<void> {
  const start = Date.now();
  while (!condition()) {
    if (Date.now() - start > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await sleep(2);
  }
}

const trusted = (...ps: Process[]) => until(() => ps.every(p => p.backend.trusted), 'trust');
const resyncs = (p: Process) => p.events.filter(e => e.type === 'resync').map(e => (e as { reason: string }).reason);

describe('LayeredBackend: what L1 serves', () => {
  it('serves an L1 hit synchronously without calling L2, with its dependencies and expiry', async () => {
    const clock = new FakeClock();
    const { l2, processes } = cluster(1, { clock });
    const [a] = processes as [Process];
    await trusted(a);
    await put(a.backend, 'k', { value: 42, dependencies: ['d'], expiresAt: clock.now() + 5_000 });
    const reads = l2.calls.get;
    const hit = a.backend.get('k') as CacheHit; // no promise: answered by L1
    expect(hit.hit).toBe(true);
    expect(hit.value).toBe(42);
    expect([...hit.dependencies]).toEqual(['d']);
    expect(hit.expiresAt).toBe(clock.now() + 5_000);
    expect(l2.calls.get).toBe(reads);
  });

  it('copies an L2 hit into L1, so the next lookup in that process costs no L2 read', async () => {
    const { l2, processes } = cluster(2);
    const [a, b] = processes as [Process, Process];
    await trusted(a, b);
    await put(a.backend, 'k', { value: 'from a' });
    const before = l2.calls.get;
    expect((await lookup(b.backend, 'k')).hit).toBe(true); // L1 miss in b, L2 hit
    expect(l2.calls.get).toBe(before + 1);
    expect((b.backend.get('k') as CacheHit).value).toBe('from a');
    expect(l2.calls.get).toBe(before + 1);
  });

  it('does not copy an L2 hit when an invalidation of it is heard while the L2 read is in flight', async () => {
    const shared = new MemoryBackend();
    const gate = new GatedBackend(shared);
    const network = new TestBusNetwork({ heartbeatMs: HEARTBEAT });
    const a = new LayeredBackend({ l2: sharedView(shared), bus: network.connect('a') });
    const b = new LayeredBackend({ l2: sharedView(gate), bus: network.connect('b') });
    created.push(a, b);
    await until(() => a.trusted && b.trusted, 'trust');
    await put(a, 'k', { value: 'old', dependencies: ['d'] });
    // b's L2 read takes the old entry, then a invalidates it (L2, then the bus) before b's read answers.
    gate.hold();
    const reading = b.get('k');
    await until(() => gate.waiting > 0, 'the gated read');
    expect((await a.invalidate(['d'])).pending).toBeUndefined();
    await sleep(5); // the message reaches b
    gate.release();
    const answer = (await reading) as CacheHit;
    expect(answer.value).toBe('old'); // read before the invalidation: returning it is fine…
    expect((await lookup(b, 'k')).hit).toBe(false); // …but it was not kept in L1
  });

  it('puts a computed value into L1 only if L2 stored it', async () => {
    const { l2, processes } = cluster(1);
    const [a] = processes as [Process];
    await trusted(a);
    const miss = (await a.backend.get('k')) as CacheMiss;
    await l2.invalidate(['k']); // L2 refuses the store as stale
    expect(await a.backend.set('k', entry(), miss.token)).toBe('stale');
    const before = l2.calls.get;
    expect((await lookup(a.backend, 'k')).hit).toBe(false);
    expect(l2.calls.get).toBe(before + 1);
  });

  it('keeps a value computed from a copy served by L1 during its computation in L1 only: that copy may be stale for the delivery delay', async () => {
    const { l2, processes } = cluster(1);
    const [a] = processes as [Process];
    await trusted(a);
    await put(a.backend, 'child', { value: 1, dependencies: ['row'] });
    const miss = (await a.backend.get('parent')) as CacheMiss;
    expect((a.backend.get('child') as CacheHit).value).toBe(1); // served from L1 while the parent computes
    expect(await a.backend.set('parent', entry({ value: 2, dependencies: ['child', 'row'] }), miss.token)).toBe('stored');
    expect((a.backend.get('parent') as CacheHit).value).toBe(2); // in L1…
    expect((await lookup(l2, 'parent')).hit).toBe(false); // …not in L2
    // A parent computed from values read from L2 (none served by L1) is shared as usual.
    const other = (await a.backend.get('other')) as CacheMiss;
    expect(await a.backend.set('other', entry({ dependencies: ['row'] }), other.token)).toBe('stored');
    expect((await lookup(l2, 'other')).hit).toBe(true);
  });

  it('stores nowhere a value whose dependency this process heard invalidated while it was computed, even if L2 would take it', async () => {
    // a's lookup takes its L1 token, then reaches L2 only after b's invalidation landed there: L2's token is
    // newer than the invalidation (L2 would accept the store), but a heard it after its L1 token.
    const shared = new MemoryBackend();
    const network = new TestBusNetwork({ heartbeatMs: HEARTBEAT });
    let gate: Promise<void> | undefined;
    const late = new Proxy(sharedView(shared), {
      get: (target, p) => (p === 'get' ? async (key: string) => (await gate, target.get(key)) : Reflect.get(target, p, target)),
    });
    const a = new LayeredBackend({ l2: late, bus: network.connect('a') });
    const b = new LayeredBackend({ l2: sharedView(shared), bus: network.connect('b') });
    created.push(a, b);
    await until(() => a.trusted && b.trusted, 'trust');
    const open = deferred();
    gate = open.promise;
    const lookingUp = a.get('parent');
    await b.invalidate(['row']);
    await until(() => a.l1.invalidationLogSize > 0, 'the message reaching a');
    open.resolve();
    const miss = (await lookingUp) as CacheMiss;
    expect(await a.set('parent', entry({ dependencies: ['row'] }), miss.token)).toBe('stale');
    expect((await lookup(shared, 'parent')).hit).toBe(false);
    gate = undefined;
    expect((await lookup(a, 'parent')).hit).toBe(false);
  });

  it('keeps sliding entries out of L1: each hit reaches L2, which extends them', async () => {
    const { l2, processes } = cluster(1);
    const [a] = processes as [Process];
    await trusted(a);
    await put(a.backend, 's', { sliding: 60_000 });
    const before = l2.calls.get;
    expect((await lookup(a.backend, 's')).hit).toBe(true);
    expect((await lookup(a.backend, 's')).hit).toBe(true);
    expect(l2.calls.get).toBe(before + 2);
  });

  it('caps an L1 copy at l1Ttl but reports the entry’s own expiry', async () => {
    const clock = new FakeClock();
    const { l2, processes } = cluster(1, { clock, l1Ttl: 1_000 });
    const [a] = processes as [Process];
    await trusted(a);
    await put(a.backend, 'k', { expiresAt: clock.now() + 10_000 });
    const hit = a.backend.get('k') as CacheHit;
    expect(hit.expiresAt).toBe(clock.now() + 10_000);
    clock.advance(1_000);
    await trusted(a); // the fake jump outran the heartbeats: wait for the next echo
    const before = l2.calls.get;
    expect((await lookup(a.backend, 'k')).hit).toBe(true); // from L2 again
    expect(l2.calls.get).toBe(before + 1);
  });

  it('never keeps an L1 copy past its L2 entry’s expiry', async () => {
    const clock = new FakeClock();
    const { processes } = cluster(1, { clock });
    const [a] = processes as [Process];
    await trusted(a);
    await put(a.backend, 'k', { expiresAt: clock.now() + 500 });
    clock.advance(500);
    await trusted(a);
    expect((await lookup(a.backend, 'k')).hit).toBe(false);
  });
});

describe('LayeredBackend: invalidation across processes', () => {
  it('removes the entry from every L1: a dependency invalidated in one process reaches the others', async () => {
    const { processes } = cluster(3);
    const [a, b, c] = processes as [Process, Process, Process];
    await trusted(a, b, c);
    await put(a.backend, 'parent', { dependencies: ['child', 'row:1'] });
    await lookup(b.backend, 'parent');
    await lookup(c.backend, 'parent');
    expect((b.backend.get('parent') as CacheLookup).hit).toBe(true);
    await c.backend.invalidate(['row:1']);
    await until(() => !(a.backend.get('parent') as CacheLookup).hit && !(b.backend.get('parent') as CacheLookup).hit, 'propagation');
    expect(resyncs(b)).toEqual([]);
  });

  it('invalidates L1 on receipt: the message carries the roots and the entries L2 removed', async () => {
    const { network, processes } = cluster(2);
    const [a, b] = processes as [Process, Process];
    await trusted(a, b);
    // b holds a chain: top depends on mid, mid on row.
    await put(b.backend, 'mid', { dependencies: ['row'] });
    await put(b.backend, 'top', { dependencies: ['mid'] });
    const sent = a.bus.published.length;
    await a.backend.invalidate(['row']);
    await until(() => !(b.backend.get('top') as CacheLookup).hit, 'transitive removal');
    const message = a.bus.published.slice(sent).map(p => JSON.parse(p) as { t: string; k?: string[] }).find(m => m.t === 'i');
    expect(message?.k).toEqual(['row', 'mid', 'top']);
    expect(network.dropped).toBe(0);
  });

  it('removes an L1 copy that depends on the root only through an entry its process does not hold', async () => {
    const { processes } = cluster(2);
    const [a, b] = processes as [Process, Process];
    await trusted(a, b);
    // Entries not built by the service may list only their direct dependencies: top → mid → row.
    await put(a.backend, 'mid', { dependencies: ['row'] });
    await put(a.backend, 'top', { dependencies: ['mid'] });
    await lookup(b.backend, 'top'); // b copies top, never mid
    expect((b.backend.get('top') as CacheLookup).hit).toBe(true);
    await a.backend.invalidate(['row']);
    expect((await lookup(a.backend, 'top')).hit).toBe(false);
    await until(() => !(b.backend.get('top') as CacheLookup).hit, 'b dropping top');
  });

  it('ignores its own echoes: invalidating one key does not clear the rest of its L1', async () => {
    const { l2, processes } = cluster(2);
    const [a, b] = processes as [Process, Process];
    await trusted(a, b);
    await put(a.backend, 'x', { dependencies: ['dx'] });
    await put(a.backend, 'y', { dependencies: ['dy'] });
    await a.backend.invalidate(['dx']);
    await sleep(3 * HEARTBEAT);
    const before = l2.calls.get;
    expect((a.backend.get('y') as CacheLookup).hit).toBe(true);
    expect(l2.calls.get).toBe(before);
    expect(resyncs(a)).toEqual([]);
  });

  it('queues a failed publish, says pending, retries it, and the other process drops its copy', async () => {
    const { processes } = cluster(2);
    const [a, b] = processes as [Process, Process];
    await trusted(a, b);
    await put(a.backend, 'k', { dependencies: ['d'] });
    await lookup(b.backend, 'k');
    a.bus.failPublishes(3);
    expect((await a.backend.invalidate(['d'])).pending).toBe(true);
    expect(a.backend.pendingInvalidations).toBeGreaterThan(0);
    await until(() => a.backend.pendingInvalidations === 0, 'the retry');
    await until(() => !(b.backend.get('k') as CacheLookup).hit, 'b dropping its copy');
  });

  it('publishes only after L2 landed: while L2 fails, the invalidation is queued and nothing is published', async () => {
    const { l2, processes } = cluster(2);
    const [a, b] = processes as [Process, Process];
    await trusted(a, b);
    await put(a.backend, 'k', { dependencies: ['d'] });
    l2.fail('invalidate');
    const sent = a.bus.published.length;
    expect((await a.backend.invalidate(['d'])).pending).toBe(true);
    // Not served by this process until the invalidation landed, although L2 still holds it.
    expect((await lookup(a.backend, 'k')).hit).toBe(false);
    await sleep(600); // two retry periods, both failing
    const invalidations = () => a.bus.published.slice(sent).filter(p => (JSON.parse(p) as { t: string }).t === 'i');
    expect(invalidations()).toEqual([]);
    l2.heal();
    await until(() => a.backend.pendingInvalidations === 0, 'the retry');
    expect(invalidations().length).toBe(1);
    expect((await lookup(b.backend, 'k')).hit).toBe(false);
  });

  it('clear() empties every process’s L1', async () => {
    const { processes } = cluster(2);
    const [a, b] = processes as [Process, Process];
    await trusted(a, b);
    await put(a.backend, 'k');
    await lookup(b.backend, 'k');
    await a.backend.clear();
    await until(() => !(b.backend.get('k') as CacheLookup).hit, 'b clearing');
  });
});

describe('LayeredBackend: bounded staleness (resyncs)', () => {
  it('stops serving L1 when the subscription is lost, and serves from L2 meanwhile', async () => {
    const { l2, processes } = cluster(1);
    const [a] = processes as [Process];
    await trusted(a);
    await put(a.backend, 'k', { value: 'v' });
    a.bus.disconnect();
    expect(a.backend.trusted).toBe(false);
    expect(resyncs(a)).toContain('disconnected');
    const before = l2.calls.get;
    expect(((await a.backend.get('k')) as CacheHit).value).toBe('v');
    expect(l2.calls.get).toBe(before + 1);
    a.bus.reconnect();
    await trusted(a);
  });

  it('stops trusting L1 within two heartbeats when deliveries stop silently, and drops it before trusting again', async () => {
    const { processes, clock } = cluster(2);
    const [a, b] = processes as [Process, Process];
    await trusted(a, b);
    await put(a.backend, 'k', { dependencies: ['d'] });
    await lookup(b.backend, 'k');
    const before = resyncs(b).length;
    b.bus.stall(); // b hears nothing, and nothing tells it
    await a.backend.invalidate(['d']); // lost for b
    await sleep(3 * HEARTBEAT); // b's own heartbeats are lost too
    expect(b.backend.trusted).toBe(true); // no time has passed on the backend's clock
    clock.advance(2 * HEARTBEAT);
    expect(b.backend.trusted).toBe(false); // two heartbeats without an echo
    b.bus.resume();
    await trusted(b);
    // Dropped for its own silence, for a's (both unheard for two heartbeats), or for the gap in a's messages
    // that resuming reveals — whichever b notices first.
    expect(resyncs(b).slice(before).some(r => r === 'silence' || r === 'sender-silent' || r === 'gap')).toBe(true);
    expect((await lookup(b.backend, 'k')).hit).toBe(false);
  });

  it('resyncs on a gap in a sender’s sequence: a lost invalidation is detected at the sender’s next message', async () => {
    const { network, processes } = cluster(2);
    const [a, b] = processes as [Process, Process];
    await trusted(a, b);
    await put(a.backend, 'k', { dependencies: ['d'] });
    await lookup(b.backend, 'k');
    network.faults({ dropIf: (payload, _from, to) => to === b.bus && (JSON.parse(payload) as { t: string }).t === 'i' });
    await a.backend.invalidate(['d']);
    network.faults();
    // The next heartbeat of a reveals the hole; after the grace, b drops its L1.
    await until(() => resyncs(b).includes('gap'), 'the gap resync', 10 * HEARTBEAT);
    expect((await lookup(b.backend, 'k')).hit).toBe(false);
  });

  it('waits out reordering: a message delivered late but within the grace causes no resync', async () => {
    const { network, processes } = cluster(2);
    const [a, b] = processes as [Process, Process];
    await trusted(a, b);
    await sleep(3 * HEARTBEAT); // past the start-up resyncs
    const before = resyncs(b).length;
    // a's two invalidations do not reach b on their own; they are then delivered to b second first.
    network.faults({ dropIf: (payload, from, to) => from === a.bus && to === b.bus && (JSON.parse(payload) as { t: string }).t === 'i' });
    await a.backend.invalidate(['x1']);
    await a.backend.invalidate(['x2']);
    network.faults();
    const payloads = a.bus.published.filter(p => (JSON.parse(p) as { t: string }).t === 'i').slice(-2);
    network.inject(payloads[1]!);
    network.inject(payloads[0]!);
    await sleep(10);
    expect(resyncs(b).slice(before)).toEqual([]);
  });

  it('ignores duplicated messages without a resync', async () => {
    const { network, processes } = cluster(2);
    const [a, b] = processes as [Process, Process];
    await trusted(a, b);
    await sleep(3 * HEARTBEAT);
    const before = resyncs(b).length;
    network.faults({ duplicate: 1 });
    await a.backend.invalidate(['x']);
    await sleep(2 * HEARTBEAT);
    network.faults();
    expect(resyncs(b).slice(before)).toEqual([]);
  });

  it('resyncs when a known sender goes silent without a goodbye (its last message may be lost)', async () => {
    const { processes, clock } = cluster(2);
    const [a, b] = processes as [Process, Process];
    await trusted(a, b);
    a.bus.failPublishes(); // a's heartbeats stop reaching anyone
    await sleep(2 * HEARTBEAT);
    clock.advance(2 * HEARTBEAT);
    await until(() => resyncs(b).includes('sender-silent'), 'b noticing', 10 * HEARTBEAT);
    a.bus.failPublishes(0);
  });

  it('forgets a sender that says goodbye on dispose, without a resync', async () => {
    const { processes } = cluster(2);
    const [a, b] = processes as [Process, Process];
    await trusted(a, b);
    await sleep(3 * HEARTBEAT);
    const before = resyncs(b).length;
    await a.backend.dispose();
    await sleep(5 * HEARTBEAT);
    expect(resyncs(b).slice(before)).toEqual([]);
  });

  it('treats a foreign or malformed payload as a possible gap', async () => {
    const { network, processes } = cluster(1);
    const [a] = processes as [Process];
    await trusted(a);
    await put(a.backend, 'k');
    for (const payload of ['not json', '{"hello":1}', '{"p":"ac1","t":"i","f":"x","s":1,"a":0,"k":[1]}', '[]', 'null']) network.inject(payload);
    await sleep(5);
    expect(resyncs(a).filter(r => r === 'foreign')).toHaveLength(5);
    expect((await lookup(a.backend, 'k')).hit).toBe(true); // from L2: nothing is lost
  });
});

describe('LayeredBackend: options', () => {
  const bus = () => new TestBusNetwork().connect();
  it.each([
    [{ l2: new MemoryBackend() }, /option bus must be an InvalidationBus/],
    [{ bus: bus() }, /option l2 must be a backend/],
    [{ l2: new MemoryBackend(), bus: bus(), l1: new ChaosBackend(new MemoryBackend()) }, /option l1 must be a MemoryBackend/],
    [{ l1: new MemoryBackend(), l2: new MemoryBackend({ clock: new FakeClock() }), bus: bus() }, /l1 \(memory\) and l2 \(memory\) must use the same clock/],
    [{ l2: new MemoryBackend(), bus: bus(), l1Ttl: 0 }, /option l1Ttl must be a positive number/],
    [{ l2: new MemoryBackend(), bus: bus(), l1ttl: 5 }, /unknown option 'l1ttl'; did you mean 'l1Ttl'\?/],
  ])('rejects %o', (options, message) => {
    expect(() => new LayeredBackend(options as unknown as LayeredBackendOptions)).toThrow(CachingError);
    expect(() => new LayeredBackend(options as unknown as LayeredBackendOptions)).toThrow(message);
  });
});

/** A backend whose lookups answer only when released (the lookup itself runs at once). */
class GatedBackend implements CachingBackend {
  readonly name = 'gated';
  readonly isSync = false;
  #gate: Deferred<void> | undefined;
  waiting = 0;
  constructor(readonly inner: CachingBackend) {}
  get clock() {
    return this.inner.clock;
  }
  hold() {
    this.#gate = deferred();
  }
  release() {
    this.#gate?.resolve();
    this.#gate = undefined;
  }
  async get(key: string) {
    const answer = await this.inner.get(key);
    if (this.#gate) {
      this.waiting++;
      await this.#gate.promise;
      this.waiting--;
    }
    return answer;
  }
  begin(key: string) {
    return this.inner.begin(key);
  }
  set(key: string, e: CacheEntryInput, token: unknown) {
    return this.inner.set(key, e, token);
  }
  abandon(token: unknown) {
    this.inner.abandon(token);
  }
  check(token: unknown, key: string, deps: readonly string[]) {
    return this.inner.check!(token, key, deps);
  }
  invalidate(keys: readonly string[]) {
    return this.inner.invalidate(keys);
  }
  clear() {
    return this.inner.clear();
  }
  async dispose() {}
}
