import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { addDependency, bindCachingService, Cache, CachingError, CachingService, type CacheEventMap } from 'aspect-cache';
import { FakeClock } from 'aspect-cache/testing';
import { deferred, flush } from '../support/deferred.js';

// Fail-safe (SPEC §8): an expired value is kept for maxStaleness and served when recomputing it fails or
// exceeds the soft timeout; the computation goes on in the background and replaces the entry.

const TTL = 60_000;

let clock: FakeClock;
let service: CachingService;
let failsafes: Array<CacheEventMap['failsafe']>;
const logger = { warn: vi.fn(), error: vi.fn() };

beforeEach(() => {
  clock = new FakeClock();
  service = new CachingService({ clock, logger });
  failsafes = [];
  service.on('failsafe', e => failsafes.push(e));
});

afterEach(async () => {
  vi.useRealTimers();
  await service.dispose();
});

class Quotes {
  runs = 0;
  mode: 'ok' | 'throw' | 'reject' = 'ok';
  price = 100;
  gate: Promise<void> | undefined;

  @Cache({ ttl: TTL, failSafe: { maxStaleness: 10 * 60_000 } })
  quoteSync(symbol: string): number {
    this.runs++;
    if (this.mode === 'throw') throw new Error(`quote service down for ${symbol}`);
    return this.price;
  }

  @Cache({ ttl: TTL, failSafe: { maxStaleness: 10 * 60_000 } })
  async quote(symbol: string): Promise<number> {
    this.runs++;
    addDependency(`Quote:${symbol}`);
    if (this.gate) await this.gate;
    if (this.mode === 'reject') throw new Error(`quote service down for ${symbol}`);
    return this.price;
  }

  @Cache({ ttl: TTL, failSafe: { maxStaleness: 10 * 60_000, softTimeout: 50 } })
  async slowQuote(_symbol: string): Promise<number> {
    this.runs++;
    if (this.gate) await this.gate;
    return this.price;
  }

  @Cache({ ttl: TTL })
  async plainQuote(_symbol: string): Promise<number> {
    this.runs++;
    if (this.mode === 'reject') throw new Error('down');
    return this.price;
  }
}

function quotes(): Quotes {
  return bindCachingService(new Quotes(), service);
}

