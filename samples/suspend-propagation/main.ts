// A cached method that starts fire-and-forget background work: wrapped in suspendDependencyPropagation, the
// work's dependencies stay out of the method's entry, so invalidating them does not evict it. Without it, any
// dependency the work picks up before the method returns leaks into the entry.
// Run: npm run sample:suspend-propagation
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { addDependency, Cache, CachingService, suspendDependencyPropagation } from 'aspect-cache';

const caching = CachingService.default;
/** The dependencies each entry was stored with, from the service's 'set' events. */
const stored = new Map<string, readonly string[]>();
caching.on('set', event => stored.set(event.key, event.dependencies));

class Recommendations {
  computations = 0;

  @Cache()
  async getRelated(productId: string): Promise<string[]> {
    this.computations++;
    addDependency('Recommendations');
    return productId === 'corn' ? ['wheat', 'rice'] : ['corn'];
  }
}

class ProductPages {
  computations = 0;
  /** The background work started so far, kept only so this sample can wait for it before checking. */
  readonly background: Promise<void>[] = [];

  constructor(private readonly recommendations: Recommendations) {}

  /** Renders a product page and warms the recommendations in the background, which the page does not use. */
  @Cache()
  async getPage(productId: string): Promise<string> {
    this.computations++;
    addDependency(`Product:${productId}`);
    this.background.push(suspendDependencyPropagation(() => this.#prefetch(productId)));
    return this.#render(productId);
  }

  /** The same page, starting the same work without suspending propagation: the wrong way, for contrast. */
  @Cache()
  async getPageWithoutSuspension(productId: string): Promise<string> {
    this.computations++;
    addDependency(`Product:${productId}`);
    this.background.push(this.#prefetch(productId));
    return this.#render(productId);
  }

  async #prefetch(productId: string): Promise<void> {
    console.log(`  (background) prefetching the recommendations for ${productId}.`);
    addDependency('RecommendationSettings'); // what it reads: the enclosing computation would depend on it
    await this.recommendations.getRelated(productId);
  }

  async #render(productId: string): Promise<string> {
    // The page's own database read is slower than the prefetch, so the prefetch finishes first.
    await sleep(20);
    return `Page of ${productId}`;
  }
}

const recommendations = new Recommendations();
const pages = new ProductPages(recommendations);
const keyOf = (call: string) => [...stored.keys()].find(key => key.includes(call))!;

async function demonstrate(method: 'getPage' | 'getPageWithoutSuspension'): Promise<boolean> {
  console.log(`  Reading ${method}('corn').`);
  await pages[method]('corn');
  await Promise.all(pages.background.splice(0));
  // Cached methods called by the background work cache normally, suspended or not.
  const computed = recommendations.computations;
  await recommendations.getRelated('corn');
  assert.equal(recommendations.computations, computed, 'getRelated() must be served from cache after the prefetch');

  console.log(`  The page entry depends on: ${stored.get(keyOf(`.${method}(`))!.join(', ')}.`);
  console.log(`  Invalidating 'Recommendations'.`);
  await caching.invalidate('Recommendations');
  const before = pages.computations;
  await pages[method]('corn');
  await Promise.all(pages.background.splice(0));
  const fromCache = pages.computations === before;
  console.log(`  The page is ${fromCache ? 'still served from cache' : 'computed again'}.`);
  return fromCache;
}

console.log('With suspendDependencyPropagation:');
assert.equal(await demonstrate('getPage'), true, 'the background work must not make the page depend on Recommendations');
assert.deepEqual(stored.get(keyOf('.getPage(')), ['Product:corn']);

console.log('Without suspendDependencyPropagation (for contrast):');
assert.equal(await demonstrate('getPageWithoutSuspension'), false, 'without suspension, the background work leaks into the page');
const leaked = stored.get(keyOf('.getPageWithoutSuspension('))!;
assert.ok(leaked.includes('Recommendations') && leaked.includes('RecommendationSettings'));

await caching.dispose();
