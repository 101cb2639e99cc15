import { describe, expect, it } from 'vitest';
import type { CacheEntryInput, CacheMiss } from '../../src/backends/backend.js';
import { MemoryBackend } from '../../src/backends/memory/memory-backend.js';
import { FakeClock } from '../../src/testing/fake-clock.js';

// MemoryBackend bounds (SPEC §8): the bookkeeping for in-flight computations stays bounded even when a
// computation never settles, and maxBytes counts what an entry really holds (key, value, dependency keys).

function entry(spec: Partial<CacheEntryInput> = {}): CacheEntryInput {
  return { value: 'v', async: false, dependencies: [], expiresAt: Infinity, sliding: 0, ...spec };
}

function makeBackend(options: ConstructorParameters<typeof MemoryBackend>[0] = {}): MemoryBackend {
  return new MemoryBackend({ clock: new FakeClock(), purgeIntervalMs: 0, ...options });
}

describe('MemoryBackend in-flight bookkeeping is bounded', () => {
  it('a computation that never settles does not grow the invalidation log over 1M invalidated keys; its late store is refused, others keep storing', { timeout: 120_000 }, () => {
    const backend = makeBackend();
    const hung = (backend.get('hung') as CacheMiss).token; // never settled until the very end
    let maxLog = 0;
    let stored = 0;
    for (let batch = 0; batch < 1_000; batch++) {
      // A normal computation overlapping this batch of invalidations, on keys it does not depend on.
      const token = (backend.get(`normal:${batch}`) as CacheMiss).token;
      const keys = Array.from({ length: 1_000 }, (_, i) => `row:${batch * 1_000 + i}`);
      backend.invalidate(keys);
      maxLog = Math.max(maxLog, backend.invalidationLogSize);
      if (backend.set(`normal:${batch}`, entry({ dependencies: ['row:unrelated'] }), token) === 'stored') stored++;
    }
    expect(stored).toBe(1_000);

    // The hung computation may have read rows invalidated since: its store is refused, whatever it depends on.
    expect(backend.set('hung', entry({ dependencies: ['row:unrelated'] }), hung)).toBe('stale');
    expect(backend.inFlightCount).toBe(0); // every token was used (the hung one last)
    expect(backend.get('hung').hit).toBe(false);
    expect(backend.get('normal:999').hit).toBe(true);
    expect(maxLog).toBeLessThanOrEqual(25_000);
  });

  it('a normal computation that overlaps a hung one still sees an invalidation of its own dependency', () => {
    const backend = makeBackend();
    (backend.get('hung') as CacheMiss).token;
    for (let i = 0; i < 50; i++) backend.invalidate(Array.from({ length: 1_000 }, (_, j) => `row:${i}:${j}`));
    const token = (backend.get('k') as CacheMiss).token;
    backend.invalidate(['row:mine']);
    for (let i = 0; i < 50; i++) backend.invalidate(Array.from({ length: 1_000 }, (_, j) => `more:${i}:${j}`));
    expect(backend.set('k', entry({ dependencies: ['row:mine'] }), token)).toBe('stale');
  });

  it('tokens that are never used (neither set nor abandoned) do not accumulate without bound; the oldest are refused as stale', () => {
    const backend = makeBackend();
    const first = (backend.get('first') as CacheMiss).token;
    for (let i = 0; i < 200_000; i++) backend.get(`leaked:${i}`); // misses whose tokens are dropped by the caller
    expect(backend.set('first', entry(), first)).toBe('stale');
    expect(backend.inFlightCount).toBeLessThanOrEqual(100_000);
    backend.abandon(first); // already used: nothing happens
    const fresh = (backend.get('fresh') as CacheMiss).token;
    expect(backend.set('fresh', entry(), fresh)).toBe('stored');
  });
});

describe('MemoryBackend maxBytes counts what an entry holds', () => {
  it('with 1 kB dependency keys, maxBytes: 1_000_000 holds entries whose keys and dependencies fit in 1 MB', () => {
    const backend = makeBackend({ maxBytes: 1_000_000 });
    const dependencyKeyChars = 1_000;
    for (let i = 0; i < 2_000; i++) {
      const token = (backend.get(`k:${i}`) as CacheMiss).token;
      const dependencies = Array.from({ length: 10 }, (_, d) => `${String(i).padStart(6, '0')}:${d}:`.padEnd(dependencyKeyChars, 'x'));
      expect(backend.set(`k:${i}`, entry({ value: i, dependencies }), token)).toBe('stored');
    }
    // Each entry holds 10 distinct 1,000-character (UTF-16: 2,000-byte) dependency keys: at most 50 fit.
    expect(backend.size).toBeLessThanOrEqual(1_000_000 / (10 * 2 * dependencyKeyChars));
    expect(backend.size).toBeGreaterThan(0);
    // The index holds only the live entries' dependencies.
    expect(backend.indexSize).toBe(backend.size * 10);
  });

  it('counts the key: long keys with tiny values are bounded too', () => {
    const backend = makeBackend({ maxBytes: 100_000 });
    for (let i = 0; i < 1_000; i++) {
      const key = `${i}:`.padEnd(5_000, 'k');
      const token = (backend.get(key) as CacheMiss).token;
      backend.set(key, entry({ value: 1 }), token);
    }
    expect(backend.size).toBeLessThanOrEqual(100_000 / 10_000);
  });

  it('refuses an entry whose dependency keys alone exceed maxBytes as too-large', () => {
    const backend = makeBackend({ maxBytes: 10_000 });
    const token = (backend.get('k') as CacheMiss).token;
    expect(backend.set('k', entry({ dependencies: ['d'.repeat(10_000)] }), token)).toBe('too-large');
    expect(backend.size).toBe(0);
    expect(backend.indexSize).toBe(0);
  });
});
