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
  const validated = validateCacheOptions(options, '@CacheConfiguration', 'class');
  if ((validated as CacheOptions).key !== undefined || (validated as CacheOptions).ignoreArgs !== undefined) {
    throw new CachingError(errors.E_INVALID_OPTION, '@CacheConfiguration: key and ignoreArgs are per method; set them on @Cache.');
  }
  return function cacheConfigurationDecorator(...args: unknown[]): any {
    const [target, context] = args;
    const isStandard = args.length === 2 && (context as { kind?: unknown } | undefined)?.kind === 'class';
    if (typeof target !== 'function' || (!isStandard && args.length !== 1)) {
      throw new CachingError(errors.E_DECORATOR_TARGET, '@CacheConfiguration decorates classes only.');
    }
    setClassOptions(target, validated);
    return undefined;
  };
}
