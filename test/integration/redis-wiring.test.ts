// RedisBackend wiring (SPEC §2, §8): a backend shared by two services reports what it absorbs to both, and
// its options (and their lock / circuitBreaker sub-options) reject unknown names, suggesting the nearest one.
import { afterEach, expect, it } from 'vitest';
import { addDependency, bindCachingService, Cache, CachingError, CachingService, errors, type CacheEventMap } from '../../src/index.js';
import { RedisBackend } from '../../src/redis.js';
import { describeRedis, standaloneClient, uniquePrefix } from './support/redis.js';
import { definitionError } from '../support/definition-error.js';

const services: CachingService[] = [];

afterEach(async () => {
  await Promise.all(services.splice(0).map(s => s.dispose()));
});

class Catalogue {
  runs = 0;
  constructor(service: CachingService) {
    bindCachingService(this, service);
  }

  @Cache()
  async getPrice(id: string): Promise<number> {
    this.runs++;
    addDependency(`Price:${id}`);
    return 4;
  }
}

function expectInvalidOption(make: () => unknown, ...fragments: string[]): void {
  const thrown = definitionError(make, errors.E_INVALID_OPTION);
  for (const fragment of fragments) expect(thrown.message).toContain(fragment);
}

describeRedis('RedisBackend wiring', () => {
  it('a RedisBackend shared by two services reports an absorbed error to both', async () => {
    const client = standaloneClient();
    const raw = standaloneClient();
    const backend = new RedisBackend({ client, keyPrefix: uniquePrefix('wiring') });
    const seen: Record<'a' | 'b', Array<CacheEventMap['error']>> = { a: [], b: [] };
    for (const name of ['a', 'b'] as const) {
      const service = new CachingService({ backend, telemetry: false });
      services.push(service);
      service.on('error', e => seen[name].push(e));
    }
    const catalogue = new Catalogue(services[0]!);
    await catalogue.getPrice('corn');
    // A corrupt entry: the backend absorbs the decode failure (a miss) and reports it.
    await raw.hset(backend.entryKey('Catalogue.getPrice("corn")'), 'h', '0|0|0|1|["Price:corn"]\n{"json":{"v":oops');
    expect(await catalogue.getPrice('corn')).toBe(4);
    expect(catalogue.runs).toBe(2);
    expect(seen.a.length).toBeGreaterThan(0);
    expect(seen.b).toEqual(seen.a);
    expect(seen.b[0]!.error).toBe(seen.a[0]!.error);
  });

  it('rejects unknown options, naming the nearest valid one', () => {
    const client = standaloneClient();
    expectInvalidOption(() => new RedisBackend({ client, prefix: 'x:' } as never), 'RedisBackend', "unknown option 'prefix'", "did you mean 'keyPrefix'?");
    expectInvalidOption(() => new RedisBackend({ client, operationTimeout: 5 } as never), "did you mean 'operationTimeoutMs'?");
    expectInvalidOption(() => new RedisBackend({ client, lock: { leasMs: 5 } } as never), "unknown option 'lock.leasMs'", "did you mean 'lock.leaseMs'?");
    expectInvalidOption(
      () => new RedisBackend({ client, circuitBreaker: { failureTreshold: 2 } } as never),
      "unknown option 'circuitBreaker.failureTreshold'",
      "did you mean 'circuitBreaker.failureThreshold'?",
    );
  });
});
