// Uses every entry point the way an application does; only type-checked (tsc --noEmit), in both decorator modes.
import {
  addDependency,
  Cache,
  CacheKey,
  CachingError,
  CachingService,
  defineDependency,
  InvalidateCache,
  MemoryBackend,
  ObjectDependency,
  StringDependency,
  suspendDependencyPropagation,
  type CacheOptions,
  type CachingBackend,
} from 'aspect-cache';
import { RedisBackend } from 'aspect-cache/redis';
import { ChaosBackend, FakeClock, TestBusNetwork } from 'aspect-cache/testing';
import { registerCachingService } from 'aspect-cache/tsyringe';

interface Product {
  id: number;
  name: string;
}

class ProductKey {
  @CacheKey() id: number;
  constructor(id: number) {
    this.id = id;
  }
}

const product = defineDependency('product', {
  byId: (p: Product) => p.id,
  byName: (p: Product) => p.name,
});

const options: CacheOptions = { ttl: 60_000 };

class Catalogue {
  readonly #names = new Map<number, string>();

  @Cache(options)
  async getProduct(id: number): Promise<Product> {
    addDependency(product.byId(id));
    return { id, name: this.#names.get(id) ?? 'unknown' };
  }

  @Cache({ ttl: 1_000 })
  nameOf(key: ProductKey): string {
    addDependency(new StringDependency(`product-name:${key.id}`));
    return this.#names.get(key.id) ?? '';
  }

  @InvalidateCache('getProduct')
  async rename(id: number, name: string): Promise<void> {
    this.#names.set(id, name);
  }
}

const clock = new FakeClock();
const backend: CachingBackend = new ChaosBackend(new MemoryBackend({ clock }));
const caching = new CachingService({ backend, clock });
const network = new TestBusNetwork();
const bus = network.connect('a');

export async function main(): Promise<void> {
  const catalogue = new Catalogue();
  await catalogue.getProduct(1);
  await catalogue.rename(1, 'corn');
  catalogue.nameOf(new ProductKey(1));
  clock.advance(10);
  await suspendDependencyPropagation(() => catalogue.getProduct(2));
  await caching.invalidate(product.of({ id: 1, name: 'corn' }), new ObjectDependency({ id: 1 }));
  const error: unknown = new CachingError('E_INVALID_OPTION', 'example');
  if (error instanceof CachingError) console.log(error.code);
  void bus;
  void RedisBackend;
  void registerCachingService;
}
