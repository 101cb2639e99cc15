// suspendDependencyPropagation (SPEC §4): nothing done inside reaches any enclosing caching context; cached
// methods inside still cache normally; nesting restores the previous state.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { addDependency, bindCachingService, Cache, CachingService, suspendDependencyPropagation } from 'aspect-cache';
import { deferred, flush, type Deferred } from '../support/deferred.js';

class Runs {
  readonly #counts = new Map<string, number>();
  count(name: string): void {
    this.#counts.set(name, (this.#counts.get(name) ?? 0) + 1);
  }
  of(name: string): number {
    return this.#counts.get(name) ?? 0;
  }
}

class Reports {
  readonly runs = new Runs();
  /** Background work started by fireAndForget(), so the test can wait for it. */
  background: Promise<unknown> | undefined;
  backgroundGate: Deferred<void> = deferred();

  constructor(readonly caching: CachingService) {
    bindCachingService(this, caching);
  }

  @Cache()
  async related(id: string): Promise<string> {
    this.runs.count(`related:${id}`);
    addDependency(`Related:${id}`);
    return `related ${id}`;
  }

  @Cache()
  syncRelated(id: string): string {
    this.runs.count(`syncRelated:${id}`);
    addDependency(`SyncRelated:${id}`);
    return `sync related ${id}`;
  }

  /** Adds one dependency normally and one inside a suspended scope (free function). */
  @Cache()
  async withSuspendedDependency(): Promise<string> {
    this.runs.count('withSuspendedDependency');
    addDependency('Own');
    const inner = suspendDependencyPropagation(() => {
      addDependency('Suspended');
      this.caching.addDependency(new SuspendedDependency());
      return 'inner';
    });
    return `report ${inner}`;
  }

  /** Calls cached children inside a suspended scope (free function and service method). */
  @Cache()
  async withSuspendedChildren(): Promise<string> {
    this.runs.count('withSuspendedChildren');
    const a = await suspendDependencyPropagation(() => this.related('a'));
    const b = this.caching.suspendDependencyPropagation(() => this.syncRelated('b'));
    const c = await this.caching.suspendDependencyPropagation(async () => {
      await flush(1);
      addDependency('SuspendedAsync');
      return this.related('c');
    });
    return [a, b, c].join(', ');
  }

  /** Suspension nested in suspension, then normal additions after each scope. */
  @Cache()
  async nested(): Promise<string> {
    this.runs.count('nested');
    suspendDependencyPropagation(() => {
      this.caching.suspendDependencyPropagation(() => addDependency('Innermost'));
      addDependency('BetweenScopes');
    });
    addDependency('AfterSyncScopes');
    await suspendDependencyPropagation(async () => {
      await flush(1);
      await suspendDependencyPropagation(async () => {
        await flush(1);
        addDependency('InnermostAsync');
      });
      addDependency('BetweenAsyncScopes');
    });
    addDependency('AfterAsyncScopes');
    return `${await this.related('after')}`;
  }

  /** Starts background work that outlives the computation; only 'Foreground' belongs to this entry. */
  @Cache()
  async fireAndForget(id: string): Promise<string> {
    this.runs.count(`fireAndForget:${id}`);
    suspendDependencyPropagation(() => {
      this.background = (async () => {
        addDependency('BackgroundEarly');
        await this.backgroundGate.promise;
        addDependency('BackgroundLate');
        return this.related(`bg-${id}`);
      })();
    });
    addDependency('Foreground');
    return `started ${id}`;
  }
}

class SuspendedDependency {
  getCacheKey(): string {
    return 'SuspendedObject';
  }
}

