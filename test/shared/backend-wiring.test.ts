import { afterEach, describe, expect, it } from 'vitest';
import { bindCachingService, Cache, CachingError, CachingService, errors, InvalidateCache, MemoryBackend, type BackendEvent, type BackendListener, type CacheEventMap, type CachingBackend } from 'aspect-cache';
import { ChaosBackend } from 'aspect-cache/testing';
import { definitionError } from '../support/definition-error.js';

// Backend wiring (SPEC §2, §8): a backend shared by several services reports its events to each of them,
// ChaosBackend forwards its inner backend's events, and every options object rejects an unknown option
// naming the nearest valid one.

const services: CachingService[] = [];

afterEach(async () => {
  await Promise.all(services.splice(0).map(s => s.dispose()));
});

function serviceOn(backend: CachingBackend): { service: CachingService; evictions: Array<CacheEventMap['evict']> } {
  const service = new CachingService({ backend, telemetry: false });
  services.push(service);
  const evictions: Array<CacheEventMap['evict']> = [];
  service.on('evict', e => evictions.push(e));
  return { service, evictions };
}

class Squares {
  constructor(service: CachingService) {
    bindCachingService(this, service);
  }

  @Cache()
  square(n: number): number {
    return n * n;
  }
}

function expectInvalidOption(make: () => unknown, ...fragments: string[]): void {
  const thrown = definitionError(make, errors.E_INVALID_OPTION);
  for (const fragment of fragments) expect(thrown.message).toContain(fragment);
}

describe('backend events reach every service sharing the backend', () => {
  it('two services sharing one MemoryBackend both get the evict event', () => {
    const backend = new MemoryBackend({ maxEntries: 1, purgeIntervalMs: 0 });
    const a = serviceOn(backend);
    const b = serviceOn(backend);
    new Squares(a.service).square(2);
    new Squares(b.service).square(3); // evicts Squares.square(2)
    expect(a.evictions).toEqual([{ key: 'Squares.square(2)', reason: 'evict' }]);
    expect(b.evictions).toEqual([{ key: 'Squares.square(2)', reason: 'evict' }]);
  });

  it('subscribe() adds independent listeners; each unsubscribe function removes only its own', () => {
    const backend = new MemoryBackend({ maxEntries: 1, purgeIntervalMs: 0 });
    const first: string[] = [];
    const second: string[] = [];
    const offFirst = backend.subscribe({ onRemoval: key => first.push(key) });
    backend.subscribe({ onRemoval: key => second.push(key) });
    const a = serviceOn(backend);
    const squares = new Squares(a.service);
    squares.square(1);
    squares.square(2);
    offFirst();
    offFirst(); // a second call does nothing
    squares.square(3);
    expect(first).toEqual(['Squares.square(1)']);
    expect(second).toEqual(['Squares.square(1)', 'Squares.square(2)']);
    expect(a.evictions.map(e => e.key)).toEqual(['Squares.square(1)', 'Squares.square(2)']);
  });

  it('a service unsubscribes from its backends on dispose()', async () => {
    const inner = new MemoryBackend({ maxEntries: 1, purgeIntervalMs: 0 });
    // The first service disposes its backend on dispose(): give it a view of `inner` whose dispose does nothing.
    const view: CachingBackend = {
      name: inner.name,
      isSync: inner.isSync,
      clock: inner.clock,
      get: key => inner.get(key),
      begin: key => inner.begin(key),
      set: (key, entry, token) => inner.set(key, entry, token),
      abandon: token => inner.abandon(token),
      invalidate: (keys, options) => inner.invalidate(keys, options),
      clear: () => inner.clear(),
      dispose: () => undefined,
      subscribe: listener => inner.subscribe(listener),
    };
    const a = serviceOn(view);
    const b = serviceOn(inner);
    await a.service.dispose();
    const squares = new Squares(b.service);
    squares.square(1);
    squares.square(2);
    expect(b.evictions.map(e => e.key)).toEqual(['Squares.square(1)']);
    expect(a.evictions).toEqual([]);
  });

  it('a throwing backend listener disturbs neither the backend nor the other listeners', () => {
    const backend = new MemoryBackend({ maxEntries: 1, purgeIntervalMs: 0 });
    backend.subscribe({
      onRemoval: () => {
        throw new Error('listener bug');
      },
    });
    const a = serviceOn(backend);
    const squares = new Squares(a.service);
    squares.square(1);
    expect(squares.square(2)).toBe(4);
    expect(a.evictions.map(e => e.key)).toEqual(['Squares.square(1)']);
  });

  it('ChaosBackend forwards its inner backend’s evictions to the service', async () => {
    const chaos = new ChaosBackend(new MemoryBackend({ maxEntries: 1, purgeIntervalMs: 0 }));
    const a = serviceOn(chaos);
    const squares = new AsyncSquares(a.service);
    await squares.square(1);
    await squares.square(2);
    expect(a.evictions).toEqual([{ key: 'AsyncSquares.square(1)', reason: 'evict' }]);
  });

  it('ChaosBackend forwards its inner backend’s error and circuit events to the service', async () => {
    const inner = new ReportingBackend();
    const service = new CachingService({ backend: new ChaosBackend(inner), telemetry: false });
    services.push(service);
    const seen: string[] = [];
    service.on('error', e => seen.push(`error:${e.operation}`));
    service.on('circuit', e => seen.push(`circuit:${e.state}:${e.backend}`));
    inner.report({ type: 'error', error: new Error('absorbed'), operation: 'probe' });
    inner.report({ type: 'circuit', state: 'open' });
    expect(seen).toEqual(['error:probe', 'circuit:open:chaos(memory)']);
  });
});

