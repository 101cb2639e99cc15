/**
 * aspect-cache: aspect-oriented caching for TypeScript. `@Cache` on read methods, `@InvalidateCache` on write
 * methods, dependencies propagated from nested cached calls to their callers.
 *
 * @packageDocumentation
 * @module aspect-cache
 */
export { Cache } from './decorators/cache.js';
export { InvalidateCache, type InvalidationTarget } from './decorators/invalidate-cache.js';
export { CacheKey } from './decorators/cache-key.js';
export { CacheConfiguration } from './decorators/cache-configuration.js';
export type { MethodOnlyDecorator, CacheKeyDecorator, ClassOnlyDecorator } from './decorators/decorator-types.js';
export { CachingService, addDependency, bindCachingService, readContext, type CachingServiceOptions } from './service/caching-service.js';
export type { ContextProvider, ContextProviders } from './context/vary-by.js';
export { suspendDependencyPropagation } from './context/caching-context.js';
export { setCacheOptions, type CacheEntryOptions } from './context/set-cache-options.js';
export type { CacheOptions, ProfileOptions } from './service/options.js';
export { StringDependency, ObjectDependency, type CacheDependency, type DependencyLike } from './dependencies/cache-dependency.js';
export {
  defineDependency,
  type DependencyBuilder,
  type DependencyKeyer,
  type DependencyKeyers,
  type DependencyRecord,
  type DependencyValue,
  type ByKeyerNames,
} from './dependencies/define-dependency.js';
export { MemoryBackend, type MemoryBackendOptions } from './backends/memory/memory-backend.js';
export type { InvalidationBus, BusReceiver } from './backends/invalidation-bus.js';
export { LayeredBackend, type LayeredBackendOptions } from './backends/layered/layered-backend.js';
export type {
  CachingBackend,
  CacheLookup,
  CacheHit,
  CacheMiss,
  CacheEntryInput,
  StoreOutcome,
  StoreRefusal,
  InvalidateOptions,
  InvalidationResult,
  RemovalReason,
  BackendEvent,
  BackendListener,
} from './backends/backend.js';
export { CachingError, errors, type CachingErrorCode } from './errors.js';
export type { OpenTelemetryApi, TelemetryOption } from './telemetry/open-telemetry.js';
export type { FailSafeOptions } from './service/options.js';
export { systemClock, type Clock, type Logger, type CacheStats, type CacheEventMap, type CacheEventName, type SkipReason, type ResyncReason, type MaybePromise } from './types.js';
