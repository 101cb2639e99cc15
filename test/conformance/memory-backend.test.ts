import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { CacheEntryInput, CacheMiss, RemovalReason, StoreOutcome } from '../../src/backends/backend.js';
import { entryOverhead, estimateSize } from '../../src/backends/memory/estimate-size.js';
import { MemoryBackend, type MemoryBackendOptions } from '../../src/backends/memory/memory-backend.js';
import { CachingError, errors } from '../../src/errors.js';
import { FakeClock } from '../../src/testing/fake-clock.js';

// Behaviour specific to MemoryBackend: bounds, the dependency index, the invalidation log, options, tokens.
// (The shared contract is covered by memory.test.ts through the conformance suite.)

let clock: FakeClock;
let removals: [key: string, reason: RemovalReason][];

beforeEach(() => {
  clock = new FakeClock();
  removals = [];
});

function makeBackend(options: MemoryBackendOptions = {}): MemoryBackend {
  const backend = new MemoryBackend({ clock, purgeIntervalMs: 0, ...options });
  backend.subscribe({ onRemoval: (key, reason) => removals.push([key, reason]) });
  return backend;
}

function entry(spec: Partial<CacheEntryInput> = {}): CacheEntryInput {
  return { value: 'value' in spec ? spec.value : 'v', async: false, dependencies: [], expiresAt: Infinity, sliding: 0, ...spec };
}

/** Stores after a miss, as the service does, and returns the outcome. */
function put(backend: MemoryBackend, key: string, spec: Partial<CacheEntryInput> = {}): StoreOutcome {
  const lookup = backend.get(key);
  expect(lookup.hit, `expected a miss for ${key}`).toBe(false);
  return backend.set(key, entry(spec), (lookup as CacheMiss).token);
}

function isHit(backend: MemoryBackend, key: string): boolean {
  const lookup = backend.get(key);
  if (!lookup.hit) backend.abandon(lookup.token);
  return lookup.hit;
}

function valueOf(backend: MemoryBackend, key: string): unknown {
  const lookup = backend.get(key);
  if (!lookup.hit) {
    backend.abandon(lookup.token);
    return expect.fail(`expected a hit for ${key}`);
  }
  return lookup.value;
}

function expectCachingError(action: () => unknown, code: string, messagePart: string): void {
  let thrown: unknown;
  try {
    action();
  } catch (error) {
    thrown = error;
  }
  expect(thrown).toBeInstanceOf(CachingError);
  expect((thrown as CachingError).code).toBe(code);
  expect((thrown as CachingError).message).toContain(messagePart);
}

describe('MemoryBackend maxEntries', () => {
  it('evicts the least recently used entry beyond maxEntries and reports it as evict', () => {
    const backend = makeBackend({ maxEntries: 3 });
    put(backend, 'a');
    put(backend, 'b');
    put(backend, 'c');
    expect(isHit(backend, 'a')).toBe(true); // a is now more recent than b
    put(backend, 'd');
    expect(removals).toEqual([['b', 'evict']]);
    expect(backend.size).toBe(3);
    expect(isHit(backend, 'b')).toBe(false);
    expect(isHit(backend, 'a')).toBe(true);
    expect(isHit(backend, 'c')).toBe(true);
    expect(isHit(backend, 'd')).toBe(true);
  });

  it('counts an overwrite as a use: the rewritten entry is not the next one evicted', () => {
    const backend = makeBackend({ maxEntries: 2 });
    put(backend, 'a', { value: 1 });
    put(backend, 'b');
    expect(backend.set('a', entry({ value: 2 }), backend.begin('a'))).toBe('stored');
    put(backend, 'c');
    expect(removals).toEqual([['b', 'evict']]);
    expect(valueOf(backend, 'a')).toBe(2);
  });

  it('keeps at most maxEntries entries however many are stored', () => {
    const backend = makeBackend({ maxEntries: 100 });
    for (let i = 0; i < 1_000; i++) put(backend, `k:${i}`);
    expect(backend.size).toBe(100);
    expect(removals).toHaveLength(900);
    expect(removals.every(([, reason]) => reason === 'evict')).toBe(true);
    expect(isHit(backend, 'k:899')).toBe(false);
    expect(isHit(backend, 'k:900')).toBe(true);
  });

  it('does not report invalidation, overwrite or clear as removals', () => {
    const backend = makeBackend({ maxEntries: 10 });
    put(backend, 'a', { dependencies: ['d'] });
    put(backend, 'b');
    backend.set('b', entry({ value: 'again' }), backend.begin('b'));
    backend.invalidate(['d']);
    backend.clear();
    expect(removals).toEqual([]);
  });
});

