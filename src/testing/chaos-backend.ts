import type { BackendListener, CacheEntryInput, CacheLookup, CachingBackend, InvalidateOptions, InvalidationResult, StoreOutcome } from '../backends/backend.js';
import type { Clock } from '../types.js';

const noop = (): void => {};

/** The backend operations a {@link ChaosBackend} can disturb. */
export type ChaosOperation = 'get' | 'begin' | 'set' | 'check' | 'invalidate' | 'clear';

/**
 * Wraps a backend and makes it fail or stall on demand, to test that a failing backend never fails a
 * cached call. It always answers asynchronously (like a network backend), whatever it wraps.
 *
 * @example
 * const chaos = new ChaosBackend(new MemoryBackend());
 * chaos.fail('get', 'set');        // every get and set rejects
 * chaos.delay(50);                 // every operation takes 50 ms longer
 * chaos.heal();
 */
export class ChaosBackend implements CachingBackend {
  readonly name: string;
  readonly isSync = false;
  /** Number of calls per operation, disturbed or not. */
  readonly calls: Record<ChaosOperation, number> = { get: 0, begin: 0, set: 0, check: 0, invalidate: 0, clear: 0 };
  readonly #inner: CachingBackend;
  readonly #failing = new Set<ChaosOperation>();
  #failuresLeft = Infinity;
  #latencyMs = 0;
  #error: () => Error = () => new Error('ChaosBackend: injected failure');

  constructor(inner: CachingBackend) {
    this.#inner = inner;
    this.name = `chaos(${inner.name})`;
  }

  get clock(): Clock {
    return this.#inner.clock;
  }

  /**
   * Subscribes to the wrapped backend's reports (evictions, absorbed failures, circuit changes): they reach
   * the listener unchanged, so a service over a ChaosBackend sees its inner backend's events.
   */
  subscribe(listener: BackendListener): () => void {
    return this.#inner.subscribe?.(listener) ?? noop;
  }

  /** Makes the given operations (all if none given) reject; `times` limits how many calls fail. */
  fail(...operations: ChaosOperation[]): this {
    for (const op of operations.length > 0 ? operations : (['get', 'begin', 'set', 'invalidate', 'clear'] as const)) this.#failing.add(op);
    this.#failuresLeft = Infinity;
    return this;
  }

  /** Like {@link fail}, but only for the next `times` disturbed calls. */
  failTimes(times: number, ...operations: ChaosOperation[]): this {
    this.fail(...operations);
    this.#failuresLeft = times;
    return this;
  }

  /** Adds latency to every operation. */
  delay(ms: number): this {
    this.#latencyMs = ms;
    return this;
  }

  /** Sets the error thrown by failing operations. */
  withError(make: () => Error): this {
    this.#error = make;
    return this;
  }

  /** Stops all failures and latency. */
  heal(): this {
    this.#failing.clear();
    this.#latencyMs = 0;
    return this;
  }

  get(key: string): Promise<CacheLookup> {
    return this.#run('get', () => this.#inner.get(key));
  }

  begin(key: string): Promise<unknown> {
    return this.#run('begin', () => this.#inner.begin(key));
  }

  set(key: string, entry: CacheEntryInput, token: unknown): Promise<StoreOutcome> {
    return this.#run('set', () => this.#inner.set(key, entry, token), () => this.#inner.abandon(token));
  }

  abandon(token: unknown): void {
    this.#inner.abandon(token);
  }

  /** Asks the inner backend; one without `check` certifies nothing. */
  check(token: unknown, key: string, dependencies: readonly string[]): Promise<boolean> {
    return this.#run('check', () => (this.#inner.check === undefined ? false : this.#inner.check(token, key, dependencies)));
  }

  invalidate(keys: readonly string[], options?: InvalidateOptions): Promise<InvalidationResult> {
    return this.#run('invalidate', () => this.#inner.invalidate(keys, options));
  }

  clear(): Promise<void> {
    return this.#run('clear', () => this.#inner.clear());
  }

  async dispose(): Promise<void> {
    await this.#inner.dispose();
  }

  async #run<T>(operation: ChaosOperation, action: () => T | Promise<T>, onFailure?: () => void): Promise<T> {
    this.calls[operation]++;
    if (this.#latencyMs > 0) await new Promise(resolve => setTimeout(resolve, this.#latencyMs));
    if (this.#failing.has(operation) && this.#failuresLeft > 0) {
      this.#failuresLeft--;
      onFailure?.();
      throw this.#error();
    }
    return await action();
  }
}
