import { CachingError, errors } from '../../errors.js';
import type { CircuitBreaker } from './circuit-breaker.js';

/** Options of a {@link CallGuard}. */
export interface CallGuardOptions {
  /** The owner, as error messages name it (`RedisBackend`). */
  readonly where: string;
  /** The dependency called, as error messages name it (`Redis`). */
  readonly remote: string;
  /** Timeout of a call that names none, in ms; also sets how often the deadlines are swept. */
  readonly timeoutMs: number;
  /** Calls through {@link CallGuard.call} go through this breaker and record their outcome in it. */
  readonly breaker?: CircuitBreaker | undefined;
}

/** A call in flight, registered with {@link CallGuard.deadline}: the sweep fails it unless it is settled first. */
export interface Deadline {
  readonly deadline: number;
  readonly timeoutMs: number;
  readonly reject: (error: unknown) => void;
}

/**
 * Calls to a remote dependency with a timeout each, optionally through a circuit breaker. The timeouts share
 * ONE sweep timer instead of a timer per call: on a cache hit, a setTimeout/clearTimeout pair costs more than
 * the rest of the hit's bookkeeping. The sweep runs only while calls are in flight (and never keeps the process
 * alive). With a closed circuit (the normal case), a call is a single promise that carries the timeout, the
 * breaker's bookkeeping and the caller's `map`.
 */
export class CallGuard {
  readonly #where: string;
  readonly #remote: string;
  readonly #timeoutMs: number;
  readonly #breaker: CircuitBreaker | undefined;
  /** Calls in flight with their deadlines, swept by one timer. */
  readonly #deadlines = new Set<Deadline>();
  #sweeper: NodeJS.Timeout | undefined;

  constructor(options: CallGuardOptions) {
    this.#where = options.where;
    this.#remote = options.remote;
    this.#timeoutMs = options.timeoutMs;
    this.#breaker = options.breaker;
  }

  /**
   * Runs one call with a timeout (the guard's unless one is given), through the circuit breaker if there is
   * one; `map` runs on the value within the same promise. A failure other than a {@link CachingError} becomes
   * an `E_BACKEND` one ({@link failure}); a timeout is an `E_TIMEOUT` one.
   */
  call<T>(operation: () => Promise<T>, timeoutMs?: number): Promise<T>;
  call<T, R>(operation: () => Promise<T>, timeoutMs: number, map: (value: T) => R | PromiseLike<R>): Promise<R>;
  call<T, R>(operation: () => Promise<T>, timeoutMs = this.#timeoutMs, map?: (value: T) => R | PromiseLike<R>): Promise<T | R> {
    const breaker = this.#breaker;
    if (breaker !== undefined && breaker.state !== 'closed') {
      const guarded = breaker.run(() => this.#withTimeout(operation, timeoutMs, undefined)) as Promise<T>;
      return map === undefined ? guarded : guarded.then(value => map(value));
    }
    // Closed circuit (the normal case): one promise carries the timeout, the breaker's bookkeeping and `map`.
    return this.#withTimeout(operation, timeoutMs, breaker, map);
  }

  /**
   * Runs one call with a timeout, bypassing the circuit breaker and leaving its state alone: for work on its
   * own schedule (the retry of queued invalidations), which an open circuit must not hold back and whose
   * outcome must not move the circuit that guards the lookups.
   */
  direct<T>(operation: () => Promise<T>, timeoutMs: number): Promise<T> {
    return this.#withTimeout(operation, timeoutMs, undefined) as Promise<T>;
  }

  /**
   * Registers a call in flight that the caller settles itself (several lookups answered by one round trip):
   * the sweep calls `reject` with an `E_TIMEOUT` error if it is still registered after `timeoutMs`. The caller
   * must {@link settle} it when the answer arrives, and act on the answer only if that returns true.
   */
  deadline(timeoutMs: number, reject: (error: unknown) => void): Deadline {
    const pending: Deadline = { deadline: Date.now() + timeoutMs, timeoutMs, reject };
    this.#deadlines.add(pending);
    if (this.#sweeper === undefined) this.#startSweeper();
    return pending;
  }

  /** Unregisters a call in flight; false if it already timed out (its answer must then be ignored). */
  settle(pending: Deadline): boolean {
    return this.#deadlines.delete(pending);
  }

  /** A call's failure as the guard reports it: a {@link CachingError} as is, anything else wrapped as `E_BACKEND`. */
  failure(error: unknown): CachingError {
    return error instanceof CachingError ? error : new CachingError(errors.E_BACKEND, `${this.#where}: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
  }

  #withTimeout<T, R>(operation: () => Promise<T>, timeoutMs: number, breaker: CircuitBreaker | undefined, map?: (value: T) => R | PromiseLike<R>): Promise<T | R> {
    return new Promise<T | R>((resolve, reject) => {
      const fail = (error: unknown): void => {
        reject(error);
        if (breaker !== undefined) breaker.recordFailure();
      };
      const pending = this.deadline(timeoutMs, fail);
      operation().then(
        value => {
          if (!this.#deadlines.delete(pending)) return; // already timed out
          if (breaker !== undefined) breaker.recordSuccess();
          if (map === undefined) resolve(value);
          else {
            try {
              resolve(map(value));
            } catch (error) {
              reject(error);
            }
          }
        },
        error => {
          if (!this.#deadlines.delete(pending)) return;
          fail(this.failure(error));
        },
      );
    });
  }

  /** One timer for all calls in flight; it stops once none is left. */
  #startSweeper(): void {
    const period = Math.max(5, Math.min(100, Math.floor(this.#timeoutMs / 4)));
    this.#sweeper = setInterval(() => {
      if (this.#deadlines.size === 0) {
        clearInterval(this.#sweeper);
        this.#sweeper = undefined;
        return;
      }
      const now = Date.now();
      for (const pending of this.#deadlines) {
        if (pending.deadline <= now) {
          this.#deadlines.delete(pending);
          pending.reject(new CachingError(errors.E_TIMEOUT, `${this.#where}: ${this.#remote} did not answer within ${pending.timeoutMs} ms.`));
        }
      }
    }, period);
    this.#sweeper.unref();
  }
}
