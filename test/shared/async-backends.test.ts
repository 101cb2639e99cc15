import { afterEach, describe, expect, it, vi } from 'vitest';
import { addDependency, bindCachingService, Cache, CachingError, CachingService, MemoryBackend, type CachingServiceOptions, type Logger } from 'aspect-cache';
import { ChaosBackend } from 'aspect-cache/testing';
import { deferred, flush } from '../support/deferred.js';
import { failureOf } from '../support/failure-of.js';

// Methods on a backend that answers asynchronously (ChaosBackend always does), and a failing backend
// (SPEC §7, §8): synchronous methods are refused clearly, and a backend failure never fails a call.

const services: CachingService[] = [];

type LogFn = (message: string, data?: unknown) => void;

function quietLogger() {
  return { debug: vi.fn<LogFn>(), warn: vi.fn<LogFn>(), error: vi.fn<LogFn>() } satisfies Logger;
}

function makeService(options: CachingServiceOptions = {}): CachingService {
  const service = new CachingService({ logger: quietLogger(), ...options });
  services.push(service);
  return service;
}

afterEach(async () => {
  await Promise.all(services.splice(0).map(s => s.dispose()));
});

describe('synchronous methods on an async-only backend', () => {
  // Without a declared return type (TC39 decorators, or no emitDecoratorMetadata) the first call runs the method
  // once to see whether it returns a promise; test/legacy/declared-return-type.test.ts covers the case where
  // the declared type lets it fail without running.
  it('fail on their first call with E_SYNC_ON_ASYNC_BACKEND', async () => {
    const service = makeService({ profiles: { remote: { backend: new ChaosBackend(new MemoryBackend()) } } });
    let runs = 0;
    class SyncOnRemote {
      @Cache({ profile: 'remote' })
      total(id: string): number {
        runs++;
        return id.length;
      }
    }
    const s = bindCachingService(new SyncOnRemote(), service);
    const error = await failureOf(() => s.total('abc'));
    expect(error).toBeInstanceOf(CachingError);
    expect(error).toMatchObject({ code: 'E_SYNC_ON_ASYNC_BACKEND' });
    expect((error as Error).message).toContain('total');
    expect((error as Error).message).toContain('remote');
    expect(runs).toBeLessThanOrEqual(1);
    await expect(failureOf(() => s.total('abc'))).resolves.toMatchObject({ code: 'E_SYNC_ON_ASYNC_BACKEND' });
  });

  it('also fail when the async backend is the service default backend', async () => {
    const service = makeService({ backend: new ChaosBackend(new MemoryBackend()) });
    class SyncOnDefault {
      @Cache()
      value(): number {
        return 1;
      }
    }
    const error = await failureOf(() => bindCachingService(new SyncOnDefault(), service).value());
    expect(error).toMatchObject({ code: 'E_SYNC_ON_ASYNC_BACKEND' });
  });

  it('async methods on the same backend are cached, and sync methods on a memory profile still work', async () => {
    const remote = new ChaosBackend(new MemoryBackend());
    const service = makeService({ profiles: { remote: { backend: remote } } });
    const runs: string[] = [];
    class Mixed {
      @Cache({ profile: 'remote' })
      async remoteValue(id: string): Promise<string> {
        runs.push(`remote ${id}`);
        return `r:${id}`;
      }

      @Cache()
      localValue(id: string): string {
        runs.push(`local ${id}`);
        return `l:${id}`;
      }
    }
    const m = bindCachingService(new Mixed(), service);
    await expect(m.remoteValue('a')).resolves.toBe('r:a');
    await expect(m.remoteValue('a')).resolves.toBe('r:a');
    expect(m.localValue('a')).toBe('l:a');
    expect(m.localValue('a')).toBe('l:a');
    expect(runs).toEqual(['remote a', 'local a']);
    expect(remote.calls.set).toBe(1);
  });

  it('a method that is not declared async but returns a promise is cached on an async backend from its second call, not refused', async () => {
    const service = makeService({ backend: new ChaosBackend(new MemoryBackend()) });
    const skips: string[] = [];
    service.on('skip', e => skips.push(e.reason));
    let runs = 0;
    class PromiseReturning {
      // PromiseLike: legacy decorator metadata then says Object, so the return type is learned in both modes.
      @Cache()
      find(id: string): PromiseLike<string> {
        runs++;
        return Promise.resolve(`found ${id}`);
      }
    }
    const p = bindCachingService(new PromiseReturning(), service);
    // The first call ran before a token could be taken: its value is returned, not stored.
    await expect(p.find('a')).resolves.toBe('found a');
    expect(skips).toEqual(['first-call']);
    await expect(p.find('a')).resolves.toBe('found a');
    await expect(p.find('a')).resolves.toBe('found a');
    expect(runs).toBe(2);
  });

  it('the first call of a method not declared async never stores a value read before an invalidation that resolved during it', async () => {
    const backend = new ChaosBackend(new MemoryBackend());
    const service = makeService({ backend });
    let version = 1;
    const gate = deferred<void>();
    class Rows {
      @Cache()
      row(id: string): PromiseLike<string> {
        const read = `${id}@${version}`; // read synchronously, before any token could be taken
        return gate.promise.then(() => {
          addDependency(`row:${id}`);
          return read;
        });
      }
    }
    const rows = bindCachingService(new Rows(), service);
    const first = rows.row('r');
    version = 2;
    await service.invalidate('row:r');
    gate.resolve();
    await expect(first).resolves.toBe('r@1');
    // A call that starts after the invalidation resolved must see the new version.
    await expect(rows.row('r')).resolves.toBe('r@2');
  });

  it('concurrent calls on an async backend still run the method once', async () => {
    const service = makeService({ backend: new ChaosBackend(new MemoryBackend()) });
    const gate = deferred<string>();
    let runs = 0;
    class RemoteSlow {
      @Cache()
      async load(id: string): Promise<string> {
        runs++;
        return `${id}:${await gate.promise}`;
      }
    }
    const r = bindCachingService(new RemoteSlow(), service);
    const calls = Array.from({ length: 20 }, () => r.load('k'));
    await flush();
    gate.resolve('v');
    expect(await Promise.all(calls)).toEqual(Array.from({ length: 20 }, () => 'k:v'));
    expect(runs).toBe(1);
  });
});

