import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { bindCachingService, Cache, CachingError, CachingService, suspendDependencyPropagation } from 'aspect-cache';
import { deferred, flush, type Deferred } from '../support/deferred.js';

// Stampede protection and recursion detection (SPEC §7): concurrent misses on one key run the method once,
// a rejecting leader releases its waiters, and a method that waits for itself fails instead of deadlocking.

let service: CachingService;

beforeEach(() => {
  service = new CachingService({ logger: { debug: vi.fn(), warn: vi.fn(), error: vi.fn() } });
});

afterEach(async () => {
  await service.dispose();
});

/** The error a call produced, thrown synchronously or as a rejection; fails if it succeeded. */
async function failureOf(call: () => unknown): Promise<unknown> {
  try {
    await call();
  } catch (error) {
    return error;
  }
  throw new Error('expected the call to fail, it succeeded');
}

describe('single-flight', () => {
  it('50 concurrent calls with one key run the method once and all receive its value', async () => {
    const gate = deferred<string>();
    let runs = 0;
    class SlowCatalogue {
      @Cache()
      async load(id: string): Promise<string> {
        runs++;
        return `${id}:${await gate.promise}`;
      }
    }
    const catalogue = bindCachingService(new SlowCatalogue(), service);
    const calls = Array.from({ length: 50 }, () => catalogue.load('corn'));
    await flush();
    expect(runs).toBe(1);
    gate.resolve('v1');
    const values = await Promise.all(calls);
    expect(values).toEqual(Array.from({ length: 50 }, () => 'corn:v1'));
    expect(runs).toBe(1);
    expect(service.stats().joins).toBe(49);
    // and the value was stored once for later callers
    await expect(catalogue.load('corn')).resolves.toBe('corn:v1');
    expect(runs).toBe(1);
    expect(service.stats().sets).toBe(1);
  });

  it('callers on different stateless instances of one class join the same flight', async () => {
    const gate = deferred<number>();
    let runs = 0;
    class SharedLoader {
      @Cache()
      async count(kind: string): Promise<number> {
        runs++;
        return (await gate.promise) + kind.length;
      }
    }
    const a = bindCachingService(new SharedLoader(), service);
    const b = bindCachingService(new SharedLoader(), service);
    const calls = [a.count('x'), b.count('x'), a.count('x')];
    await flush();
    gate.resolve(10);
    expect(await Promise.all(calls)).toEqual([11, 11, 11]);
    expect(runs).toBe(1);
  });

  it('a caller arriving while the computation is in flight joins it instead of starting another', async () => {
    const gate = deferred<string>();
    let runs = 0;
    class SlowReport {
      @Cache()
      async build(name: string): Promise<string> {
        runs++;
        await gate.promise;
        return `report ${name}`;
      }
    }
    const reports = bindCachingService(new SlowReport(), service);
    const early = reports.build('q1');
    await flush(5);
    const late = reports.build('q1');
    await flush(5);
    expect(runs).toBe(1);
    gate.resolve('go');
    await expect(early).resolves.toBe('report q1');
    await expect(late).resolves.toBe('report q1');
  });

  it('different keys run separately and concurrently, each getting its own value', async () => {
    const gates = new Map<string, Deferred<string>>([
      ['a', deferred<string>()],
      ['b', deferred<string>()],
      ['c', deferred<string>()],
    ]);
    const started: string[] = [];
    class PerKey {
      @Cache()
      async load(id: string): Promise<string> {
        started.push(id);
        return gates.get(id)!.promise;
      }
    }
    const loader = bindCachingService(new PerKey(), service);
    const a = loader.load('a');
    const b = loader.load('b');
    const c = loader.load('c');
    const a2 = loader.load('a');
    await flush();
    expect(started).toEqual(['a', 'b', 'c']);

    // Settling one key does not settle the others.
    gates.get('b')!.resolve('value b');
    await expect(b).resolves.toBe('value b');
    let aSettled = false;
    void a.then(() => (aSettled = true));
    await flush();
    expect(aSettled).toBe(false);

    gates.get('a')!.resolve('value a');
    gates.get('c')!.resolve('value c');
    expect(await Promise.all([a, a2, c])).toEqual(['value a', 'value a', 'value c']);
    expect(started).toEqual(['a', 'b', 'c']);
  });

  it('a rejecting leader: every waiter settles, rejected with the same error', async () => {
    const gate = deferred<string>();
    let runs = 0;
    class FailingLoader {
      @Cache()
      async load(id: string): Promise<string> {
        runs++;
        return `${id}:${await gate.promise}`;
      }
    }
    const loader = bindCachingService(new FailingLoader(), service);
    const calls = Array.from({ length: 10 }, () => loader.load('k'));
    await flush();
    const failure = new Error('database down');
    gate.reject(failure);
    const results = await Promise.allSettled(calls);
    expect(runs).toBe(1);
    expect(results).toHaveLength(10);
    for (const result of results) {
      expect(result.status).toBe('rejected');
      expect((result as PromiseRejectedResult).reason).toBe(failure);
    }
  });

  it('after a rejecting leader the next call recomputes: the key is not poisoned', async () => {
    let attempt = 0;
    const gates = [deferred<string>(), deferred<string>()];
    class RetryLoader {
      @Cache()
      async load(id: string): Promise<string> {
        const gate = gates[attempt++]!;
        return `${id}:${await gate.promise}`;
      }
    }
    const loader = bindCachingService(new RetryLoader(), service);
    const failed = Promise.allSettled([loader.load('k'), loader.load('k'), loader.load('k')]);
    await flush();
    gates[0]!.reject(new Error('first attempt fails'));
    expect((await failed).map(r => r.status)).toEqual(['rejected', 'rejected', 'rejected']);

    const retry = [loader.load('k'), loader.load('k')];
    await flush();
    expect(attempt).toBe(2);
    gates[1]!.resolve('ok');
    expect(await Promise.all(retry)).toEqual(['k:ok', 'k:ok']);
    await expect(loader.load('k')).resolves.toBe('k:ok');
    expect(attempt).toBe(2);
  });
});

