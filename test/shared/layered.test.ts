// Decorated services over LayeredBackend (SPEC §8, layered): two or three services, each with its own
// LayeredBackend (its own L1) over one shared L2 and one in-process bus, stand for processes. Runs in both
// decorator modes.
import { afterEach, describe, expect, it } from 'vitest';
import { addDependency, bindCachingService, Cache, CachingService, InvalidateCache, LayeredBackend, MemoryBackend, systemClock, type CachingBackend } from 'aspect-cache';
import { ChaosBackend, FakeClock, TestBusNetwork, type TestBus } from 'aspect-cache/testing';
import { deferred, flush, type Deferred } from '../support/deferred.js';

const HEARTBEAT = 20;

class Prices {
  readonly prices = new Map<number, number>([
    [1, 10],
    [2, 20],
  ]);
  readonly gates = new Map<number, Deferred<void>>();
  reads = 0;
  lists = 0;

  @Cache()
  async getPrice(id: number): Promise<number> {
    this.reads++;
    const price = this.prices.get(id) ?? 0;
    addDependency(`price:${id}`);
    await this.gates.get(id)?.promise;
    return price;
  }

  @Cache()
  async getPriceList(): Promise<number[]> {
    this.lists++;
    return Promise.all([this.getPrice(1), this.getPrice(2)]);
  }

  @InvalidateCache('getPrice')
  async setPrice(id: number, price: number): Promise<void> {
    this.prices.set(id, price);
  }
}

interface Proc {
  readonly service: CachingService;
  readonly backend: LayeredBackend;
  readonly prices: Prices;
  readonly resyncs: string[];
  readonly bus: TestBus;
}

const services: CachingService[] = [];
afterEach(async () => {
  await Promise.all(services.splice(0).map(s => s.dispose()));
});

/** `count` processes over one L2 (a ChaosBackend counting calls over a MemoryBackend) and one bus network. */
function processes(count: number, { heartbeatMs = HEARTBEAT, realTime = false }: { heartbeatMs?: number; realTime?: boolean } = {}) {
  // One FakeClock for every process, unless a test measures the bound in real time: trust (judged on the
  // backend's clock) then never lapses by accident on a loaded machine; heartbeats and deliveries still run on
  // real timers.
  const clock = realTime ? systemClock : new FakeClock();
  const shared = new MemoryBackend({ clock });
  const l2 = new ChaosBackend(shared);
  const network = new TestBusNetwork({ heartbeatMs });
  // All processes read the same rows (one database).
  const rows = new Map<number, number>([
    [1, 10],
    [2, 20],
  ]);
  const procs: Proc[] = Array.from({ length: count }, (_, i) => {
    const bus = network.connect(`p${i}`);
    const backend = new LayeredBackend({ l2: unowned(l2), bus });
    const service = new CachingService({ backend, clock, telemetry: false });
    services.push(service);
    const resyncs: string[] = [];
    service.on('resync', e => resyncs.push(e.reason));
    const prices = bindCachingService(new Prices(), service);
    (prices as { prices: Map<number, number> }).prices = rows;
    return { service, backend, prices, resyncs, bus };
  });
  return { l2, network, procs, rows };
}

