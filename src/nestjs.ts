/**
 * NestJS integration of aspect-cache: a module that provides a {@link CachingService} and makes every provider
 * and controller with `@Cache` / `@InvalidateCache` methods use it, with no further code.
 *
 * `@nestjs/common` and `@nestjs/core` are optional peer dependencies: only this entry point imports them.
 *
 * @example
 * import { Controller, Get, Injectable, Module, Param } from '@nestjs/common';
 * import { Cache, CachingService, InvalidateCache } from 'aspect-cache';
 * import { CachingModule } from 'aspect-cache/nestjs';
 *
 * @Injectable()
 * class CatalogueService {
 *   @Cache({ ttl: 60_000 }) async price(id: string) { return db.price(id); }   // cached in the module's service
 *   @InvalidateCache('price') async setPrice(id: string, price: number) { await db.setPrice(id, price); }
 * }
 *
 * @Module({ imports: [CachingModule.forRoot({ keyPrefix: 'shop:' })], providers: [CatalogueService] })
 * class AppModule {}
 *
 * @packageDocumentation
 * @module aspect-cache/nestjs
 */
import type { DynamicModule, InjectionToken, ModuleMetadata, OptionalFactoryDependency } from '@nestjs/common';
import { DiscoveryModule, DiscoveryService } from '@nestjs/core';
import { hasDecoratedMethods } from './decorators/copy-metadata.js';
import { CachingError, errors } from './errors.js';
import { checkKnownOptions } from './options-check.js';
import { BOUND_SERVICE, bindCachingService, CachingService, defaultServiceSlot, serviceInternals, SERVICE_OPTION_NAMES, type CachingServiceOptions } from './service/caching-service.js';

/** How the module behaves, beside which service it provides. */
export interface CachingModuleSettings {
  /**
   * Register the module globally, so that every module can inject `CachingService` without importing it.
   * @default true
   */
  global?: boolean | undefined;
  /**
   * Make the module's service `CachingService.default` from the module's initialization until application
   * shutdown (then the previous default comes back). Providers that Nest creates after start-up (request-scoped
   * and transient providers resolved per request, providers of lazily loaded modules) are not bound to the
   * service; with `setDefault` their cached methods still use it, through the default.
   *
   * Several Nest applications in one process each bind their own singletons, but there is one default: the
   * service of the application started last. Set `setDefault: false` to leave the default alone; a provider
   * created after start-up then binds itself: inject `CachingService` and call `bindCachingService(this,
   * caching)` in its constructor.
   * @default true
   */
  setDefault?: boolean | undefined;
  /**
   * Dispose the service (and so its backends) on application shutdown (`app.close()`, or a signal with
   * `enableShutdownHooks()`).
   * @default true when the module created the service from options; false for a service you passed in
   *   (`{ service }`, or a `CachingService` returned by `useFactory`): whoever created it disposes it.
   */
  dispose?: boolean | undefined;
}

/** Options of {@link CachingModule.forRoot}: the options of a new service, or an existing service. */
export type CachingModuleOptions =
  | (CachingServiceOptions & {
      /** Not with service options: give either options (the module creates the service) or `service`. */
      service?: never;
    })
  | {
      /** An existing service to provide; the module does not dispose it (unless `dispose: true`). */
      service: CachingService;
    };

/** Options of {@link CachingModule.forRootAsync}. */
export interface CachingModuleAsyncOptions extends CachingModuleSettings {
  /** Modules exporting the providers `inject` names (a config module, say). */
  imports?: ModuleMetadata['imports'];
  /** Providers passed to `useFactory`, in order. */
  inject?: Array<InjectionToken | OptionalFactoryDependency>;
  /**
   * Returns the service to provide, or the options to create it with (then the module owns it). May be async.
   */
  useFactory: (...args: any[]) => CachingService | CachingServiceOptions | Promise<CachingService | CachingServiceOptions>;
}

const SETTING_NAMES: readonly string[] = ['global', 'setDefault', 'dispose'];
const ASYNC_OPTION_NAMES: readonly string[] = ['imports', 'inject', 'useFactory', ...SETTING_NAMES];

/** Token of the module's internal provider that owns the service and runs the lifecycle hooks. */
const RUNTIME = Symbol('aspect-cache CachingModule runtime');