describe('MemoryBackend maxBytes', () => {
  it('evicts least recently used entries to stay within maxBytes measured by the size estimate', () => {
    const value = 'x'.repeat(17);
    const size = estimateSize(value) + entryOverhead('a', []);
    const backend = makeBackend({ maxBytes: 2 * size + Math.floor(size / 2) }); // room for two entries, not three
    put(backend, 'a', { value });
    put(backend, 'b', { value });
    expect(removals).toEqual([]);
    put(backend, 'c', { value });
    expect(removals).toEqual([['a', 'evict']]);
    expect(backend.size).toBe(2);
    expect(isHit(backend, 'b')).toBe(true);
    expect(isHit(backend, 'c')).toBe(true);
  });

  it('measures values with a custom sizeOf', () => {
    const sizeOf = vi.fn((value: unknown) => (value as { bytes: number }).bytes);
    const overhead = entryOverhead('a', []); // every key here has one character and no dependencies
    const backend = makeBackend({ maxBytes: 10 + 2 * overhead, sizeOf });
    put(backend, 'a', { value: { bytes: 4 } });
    put(backend, 'b', { value: { bytes: 4 } });
    expect(sizeOf).toHaveBeenCalledWith({ bytes: 4 });
    expect(removals).toEqual([]);
    put(backend, 'c', { value: { bytes: 3 } }); // 11 + 3 overheads > 10 + 2: the least recent goes
    expect(removals).toEqual([['a', 'evict']]);
    put(backend, 'd', { value: { bytes: 10 } }); // leaves no room for another entry
    expect(removals.map(([key]) => key)).toEqual(['a', 'b', 'c']);
    expect(backend.size).toBe(1);
    expect(valueOf(backend, 'd')).toEqual({ bytes: 10 });
  });

  it('refuses a value larger than maxBytes as too-large, stores nothing and evicts nothing', () => {
    const backend = makeBackend({ maxBytes: 10 + entryOverhead('small', ['d:small']), sizeOf: (value: unknown) => (value as string).length });
    put(backend, 'small', { value: 'abc', dependencies: ['d:small'] });
    expect(put(backend, 'big', { value: 'x'.repeat(100), dependencies: ['d:big'] })).toBe('too-large');
    expect(isHit(backend, 'big')).toBe(false);
    expect(isHit(backend, 'small')).toBe(true);
    expect(removals).toEqual([]);
    expect(backend.size).toBe(1);
    expect(backend.indexSize).toBe(1);
  });

  it('stores a value exactly as large as maxBytes', () => {
    const backend = makeBackend({ maxBytes: 10 + entryOverhead('exact', []), sizeOf: (value: unknown) => (value as string).length });
    expect(put(backend, 'exact', { value: 'x'.repeat(10) })).toBe('stored');
    expect(isHit(backend, 'exact')).toBe(true);
  });

  it('honours maxEntries and maxBytes together', () => {
    const backend = makeBackend({ maxEntries: 2, maxBytes: 1_000, sizeOf: () => 1 });
    put(backend, 'a');
    put(backend, 'b');
    put(backend, 'c');
    expect(removals).toEqual([['a', 'evict']]);
    expect(backend.size).toBe(2);
  });
});