describe('fail-safe', () => {
  it('serves the expired value when recomputing a synchronous method throws', () => {
    const q = quotes();
    expect(q.quoteSync('ACME')).toBe(100);
    clock.advance(TTL + 1);
    q.mode = 'throw';
    q.price = 999;
    expect(q.quoteSync('ACME')).toBe(100);
    expect(q.runs).toBe(2);
    expect(failsafes).toHaveLength(1);
    expect(failsafes[0]!.key).toContain('Quotes.quoteSync("ACME")');
    expect((failsafes[0]!.error as Error).message).toContain('down');
    expect(service.stats().failsafes).toBe(1);
  });

  it('serves the expired value when recomputing an async method rejects, and recomputes once it recovers', async () => {
    const q = quotes();
    expect(await q.quote('ACME')).toBe(100);
    clock.advance(TTL + 1);
    q.mode = 'reject';
    expect(await q.quote('ACME')).toBe(100);
    q.mode = 'ok';
    q.price = 120;
    expect(await q.quote('ACME')).toBe(120);
    expect(await q.quote('ACME')).toBe(120);
    expect(q.runs).toBe(3);
  });

  it('does not serve a value older than maxStaleness: the error reaches the caller', async () => {
    const q = quotes();
    await q.quote('ACME');
    clock.advance(TTL + 10 * 60_000 + 1);
    q.mode = 'reject';
    await expect(q.quote('ACME')).rejects.toThrow('down');
    expect(failsafes).toHaveLength(0);
  });

  it('never serves an invalidated value, even within maxStaleness', async () => {
    const q = quotes();
    await q.quote('ACME');
    clock.advance(TTL + 1);
    await service.invalidate('Quote:ACME');
    q.mode = 'reject';
    await expect(q.quote('ACME')).rejects.toThrow('down');
  });

  it('does not apply to methods without the option: their errors reach the caller', async () => {
    const q = quotes();
    await q.plainQuote('ACME');
    clock.advance(TTL + 1);
    q.mode = 'reject';
    await expect(q.plainQuote('ACME')).rejects.toThrow('down');
  });

  it('a fresh entry is a hit as usual: fail-safe only concerns expired entries', async () => {
    const q = quotes();
    await q.quote('ACME');
    q.mode = 'reject';
    expect(await q.quote('ACME')).toBe(100);
    expect(q.runs).toBe(1);
    expect(failsafes).toHaveLength(0);
  });

  it('serves the expired value after the soft timeout and replaces it when the slow computation finishes', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    const q = quotes();
    expect(await q.slowQuote('ACME')).toBe(100);
    clock.advance(TTL + 1);
    const gate = deferred();
    q.gate = gate.promise;
    q.price = 130;
    const slow = q.slowQuote('ACME');
    const joiner = q.slowQuote('ACME');
    await vi.advanceTimersByTimeAsync(50);
    expect(await slow).toBe(100);
    expect(await joiner).toBe(100);
    expect(failsafes).toHaveLength(1);
    expect(failsafes[0]!.error).toBeInstanceOf(CachingError);
    expect(failsafes[0]!.error).toMatchObject({ code: 'E_TIMEOUT' });
    gate.resolve();
    q.gate = undefined;
    await flush();
    expect(await q.slowQuote('ACME')).toBe(130);
    expect(q.runs).toBe(2);
  });

  it('a computation faster than the soft timeout is returned directly', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    const q = quotes();
    await q.slowQuote('ACME');
    clock.advance(TTL + 1);
    q.price = 140;
    expect(await q.slowQuote('ACME')).toBe(140);
    expect(failsafes).toHaveLength(0);
  });

  it('a background refresh that fails after the soft timeout is reported as an error, not thrown', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    const q = quotes();
    await q.slowQuote('ACME');
    clock.advance(TTL + 1);
    const gate = deferred();
    q.gate = gate.promise;
    const errors: unknown[] = [];
    service.on('error', e => errors.push(e.error));
    const slow = q.slowQuote('ACME');
    await vi.advanceTimersByTimeAsync(50);
    expect(await slow).toBe(100);
    gate.reject(new Error('late failure'));
    await flush();
    expect(errors).toHaveLength(1);
    expect((errors[0] as Error).message).toBe('late failure');
  });

  it('a parent computed from a stale child is not cached beyond the child', async () => {
    class Portfolio {
      runs = 0;
      constructor(readonly q: Quotes) {}
      @Cache({ ttl: 10 * TTL })
      async value(): Promise<number> {
        this.runs++;
        return (await this.q.quote('ACME')) * 2;
      }
    }
    const q = quotes();
    const p = bindCachingService(new Portfolio(q), service);
    await q.quote('ACME');
    clock.advance(TTL + 1);
    q.mode = 'reject';
    expect(await p.value()).toBe(200);
    expect(await p.value()).toBe(200);
    expect(p.runs).toBe(2);
  });

  it('rejects invalid fail-safe options when the decorator is applied', () => {
    expect(() => {
      class Bad {
        @Cache({ ttl: TTL, failSafe: { maxStaleness: -1 } })
        m(): number {
          return 1;
        }
      }
      return Bad;
    }).toThrow(/failSafe\.maxStaleness/);
    expect(() => {
      class Bad {
        @Cache({ ttl: TTL, failSafe: { softTimeout: 10 } as never })
        m(): number {
          return 1;
        }
      }
      return Bad;
    }).toThrow(/maxStaleness/);
    expect(() => {
      class Bad {
        @Cache({ ttl: TTL, failSafe: { maxStaleness: 10, retries: 2 } as never })
        m(): number {
          return 1;
        }
      }
      return Bad;
    }).toThrow(/failSafe\.retries/);
  });

  it('can be set on a profile and turned off per method', async () => {
    const s = new CachingService({ clock, logger, profiles: { resilient: { ttl: TTL, failSafe: { maxStaleness: TTL } } } });
    class Rates {
      mode: 'ok' | 'reject' = 'ok';
      @Cache({ profile: 'resilient' })
      async rate(): Promise<number> {
        if (this.mode === 'reject') throw new Error('down');
        return 1.1;
      }
      @Cache({ profile: 'resilient', failSafe: false })
      async strictRate(): Promise<number> {
        if (this.mode === 'reject') throw new Error('down');
        return 1.2;
      }
    }
    const r = bindCachingService(new Rates(), s);
    await r.rate();
    await r.strictRate();
    clock.advance(TTL + 1);
    r.mode = 'reject';
    expect(await r.rate()).toBe(1.1);
    await expect(r.strictRate()).rejects.toThrow('down');
    await s.dispose();
  });
});

