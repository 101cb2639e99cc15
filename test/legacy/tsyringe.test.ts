// tsyringe auto-wiring needs emitDecoratorMetadata, so these tests run in the legacy decorator project only
// (its setup file imports reflect-metadata before tsyringe loads; imported here too for its types).
import 'reflect-metadata';
import { addDependency, Cache, CachingError, CachingService, InvalidateCache } from 'aspect-cache';
import { CachingInjectable, registerCachingService } from 'aspect-cache/tsyringe';
import { container, inject, injectable, Lifecycle, type DependencyContainer } from 'tsyringe';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';

@injectable()
class PriceDatabase {
  readonly prices = new Map<string, number>([['corn', 100]]);
}

@CachingInjectable()
class ProductCatalogue {
  computations = 0;

  constructor(
    readonly caching: CachingService,
    private readonly db: PriceDatabase,
  ) {}

  @Cache()
  async getPrice(productId: string): Promise<number> {
    this.computations++;
    addDependency(`ProductPrice:${productId}`);
    return this.db.prices.get(productId)!;
  }

  @InvalidateCache('getPrice')
  async updatePrice(productId: string, price: number): Promise<void> {
    this.db.prices.set(productId, price);
  }
}

const TENANT_CACHE = Symbol('TenantCache');

@CachingInjectable()
class TenantCatalogue {
  computations = 0;

  constructor(@inject(TENANT_CACHE) readonly caching: CachingService) {}

  @Cache()
  getName(id: number): string {
    this.computations++;
    return `tenant product ${id}`;
  }
}

@CachingInjectable()
class TwoServices {
  constructor(
    readonly first: CachingService,
    @inject(TENANT_CACHE) readonly second: CachingService,
  ) {}
}

@CachingInjectable()
class WithoutService {
  constructor(readonly db: PriceDatabase) {}
}

let root: DependencyContainer;
let db: PriceDatabase;
let defaultService: CachingService;
const services: CachingService[] = [];

/** A child of `root` with its own CachingService. */
function scopeWithService(): { scope: DependencyContainer; caching: CachingService } {
  const scope = root.createChildContainer();
  const caching = registerCachingService(scope, new CachingService());
  services.push(caching);
  return { scope, caching };
}

beforeEach(() => {
  defaultService = new CachingService();
  CachingService.default = defaultService;
  root = container.createChildContainer();
  db = new PriceDatabase();
  root.registerInstance(PriceDatabase, db);
});

afterEach(async () => {
  await Promise.all(services.splice(0).map(s => s.dispose()));
  await defaultService.dispose();
});

describe('registerCachingService', () => {
  it('registers the given service under the CachingService token and returns it', () => {
    const scope = root.createChildContainer();
    const caching = new CachingService();
    services.push(caching);
    expect(registerCachingService(scope, caching)).toBe(caching);
    expect(scope.resolve(CachingService)).toBe(caching);
    expect(scope.resolve(ProductCatalogue).caching).toBe(caching);
  });

  it('registers a new service, distinct from CachingService.default, when none is given', () => {
    const scope = root.createChildContainer();
    const caching = registerCachingService(scope);
    services.push(caching);
    expect(caching).toBeInstanceOf(CachingService);
    expect(caching).not.toBe(CachingService.default);
    expect(scope.resolve(CachingService)).toBe(caching);
  });

  it('rejects something that is not a CachingService', () => {
    expect(() => registerCachingService(root, {} as CachingService)).toThrow(CachingError);
  });
});

