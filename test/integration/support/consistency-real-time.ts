// The consistency model's settings for runs on real Redis (../consistency-redis.test.ts,
// ../consistency-layered-redis.test.ts): real time, real and short TTLs, and the tolerance their expiry checks
// need because Redis measures TTLs on its own clock.
import type { DataSource, ExpiryModel, MethodOptions, RunOptions, WriteKind } from '../../support/consistency-model.js';

/**
 * Tolerance for the expiry checks only (read-your-writes and stored staleness are exact). On Redis, TTLs run on
 * the server's clock and the model observes with the local clock at other moments than the backend reads it
 * (a lookup's call vs its reply): on a loaded 2-core CI machine, event-loop lag of tens of ms separates them.
 * The backend converts deadlines conservatively (see README, Consistency guarantees); 30 ms was exceeded by
 * 31–60 ms lags under full-suite load, with no pattern beyond timing.
 */
export const SLACK_MS = 100;

/** Real, short TTLs; sliding windows; fail-safe with and without a soft timeout. */
export const TIMED: MethodOptions = {
  getRow: { ttl: 300, failSafe: { maxStaleness: 200 } },
  getPair: { ttl: 500, slidingExpiration: 120 },
  getGroup: { ttl: 400 },
  midA: { slidingExpiration: 150 },
  midB: { ttl: 1_000 },
  top: { ttl: 700, failSafe: { maxStaleness: 300, softTimeout: 5 } },
};
/** TIMED with a TTL where it has a sliding window (sliding entries never enter a layered backend's L1). */
export const TIMED_NO_SLIDING: MethodOptions = { ...TIMED, getPair: { ttl: 500 }, midA: { ttl: 300 } };
/** maxStaleness of TIMED's fail-safe methods. */
export const TIMED_FAILSAFE = { getRow: 200, top: 300 };

/** The driver's settings shared by every Redis topology: real time, short clock steps around the TTLs. */
export function realTimeRun(seed: number, operations: number, actors: RunOptions['actors'], ds: DataSource, expiry: ExpiryModel, writeKinds: readonly WriteKind[] | undefined): RunOptions {
  return {
    seed,
    operations,
    concurrency: 32,
    actors,
    ds,
    clock: { now: () => Date.now(), advance: sleep },
    expiry,
    failSafe: TIMED_FAILSAFE,
    faults: { hold: 0.3, fail: 0.05 },
    clockSteps: [1, 5, 20, 60],
    advanceRate: 0.015,
    slack: SLACK_MS,
    ...(writeKinds ? { writeKinds } : {}),
  };
}

export function sleep(ms: number): Promise<void> {
  return new Promise(resolve => setTimeout(resolve, ms));
}
