import { CachingError, errors } from '../errors.js';
import { validateCacheOptions, type CacheOptions } from '../service/options.js';
import type { ClassOnlyDecorator } from './decorator-types.js';
import { setClassOptions } from './class-registry.js';

/**
 * Class-level defaults for the class's `@Cache` methods (and its subclasses'): `scope`, `profile`, `ttl`…
 * Method options override them.
 *
 * @example
 * @CacheConfiguration({ scope: 'billing.UserService', profile: 'hot' })
 * class UserService { @Cache() async find(id: string) { … } }
 */
export function CacheConfiguration(options: Omit<CacheOptions, 'key' | 'ignoreArgs'>): ClassOnlyDecorator {
  if (typeof options === 'function') throw new CachingError(errors.E_DECORATOR_TARGET, '@CacheConfiguration is a decorator factory: write @CacheConfiguration({ … }) with parentheses.');
  // Options that are not an object fail here; the rest is checked when the class is decorated, so that the
  // message names it.
  if (options === null || typeof options !== 'object' || Array.isArray(options)) validateCacheOptions(options, '@CacheConfiguration', 'class');
  return function cacheConfigurationDecorator(...args: unknown[]): any {
    const [target, context] = args;
    const isStandard = args.length === 2 && (context as { kind?: unknown } | undefined)?.kind === 'class';
    if (typeof target !== 'function' || (!isStandard && args.length !== 1)) {
      const member = isStandard || context === undefined ? '' : ` (it was put on ${describeMember(target, context)})`;
      throw new CachingError(errors.E_DECORATOR_TARGET, `@CacheConfiguration decorates classes only${member}; put it on the class, and @Cache() on the methods.`);
    }
    const where = `@CacheConfiguration on ${target.name || '(anonymous class)'}`;
    const validated = validateCacheOptions(options, where, 'class');
    if ((validated as CacheOptions).key !== undefined || (validated as CacheOptions).ignoreArgs !== undefined) {
      throw new CachingError(errors.E_INVALID_OPTION, `${where}: key and ignoreArgs are per method; set them on @Cache.`);
    }
    setClassOptions(target, validated);
    return undefined;
  };
}

/** "ProductCatalogue.getPrice" for a legacy member decoration, the member's name for a TC39 one. */
function describeMember(target: unknown, context: unknown): string {
  if (typeof context === 'string' || typeof context === 'symbol') {
    const cls = typeof target === 'function' ? target : (target as { constructor?: Function } | null)?.constructor;
    return `${cls?.name ? `${cls.name}.` : ''}${String(context)}`;
  }
  const c = context as { kind?: unknown; name?: unknown } | null;
  return c !== null && typeof c === 'object' ? `the ${String(c.kind)} ${String(c.name)}` : 'something that is not a class';
}