describe('@CachingInjectable', () => {
  it('caches the @Cache methods of a resolved instance in the injected service, not in the default', async () => {
    const { scope, caching } = scopeWithService();
    const catalogue = scope.resolve(ProductCatalogue);

    expect(await catalogue.getPrice('corn')).toBe(100);
    expect(await catalogue.getPrice('corn')).toBe(100);

    expect(catalogue.computations).toBe(1);
    expect(caching.stats()).toMatchObject({ misses: 1, hits: 1, sets: 1 });
    expect(defaultService.stats()).toMatchObject({ misses: 0, hits: 0, sets: 0 });
    // Invalidating in the default service does not reach the entry; invalidating in the injected one does.
    await defaultService.invalidate('ProductPrice:corn');
    await catalogue.getPrice('corn');
    expect(catalogue.computations).toBe(1);
    await caching.invalidate('ProductPrice:corn');
    await catalogue.getPrice('corn');
    expect(catalogue.computations).toBe(2);
  });

  it('gives instances resolved from two child containers their own services, which never share entries', async () => {
    const a = scopeWithService();
    const b = scopeWithService();
    const inA = a.scope.resolve(ProductCatalogue);
    const inB = b.scope.resolve(ProductCatalogue);
    expect(inA.caching).toBe(a.caching);
    expect(inB.caching).toBe(b.caching);

    expect(await inA.getPrice('corn')).toBe(100);
    expect(await inB.getPrice('corn')).toBe(100);
    // Same class, method and argument: one key. Each instance still computed it, in its own service.
    expect(inA.computations).toBe(1);
    expect(inB.computations).toBe(1);

    db.prices.set('corn', 110);
    await inA.caching.invalidate('ProductPrice:corn');
    expect(await inA.getPrice('corn')).toBe(110);
    expect(inA.computations).toBe(2);
    // B's entry was not touched by A's invalidation.
    expect(await inB.getPrice('corn')).toBe(100);
    expect(inB.computations).toBe(1);
  });

  it('makes @InvalidateCache methods of a resolved instance invalidate in the injected service', async () => {
    const a = scopeWithService();
    const b = scopeWithService();
    const inA = a.scope.resolve(ProductCatalogue);
    const inB = b.scope.resolve(ProductCatalogue);
    await inA.getPrice('corn');
    await inB.getPrice('corn');

    await inA.updatePrice('corn', 120);

    expect(await inA.getPrice('corn')).toBe(120);
    expect(inA.computations).toBe(2);
    expect(await inB.getPrice('corn')).toBe(100);
    expect(inB.computations).toBe(1);
  });

  it('binds a service injected under another token with @inject', () => {
    const scope = root.createChildContainer();
    const tenantCache = new CachingService();
    services.push(tenantCache);
    scope.registerInstance(TENANT_CACHE, tenantCache);
    const catalogue = scope.resolve(TenantCatalogue);

    expect(catalogue.getName(1)).toBe('tenant product 1');
    expect(catalogue.getName(1)).toBe('tenant product 1');

    expect(catalogue.computations).toBe(1);
    expect(tenantCache.stats()).toMatchObject({ misses: 1, hits: 1 });
    expect(defaultService.stats()).toMatchObject({ misses: 0, hits: 0 });
  });

  it('binds per child container with a container-scoped registration', async () => {
    const scoped = container.createChildContainer();
    scoped.registerInstance(PriceDatabase, db);
    scoped.register(ProductCatalogue, { useClass: ProductCatalogue }, { lifecycle: Lifecycle.ContainerScoped });
    const a = scoped.createChildContainer();
    const b = scoped.createChildContainer();
    const caching = [registerCachingService(a), registerCachingService(b)];
    services.push(...caching);

    const inA = a.resolve(ProductCatalogue);
    expect(a.resolve(ProductCatalogue)).toBe(inA);
    const inB = b.resolve(ProductCatalogue);
    expect(inB).not.toBe(inA);
    await inA.getPrice('corn');
    await inB.getPrice('corn');

    expect(caching[0]!.stats().sets).toBe(1);
    expect(caching[1]!.stats().sets).toBe(1);
    expect(inB.computations).toBe(1);
  });

  it('binds the service however the instance is constructed, e.g. by a factory registration', async () => {
    const { scope, caching } = scopeWithService();
    const factoryScope = scope.createChildContainer();
    factoryScope.register(ProductCatalogue, { useFactory: c => new ProductCatalogue(c.resolve(CachingService), c.resolve(PriceDatabase)) });
    const catalogue = factoryScope.resolve(ProductCatalogue);

    await catalogue.getPrice('corn');

    expect(caching.stats().sets).toBe(1);
    expect(defaultService.stats().sets).toBe(0);
  });

  it('keeps the class name, the parameter types tsyringe reads, and instanceof', () => {
    const { scope } = scopeWithService();
    const catalogue = scope.resolve(ProductCatalogue);
    expect(ProductCatalogue.name).toBe('ProductCatalogue');
    expect(Reflect.getMetadata('design:paramtypes', ProductCatalogue)).toEqual([CachingService, PriceDatabase]);
    expect(catalogue).toBeInstanceOf(ProductCatalogue);
    expect(catalogue.constructor.name).toBe('ProductCatalogue');
  });

  it('throws a CachingError naming the class when the constructor receives no CachingService', () => {
    const { scope } = scopeWithService();
    let error: unknown;
    try {
      scope.resolve(WithoutService);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(CachingError);
    expect((error as CachingError).message).toMatch(/@CachingInjectable on WithoutService: the constructor received no CachingService/);
  });

  it('throws a CachingError when the constructor receives two different services, since the choice is ambiguous', () => {
    const { scope } = scopeWithService();
    const other = new CachingService();
    services.push(other);
    scope.registerInstance(TENANT_CACHE, other);
    expect(() => scope.resolve(TwoServices)).toThrow(/@CachingInjectable on TwoServices: the constructor received 2 different CachingService instances/);
  });

  it('rejects being applied to something other than a class', () => {
    const decorator = CachingInjectable() as (...args: unknown[]) => unknown;
    expect(() => decorator({}, 'method', {})).toThrow(CachingError);
  });
});
