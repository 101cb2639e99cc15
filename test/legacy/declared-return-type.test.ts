import { afterEach, describe, expect, it } from 'vitest';
import { bindCachingService, Cache, CachingService, MemoryBackend } from 'aspect-cache';
import { ChaosBackend } from 'aspect-cache/testing';

// Legacy decorators with emitDecoratorMetadata record each method's declared return type
// (design:returntype), which tells synchronous and promise-returning methods apart before any call.

const services: CachingService[] = [];
afterEach(async () => {
  await Promise.all(services.splice(0).map(s => s.dispose()));
});

function asyncService(): CachingService {
  const service = new CachingService({ backend: new ChaosBackend(new MemoryBackend()), logger: { warn() {}, error() {} } });
  services.push(service);
  return service;
}

describe('declared return types (legacy decorators with emitDecoratorMetadata)', () => {
  it('a method declared to return a number fails on an async backend without running', () => {
    let runs = 0;
    class Totals {
      @Cache()
      total(id: string): number {
        runs++;
        return id.length;
      }
    }
    const totals = bindCachingService(new Totals(), asyncService());
    expect(() => totals.total('abc')).toThrow(expect.objectContaining({ code: 'E_SYNC_ON_ASYNC_BACKEND' }));
    expect(runs).toBe(0);
  });

  it('a non-async method declared to return a Promise is cached on an async backend from its first call', async () => {
    let runs = 0;
    class Finder {
      @Cache()
      find(id: string): Promise<string> {
        runs++;
        return Promise.resolve(`found ${id}`);
      }
    }
    const finder = bindCachingService(new Finder(), asyncService());
    expect(await finder.find('a')).toBe('found a');
    expect(await finder.find('a')).toBe('found a');
    expect(runs).toBe(1);
  });
});