describe('MemoryBackend dependency index never outgrows the live entries', () => {
  it('drops the dependencies of evicted entries', () => {
    const backend = makeBackend({ maxEntries: 2 });
    put(backend, 'a', { dependencies: ['d1', 'd2'] });
    put(backend, 'b', { dependencies: ['d2', 'd3'] });
    expect(backend.indexSize).toBe(3);
    put(backend, 'c'); // evicts a: d1 goes, d2 stays for b
    expect(removals).toEqual([['a', 'evict']]);
    expect(backend.indexSize).toBe(2);
    put(backend, 'e', { dependencies: ['d4'] }); // evicts b: d2 and d3 go
    expect(backend.indexSize).toBe(1);
    expect(backend.invalidate(['d1', 'd2', 'd3']).removed).toEqual([]);
    expect(backend.invalidate(['d4']).removed).toEqual(['e']);
    expect(backend.indexSize).toBe(0);
  });

  it('stays at exactly the live entries’ dependencies after many evictions', () => {
    const backend = makeBackend({ maxEntries: 100 });
    for (let i = 0; i < 1_000; i++) put(backend, `k:${i}`, { dependencies: [`own:${i}`, `group:${i % 10}`] });
    // 100 live entries: 100 own dependencies + the 10 groups they share.
    expect(backend.indexSize).toBe(110);
    backend.clear();
    expect(backend.indexSize).toBe(0);
  });

  it('drops the dependencies of expired entries on purgeExpired()', () => {
    const backend = makeBackend();
    const start = clock.now();
    put(backend, 'a', { dependencies: ['d1'], expiresAt: start + 1_000 });
    put(backend, 'b', { dependencies: ['d1', 'd2'], expiresAt: start + 2_000 });
    put(backend, 'c', { dependencies: ['d3'] });
    expect(backend.indexSize).toBe(3);
    clock.advance(1_000);
    expect(backend.purgeExpired()).toBe(1);
    expect(backend.indexSize).toBe(3); // d1 is still held by b
    clock.advance(1_000);
    expect(backend.purgeExpired()).toBe(1);
    expect(backend.indexSize).toBe(1);
    expect(backend.size).toBe(1);
    expect(removals).toEqual([
      ['a', 'expire'],
      ['b', 'expire'],
    ]);
  });

  it('drops the dependencies of an expired sliding entry on purgeExpired()', () => {
    const backend = makeBackend();
    put(backend, 'a', { dependencies: ['d1', 'd2'], sliding: 1_000 });
    clock.advance(999);
    expect(backend.purgeExpired()).toBe(0);
    expect(backend.indexSize).toBe(2);
    clock.advance(1);
    expect(backend.purgeExpired()).toBe(1);
    expect(backend.indexSize).toBe(0);
  });

  it('drops the dependencies of an expired entry when it is read', () => {
    const backend = makeBackend();
    put(backend, 'a', { dependencies: ['d1', 'd2'], expiresAt: clock.now() + 1_000 });
    clock.advance(1_000);
    expect(isHit(backend, 'a')).toBe(false);
    expect(backend.indexSize).toBe(0);
    expect(backend.size).toBe(0);
    expect(removals).toEqual([['a', 'expire']]);
  });

  it('purges expired entries on its own timer, and stops the timer when none is left to expire', () => {
    vi.useFakeTimers();
    try {
      const backend = makeBackend({ purgeIntervalMs: 1_000 });
      put(backend, 'forever', { dependencies: ['d:forever'] });
      expect(vi.getTimerCount()).toBe(0); // nothing can expire: no timer
      put(backend, 'a', { dependencies: ['d1'], expiresAt: clock.now() + 500 });
      expect(vi.getTimerCount()).toBe(1);
      clock.advance(500);
      vi.advanceTimersByTime(1_000);
      expect(removals).toEqual([['a', 'expire']]);
      expect(backend.indexSize).toBe(1);
      expect(vi.getTimerCount()).toBe(0);
      backend.dispose();
    } finally {
      vi.useRealTimers();
    }
  });

  it('stops its purge timer on dispose()', () => {
    vi.useFakeTimers();
    try {
      const backend = makeBackend({ purgeIntervalMs: 1_000 });
      put(backend, 'a', { expiresAt: clock.now() + 60_000 });
      expect(vi.getTimerCount()).toBe(1);
      backend.dispose();
      expect(vi.getTimerCount()).toBe(0);
    } finally {
      vi.useRealTimers();
    }
  });

  it('replaces the dependencies of an overwritten entry', () => {
    const backend = makeBackend();
    put(backend, 'a', { dependencies: ['d1', 'd2'] });
    expect(backend.indexSize).toBe(2);
    backend.set('a', entry({ dependencies: ['d2', 'd3'] }), backend.begin('a'));
    expect(backend.indexSize).toBe(2);
    expect(backend.invalidate(['d1']).removed).toEqual([]);
    backend.set('a', entry({ dependencies: [] }), backend.begin('a'));
    expect(backend.indexSize).toBe(0);
    expect(isHit(backend, 'a')).toBe(true);
  });

  it('drops the dependencies of every entry an invalidation removes, transitively', () => {
    const backend = makeBackend();
    put(backend, 'a', { dependencies: ['d1'] });
    put(backend, 'b', { dependencies: ['d1', 'd2'] });
    put(backend, 'c', { dependencies: ['d3'] });
    put(backend, 'parent', { dependencies: ['a', 'd4'] });
    expect(backend.indexSize).toBe(5); // d1 d2 d3 d4 a
    expect([...backend.invalidate(['d1']).removed].sort()).toEqual(['a', 'b', 'parent']);
    expect(backend.indexSize).toBe(1); // d3, for c
    expect(backend.size).toBe(1);
  });

  it('drops the index of a cycle it removes', () => {
    const backend = makeBackend();
    put(backend, 'x', { dependencies: ['y', 'd'] });
    put(backend, 'y', { dependencies: ['x'] });
    put(backend, 'self', { dependencies: ['self'] });
    expect(backend.indexSize).toBe(4);
    backend.invalidate(['d', 'self']);
    expect(backend.size).toBe(0);
    expect(backend.indexSize).toBe(0);
  });

  it('keeps only the preserved roots’ own dependencies after a preserveRoots invalidation', () => {
    const backend = makeBackend();
    put(backend, 'root', { dependencies: ['d1'] });
    put(backend, 'p', { dependencies: ['root', 'd2'] });
    expect(backend.indexSize).toBe(3);
    expect(backend.invalidate(['root'], { preserveRoots: true }).removed).toEqual(['p']);
    expect(backend.indexSize).toBe(1);
  });

  it('empties the index on clear()', () => {
    const backend = makeBackend();
    for (let i = 0; i < 50; i++) put(backend, `k:${i}`, { dependencies: [`d:${i}`, 'shared'], expiresAt: clock.now() + 10_000 });
    expect(backend.indexSize).toBe(51);
    backend.clear();
    expect(backend.indexSize).toBe(0);
    expect(backend.size).toBe(0);
  });

  it('leaves no index residue for writes that are not stored (stale, too-large, already expired)', () => {
    const backend = makeBackend({ maxBytes: 10 + entryOverhead('expired', ['d:expired']), sizeOf: (value: unknown) => String(value).length });
    const token = (backend.get('stale') as CacheMiss).token;
    backend.invalidate(['d:stale']);
    expect(backend.set('stale', entry({ dependencies: ['d:stale'] }), token)).toBe('stale');
    expect(put(backend, 'big', { value: 'x'.repeat(100), dependencies: ['d:big'] })).toBe('too-large');
    put(backend, 'expired', { dependencies: ['d:expired'], expiresAt: clock.now() - 1 });
    expect(backend.indexSize).toBe(0);
    expect(backend.size).toBe(0);
  });
});