describe('fail-safe edge cases (issue: hangs, invalidated or out-of-window fallbacks)', () => {
  /** Settles within `ms` of real time, or reports a hang. */
  function within<T>(promise: Promise<T>, ms = 2_000): Promise<T | 'hung'> {
    return Promise.race([promise, new Promise<'hung'>(resolve => setTimeout(() => resolve('hung'), ms))]);
  }

  it('a recomputation that fails before the soft timeout settles every caller with the expired value', async () => {
    const q = quotes();
    class Soft {
      @Cache({ ttl: TTL, failSafe: { maxStaleness: 10 * 60_000, softTimeout: 1_000 } })
      async quote(_symbol: string): Promise<number> {
        q.runs++;
        if (q.mode === 'reject') throw new Error('down');
        return q.price;
      }
    }
    const soft = bindCachingService(new Soft(), service);
    expect(await soft.quote('ACME')).toBe(100);
    clock.advance(TTL + 1);
    q.mode = 'reject';
    const first = soft.quote('ACME');
    const joiner = soft.quote('ACME');
    expect(await within(first)).toBe(100);
    expect(await within(joiner)).toBe(100);
    expect(failsafes).toHaveLength(1);
  });

  it('never serves, as a fallback, a value invalidated between the lookup and the failure (async backend)', async () => {
    const { ChaosBackend } = await import('aspect-cache/testing');
    const { MemoryBackend } = await import('aspect-cache');
    const chaos = new ChaosBackend(new MemoryBackend({ clock }));
    const remote = new CachingService({ backend: chaos, clock, logger });
    const q = bindCachingService(new Quotes(), remote);
    expect(await q.quote('ACME')).toBe(100);
    clock.advance(TTL + 1);
    chaos.delay(5);
    q.mode = 'reject';
    const before = q.quote('ACME'); // its lookup finds the expired entry, then waits 5 ms to answer
    await remote.invalidate('Quote:ACME'); // resolves while that lookup is in flight
    const after = q.quote('ACME'); // starts after the invalidation resolved
    await expect(after).rejects.toThrow('quote service down');
    await expect(before).rejects.toThrow('quote service down');
    await remote.dispose();
  });

  it('never serves a fallback invalidated by another service sharing the backend', async () => {
    const { MemoryBackend } = await import('aspect-cache');
    const shared = new MemoryBackend({ clock });
    const reader = new CachingService({ backend: shared, clock, logger });
    const writer = new CachingService({ backend: shared, clock, logger });
    const q = bindCachingService(new Quotes(), reader);
    expect(await q.quote('ACME')).toBe(100);
    clock.advance(TTL + 1);
    const gate = deferred();
    q.gate = gate.promise;
    q.mode = 'reject';
    const before = q.quote('ACME'); // finds the expired entry; its recomputation waits at the gate
    await flush();
    await writer.invalidate('Quote:ACME');
    const after = q.quote('ACME'); // joins the reader's computation, which began before the invalidation
    gate.resolve();
    await expect(after).rejects.toThrow('quote service down');
    await expect(before).rejects.toThrow('quote service down');
    await reader.dispose();
    await writer.dispose();
  });

  it('a caller arriving after the fail-safe window ended does not get the expired value: it waits for the computation', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    const q = quotes();
    expect(await q.slowQuote('ACME')).toBe(100);
    clock.advance(TTL + 1);
    const gate = deferred();
    q.gate = gate.promise;
    q.price = 130;
    const slow = q.slowQuote('ACME');
    await vi.advanceTimersByTimeAsync(50);
    expect(await slow).toBe(100); // within the window: the expired value after the soft timeout
    clock.advance(10 * 60_000); // the window (maxStaleness) is over
    let late: number | undefined;
    const lateCall = q.slowQuote('ACME').then(v => (late = v));
    await flush();
    expect(late).toBeUndefined(); // not the expired value at once
    gate.resolve();
    await lateCall;
    expect(late).toBe(130);
  });
});