/**
 * Provides a {@link CachingService} (injected by its class, `CachingService`) and binds it to every provider
 * and controller whose class has `@Cache` or `@InvalidateCache` methods, so their entries live in this
 * service instead of `CachingService.default`.
 *
 * - **When.** The binding is done in the module's `onModuleInit`, which Nest runs before the hooks of the
 *   modules that import it (a global module's first of all): a provider's own `onModuleInit` warming a cache
 *   already uses the module's service. Cached calls made in constructors run before it, on the default.
 * - **What.** Every singleton provider and controller of the application (all modules), and the transient
 *   instances created at start-up. An instance that already has a service bound (`bindCachingService` in its
 *   constructor) keeps it. Request-scoped providers are covered by `setDefault` (see
 *   {@link CachingModuleSettings.setDefault}).
 * - **Shutdown.** On `onApplicationShutdown` the previous default comes back and the service is disposed if
 *   the module owns it (see {@link CachingModuleSettings.dispose}).
 *
 * Nest's own decorators are legacy ones: the application is compiled with `experimentalDecorators` (and
 * `emitDecoratorMetadata` for constructor injection by type); `@Cache` works in that mode, and keeps the
 * metadata of `@Get`, `@SetMetadata`, guards… in either order.
 */
export class CachingModule {
  /**
   * The module with a service created from `options` (per application: two applications built from one
   * module class get two services), or with the service you pass as `{ service }`.
   *
   * @example
   * CachingModule.forRoot({ backend: new MemoryBackend({ maxEntries: 10_000 }), defaults: { ttl: 60_000 } })
   * CachingModule.forRoot({ service: caching, global: false })
   */
  static forRoot(options: CachingModuleOptions & CachingModuleSettings = {}): DynamicModule {
    const where = 'CachingModule.forRoot';
    if (options === null || typeof options !== 'object') throw new CachingError(errors.E_INVALID_OPTION, `${where}: options must be an object (CachingService options, or { service }).`);
    checkKnownOptions(where, options, [...SERVICE_OPTION_NAMES, 'service', ...SETTING_NAMES]);
    const { global, setDefault, dispose, service, ...serviceOptions } = options as CachingServiceOptions & CachingModuleSettings & { service?: unknown };
    const settings = checkSettings(where, { global, setDefault, dispose });
    if (service !== undefined) {
      if (!(service instanceof CachingService)) throw new CachingError(errors.E_INVALID_OPTION, `${where}: option service must be a CachingService (or pass CachingService options instead).`);
      const extra = Object.keys(serviceOptions);
      if (extra.length > 0) throw new CachingError(errors.E_INVALID_OPTION, `${where}: option service comes with its own options; remove ${extra.map(n => `'${n}'`).join(', ')} or drop service.`);
    }
    return moduleOf(settings, [], [DiscoveryService], discovery => runtimeFor(service ?? { ...serviceOptions }, settings, discovery as DiscoveryService, where));
  }

  /**
   * The module with a service that `useFactory` returns (or creates from the options it returns), with the
   * providers named by `inject` (from `imports`).
   *
   * @example
   * CachingModule.forRootAsync({
   *   imports: [ConfigModule],
   *   inject: [ConfigService],
   *   useFactory: (config: ConfigService) => ({ keyPrefix: config.get('CACHE_PREFIX') }),
   * })
   */
  static forRootAsync(options: CachingModuleAsyncOptions): DynamicModule {
    const where = 'CachingModule.forRootAsync';
    if (options === null || typeof options !== 'object') throw new CachingError(errors.E_INVALID_OPTION, `${where}: options must be an object { imports?, inject?, useFactory }.`);
    checkKnownOptions(where, options, ASYNC_OPTION_NAMES);
    const { imports = [], inject = [], useFactory, global, setDefault, dispose } = options;
    if (typeof useFactory !== 'function') throw new CachingError(errors.E_INVALID_OPTION, `${where}: option useFactory must be a function returning a CachingService or CachingService options.`);
    if (!Array.isArray(inject)) throw new CachingError(errors.E_INVALID_OPTION, `${where}: option inject must be an array of provider tokens.`);
    if (!Array.isArray(imports)) throw new CachingError(errors.E_INVALID_OPTION, `${where}: option imports must be an array of modules.`);
    const settings = checkSettings(where, { global, setDefault, dispose });
    return moduleOf(settings, imports, [DiscoveryService, ...inject], async (discovery, ...deps) => {
      const made: unknown = await useFactory(...deps);
      if (made === null || typeof made !== 'object') {
        throw new CachingError(errors.E_INVALID_OPTION, `${where}: useFactory returned ${made === null ? 'null' : typeof made}; return a CachingService or CachingService options.`);
      }
      return runtimeFor(made as CachingService | CachingServiceOptions, settings, discovery as DiscoveryService, `${where}: the options useFactory returned`);
    });
  }
}

interface Settings {
  readonly global: boolean;
  readonly setDefault: boolean;
  readonly dispose: boolean | undefined;
}