describe('MemoryBackend invalidation log', () => {
  it('keeps stale decisions right across 20,000 invalidations with overlapping computations, then forgets them', { timeout: 60_000 }, () => {
    const backend = makeBackend();
    const outcomes = { stored: 0, stale: 0 };
    const expectOutcome = (key: string, dependencies: string[], token: unknown, expected: 'stored' | 'stale'): void => {
      const outcome = backend.set(key, entry({ dependencies }), token);
      if (outcome !== expected) expect.fail(`${key} with ${dependencies.join(',')}: expected ${expected}, got ${outcome}`);
      outcomes[expected]++;
    };

    // Two computations started before everything, held through the first 12,000 invalidations.
    const early = backend.begin('early');
    const earlyClean = backend.begin('early-clean');
    let middle: unknown;
    let middleClean: unknown;
    const window: { step: number; token: unknown }[] = [];

    for (let step = 0; step < 20_000; step++) {
      const miss = backend.get(`k:${step}`);
      expect(miss.hit).toBe(false);
      window.push({ step, token: (miss as CacheMiss).token });
      if (step === 11_000) {
        middle = backend.begin('middle');
        middleClean = backend.begin('middle-clean');
      }
      backend.invalidate([`d:${step}`]);

      // Computations overlap: eight are always in flight; the oldest finishes at each step.
      if (window.length > 8) {
        const { step: started, token } = window.shift()!;
        // Its token was issued after d:(started-1) was invalidated and before d:started … d:step were.
        if (started % 2 === 0) expectOutcome(`k:${started}`, [`d:${started - 1}`, 'd:never'], token, 'stored');
        else expectOutcome(`k:${started}`, [`d:${started + 3}`], token, 'stale');
      }
      if (step === 12_000) {
        expectOutcome('early', ['d:0'], early, 'stale');
        expectOutcome('early-clean', ['d:never'], earlyClean, 'stored');
      }
    }
    for (const { step, token } of window) expectOutcome(`k:${step}`, [`d:${step}`], token, 'stale');
    // Issued at step 11,000 before d:11000 was invalidated, held through every later pruning of the log.
    expectOutcome('middle', ['d:11000'], middle, 'stale');
    expectOutcome('middle-clean', ['d:10999', 'd:never'], middleClean, 'stored');

    // 19,992 window tokens finished in the loop (even: stored, odd: stale), the last 8 stale, early and middle pairs.
    expect(outcomes).toEqual({ stored: 9_996 + 2, stale: 9_996 + 8 + 2 });

    // Everything is released: the past no longer matters, the future still does.
    const afterAll = backend.begin('after-all');
    expectOutcome('after-all', Array.from({ length: 20_000 }, (_, i) => `d:${i}`), afterAll, 'stored');
    expect(isHit(backend, 'after-all')).toBe(true);
    const later = backend.begin('later');
    const unrelated = backend.begin('unrelated');
    expect([...backend.invalidate(['d:5']).removed].sort()).toEqual(['after-all', 'k:6']); // k:6 was stored on d:5
    expectOutcome('later', ['d:5'], later, 'stale');
    expectOutcome('unrelated', ['d:6', 'd:19999'], unrelated, 'stored');
    expect(isHit(backend, 'later')).toBe(false);
    expect(isHit(backend, 'unrelated')).toBe(true);
  });

  it('does not forget an invalidation when one of two overlapping computations finishes', () => {
    const backend = makeBackend();
    const first = backend.begin('first');
    const second = backend.begin('second');
    backend.invalidate(['d']);
    expect(backend.set('first', entry({ dependencies: ['other'] }), first)).toBe('stored');
    expect(backend.set('second', entry({ dependencies: ['d'] }), second)).toBe('stale');
  });

  it('does not make a write stale for an invalidation that happened while nothing was in flight', () => {
    const backend = makeBackend();
    const first = backend.begin('first');
    backend.invalidate(['d']);
    backend.abandon(first);
    const second = backend.begin('second');
    expect(backend.set('second', entry({ dependencies: ['d'] }), second)).toBe('stored');
  });
});