describe('execution semantics hold on an async backend too', () => {
  it('a rejecting leader releases its waiters and the next call recomputes', async () => {
    const service = makeService({ backend: new ChaosBackend(new MemoryBackend()) });
    const gates = [deferred<string>(), deferred<string>()];
    let attempt = 0;
    class RemoteFlaky {
      @Cache()
      async load(id: string): Promise<string> {
        const gate = gates[attempt++]!;
        return `${id}:${await gate.promise}`;
      }
    }
    const r = bindCachingService(new RemoteFlaky(), service);
    const failure = new Error('remote computation failed');
    const first = Promise.allSettled([r.load('k'), r.load('k'), r.load('k')]);
    await flush();
    gates[0]!.reject(failure);
    const settled = await first;
    expect(settled.map(s => (s.status === 'rejected' ? s.reason : s.value))).toEqual([failure, failure, failure]);
    const retry = r.load('k');
    await flush();
    gates[1]!.resolve('ok');
    await expect(retry).resolves.toBe('k:ok');
    expect(attempt).toBe(2);
  });

  it('an async method calling itself with the same key fails with E_RECURSION', async () => {
    const service = makeService({ backend: new ChaosBackend(new MemoryBackend()) });
    class RemoteSelf {
      @Cache()
      async value(id: string): Promise<string> {
        return this.value(id);
      }
    }
    const error = await failureOf(() => bindCachingService(new RemoteSelf(), service).value('x'));
    expect(error).toBeInstanceOf(CachingError);
    expect(error).toMatchObject({ code: 'E_RECURSION' });
  });

  it('undefined is cached by default and skipped with cacheUndefined: false', async () => {
    const service = makeService({ backend: new ChaosBackend(new MemoryBackend()) });
    const runs: string[] = [];
    class RemoteUndefined {
      @Cache()
      async kept(): Promise<undefined> {
        runs.push('kept');
        return undefined;
      }

      @Cache({ cacheUndefined: false })
      async dropped(): Promise<undefined> {
        runs.push('dropped');
        return undefined;
      }
    }
    const r = bindCachingService(new RemoteUndefined(), service);
    await r.kept();
    await r.kept();
    await r.dropped();
    await r.dropped();
    expect(runs).toEqual(['kept', 'dropped', 'dropped']);
  });
});

