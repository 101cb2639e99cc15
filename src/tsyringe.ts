/**
 * tsyringe integration of aspect-cache: put a {@link CachingService} in a container, and have the instances
 * the container creates use the service it injects into them.
 *
 * `tsyringe` (and `reflect-metadata`, which it requires to be imported first) are optional peer dependencies:
 * only this entry point imports them.
 *
 * @example
 * import 'reflect-metadata';
 * import { container } from 'tsyringe';
 * import { Cache, CachingService } from 'aspect-cache';
 * import { CachingInjectable, registerCachingService } from 'aspect-cache/tsyringe';
 *
 * @CachingInjectable()
 * class ProductCatalogue {
 *   constructor(private readonly caching: CachingService, private readonly db: Database) {}
 *   @Cache() async getPrice(id: string) { return this.db.price(id); }   // cached in the injected service
 *   async updatePrice(id: string, price: number) {
 *     await this.db.setPrice(id, price);
 *     await this.caching.invalidateCall(() => this.getPrice(id));
 *   }
 * }
 *
 * registerCachingService(container, new CachingService({ backend }));
 * const catalogue = container.resolve(ProductCatalogue);
 *
 * @packageDocumentation
 * @module aspect-cache/tsyringe
 */
import { injectable, type DependencyContainer, type InjectionToken } from 'tsyringe';
import type { ClassOnlyDecorator } from './decorators/decorator-types.js';
import { CachingError, errors } from './errors.js';
import { BOUND_SERVICE, bindCachingService, CachingService } from './service/caching-service.js';

/**
 * Registers `service` in `container` under the {@link CachingService} class token, so that constructors
 * declaring a `CachingService` parameter receive it (and, for {@link CachingInjectable} classes, their cached
 * methods use it). Each child container can register its own service; resolutions in a child see the
 * nearest registration.
 *
 * Register the service before resolving anything that needs it: tsyringe constructs an unregistered class
 * token itself, so each resolution would otherwise get a new, private `CachingService`. The container does
 * not own the service: call `service.dispose()` when you are done with it.
 *
 * @param container the tsyringe container (the global `container`, or a child container).
 * @param service the service to register. @default new CachingService()
 * @returns the registered service.
 *
 * @example
 * const requestScope = container.createChildContainer();
 * const caching = registerCachingService(requestScope, new CachingService({ keyPrefix: 'tenant-42:' }));
 */
export function registerCachingService(container: DependencyContainer, service: CachingService = new CachingService()): CachingService {
  if (container === null || typeof container !== 'object' || typeof container.registerInstance !== 'function') {
    throw new CachingError(errors.E_INVALID_OPTION, 'registerCachingService: the first argument must be a tsyringe DependencyContainer (container or container.createChildContainer()).');
  }
  if (!(service instanceof CachingService)) {
    throw new CachingError(errors.E_INVALID_OPTION, 'registerCachingService: the second argument must be a CachingService (or omit it to register a new one).');
  }
  container.registerInstance(CachingService, service);
  return service;
}

/** Options of {@link CachingInjectable}, passed on to tsyringe's `injectable()`. */
export interface CachingInjectableOptions {
  /** Tokens under which the class is also registered in tsyringe's global container (as `injectable({ token })`). */
  token?: InjectionToken<any> | InjectionToken<any>[];
}

type AnyClass = abstract new (...args: any[]) => object;

/** Metadata keys tsyringe reads from a class: the parameter types TypeScript emits, and `@inject` overrides. */
const PARAM_TYPES = 'design:paramtypes';
const INJECTION_TOKENS = 'injectionTokens';

