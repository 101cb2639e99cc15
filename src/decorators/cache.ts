import { CachingError, errors } from '../errors.js';
import { capture, serviceOf } from '../service/caching-service.js';
import { validateCacheOptions, type CacheOptions } from '../service/options.js';
import { copyMetadata } from './copy-metadata.js';
import type { MethodOnlyDecorator } from './decorator-types.js';
import { checkFactoryCall, memberDecoration, placement, qualified, type StandardContext } from './decorator-shape.js';
import { MethodDescriptor, registerDescriptor } from './method-descriptor.js';
import { noteCachedMethod } from './definition-state.js';

/**
 * Caches a method's results (cache-aside) keyed by class, method and arguments. Works on instance and
 * static methods, sync and async, under legacy (`experimentalDecorators`) and TC39 decorators.
 *
 * While the method runs, the dependencies it adds (`addDependency`) and the cached methods it calls are
 * recorded with its entry; invalidating any of them invalidates it. Async methods cache the resolved value;
 * rejections are never cached; concurrent misses on one key run the method once.
 *
 * @example
 * class ProductCatalogue {
 *   @Cache({ ttl: 60_000 })
 *   async getPrice(id: string) {
 *     addDependency(`ProductPrice:${id}`);
 *     return this.db.price(id);
 *   }
 * }
 */
export function Cache(options?: CacheOptions): MethodOnlyDecorator {
  checkFactoryCall('@Cache', arguments);
  // Options that are not an object fail here; the rest is checked at decoration, where the member's name is
  // known for the message ("@Cache on ProductCatalogue.getPrice: …").
  if (options !== undefined && (options === null || typeof options !== 'object' || Array.isArray(options))) validateCacheOptions(options, '@Cache', 'method');
  return function cacheDecorator(...args: unknown[]): any {
    const decoration = memberDecoration(args, '@Cache');
    if (decoration.mode === 'standard') {
      const { value, context } = decoration;
      if (context.kind !== 'method' || typeof value !== 'function') throw wrongTarget(context);
      const descriptor = new MethodDescriptor(String(context.name), context.static === true, value, checked(options, String(context.name)));
      noteCachedMethod(context.metadata, descriptor);
      if (context.static) context.addInitializer(function (this: Function) { descriptor.bindClass(this); });
      return wrap(descriptor);
    }
    const { target, key, descriptor: property } = decoration;
    const isStatic = typeof target === 'function';
    const cls = isStatic ? (target as Function) : (target as { constructor: Function }).constructor;
    const member = qualified(cls.name, String(key));
    if (property === undefined || typeof property.value !== 'function') {
      const what = property === undefined ? 'a property' : property.get || property.set ? 'an accessor' : 'a non-function property';
      throw new CachingError(errors.E_DECORATOR_TARGET, `@Cache on ${member}: ${what} cannot be cached; put @Cache on a method.`);
    }
    const descriptor = new MethodDescriptor(String(key), isStatic, property.value as Function, checked(options, member));
    descriptor.bindClass(cls);
    // With emitDecoratorMetadata, TypeScript records the declared return type: a Promise-typed method is async.
    const reflect = Reflect as { getMetadata?: (key: string, target: object, property: string | symbol) => unknown };
    const returnType = typeof reflect.getMetadata === 'function' ? reflect.getMetadata('design:returntype', target, key) : undefined;
    if (returnType === Promise) descriptor.returnsPromise = true;
    else if (typeof returnType === 'function' && returnType !== Object) descriptor.declaredSync = true;
    noteCachedMethod(cls, descriptor);
    return { ...property, value: wrap(descriptor) };
  };
}

function checked(options: CacheOptions | undefined, member: string): Readonly<CacheOptions> {
  return validateCacheOptions(options, `@Cache on ${member}`, 'method');
}

function wrap(descriptor: MethodDescriptor): Function {
  const wrapper = descriptor.declaredAsync
    ? function cached(this: unknown, ...args: unknown[]): unknown {
        if (capture.active) {
          capture.calls.push({ descriptor, self: this, args });
          return Promise.resolve(undefined);
        }
        // An async method reports every failure (unkeyable argument, recursion…) as a rejection, never a throw.
        try {
          return serviceOf(this, descriptor).invoke(descriptor, this, args);
        } catch (error) {
          return Promise.reject(error);
        }
      }
    : function cached(this: unknown, ...args: unknown[]): unknown {
        if (capture.active) {
          capture.calls.push({ descriptor, self: this, args });
          return undefined;
        }
        return serviceOf(this, descriptor).invoke(descriptor, this, args);
      };
  Object.defineProperty(wrapper, 'name', { value: descriptor.methodName, configurable: true });
  registerDescriptor(wrapper, descriptor);
  copyMetadata(descriptor.fn, wrapper);
  return wrapper;
}

function wrongTarget(context: StandardContext): CachingError {
  if (context.kind === 'class') {
    return new CachingError(errors.E_DECORATOR_TARGET, `@Cache on class ${String(context.name ?? '(anonymous)')}: @Cache decorates class members, not classes; ${placement('@Cache')}.`);
  }
  return new CachingError(
    errors.E_DECORATOR_TARGET,
    `@Cache on ${String(context.name)}: a ${context.kind} cannot be cached; put @Cache on a method.`,
  );
}
