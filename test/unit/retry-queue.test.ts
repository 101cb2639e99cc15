import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { RetryQueue } from '../../src/backends/resilience/retry-queue.js';

/** A queue whose attempts the test answers one by one. */
function queueOf(options: { delayMs?: number; ready?: () => boolean } = {}) {
  const attempts: Array<{ keys: string[]; resolve: () => void; reject: (error: unknown) => void }> = [];
  const errors: unknown[] = [];
  const queue = new RetryQueue({
    delayMs: options.delayMs ?? 100,
    attempt: keys => new Promise<void>((resolve, reject) => attempts.push({ keys, resolve, reject })),
    isReady: options.ready,
    onError: error => errors.push(error),
  });
  return { queue, attempts, errors };
}

describe('RetryQueue', () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('retries every queued key after delayMs and forgets them once the attempt lands', async () => {
    const { queue, attempts } = queueOf();
    queue.add(['a', 'b']);
    queue.add(['c']);
    expect(queue.size).toBe(3);
    expect(queue.affects('x', ['c'])).toBe(true);
    await vi.advanceTimersByTimeAsync(99);
    expect(attempts).toHaveLength(0);
    await vi.advanceTimersByTimeAsync(1);
    expect(attempts.map(a => a.keys)).toEqual([['a', 'b', 'c']]);
    attempts[0]!.resolve();
    await vi.advanceTimersByTimeAsync(0);
    expect(queue.size).toBe(0);
    expect(queue.affects('a', [])).toBe(false);
    await vi.advanceTimersByTimeAsync(1_000);
    expect(attempts).toHaveLength(1);
  });

  it('keeps the keys of a failed attempt and tries again on the next tick, reporting one error per 10 s', async () => {
    const { queue, attempts, errors } = queueOf();
    queue.add(['a']);
    for (let i = 0; i < 60; i++) {
      await vi.advanceTimersByTimeAsync(100);
      attempts.at(-1)!.reject(new Error(`down ${i}`));
      await vi.advanceTimersByTimeAsync(0);
    }
    expect(attempts).toHaveLength(60);
    expect(queue.size).toBe(1);
    expect(errors.map(e => (e as Error).message)).toEqual(['down 0']);
    for (let i = 0; i < 45; i++) {
      await vi.advanceTimersByTimeAsync(100);
      attempts.at(-1)!.reject(new Error('still down'));
      await vi.advanceTimersByTimeAsync(0);
    }
    expect(errors).toHaveLength(2); // 10 s after the first report
  });

  it('keeps one attempt in flight; a retryNow meanwhile runs again as soon as it settles', async () => {
    const { queue, attempts } = queueOf({ delayMs: 10_000 });
    queue.add(['a']);
    queue.retryNow();
    queue.retryNow();
    expect(attempts).toHaveLength(1);
    queue.add(['b']); // queued while the attempt runs
    attempts[0]!.resolve();
    await vi.advanceTimersByTimeAsync(0);
    expect(attempts).toHaveLength(2); // at once, not 10 s later
    expect(attempts[1]!.keys).toEqual(['b']);
  });

  it('a key queued again during an attempt stays queued after it', async () => {
    const { queue, attempts } = queueOf();
    queue.add(['a', 'b']);
    queue.retryNow();
    const before = queue.sequence;
    queue.add(['a']);
    expect(queue.queuedSince(before, 'a', [])).toBe(true);
    expect(queue.queuedSince(before, 'x', ['b'])).toBe(false); // b was queued before
    expect(queue.queuedSince(before - 1, 'x', ['b'])).toBe(true);
    attempts[0]!.resolve();
    await vi.advanceTimersByTimeAsync(0);
    expect(queue.size).toBe(1);
    expect(queue.affects('a', [])).toBe(true);
    expect(queue.affects('b', [])).toBe(false);
  });

  it('waits while the connection is not ready, and runs on retryNow once it is', async () => {
    let ready = false;
    const { queue, attempts } = queueOf({ ready: () => ready });
    queue.add(['a']);
    await vi.advanceTimersByTimeAsync(500);
    expect(attempts).toHaveLength(0);
    ready = true;
    queue.retryNow();
    expect(attempts).toHaveLength(1);
  });

  it('dispose stops the schedule and makes one last attempt after the one in flight', async () => {
    const { queue, attempts, errors } = queueOf();
    queue.add(['a']);
    queue.retryNow();
    const disposed = queue.dispose();
    attempts[0]!.reject(new Error('down'));
    await vi.advanceTimersByTimeAsync(0);
    expect(attempts).toHaveLength(2); // the last attempt
    attempts[1]!.reject(new Error('still down'));
    await disposed;
    expect(errors).toHaveLength(1); // the last attempt fails silently
    queue.add(['b']);
    queue.retryNow();
    await vi.advanceTimersByTimeAsync(1_000);
    expect(attempts).toHaveLength(2);
  });
});