/**
 * Class decorator that acts like tsyringe's `injectable()` and, in addition, binds to each new instance the
 * `CachingService` its constructor receives (see `bindCachingService`): the instance's `@Cache` methods are
 * cached in that service, and its `@InvalidateCache` methods invalidate there, instead of
 * `CachingService.default`. Instances resolved from two containers with two services never share entries.
 *
 * The decorated class is replaced by a subclass with the same name, constructor parameters and metadata, whose
 * constructor calls the original one and then binds the first `CachingService` argument. So:
 * - the constructor must receive the service: declare a `CachingService` parameter (injected by type with
 *   `emitDecoratorMetadata`, or with `@inject(token)`); constructing an instance without one throws a
 *   `CachingError`, rather than silently falling back to the shared default service;
 * - cached methods called from the original constructor itself still run before the binding, on
 *   `CachingService.default`;
 * - it works with any way of constructing the class: container resolution, factory registrations (needed with
 *   TC39 decorators, where tsyringe gets no parameter types), or `new` in a test.
 *
 * For a lifecycle other than transient, register the decorated class explicitly, e.g.
 * `container.register(ProductCatalogue, { useClass: ProductCatalogue }, { lifecycle: Lifecycle.ContainerScoped })`
 * (a container-scoped instance is created in, and bound to the service of, each child container).
 *
 * @example
 * @CachingInjectable()
 * class ProductCatalogue {
 *   constructor(readonly caching: CachingService) {}
 *   @Cache() async getProducts() { addDependency('ProductList'); return db.products(); }
 *   async addProduct(p: Product) { await db.add(p); await this.caching.invalidate('ProductList'); }
 * }
 *
 * const tenantA = container.createChildContainer();
 * registerCachingService(tenantA, new CachingService());
 * const catalogue = tenantA.resolve(ProductCatalogue); // cached in tenantA's service
 */
export function CachingInjectable(options?: CachingInjectableOptions): ClassOnlyDecorator {
  return function cachingInjectableDecorator(...args: unknown[]): any {
    const [target, context] = args;
    const isStandard = args.length === 2 && (context as { kind?: unknown } | null | undefined)?.kind === 'class';
    if (typeof target !== 'function' || (!isStandard && args.length !== 1)) {
      throw new CachingError(errors.E_DECORATOR_TARGET, '@CachingInjectable decorates classes only; write @CachingInjectable() above the class.');
    }
    const bound = bindingSubclass(target as AnyClass);
    injectable(options)(bound as unknown as new (...args: any[]) => object);
    return bound;
  };
}

function bindingSubclass(original: AnyClass): AnyClass {
  const name = original.name;
  const Bound = class extends (original as new (...args: any[]) => object) {
    constructor(...args: any[]) {
      super(...args);
      // A binding made by the original constructor itself is deliberate: keep it.
      if (Object.prototype.hasOwnProperty.call(this, BOUND_SERVICE)) return;
      const services = [...new Set(args.filter((a): a is CachingService => a instanceof CachingService))];
      if (services.length === 0) {
        throw new CachingError(
          errors.E_DECORATOR_TARGET,
          `@CachingInjectable on ${name}: the constructor received no CachingService, so there is no service to bind; add a constructor parameter typed CachingService (and registerCachingService(container) in the container), or use tsyringe's @injectable() to cache in CachingService.default.`,
        );
      }
      if (services.length > 1) {
        throw new CachingError(
          errors.E_DECORATOR_TARGET,
          `@CachingInjectable on ${name}: the constructor received ${services.length} different CachingService instances, so which one caches its methods is ambiguous; inject one, or call bindCachingService(this, service) in the constructor.`,
        );
      }
      bindCachingService(this, services[0]!);
    }
  };
  Object.defineProperty(Bound, 'name', { value: name, configurable: true });
  // tsyringe reads the parameter types, and reads @inject overrides as *own* metadata: copy both, so the
  // subclass resolves exactly like the original (copies, since tsyringe writes into the array it reads).
  const metadata = Reflect as unknown as {
    getMetadata?(key: string, target: object): unknown;
    getOwnMetadata?(key: string, target: object): unknown;
    defineMetadata?(key: string, value: unknown, target: object): void;
  };
  if (typeof metadata.getMetadata === 'function' && typeof metadata.defineMetadata === 'function') {
    const parameterTypes = metadata.getMetadata(PARAM_TYPES, original);
    if (Array.isArray(parameterTypes)) metadata.defineMetadata(PARAM_TYPES, [...parameterTypes], Bound);
    const tokens = metadata.getOwnMetadata?.(INJECTION_TOKENS, original);
    if (tokens !== null && typeof tokens === 'object') metadata.defineMetadata(INJECTION_TOKENS, { ...tokens }, Bound);
  }
  return Bound;
}
