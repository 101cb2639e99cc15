import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { CachingError, errors } from '../../src/errors.js';
import { CallGuard } from '../../src/backends/resilience/call-guard.js';
import { CircuitBreaker } from '../../src/backends/resilience/circuit-breaker.js';

/** A call the test answers (or never does). */
function controlled<T>() {
  let resolve!: (value: T) => void;
  let reject!: (error: unknown) => void;
  const promise = new Promise<T>((res, rej) => ((resolve = res), (reject = rej)));
  return { operation: () => promise, resolve, reject };
}

function breakerOf(failureThreshold = 1) {
  return new CircuitBreaker({ failureThreshold, resetTimeoutMs: 60_000 }, { where: 'Owner', remote: 'the store', clock: { now: () => Date.now() }, onChange: () => undefined });
}

const never = () => new Promise<never>(() => undefined);

describe('CallGuard', () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('fails a call that gets no answer with E_TIMEOUT, naming owner and remote, and ignores a late answer', async () => {
    const guard = new CallGuard({ where: 'Owner', remote: 'the store', timeoutMs: 200 });
    const late = controlled<string>();
    const call = guard.call(late.operation).catch((error: unknown) => error);
    const ownTimeout = guard.call(never, 50).catch((error: unknown) => error);
    const inTime = controlled<string>();
    const answered = guard.call(inTime.operation);
    await vi.advanceTimersByTimeAsync(100);
    inTime.resolve('in time');
    expect(((await ownTimeout) as CachingError).message).toBe('Owner: the store did not answer within 50 ms.');
    await vi.advanceTimersByTimeAsync(200);
    late.resolve('too late');
    const timedOut = (await call) as CachingError;
    expect(timedOut).toBeInstanceOf(CachingError);
    expect(timedOut.code).toBe(errors.E_TIMEOUT);
    expect(timedOut.message).toBe('Owner: the store did not answer within 200 ms.');
    await expect(answered).resolves.toBe('in time');
  });

  it('sweeps every call in flight with one timer, stopped once none is left', async () => {
    const guard = new CallGuard({ where: 'Owner', remote: 'the store', timeoutMs: 100 });
    const calls = Array.from({ length: 50 }, () => guard.call(never).catch(() => 'failed'));
    expect(vi.getTimerCount()).toBe(1);
    await vi.advanceTimersByTimeAsync(200);
    expect(await Promise.all(calls)).toEqual(calls.map(() => 'failed'));
    expect(vi.getTimerCount()).toBe(0);
  });

  it('wraps a failure as E_BACKEND naming the owner, keeps a CachingError as is, and applies map in the same call', async () => {
    const guard = new CallGuard({ where: 'Owner', remote: 'the store', timeoutMs: 100 });
    const wrapped = (await guard.call(() => Promise.reject(new Error('boom'))).catch((error: unknown) => error)) as CachingError;
    expect(wrapped.code).toBe(errors.E_BACKEND);
    expect(wrapped.message).toBe('Owner: boom');
    const own = new CachingError(errors.E_BACKEND, 'mine');
    await expect(guard.call(() => Promise.reject(own))).rejects.toBe(own);
    await expect(guard.call(() => Promise.resolve(2), 100, n => n * 21)).resolves.toBe(42);
    await expect(
      guard.call(
        () => Promise.resolve(2),
        100,
        () => {
          throw new Error('map failed');
        },
      ),
    ).rejects.toThrow('map failed');
  });

  it('records outcomes in the breaker through call, and refuses at once while it is open', async () => {
    const breaker = breakerOf(2);
    const guard = new CallGuard({ where: 'Owner', remote: 'the store', timeoutMs: 100, breaker });
    await guard.call(() => Promise.reject(new Error('down'))).catch(() => undefined);
    const timeout = guard.call(never).catch(() => undefined);
    await vi.advanceTimersByTimeAsync(150);
    await timeout;
    expect(breaker.state).toBe('open'); // an error and a timeout: two consecutive failures
    let called = false;
    await expect(guard.call(() => ((called = true), Promise.resolve(1)), 100, n => n)).rejects.toThrow(/circuit is open/);
    expect(called).toBe(false);
  });

  it('direct bypasses the breaker: runs while it is open and records nothing', async () => {
    const breaker = breakerOf(1);
    const guard = new CallGuard({ where: 'Owner', remote: 'the store', timeoutMs: 100, breaker });
    await expect(guard.direct(() => Promise.reject(new Error('down')), 100)).rejects.toThrow('Owner: down');
    expect(breaker.state).toBe('closed');
    const timedOut = guard.direct(never, 30).catch((error: unknown) => error);
    await vi.advanceTimersByTimeAsync(130);
    expect(((await timedOut) as CachingError).code).toBe(errors.E_TIMEOUT);
    expect(breaker.state).toBe('closed');
    breaker.recordFailure();
    expect(breaker.state).toBe('open');
    await expect(guard.direct(() => Promise.resolve('through'), 100)).resolves.toBe('through');
    expect(breaker.state).toBe('open');
  });

  it('lets a caller settle a registered deadline itself: settle says whether it was still pending', async () => {
    const guard = new CallGuard({ where: 'Owner', remote: 'the store', timeoutMs: 100 });
    const rejected: unknown[] = [];
    const answered = guard.deadline(100, error => rejected.push(error));
    const unanswered = guard.deadline(100, error => rejected.push(error));
    expect(guard.settle(answered)).toBe(true);
    await vi.advanceTimersByTimeAsync(200);
    expect(guard.settle(unanswered)).toBe(false);
    expect(rejected).toHaveLength(1);
    expect((rejected[0] as CachingError).code).toBe(errors.E_TIMEOUT);
  });
});