describe('a failing backend never fails a call', () => {
  it("with get and set failing, the async method still returns its value and 'error' events fire", async () => {
    const chaos = new ChaosBackend(new MemoryBackend()).fail('get', 'set');
    const service = makeService({ backend: chaos });
    const errorsSeen: Array<{ operation: string; error: unknown }> = [];
    service.on('error', e => errorsSeen.push({ operation: e.operation, error: e.error }));
    let runs = 0;
    class Resilient {
      @Cache()
      async price(id: string): Promise<number> {
        runs++;
        return id.length * 10;
      }
    }
    const r = bindCachingService(new Resilient(), service);
    await expect(r.price('corn')).resolves.toBe(40);
    await expect(r.price('corn')).resolves.toBe(40);
    expect(runs).toBe(2);
    expect(errorsSeen.length).toBeGreaterThanOrEqual(2);
    expect(errorsSeen.every(e => e.error instanceof Error)).toBe(true);
    expect(errorsSeen.map(e => e.operation)).toContain('get');
    expect(service.stats().errors).toBe(errorsSeen.length);
  });

  it("a failing set alone: the value is returned and the error reported with operation 'set'", async () => {
    const chaos = new ChaosBackend(new MemoryBackend()).fail('set');
    const service = makeService({ backend: chaos });
    const operations: string[] = [];
    service.on('error', e => operations.push(e.operation));
    class SetFails {
      @Cache()
      async value(id: string): Promise<string> {
        return id;
      }
    }
    await expect(bindCachingService(new SetFails(), service).value('x')).resolves.toBe('x');
    expect(operations).toEqual(['set']);
    expect(service.stats().errors).toBe(1);
    expect(service.stats().sets).toBe(0);
  });

  it('without an error listener, backend failures are reported to the logger', async () => {
    const logger = quietLogger();
    const service = makeService({ backend: new ChaosBackend(new MemoryBackend()).fail('get'), logger });
    class Logged {
      @Cache()
      async value(id: string): Promise<string> {
        return id;
      }
    }
    await expect(bindCachingService(new Logged(), service).value('x')).resolves.toBe('x');
    expect(logger.error).toHaveBeenCalled();
    expect(service.stats().errors).toBeGreaterThanOrEqual(1);
  });

  it("the method's own rejection still reaches the caller when the backend is failing", async () => {
    const service = makeService({ backend: new ChaosBackend(new MemoryBackend()).fail('get', 'set') });
    service.on('error', () => {});
    class FailsItself {
      @Cache()
      async value(id: string): Promise<string> {
        throw new RangeError(`no value for ${id}`);
      }
    }
    await expect(bindCachingService(new FailsItself(), service).value('x')).rejects.toThrow(RangeError);
  });

  it('once the backend heals, values are cached again', async () => {
    const chaos = new ChaosBackend(new MemoryBackend()).fail('get', 'set');
    const service = makeService({ backend: chaos });
    service.on('error', () => {});
    let runs = 0;
    class Heals {
      @Cache()
      async value(id: string): Promise<string> {
        runs++;
        return id;
      }
    }
    const h = bindCachingService(new Heals(), service);
    await h.value('x');
    chaos.heal();
    await h.value('x');
    await h.value('x');
    expect(runs).toBe(2);
  });
});