describe('MemoryBackend options', () => {
  it.each([0, -1, 1.5, Number.NaN, Infinity])('rejects maxEntries: %s with E_INVALID_OPTION naming maxEntries', maxEntries => {
    expectCachingError(() => new MemoryBackend({ maxEntries }), errors.E_INVALID_OPTION, 'maxEntries');
  });

  it.each<unknown>(['x', 0, -5, 2.5, '100'])('rejects maxBytes: %j with E_INVALID_OPTION naming maxBytes', maxBytes => {
    expectCachingError(() => new MemoryBackend({ maxBytes: maxBytes as number }), errors.E_INVALID_OPTION, 'maxBytes');
  });

  it('rejects a sizeOf that is not a function, naming sizeOf', () => {
    expectCachingError(() => new MemoryBackend({ maxBytes: 100, sizeOf: 'length' as unknown as () => number }), errors.E_INVALID_OPTION, 'sizeOf');
  });

  it.each([-1, Number.NaN, Infinity])('rejects purgeIntervalMs: %s with E_INVALID_OPTION naming purgeIntervalMs', purgeIntervalMs => {
    expectCachingError(() => new MemoryBackend({ purgeIntervalMs }), errors.E_INVALID_OPTION, 'purgeIntervalMs');
  });

  it('accepts positive integer bounds', () => {
    const backend = new MemoryBackend({ maxEntries: 1, maxBytes: 1, purgeIntervalMs: 0 });
    expect(backend.isSync).toBe(true);
    expect(backend.name).toBe('memory');
  });
});