/** The shared L2 seen by one process: disposing a process leaves it alone. */
function unowned(inner: CachingBackend): CachingBackend {
  return new Proxy(inner, {
    get: (target, p) => {
      if (p === 'dispose') return async () => undefined;
      const value: unknown = Reflect.get(target, p, target);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}

const sleep = (ms: number) => new Promise<void>(resolve => setTimeout(resolve, ms));
async function until(condition: () => boolean | Promise<boolean>, what: string, timeoutMs = 2_000): Promise<void> {
  const start = Date.now();
  while (!(await condition())) {
    if (Date.now() - start > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await sleep(2);
  }
}
const trusted = (...ps: Proc[]) => until(() => ps.every(p => p.backend.trusted), 'trust');

describe('LayeredBackend under decorated services', () => {
  it('serves repeated calls from L1: no L2 read after the first', async () => {
    const { l2, procs } = processes(1);
    const [a] = procs as [Proc];
    await trusted(a);
    expect(await a.prices.getPrice(1)).toBe(10);
    const reads = l2.calls.get;
    for (let i = 0; i < 5; i++) expect(await a.prices.getPrice(1)).toBe(10);
    expect(l2.calls.get).toBe(reads);
    expect(a.prices.reads).toBe(1);
    expect(a.service.stats().hits).toBe(5);
  });

  it('shares computed values through L2: a second process computes nothing, then serves from its own L1', async () => {
    const { l2, procs } = processes(2);
    const [a, b] = procs as [Proc, Proc];
    await trusted(a, b);
    expect(await a.prices.getPriceList()).toEqual([10, 20]);
    expect(await b.prices.getPriceList()).toEqual([10, 20]);
    expect(b.prices.lists + b.prices.reads).toBe(0);
    const reads = l2.calls.get;
    expect(await b.prices.getPriceList()).toEqual([10, 20]);
    expect(l2.calls.get).toBe(reads);
  });

  it('a parent served from one process’s L1 is invalidated by a child dependency invalidated in another', async () => {
    const { procs } = processes(3);
    const [a, b, c] = procs as [Proc, Proc, Proc];
    await trusted(a, b, c);
    expect(await a.prices.getPriceList()).toEqual([10, 20]);
    expect(await b.prices.getPriceList()).toEqual([10, 20]); // copied into b's L1
    await c.prices.setPrice(2, 25); // @InvalidateCache in a third process
    await until(async () => (await b.prices.getPriceList())[1] === 25, 'b seeing the new price', 1_000);
    expect(await a.prices.getPriceList()).toEqual([10, 25]);
    expect(b.resyncs.filter(r => r !== 'gap')).toEqual([]);
  });

  it('a call started after another process’s invalidation resolved and was delivered never returns the old value', async () => {
    const { network, procs } = processes(2);
    const [a, b] = procs as [Proc, Proc];
    await trusted(a, b);
    expect(await b.prices.getPrice(1)).toBe(10);
    a.prices.prices.set(1, 11);
    const delivered = network.delivered;
    await a.service.invalidate('price:1');
    await until(() => network.delivered >= delivered + 2, 'delivery'); // to a (echo) and to b
    expect(await b.prices.getPrice(1)).toBe(11);
  });

  it('does not store in any L1 a value computed from data invalidated elsewhere while it was computed', async () => {
    const { procs } = processes(2);
    const [a, b] = procs as [Proc, Proc];
    await trusted(a, b);
    const gate = deferred();
    b.prices.gates.set(1, gate);
    const old = b.prices.getPrice(1); // reads 10, held open
    await flush();
    b.prices.prices.set(1, 12);
    await a.service.invalidate('price:1');
    b.prices.gates.delete(1);
    gate.resolve();
    expect(await old).toBe(10);
    expect(await b.prices.getPrice(1)).toBe(12); // the old value was refused by L2, so never copied to L1
    expect(await a.prices.getPrice(1)).toBe(12);
  });

  it('keeps working when the bus is down: calls still answer, from L2, and L1 is not trusted', async () => {
    const { l2, procs } = processes(2);
    const [a, b] = procs as [Proc, Proc];
    await trusted(a, b);
    expect(await b.prices.getPrice(1)).toBe(10);
    b.bus.disconnect();
    const reads = l2.calls.get;
    expect(await b.prices.getPrice(1)).toBe(10);
    expect(l2.calls.get).toBe(reads + 1);
    expect(b.resyncs).toContain('disconnected');
    b.bus.reconnect();
    await trusted(b);
  });

  it('keeps working when L2 and the bus are both down: the method runs and its result is returned', async () => {
    const { l2, procs } = processes(1);
    const [a] = procs as [Proc];
    await trusted(a);
    a.service.on('error', () => undefined);
    l2.fail();
    a.bus.disconnect();
    a.prices.prices.set(1, 13);
    expect(await a.prices.getPrice(1)).toBe(13);
    expect(await a.prices.getPrice(1)).toBe(13);
    expect(a.prices.reads).toBe(2);
  });
});

// Bugs found by test/integration/layered-processes.test.ts, reproduced deterministically, now fixed. Heartbeats
// are slow where a resync (a process that got no CPU for two heartbeats drops its L1) would hide the bug.
describe('LayeredBackend: regressions', () => {
  it('a parent computed from an L1 copy of a child that another process has just invalidated is not kept in L2', async () => {
    const { network, procs } = processes(3, { heartbeatMs: 500 });
    const [a, b, c] = procs as [Proc, Proc, Proc];
    await trusted(a, b, c);
    expect(await a.prices.getPrice(1)).toBe(10); // in a's L1
    a.prices.prices.set(1, 11);
    network.hold(); // b's message is on its way to a
    await b.service.invalidate('price:1'); // resolved: L2 holds neither price 1 nor anything built from it
    // a builds the list from its L1 copy of price 1: returning it is within the delivery delay…
    expect(await a.prices.getPriceList()).toEqual([10, 20]);
    network.release();
    await sleep(3 * HEARTBEAT);
    // …but L2 accepted it (its token was taken after the invalidation), so every process reads it, for good.
    expect(await c.prices.getPriceList()).toEqual([11, 20]);
    expect(await b.prices.getPriceList()).toEqual([11, 20]);
  });

  it('what a process whose publishes keep failing invalidates is pending: others may serve it until the publish lands, then drop it', async () => {
    const heartbeatMs = 100;
    const { procs } = processes(2, { heartbeatMs, realTime: true });
    const [a, b] = procs as [Proc, Proc];
    await trusted(a, b);
    a.service.on('error', () => undefined);
    expect(await b.prices.getPrice(1)).toBe(10);
    a.bus.failPublishes(); // every publish of a fails from now on, heartbeats included
    await until(() => b.resyncs.includes('sender-silent'), 'b forgetting a', 5 * heartbeatMs);
    await trusted(b);
    expect(await b.prices.getPrice(1)).toBe(10); // copied into b's L1 again, fresh
    a.prices.prices.set(1, 12);
    // L2 is invalidated, but b is not told: the result says so (as on Redis alone, when Redis is unreachable).
    expect(await a.service.invalidate('price:1')).toEqual({ pending: true });
    a.bus.failPublishes(0);
    await until(() => a.backend.pendingInvalidations === 0, 'the publish landing', 2_000);
    await until(async () => (await b.prices.getPrice(1)) === 12, 'b dropping its copy', 2 * heartbeatMs);
  });

  it('a process whose publishes start failing is forgotten, and its invalidation honoured, within two heartbeats plus the gap grace', async () => {
    const heartbeatMs = 200;
    const { network, procs } = processes(2, { heartbeatMs, realTime: true });
    const [a, b] = procs as [Proc, Proc];
    await trusted(a, b);
    a.service.on('error', () => undefined);
    expect(await b.prices.getPrice(1)).toBe(10);
    let heard = false;
    network.faults({ dropIf: (payload, from, to) => (heard ||= from === a.bus && to === b.bus && payload.includes('"t":"h"'), false) });
    await until(() => heard, 'a heartbeat of a reaching b');
    await flush(); // delivered: b last heard a now
    a.bus.failPublishes();
    a.prices.prices.set(1, 14);
    expect(await a.service.invalidate('price:1')).toEqual({ pending: true });
    await sleep(b.backend.stalenessBoundMs + Math.min(50, heartbeatMs / 10) + 5);
    // b judges a's silence when it reads: two heartbeats after it last heard a, it forgets a and reads L2.
    expect(await b.prices.getPrice(1)).toBe(14);
  });

  it('a read overlapping the process’s own invalidate() leaves no old value in its L1', async () => {
    // An L2 whose invalidation lands after a read issued later (RedisBackend: a later round of an invalidation
    // across partitions; any L2 that does not keep one caller's operations in order).
    const gate = deferred();
    const shared = new MemoryBackend();
    const l2 = new Proxy(unowned(shared), {
      get: (target, p) => (p === 'invalidate' ? async (...args: Parameters<CachingBackend['invalidate']>) => (await gate.promise, target.invalidate(...args)) : Reflect.get(target, p, target)),
    });
    const backend = new LayeredBackend({ l2, bus: new TestBusNetwork({ heartbeatMs: 500 }).connect() });
    const service = new CachingService({ backend, telemetry: false });
    services.push(service);
    const prices = bindCachingService(new Prices(), service);
    await until(() => backend.trusted, 'trust');
    expect(await prices.getPrice(1)).toBe(10);
    prices.prices.set(1, 15);
    const invalidation = service.invalidate('price:1'); // L1 dropped at once; L2 not yet
    expect(await prices.getPrice(1)).toBe(10); // overlapping the invalidation: the old value is fine…
    gate.resolve();
    expect(await invalidation).toEqual({ pending: false });
    await sleep(3 * HEARTBEAT); // its own echo came back (and is not applied: the owner applied it before)
    expect(await prices.getPrice(1)).toBe(15); // …but this call started after invalidate() resolved
  });
});
