import type { Clock } from '../types.js';

/**
 * A clock that only moves when told to: inject it into `CachingService`/`MemoryBackend` to test expiry
 * without sleeping.
 *
 * @example
 * const clock = new FakeClock();
 * const caching = new CachingService({ clock });
 * clock.advance(60_000);
 */
export class FakeClock implements Clock {
  #now: number;

  constructor(start = 1_700_000_000_000) {
    this.#now = start;
  }

  now(): number {
    return this.#now;
  }

  /** Moves time forward by `ms`. */
  advance(ms: number): void {
    if (!(ms >= 0)) throw new RangeError(`FakeClock.advance: ms must be ≥ 0, got ${ms}`);
    this.#now += ms;
  }

  /** Sets the time. */
  set(now: number): void {
    this.#now = now;
  }
}