describe('MemoryBackend tokens', () => {
  let backend: MemoryBackend;
  afterEach(() => backend.dispose());

  it('throws E_BACKEND on set with a token it did not issue, and stores nothing', () => {
    backend = makeBackend();
    expectCachingError(() => backend.set('k', entry(), { start: 0 }), errors.E_BACKEND, 'set(k)');
    expectCachingError(() => backend.set('k', entry(), undefined), errors.E_BACKEND, 'set(k)');
    expect(isHit(backend, 'k')).toBe(false);
  });

  it('throws E_BACKEND on set with a token of another MemoryBackend', () => {
    backend = makeBackend();
    const other = makeBackend();
    const foreign = other.begin('k');
    expectCachingError(() => backend.set('k', entry(), foreign), errors.E_BACKEND, 'token');
    expect(isHit(backend, 'k')).toBe(false);
    expect(other.set('k', entry(), foreign)).toBe('stored'); // still valid where it came from
    other.dispose();
  });

  it('throws E_BACKEND on a second set (or a set after abandon) with the same token', () => {
    backend = makeBackend();
    const token = backend.begin('k');
    expect(backend.set('k', entry({ value: 1 }), token)).toBe('stored');
    expectCachingError(() => backend.set('k', entry({ value: 2 }), token), errors.E_BACKEND, 'token');
    const abandoned = backend.begin('j');
    backend.abandon(abandoned);
    expectCachingError(() => backend.set('j', entry(), abandoned), errors.E_BACKEND, 'token');
    expect(valueOf(backend, 'k')).toBe(1);
    expect(isHit(backend, 'j')).toBe(false);
  });

  it('ignores abandon() of a token it did not issue', () => {
    backend = makeBackend();
    const token = backend.begin('k');
    backend.invalidate(['d']);
    expect(() => backend.abandon({ foreign: true })).not.toThrow();
    expect(backend.set('k', entry({ dependencies: ['d'] }), token)).toBe('stale');
  });

  it('returns the stored record on a hit without copying it', () => {
    backend = makeBackend();
    const value = { big: 'object' };
    put(backend, 'k', { value });
    expect(valueOf(backend, 'k')).toBe(value);
    expect(backend.get('k')).toBe(backend.get('k'));
  });

  it('refuses to issue tokens after dispose() with E_DISPOSED', () => {
    backend = makeBackend();
    put(backend, 'k');
    backend.dispose();
    expectCachingError(() => backend.get('k'), errors.E_DISPOSED, 'dispose');
    expectCachingError(() => backend.begin('k'), errors.E_DISPOSED, 'dispose');
  });
});
