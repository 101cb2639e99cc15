// caching.clear() (SPEC §14): removes every entry of the service's backends (every profile's, and with a layered
// backend every process's L1), detaches computations in flight, and refuses the stores of computations that
// began before it. On memory, on an asynchronous backend, and layered (two processes over one L2 and a bus).
import { afterEach, describe, expect, it, vi } from 'vitest';
import { addDependency, bindCachingService, Cache, CachingError, CachingService, LayeredBackend, MemoryBackend, type CachingBackend } from 'aspect-cache';
import { ChaosBackend, FakeClock, TestBusNetwork } from 'aspect-cache/testing';
import { deferred, flush, type Deferred } from '../support/deferred.js';
import { failureOf } from '../support/failure-of.js';

const services: CachingService[] = [];
afterEach(async () => {
  await Promise.all(services.splice(0).map(s => s.dispose()));
});

class Catalogue {
  version = 1;
  runs = 0;
  gate: Deferred<void> | undefined;

  @Cache()
  async price(id: string): Promise<string> {
    this.runs++;
    addDependency(`price:${id}`);
    const version = this.version;
    await this.gate?.promise;
    return `${id} v${version}`;
  }

  @Cache({ profile: 'hot' })
  async hot(id: string): Promise<string> {
    this.runs++;
    return `hot ${id} v${this.version}`;
  }

  @Cache()
  name(id: string): string {
    this.runs++;
    return `name ${id} v${this.version}`;
  }
}

const backends: Array<[string, () => CachingBackend]> = [
  ['memory', () => new MemoryBackend()],
  ['asynchronous backend', () => new ChaosBackend(new MemoryBackend())],
];

for (const [name, makeBackend] of backends) {
  describe(`clear() (${name})`, () => {
    function setUp() {
      const main = makeBackend();
      const hot = makeBackend();
      const service = new CachingService({ backend: main, profiles: { hot: { backend: hot } }, telemetry: false });
      services.push(service);
      return { service, main, hot, catalogue: bindCachingService(new Catalogue(), service) };
    }

    it("removes the entries of the default backend and of every profile's backend", async () => {
      const { service, catalogue } = setUp();
      await catalogue.price('a');
      await catalogue.hot('a');
      await catalogue.price('a');
      await catalogue.hot('a');
      expect(catalogue.runs).toBe(2);
      catalogue.version = 2;
      await service.clear();
      expect(await catalogue.price('a')).toBe('a v2');
      expect(await catalogue.hot('a')).toBe('hot a v2');
      expect(catalogue.runs).toBe(4);
      expect(await catalogue.price('a')).toBe('a v2'); // caching goes on
      expect(catalogue.runs).toBe(4);
    });

    it('a computation in flight across clear() answers its caller but is not stored, and a later caller does not join it', async () => {
      const { service, catalogue } = setUp();
      const gate = (catalogue.gate = deferred());
      const before = catalogue.price('b');
      await flush();
      catalogue.version = 2;
      await service.clear();
      catalogue.gate = undefined;
      const after = catalogue.price('b'); // started after clear(): computes on its own, without waiting for it
      expect(await Promise.race([after, flush(10).then(() => 'still waiting for the computation begun before clear()')])).toBe('b v2');
      gate.resolve();
      expect(await before).toBe('b v1');
      expect(await catalogue.price('b')).toBe('b v2');
      expect(catalogue.runs).toBe(2);
    });

    it('a computation that began before clear() and finishes after it is not stored', async () => {
      const { service, catalogue } = setUp();
      const gate = (catalogue.gate = deferred());
      const before = catalogue.price('s');
      await flush();
      await service.clear();
      catalogue.gate = undefined;
      gate.resolve();
      expect(await before).toBe('s v1');
      catalogue.version = 2;
      expect(await catalogue.price('s')).toBe('s v2');
      expect(catalogue.runs).toBe(2);
    });

    it('rejects with a CachingError naming the backend that failed; the others are cleared anyway', async () => {
      const failing = new ChaosBackend(new MemoryBackend());
      const service = new CachingService({ backend: makeBackend(), profiles: { hot: { backend: failing } }, telemetry: false, logger: { warn: vi.fn(), error: vi.fn() } });
      services.push(service);
      const errors: string[] = [];
      service.on('error', e => errors.push(e.operation));
      const catalogue = bindCachingService(new Catalogue(), service);
      await catalogue.price('c');
      failing.fail('clear');
      const error = await failureOf(() => service.clear());
      expect(error).toBeInstanceOf(CachingError);
      expect(error).toMatchObject({ code: 'E_BACKEND', cause: { message: 'ChaosBackend: injected failure' } });
      expect((error as Error).message).toContain('1 of 2 backends could not be cleared (chaos(memory))');
      expect(errors).toEqual(['clear']);
      await catalogue.price('c');
      expect(catalogue.runs).toBe(2); // the default backend was cleared
    });
  });
}

describe('clear() of synchronous entries (memory)', () => {
  it('a synchronous method recomputes after clear()', async () => {
    const service = new CachingService({ telemetry: false });
    services.push(service);
    const catalogue = bindCachingService(new Catalogue(), service);
    expect(catalogue.name('x')).toBe('name x v1');
    catalogue.version = 2;
    await service.clear();
    expect(catalogue.name('x')).toBe('name x v2');
    expect(catalogue.runs).toBe(2);
  });
});

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

describe('clear() on a layered backend', () => {
  it("clears every process's L1 and the shared L2: another process recomputes, computing once for both", async () => {
    const clock = new FakeClock();
    const shared = new MemoryBackend({ clock });
    const network = new TestBusNetwork({ heartbeatMs: 20 });
    const procs = ['p0', 'p1'].map(id => {
      const backend = new LayeredBackend({ l2: new ChaosBackend(unowned(shared)), bus: network.connect(id) });
      const service = new CachingService({ backend, clock, telemetry: false });
      services.push(service);
      return { service, backend, catalogue: bindCachingService(new Catalogue(), service) };
    });
    const [a, b] = procs as [(typeof procs)[0], (typeof procs)[0]];
    for (let i = 0; i < 200 && !(a.backend.trusted && b.backend.trusted); i++) await new Promise(resolve => setTimeout(resolve, 5));
    expect(a.backend.trusted && b.backend.trusted).toBe(true);
    await a.catalogue.price('l');
    await b.catalogue.price('l'); // from L2, then held in b's L1
    await b.catalogue.price('l');
    expect(a.catalogue.runs + b.catalogue.runs).toBe(1);
    a.catalogue.version = b.catalogue.version = 2;
    await a.service.clear();
    await new Promise(resolve => setTimeout(resolve, 30)); // the bus delivers the clear to b
    expect(await b.catalogue.price('l')).toBe('l v2');
    expect(await a.catalogue.price('l')).toBe('l v2');
    expect(a.catalogue.runs + b.catalogue.runs).toBe(2);
  });
});