describe('suspendDependencyPropagation', () => {
  let caching: CachingService;
  let reports: Reports;

  beforeEach(() => {
    caching = new CachingService();
    reports = new Reports(caching);
  });

  afterEach(async () => {
    await caching.dispose();
  });

  it('dependencies added inside a suspended scope do not reach the enclosing cached method', async () => {
    expect(await reports.withSuspendedDependency()).toBe('report inner');
    await caching.invalidate('Suspended', 'SuspendedObject');
    await reports.withSuspendedDependency();
    expect(reports.runs.of('withSuspendedDependency')).toBe(1);

    await caching.invalidate('Own');
    await reports.withSuspendedDependency();
    expect(reports.runs.of('withSuspendedDependency')).toBe(2);
  });

  it('cached methods called in a suspended scope do not become dependencies of the enclosing method', async () => {
    expect(await reports.withSuspendedChildren()).toBe('related a, sync related b, related c');

    await caching.invalidate('Related:a', 'SyncRelated:b', 'Related:c', 'SuspendedAsync');
    await caching.invalidateCall(() => reports.related('a'));
    await reports.withSuspendedChildren();
    expect(reports.runs.of('withSuspendedChildren')).toBe(1);
  });

  it('cached methods called in a suspended scope still cache and are invalidated normally', async () => {
    await reports.withSuspendedChildren();
    expect(await reports.related('a')).toBe('related a');
    expect(reports.syncRelated('b')).toBe('sync related b');
    expect(await reports.related('c')).toBe('related c');
    expect([reports.runs.of('related:a'), reports.runs.of('syncRelated:b'), reports.runs.of('related:c')]).toEqual([1, 1, 1]);

    await caching.invalidate('Related:a', 'SyncRelated:b');
    await reports.related('a');
    reports.syncRelated('b');
    await reports.related('c');
    expect([reports.runs.of('related:a'), reports.runs.of('syncRelated:b'), reports.runs.of('related:c')]).toEqual([2, 2, 1]);
  });

  it('nesting suspended scopes restores propagation after each scope, sync and async', async () => {
    await reports.nested();
    await caching.invalidate('Innermost', 'BetweenScopes', 'InnermostAsync', 'BetweenAsyncScopes');
    await reports.nested();
    expect(reports.runs.of('nested')).toBe(1);

    await caching.invalidate('AfterSyncScopes');
    await reports.nested();
    expect(reports.runs.of('nested')).toBe(2);

    await caching.invalidate('AfterAsyncScopes');
    await reports.nested();
    expect(reports.runs.of('nested')).toBe(3);

    await caching.invalidate('Related:after'); // a cached child called after the scopes propagates again
    await reports.nested();
    expect(reports.runs.of('nested')).toBe(4);
  });

  it('fire-and-forget work started in a suspended scope never leaks its dependencies into the entry', async () => {
    expect(await reports.fireAndForget('x')).toBe('started x');
    reports.backgroundGate.resolve();
    expect(await reports.background).toBe('related bg-x');

    await caching.invalidate('BackgroundEarly', 'BackgroundLate', 'Related:bg-x');
    await reports.fireAndForget('x');
    expect(reports.runs.of('fireAndForget:x')).toBe(1);

    await caching.invalidate('Foreground');
    await reports.fireAndForget('x');
    expect(reports.runs.of('fireAndForget:x')).toBe(2);
  });

  it('the background cached call of fire-and-forget work is cached on its own', async () => {
    await reports.fireAndForget('y');
    reports.backgroundGate.resolve();
    await reports.background;
    expect(await reports.related('bg-y')).toBe('related bg-y');
    expect(reports.runs.of('related:bg-y')).toBe(1);
  });

  it('returns the value of the function, and the service method behaves like the free function', () => {
    expect(suspendDependencyPropagation(() => 42)).toBe(42);
    expect(caching.suspendDependencyPropagation(() => 'x')).toBe('x');
    const error = new Error('boom');
    expect(() =>
      suspendDependencyPropagation(() => {
        throw error;
      }),
    ).toThrow(error);
  });

  it('outside any cached method it runs the function, and cached calls inside cache normally', async () => {
    const value = await suspendDependencyPropagation(() => reports.related('outside'));
    expect(value).toBe('related outside');
    await reports.related('outside');
    expect(reports.runs.of('related:outside')).toBe(1);
  });
});

describe('addDependency outside a cached method', () => {
  let caching: CachingService;
  let reports: Reports;

  beforeEach(() => {
    caching = new CachingService();
    reports = new Reports(caching);
  });

  afterEach(async () => {
    await caching.dispose();
  });

  it('is a no-op: it neither throws nor attaches the dependency to later computations', async () => {
    expect(() => addDependency('Stray')).not.toThrow();
    expect(() => caching.addDependency('Stray', new SuspendedDependency())).not.toThrow();
    await reports.related('z');
    await caching.invalidate('Stray', 'SuspendedObject');
    await reports.related('z');
    expect(reports.runs.of('related:z')).toBe(1);
  });

  it('a dependency added after a cached method returned does not reach its entry', async () => {
    const late = deferred();
    const store = bindCachingService(new LateAdder(late.promise), caching);
    expect(await store.compute()).toBe('computed');
    late.resolve();
    await store.lateWork;
    await caching.invalidate('Late');
    await store.compute();
    expect(store.runs).toBe(1);
  });
});

class LateAdder {
  runs = 0;
  lateWork: Promise<void> | undefined;
  constructor(readonly release: Promise<void>) {}

  @Cache()
  async compute(): Promise<string> {
    this.runs++;
    // Not suspended: the work runs in this computation's context but finishes after it returned.
    this.lateWork = this.release.then(() => addDependency('Late'));
    return 'computed';
  }
}
