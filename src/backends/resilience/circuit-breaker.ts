import { CachingError, errors } from '../../errors.js';
import type { Clock } from '../../types.js';

/** States of a circuit breaker (`RedisBackend`'s `circuitBreaker` option): `open` fails fast, `half-open` lets one probe through. */
export type CircuitState = 'closed' | 'open' | 'half-open';

/** Options of a circuit breaker (RedisBackend's `circuitBreaker` option). */
export interface CircuitBreakerOptions {
  /** Consecutive failed round trips (errors or timeouts) that open the circuit; lookups sent together in one batch are one round trip. @default 3 */
  failureThreshold?: number;
  /** How long the circuit stays open before one probe is let through, in ms. @default 5_000 */
  resetTimeoutMs?: number;
}

/**
 * Who owns a {@link CircuitBreaker}: its errors name the owner and the dependency it protects, so a user can
 * tell which backend refused a call; `onChange` reports the state changes (RedisBackend emits them as events).
 */
export interface CircuitBreakerOwner {
  /** The owner, as error messages name it (`RedisBackend`). */
  readonly where: string;
  /** The dependency whose calls it stops (`Redis`). */
  readonly remote: string;
  /** Measures how long the circuit has been open (the owner's clock, so tests can drive it). */
  readonly clock: Clock;
  readonly onChange: (state: CircuitState) => void;
}

/**
 * Stops calling a failing dependency for a while: after `failureThreshold` consecutive failures every call
 * fails at once (no added latency during an outage); after `resetTimeoutMs` one probe is let through
 * (half-open) and its outcome closes or reopens the circuit. Backend-neutral, so every backend that calls a
 * remote store or transport can share it.
 */
export class CircuitBreaker {
  #state: CircuitState = 'closed';
  #failures = 0;
  #openedAt = 0;
  #probing = false;
  readonly #threshold: number;
  readonly #resetMs: number;
  readonly #owner: CircuitBreakerOwner;

  /** Validates the options (errors name `owner.where` and the option `circuitBreaker.…`). */
  constructor(options: CircuitBreakerOptions, owner: CircuitBreakerOwner) {
    this.#owner = owner;
    this.#threshold = options.failureThreshold ?? 3;
    this.#resetMs = options.resetTimeoutMs ?? 5_000;
    if (!(Number.isSafeInteger(this.#threshold) && this.#threshold > 0)) {
      throw new CachingError(errors.E_INVALID_OPTION, `${owner.where}: option circuitBreaker.failureThreshold must be a positive integer, got ${String(options.failureThreshold)}.`);
    }
    if (!(this.#resetMs > 0 && Number.isFinite(this.#resetMs))) {
      throw new CachingError(errors.E_INVALID_OPTION, `${owner.where}: option circuitBreaker.resetTimeoutMs must be a positive number of ms, got ${String(options.resetTimeoutMs)}.`);
    }
  }

  get state(): CircuitState {
    return this.#state;
  }

  /** Runs `operation` unless the circuit is open; records its outcome. */
  run<T>(operation: () => Promise<T>): Promise<T> {
    // Closed (the normal case): no extra async frame, just the outcome recorded on the way back.
    if (this.#state === 'closed') return operation().then(this.#closedSuccess, this.#closedFailure);
    return this.#runGuarded(operation);
  }

  /** Records a success of a call made without {@link run} (the caller checked the circuit was closed). */
  recordSuccess(): void {
    this.#failures = 0;
  }

  /** Records a failure of a call made without {@link run}. */
  recordFailure(): void {
    this.#failures++;
    if (this.#state === 'closed' && this.#failures >= this.#threshold) {
      this.#openedAt = this.#owner.clock.now();
      this.#set('open');
    }
  }

  readonly #closedSuccess = <T>(value: T): T => {
    this.#failures = 0;
    return value;
  };

  readonly #closedFailure = (error: unknown): never => {
    this.#failures++;
    if (this.#state === 'closed' && this.#failures >= this.#threshold) {
      this.#openedAt = this.#owner.clock.now();
      this.#set('open');
    }
    throw error;
  };

  async #runGuarded<T>(operation: () => Promise<T>): Promise<T> {
    if (this.#state === 'open') {
      if (this.#owner.clock.now() - this.#openedAt < this.#resetMs || this.#probing) throw this.#openError();
      this.#set('half-open');
    }
    if (this.#state === 'half-open') {
      if (this.#probing) throw this.#openError();
      this.#probing = true;
    }
    try {
      const result = await operation();
      this.#failures = 0;
      if (this.#state !== 'closed') this.#set('closed');
      return result;
    } catch (error) {
      this.#failures++;
      if (this.#state === 'half-open' || this.#failures >= this.#threshold) {
        this.#openedAt = this.#owner.clock.now();
        if (this.#state !== 'open') this.#set('open');
      }
      throw error;
    } finally {
      this.#probing = false;
    }
  }

  #set(state: CircuitState): void {
    this.#state = state;
    this.#owner.onChange(state);
  }

  #openError(): CachingError {
    return new CachingError(errors.E_BACKEND, `${this.#owner.where}: the circuit is open after repeated failures; ${this.#owner.remote} is not called until the next probe.`);
  }
}
