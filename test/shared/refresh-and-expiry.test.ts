// refreshCall (SPEC §6) and expiry (SPEC §4, §7): ttl, slidingExpiration, and a parent never outliving a
// child it was computed from. Time is a FakeClock given to the service.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { addDependency, bindCachingService, Cache, CachingService } from 'aspect-cache';
import { FakeClock } from 'aspect-cache/testing';

const SECOND = 1_000;
const MINUTE = 60 * SECOND;

class Runs {
  readonly #counts = new Map<string, number>();
  count(name: string): void {
    this.#counts.set(name, (this.#counts.get(name) ?? 0) + 1);
  }
  of(name: string): number {
    return this.#counts.get(name) ?? 0;
  }
}

// ───────────────────────────── refreshCall ─────────────────────────────

class PriceSource {
  readonly runs = new Runs();
  readonly prices = new Map<string, number>([
    ['corn', 100],
    ['wheat', 150],
  ]);
  failing = false;
  dependencyVersion = 1;

  @Cache()
  async getPrice(productId: string): Promise<number> {
    this.runs.count(`getPrice:${productId}`);
    addDependency(`ProductPrice:${productId}`);
    if (this.failing) throw new Error(`database down while reading ${productId}`);
    return this.prices.get(productId)!;
  }

  @Cache()
  getPriceSync(productId: string): number {
    this.runs.count(`getPriceSync:${productId}`);
    addDependency(`ProductPrice:${productId}`);
    if (this.failing) throw new Error('database down');
    return this.prices.get(productId)!;
  }

  /** A parent of getPrice('corn'). */
  @Cache()
  async getCornLabel(): Promise<string> {
    this.runs.count('getCornLabel');
    return `corn: ${await this.getPrice('corn')}`;
  }

  /** A parent of getPrice('corn') and getPrice('wheat'). */
  @Cache()
  async getTotal(): Promise<number> {
    this.runs.count('getTotal');
    return (await this.getPrice('corn')) + (await this.getPrice('wheat'));
  }

  /** Its dependency changes from one computation to the next. */
  @Cache()
  async getVersioned(): Promise<number> {
    this.runs.count('getVersioned');
    addDependency(`Version:${this.dependencyVersion}`);
    return this.dependencyVersion;
  }
}