function checkSettings(where: string, settings: CachingModuleSettings): Settings {
  for (const name of SETTING_NAMES) {
    const value = settings[name as keyof CachingModuleSettings];
    if (value !== undefined && typeof value !== 'boolean') throw new CachingError(errors.E_INVALID_OPTION, `${where}: option ${name} must be true or false.`);
  }
  return { global: settings.global ?? true, setDefault: settings.setDefault ?? true, dispose: settings.dispose };
}

function moduleOf(settings: Settings, imports: NonNullable<ModuleMetadata['imports']>, inject: Array<InjectionToken | OptionalFactoryDependency>, create: (...deps: unknown[]) => CachingModuleRuntime | Promise<CachingModuleRuntime>): DynamicModule {
  return {
    module: CachingModule,
    global: settings.global,
    imports: [DiscoveryModule, ...imports],
    providers: [
      { provide: RUNTIME, useFactory: create, inject },
      { provide: CachingService, useFactory: (runtime: CachingModuleRuntime) => runtime.service, inject: [RUNTIME] },
    ],
    exports: [CachingService],
  };
}

function runtimeFor(source: CachingService | CachingServiceOptions, settings: Settings, discovery: DiscoveryService, where: string): CachingModuleRuntime {
  if (source instanceof CachingService) return new CachingModuleRuntime(source, settings.dispose ?? false, settings.setDefault, discovery);
  checkKnownOptions(where, source, SERVICE_OPTION_NAMES);
  return new CachingModuleRuntime(new CachingService(source), settings.dispose ?? true, settings.setDefault, discovery);
}

/** What aspect-cache reads of Nest's instance wrappers (a structural subset of `InstanceWrapper`). */
interface Wrapper {
  readonly instance: unknown;
  readonly isTransient?: boolean;
  isDependencyTreeStatic?(): boolean;
  getStaticTransientInstances?(): Array<{ instance: unknown } | undefined>;
}

/** The services made default by live modules, oldest first, and the default from before the first of them. */
const defaults: { stack: CachingService[]; before: CachingService | undefined } = { stack: [], before: undefined };

/** The module's own provider: holds the service and runs the binding and the shutdown. */
class CachingModuleRuntime {
  #madeDefault = false;

  constructor(
    readonly service: CachingService,
    readonly owned: boolean,
    readonly setDefault: boolean,
    readonly discovery: DiscoveryService,
  ) {}

  onModuleInit(): void {
    const wrappers = [...this.discovery.getProviders(), ...this.discovery.getControllers()] as unknown as Wrapper[];
    for (const wrapper of wrappers) for (const instance of instancesOf(wrapper)) this.#bind(instance);
    if (this.setDefault) {
      if (defaults.stack.length === 0) defaults.before = defaultServiceSlot.get();
      defaults.stack.push(this.service);
      defaultServiceSlot.set(this.service);
      this.#madeDefault = true;
    }
  }

  async onApplicationShutdown(): Promise<void> {
    if (this.#madeDefault) {
      this.#madeDefault = false;
      const i = defaults.stack.lastIndexOf(this.service);
      if (i >= 0) defaults.stack.splice(i, 1);
      // Only put a default back if ours is still it (someone may have set another since).
      if (defaultServiceSlot.get() === this.service) {
        const previous = defaults.stack.at(-1) ?? defaults.before;
        defaultServiceSlot.set(previous !== undefined && !serviceInternals.isDisposed(previous) ? previous : undefined);
      }
      if (defaults.stack.length === 0) defaults.before = undefined;
    }
    if (this.owned) await this.service.dispose();
  }

  #bind(instance: unknown): void {
    if (instance === null || (typeof instance !== 'object' && typeof instance !== 'function')) return;
    // A binding the instance made itself (or another module made first) is deliberate: keep it.
    if (Object.prototype.hasOwnProperty.call(instance, BOUND_SERVICE)) return;
    if (!hasDecoratedMethods(instance)) return;
    if (!Object.isExtensible(instance)) {
      const name = typeof instance === 'function' ? instance.name : (instance as object).constructor?.name;
      throw new CachingError(
        errors.E_INVALID_OPTION,
        `CachingModule: the provider ${name || '(anonymous)'} has cached methods but is frozen or sealed, so the module cannot bind its CachingService to it; bind it before freezing (bindCachingService(instance, caching)) or do not freeze it.`,
      );
    }
    bindCachingService(instance, this.service);
  }
}

/** The instances of a wrapper that exist after start-up: a singleton's, or a transient provider's per inquirer. */
function instancesOf(wrapper: Wrapper): unknown[] {
  if (wrapper.isTransient === true) return (wrapper.getStaticTransientInstances?.() ?? []).map(item => item?.instance);
  // A request-scoped tree has only a placeholder now; its instances are created per request (see setDefault).
  if (typeof wrapper.isDependencyTreeStatic === 'function' && !wrapper.isDependencyTreeStatic()) return [];
  return [wrapper.instance];
}
