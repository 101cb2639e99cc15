import { CachingError, errors } from '../errors.js';
import { CACHE_KEY_METADATA, registerCacheKeyProperty } from '../keys/key-builder.js';
import type { CacheKeyDecorator } from './decorator-types.js';
import { checkFactoryCall, memberDecoration, placement, qualified } from './decorator-shape.js';

/**
 * Marks a property (field, getter or accessor) as part of its instances' cache key. An instance with
 * `@CacheKey` properties can be a cached method's argument or `this`, and a dependency
 * (`new ObjectDependency(order)`): it is keyed by its class name and these properties, in declaration order.
 *
 * @example
 * class Order { @CacheKey() id: number; @CacheKey() tenant: string; … }
 */
export function CacheKey(): CacheKeyDecorator {
  checkFactoryCall('@CacheKey', arguments);
  return function cacheKeyDecorator(...args: unknown[]): any {
    const decoration = memberDecoration(args, '@CacheKey');
    if (decoration.mode === 'standard') {
      const { context } = decoration;
      const name = String(context.name);
      if (context.kind === 'class') {
        throw new CachingError(errors.E_DECORATOR_TARGET, `@CacheKey on class ${String(context.name ?? '(anonymous)')}: @CacheKey decorates class members, not classes; ${placement('@CacheKey')}.`);
      }
      if (context.static || context.private || !['field', 'getter', 'accessor'].includes(context.kind)) {
        const what = context.static ? 'a static member' : context.private ? 'a private member' : `a ${context.kind}`;
        throw new CachingError(errors.E_DECORATOR_TARGET, `@CacheKey on ${name}: ${what} cannot be part of an instance's key; put @CacheKey on a public instance field or getter.`);
      }
      // TC39 member decorators do not see the class; its metadata object (one per class, attached to it at the
      // end of its definition) does the job. Without metadata, fall back to recording it on construction.
      const metadata = context.metadata as Record<symbol, unknown> | undefined;
      if (metadata !== undefined && metadata !== null) {
        if (!Object.prototype.hasOwnProperty.call(metadata, CACHE_KEY_METADATA)) metadata[CACHE_KEY_METADATA] = [];
        const names = metadata[CACHE_KEY_METADATA] as string[];
        if (!names.includes(name)) names.push(name);
      } else {
        context.addInitializer(function (this: object) {
          registerCacheKeyProperty(declaringClassOf(this, name), name);
        });
      }
      return undefined;
    }
    const { target, key, descriptor } = decoration;
    const cls = typeof target === 'function' ? target : (target as { constructor: Function }).constructor;
    const member = qualified(cls.name, String(key));
    // Legacy decorators see a method or a setter only through its descriptor; TC39 ones through context.kind.
    const what =
      typeof target === 'function' ? 'a static member'
      : typeof key === 'symbol' ? 'a symbol-named property'
      : typeof descriptor?.value === 'function' ? 'a method'
      : descriptor !== undefined && descriptor.set !== undefined && descriptor.get === undefined ? 'a setter'
      : undefined;
    if (what !== undefined || typeof key !== 'string') {
      throw new CachingError(errors.E_DECORATOR_TARGET, `@CacheKey on ${member}: ${what} cannot be part of an instance's key; put @CacheKey on a public instance field or getter with a string name.`);
    }
    registerCacheKeyProperty((target as { constructor: Function }).constructor, key);
    return undefined;
  };
}

/** For getters the declaring class owns the property; for fields the instance's class is all we can see. */
function declaringClassOf(instance: object, name: string): Function {
  for (let o: object | null = Object.getPrototypeOf(instance); o !== null && o !== Object.prototype; o = Object.getPrototypeOf(o)) {
    if (Object.prototype.hasOwnProperty.call(o, name)) return (o as { constructor: Function }).constructor;
  }
  return (instance as { constructor: Function }).constructor;
}