describe('refreshCall', () => {
  let caching: CachingService;
  let source: PriceSource;

  beforeEach(() => {
    caching = new CachingService();
    source = bindCachingService(new PriceSource(), caching);
  });

  afterEach(async () => {
    await caching.dispose();
  });

  it('recomputes the entry, returns the new value and replaces the entry', async () => {
    expect(await source.getPrice('corn')).toBe(100);
    source.prices.set('corn', 120);

    await expect(caching.refreshCall(() => source.getPrice('corn'))).resolves.toBe(120);
    expect(source.runs.of('getPrice:corn')).toBe(2);

    expect(await source.getPrice('corn')).toBe(120);
    expect(source.runs.of('getPrice:corn')).toBe(2); // served from the replaced entry
  });

  it('invalidates the entries computed from the refreshed one', async () => {
    expect(await source.getCornLabel()).toBe('corn: 100');
    expect(await source.getTotal()).toBe(250);
    source.prices.set('corn', 120);

    await caching.refreshCall(() => source.getPrice('corn'));

    expect(await source.getCornLabel()).toBe('corn: 120');
    expect(await source.getTotal()).toBe(270);
    expect(source.runs.of('getCornLabel')).toBe(2);
    expect(source.runs.of('getTotal')).toBe(2);
    expect(source.runs.of('getPrice:corn')).toBe(2); // the parents read the refreshed entry
    expect(source.runs.of('getPrice:wheat')).toBe(1);
  });

  it('uses the cache for nested cached calls while recomputing', async () => {
    await source.getTotal();
    await caching.refreshCall(() => source.getTotal());
    expect(source.runs.of('getTotal')).toBe(2);
    expect(source.runs.of('getPrice:corn')).toBe(1);
    expect(source.runs.of('getPrice:wheat')).toBe(1);
  });

  it('the refreshed parent still records its children: invalidating a child invalidates it', async () => {
    await source.getTotal();
    await caching.refreshCall(() => source.getTotal());
    await caching.invalidate('ProductPrice:wheat');
    await source.getTotal();
    expect(source.runs.of('getTotal')).toBe(3);
  });

  it('stores the dependencies of the new computation', async () => {
    expect(await source.getVersioned()).toBe(1);
    source.dependencyVersion = 2;
    expect(await caching.refreshCall(() => source.getVersioned())).toBe(2);

    await caching.invalidate('Version:1');
    expect(await source.getVersioned()).toBe(2);
    expect(source.runs.of('getVersioned')).toBe(2);

    await caching.invalidate('Version:2');
    expect(await source.getVersioned()).toBe(2);
    expect(source.runs.of('getVersioned')).toBe(3);
  });

  it('keeps the old entry and rethrows when the recomputation throws', async () => {
    expect(await source.getCornLabel()).toBe('corn: 100');
    source.failing = true;
    source.prices.set('corn', 120);

    await expect(caching.refreshCall(() => source.getPrice('corn'))).rejects.toThrow('database down while reading corn');

    expect(await source.getPrice('corn')).toBe(100);
    expect(await source.getCornLabel()).toBe('corn: 100');
    expect(source.runs.of('getPrice:corn')).toBe(2);
    expect(source.runs.of('getCornLabel')).toBe(1);
  });

  it('computes and stores an entry that was not cached yet', async () => {
    expect(await caching.refreshCall(() => source.getPrice('wheat'))).toBe(150);
    expect(await source.getPrice('wheat')).toBe(150);
    expect(source.runs.of('getPrice:wheat')).toBe(1);
  });

  it('refreshes a synchronous method and resolves to its value', async () => {
    expect(source.getPriceSync('corn')).toBe(100);
    source.prices.set('corn', 130);
    const refreshed = caching.refreshCall(() => source.getPriceSync('corn'));
    expect(refreshed).toBeInstanceOf(Promise);
    expect(await refreshed).toBe(130);
    expect(source.getPriceSync('corn')).toBe(130);
    expect(source.runs.of('getPriceSync:corn')).toBe(2);
  });

  it('keeps the old entry of a synchronous method whose recomputation throws', async () => {
    expect(source.getPriceSync('corn')).toBe(100);
    source.failing = true;
    await expect(caching.refreshCall(() => source.getPriceSync('corn'))).rejects.toThrow('database down');
    source.failing = false;
    expect(source.getPriceSync('corn')).toBe(100);
    expect(source.runs.of('getPriceSync:corn')).toBe(2);
  });
});

// ───────────────────────────── expiry ─────────────────────────────

class Timed {
  readonly runs = new Runs();
  #version = 0;

  @Cache({ ttl: MINUTE })
  async absolute(): Promise<number> {
    this.runs.count('absolute');
    return ++this.#version;
  }

  @Cache()
  async forever(): Promise<number> {
    this.runs.count('forever');
    return ++this.#version;
  }

  @Cache({ slidingExpiration: MINUTE })
  async sliding(): Promise<number> {
    this.runs.count('sliding');
    return ++this.#version;
  }

  @Cache({ ttl: 100 * SECOND, slidingExpiration: 40 * SECOND })
  async slidingWithinTtl(): Promise<number> {
    this.runs.count('slidingWithinTtl');
    return ++this.#version;
  }

  @Cache({ ttl: MINUTE })
  child(id: string): string {
    this.runs.count(`child:${id}`);
    addDependency(`Child:${id}`);
    return `child ${id}`;
  }

  @Cache({ ttl: 10 * MINUTE })
  parent(id: string): string {
    this.runs.count(`parent:${id}`);
    return `parent(${this.child(id)})`;
  }

  /** No ttl of its own: only its child's expiry bounds it. */
  @Cache()
  unbounded(id: string): string {
    this.runs.count(`unbounded:${id}`);
    return `unbounded(${this.child(id)})`;
  }