class AsyncSquares {
  constructor(service: CachingService) {
    bindCachingService(this, service);
  }

  @Cache()
  async square(n: number): Promise<number> {
    return n * n;
  }
}

/** A memory backend that can report events on demand, to every subscriber (and to a legacy `onEvent` slot). */
class ReportingBackend extends MemoryBackend {
  readonly #listeners: BackendListener[] = [];
  onEvent: ((event: BackendEvent) => void) | undefined;

  constructor() {
    super({ purgeIntervalMs: 0 });
  }

  override subscribe(listener: BackendListener): () => void {
    this.#listeners.push(listener);
    return super.subscribe(listener);
  }

  report(event: BackendEvent): void {
    this.onEvent?.(event);
    for (const listener of this.#listeners) listener.onEvent?.(event);
  }
}

describe('unknown options are rejected, naming the nearest valid one', () => {
  it('CachingService', () => {
    expectInvalidOption(() => new CachingService({ prefix: 'x' } as never), 'CachingService', "unknown option 'prefix'", "did you mean 'keyPrefix'?");
    expectInvalidOption(() => new CachingService({ backnd: new MemoryBackend() } as never), "'backnd'", "did you mean 'backend'?");
  });

  it('MemoryBackend', () => {
    expectInvalidOption(() => new MemoryBackend({ maxEntry: 10 } as never), 'MemoryBackend', "unknown option 'maxEntry'", "did you mean 'maxEntries'?");
    expectInvalidOption(() => new MemoryBackend({ maxbytes: 10 } as never), "did you mean 'maxBytes'?");
  });

  it('service defaults and profiles, including fail-safe sub-options', () => {
    expectInvalidOption(() => new CachingService({ defaults: { tll: 5 } as never }), 'defaults', "unknown option 'tll'", "did you mean 'ttl'?");
    expectInvalidOption(() => new CachingService({ profiles: { hot: { slidingExpiraton: 5 } as never } }), "profile 'hot'", "did you mean 'slidingExpiration'?");
    expectInvalidOption(
      () => new CachingService({ defaults: { failSafe: { maxStaleness: 10, softTimout: 5 } as never } }),
      "unknown option 'failSafe.softTimout'",
      "did you mean 'failSafe.softTimeout'?",
    );
  });

  it('@Cache options, at class definition', () => {
    expectInvalidOption(() => {
      class Misspelt {
        @Cache({ cacheUndefine: false } as never)
        get1(): number {
          return 1;
        }
      }
      return Misspelt;
    }, "unknown option 'cacheUndefine'", "did you mean 'cacheUndefined'?");
  });

  it('@InvalidateCache target objects, at class definition', () => {
    expectInvalidOption(() => {
      class Prices {
        @Cache()
        getPrice(id: string): string {
          return id;
        }

        @InvalidateCache({ method: 'getPrice', arg: (id: string) => [id] } as never)
        setPrice(id: string): void {
          void id;
        }
      }
      return Prices;
    }, "unknown option 'arg'", "did you mean 'args'?");
  });

  it('names the valid options when nothing is close', () => {
    expectInvalidOption(() => new MemoryBackend({ zzzzzzzz: 1 } as never), "unknown option 'zzzzzzzz'", 'valid options: maxEntries, maxBytes, sizeOf, clock, purgeIntervalMs');
  });
});