describe('recursion on the same key', () => {
  it('an async method calling itself with the same key fails with E_RECURSION instead of deadlocking', async () => {
    let runs = 0;
    class SelfCaller {
      @Cache()
      async total(id: string): Promise<number> {
        runs++;
        await Promise.resolve();
        return (await this.total(id)) + 1;
      }
    }
    const caller = bindCachingService(new SelfCaller(), service);
    const error = await failureOf(() => caller.total('x'));
    expect(error).toBeInstanceOf(CachingError);
    expect(error).toMatchObject({ code: 'E_RECURSION' });
    expect((error as Error).message).toContain('total');
    expect(runs).toBe(1);
  });

  it('async A → B → A with the same key fails with E_RECURSION', async () => {
    class Ping {
      pong!: Pong;

      @Cache()
      async ping(n: number): Promise<number> {
        return this.pong.pong(n);
      }
    }
    class Pong {
      constructor(readonly ping: Ping) {}

      @Cache()
      async pong(n: number): Promise<number> {
        await Promise.resolve();
        return this.ping.ping(n);
      }
    }
    const ping = bindCachingService(new Ping(), service);
    ping.pong = bindCachingService(new Pong(ping), service);
    const error = await failureOf(() => ping.ping(1));
    expect(error).toBeInstanceOf(CachingError);
    expect(error).toMatchObject({ code: 'E_RECURSION' });
  });

  it('a synchronous method calling itself with the same key throws E_RECURSION', () => {
    let runs = 0;
    class SyncSelf {
      @Cache()
      depth(n: number): number {
        runs++;
        return this.depth(n) + 1;
      }
    }
    const self = bindCachingService(new SyncSelf(), service);
    let error: unknown;
    try {
      self.depth(3);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(CachingError);
    expect(error).toMatchObject({ code: 'E_RECURSION' });
    expect(runs).toBe(1);
  });

  it('synchronous A → B → A with the same key throws E_RECURSION', () => {
    class SyncA {
      b!: SyncB;

      @Cache()
      a(n: number): number {
        return this.b.b(n);
      }
    }
    class SyncB {
      constructor(readonly owner: SyncA) {}

      @Cache()
      b(n: number): number {
        return this.owner.a(n) * 2;
      }
    }
    const a = bindCachingService(new SyncA(), service);
    a.b = bindCachingService(new SyncB(a), service);
    let error: unknown;
    try {
      a.a(1);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(CachingError);
    expect(error).toMatchObject({ code: 'E_RECURSION' });
  });

  it('A → (awaited, inside suspendDependencyPropagation) B → A with the same key fails with E_RECURSION instead of deadlocking', async () => {
    class Outer {
      inner!: Inner;

      @Cache()
      async a(n: number): Promise<number> {
        // Suspension stops dependencies, but A still waits for B here: joining A's own flight would deadlock.
        return suspendDependencyPropagation(() => this.inner.b(n));
      }
    }
    class Inner {
      constructor(readonly outer: Outer) {}

      @Cache()
      async b(n: number): Promise<number> {
        await Promise.resolve();
        return this.outer.a(n);
      }
    }
    const outer = bindCachingService(new Outer(), service);
    outer.inner = bindCachingService(new Inner(outer), service);
    const call = outer.a(1);
    const outcome = await Promise.race([
      call.then(
        () => 'resolved',
        (error: unknown) => error,
      ),
      flush(50).then(() => 'still pending: deadlocked'),
    ]);
    expect(outcome).toBeInstanceOf(CachingError);
    expect(outcome).toMatchObject({ code: 'E_RECURSION' });
  });

  it('after a recursion error the key is usable again once the method stops recursing', async () => {
    let recurse = true;
    class Toggle {
      @Cache()
      async value(id: string): Promise<string> {
        if (recurse) return this.value(id);
        return `value ${id}`;
      }
    }
    const toggle = bindCachingService(new Toggle(), service);
    expect(await failureOf(() => toggle.value('k'))).toMatchObject({ code: 'E_RECURSION' });
    recurse = false;
    await expect(toggle.value('k')).resolves.toBe('value k');
  });

  it('recursion with different keys is allowed and each key is computed once', async () => {
    const computed: number[] = [];
    class Fibonacci {
      @Cache()
      async fib(n: number): Promise<number> {
        computed.push(n);
        if (n < 2) return n;
        const [a, b] = await Promise.all([this.fib(n - 1), this.fib(n - 2)]);
        return a + b;
      }

      @Cache()
      fibSync(n: number): number {
        return n < 2 ? n : this.fibSync(n - 1) + this.fibSync(n - 2);
      }
    }
    const fib = bindCachingService(new Fibonacci(), service);
    await expect(fib.fib(20)).resolves.toBe(6765);
    expect([...computed].sort((x, y) => x - y)).toEqual(Array.from({ length: 21 }, (_, i) => i));
    expect(fib.fibSync(30)).toBe(832040);
  });
});