  @Cache({ ttl: 10 * MINUTE })
  grandparent(id: string): string {
    this.runs.count(`grandparent:${id}`);
    return `grandparent(${this.parent(id)})`;
  }

  @Cache({ ttl: MINUTE })
  async asyncChild(id: string): Promise<string> {
    this.runs.count(`asyncChild:${id}`);
    return `async child ${id}`;
  }

  @Cache({ ttl: 10 * MINUTE })
  async asyncParent(): Promise<string> {
    this.runs.count('asyncParent');
    const parts = await Promise.all([this.asyncChild('a'), this.asyncLongChild('b')]);
    return parts.join(', ');
  }

  @Cache({ ttl: 5 * MINUTE })
  async asyncLongChild(id: string): Promise<string> {
    this.runs.count(`asyncLongChild:${id}`);
    return `long child ${id}`;
  }

  @Cache({ slidingExpiration: 5 * MINUTE })
  slidingParent(id: string): string {
    this.runs.count(`slidingParent:${id}`);
    return `sliding parent(${this.child(id)})`;
  }
}

describe('expiry', () => {
  let clock: FakeClock;
  let caching: CachingService;
  let timed: Timed;

  beforeEach(() => {
    clock = new FakeClock();
    caching = new CachingService({ clock });
    timed = bindCachingService(new Timed(), caching);
  });

  afterEach(async () => {
    await caching.dispose();
  });

  it('an entry with a ttl is served until the ttl has passed, then recomputed', async () => {
    expect(await timed.absolute()).toBe(1);
    clock.advance(MINUTE - 1);
    expect(await timed.absolute()).toBe(1);
    clock.advance(2);
    expect(await timed.absolute()).toBe(2);
    expect(timed.runs.of('absolute')).toBe(2);
  });

  it('reading an entry does not extend an absolute ttl', async () => {
    await timed.absolute();
    for (let i = 0; i < 5; i++) {
      clock.advance(11 * SECOND);
      await timed.absolute();
    }
    expect(timed.runs.of('absolute')).toBe(1);
    clock.advance(6 * SECOND); // 61 s after the computation
    await timed.absolute();
    expect(timed.runs.of('absolute')).toBe(2);
  });

  it('an entry without a ttl and without expiring children does not expire', async () => {
    expect(await timed.forever()).toBe(1);
    clock.advance(365 * 24 * 60 * MINUTE);
    expect(await timed.forever()).toBe(1);
    expect(timed.runs.of('forever')).toBe(1);
  });

  it('slidingExpiration keeps an entry alive while it is read within the window', async () => {
    expect(await timed.sliding()).toBe(1);
    for (let i = 0; i < 10; i++) {
      clock.advance(50 * SECOND);
      expect(await timed.sliding()).toBe(1);
    }
    expect(timed.runs.of('sliding')).toBe(1);
  });

  it('slidingExpiration expires an entry not read for the window', async () => {
    expect(await timed.sliding()).toBe(1);
    clock.advance(50 * SECOND);
    expect(await timed.sliding()).toBe(1);
    clock.advance(MINUTE + 1);
    expect(await timed.sliding()).toBe(2);
    expect(timed.runs.of('sliding')).toBe(2);
  });

  it('slidingExpiration never extends an entry beyond its ttl', async () => {
    expect(await timed.slidingWithinTtl()).toBe(1);
    for (let i = 0; i < 3; i++) {
      clock.advance(30 * SECOND); // 30, 60, 90 s: always within the 40 s window
      expect(await timed.slidingWithinTtl()).toBe(1);
    }
    clock.advance(11 * SECOND); // 101 s: past the 100 s ttl although read 11 s ago
    expect(await timed.slidingWithinTtl()).toBe(2);
  });

  it('a parent never outlives its child: parent ttl 10 min, child ttl 1 min → the parent is recomputed after 1 min', () => {
    expect(timed.parent('a')).toBe('parent(child a)');
    clock.advance(MINUTE - 1);
    expect(timed.parent('a')).toBe('parent(child a)');
    expect(timed.runs.of('parent:a')).toBe(1);

    clock.advance(2);
    expect(timed.parent('a')).toBe('parent(child a)');
    expect(timed.runs.of('parent:a')).toBe(2);
    expect(timed.runs.of('child:a')).toBe(2);
  });

  it('a parent computed from a child that was a hit expires with what remained of the child', () => {
    timed.child('a');
    clock.advance(30 * SECOND);
    timed.parent('a'); // the child is a hit with 30 s left
    expect(timed.runs.of('child:a')).toBe(1);

    clock.advance(29 * SECOND);
    timed.parent('a');
    expect(timed.runs.of('parent:a')).toBe(1);

    clock.advance(2 * SECOND); // 61 s after the child was computed, 31 s after the parent
    timed.parent('a');
    expect(timed.runs.of('parent:a')).toBe(2);
  });

  it('a parent without a ttl expires with its child', () => {
    timed.unbounded('a');
    clock.advance(MINUTE - 1);
    timed.unbounded('a');
    expect(timed.runs.of('unbounded:a')).toBe(1);
    clock.advance(2);
    timed.unbounded('a');
    expect(timed.runs.of('unbounded:a')).toBe(2);
  });

  it('expiry propagates through every level of a chain', () => {
    timed.grandparent('a');
    clock.advance(MINUTE + 1);
    timed.grandparent('a');
    expect(timed.runs.of('grandparent:a')).toBe(2);
    expect(timed.runs.of('parent:a')).toBe(2);
    expect(timed.runs.of('child:a')).toBe(2);
  });

  it('expiry propagates through every level when the middle was a hit', () => {
    timed.child('a');
    clock.advance(20 * SECOND);
    timed.parent('a'); // child hit: parent expires 40 s from now
    clock.advance(20 * SECOND);
    timed.grandparent('a'); // parent hit: grandparent expires 20 s from now
    clock.advance(19 * SECOND);
    timed.grandparent('a');
    expect(timed.runs.of('grandparent:a')).toBe(1);
    clock.advance(2 * SECOND);
    timed.grandparent('a');
    expect(timed.runs.of('grandparent:a')).toBe(2);
  });

  it('an async parent of children fetched with Promise.all expires with the child that expires first', async () => {
    await timed.asyncParent();
    clock.advance(MINUTE - 1);
    await timed.asyncParent();
    expect(timed.runs.of('asyncParent')).toBe(1);
    clock.advance(2);
    await timed.asyncParent();
    expect(timed.runs.of('asyncParent')).toBe(2);
    expect(timed.runs.of('asyncChild:a')).toBe(2);
    expect(timed.runs.of('asyncLongChild:b')).toBe(1);
  });

  it('a sliding parent is not kept alive by reads beyond the expiry of its child', () => {
    timed.slidingParent('a');
    for (let i = 0; i < 2; i++) {
      clock.advance(25 * SECOND); // read well within the parent's 5 min window
      timed.slidingParent('a');
    }
    expect(timed.runs.of('slidingParent:a')).toBe(1);
    clock.advance(11 * SECOND); // 61 s: the child it was computed from has expired
    timed.slidingParent('a');
    expect(timed.runs.of('slidingParent:a')).toBe(2);
  });

  it('a ttl from the service defaults applies to methods without one', async () => {
    const withDefaults = new CachingService({ clock, defaults: { ttl: 10 * SECOND } });
    try {
      const other = bindCachingService(new Timed(), withDefaults);
      await other.forever();
      clock.advance(10 * SECOND - 1);
      await other.forever();
      expect(other.runs.of('forever')).toBe(1);
      clock.advance(2);
      await other.forever();
      expect(other.runs.of('forever')).toBe(2);
    } finally {
      await withDefaults.dispose();
    }
  });

  it('a refreshed entry gets a new ttl from the time it was refreshed', async () => {
    expect(await timed.absolute()).toBe(1);
    clock.advance(50 * SECOND);
    expect(await caching.refreshCall(() => timed.absolute())).toBe(2);
    clock.advance(50 * SECOND); // 100 s after the first computation, 50 s after the refresh
    expect(await timed.absolute()).toBe(2);
    clock.advance(11 * SECOND);
    expect(await timed.absolute()).toBe(3);
  });
});
