import { CachingError, errors } from '../errors.js';
import { instanceKeyOf, UnkeyableValueError } from '../keys/key-builder.js';

/**
 * Something a cached value depends on. Invalidating it (`CachingService.invalidate`) removes every entry
 * that recorded it, directly or through a nested cached call.
 *
 * Domain objects usually implement it themselves: a `Product` is its own dependency, and can cascade to a
 * broader one (the whole catalogue).
 *
 * @example
 * class Product implements CacheDependency {
 *   constructor(readonly name: string, readonly price: number) {}
 *   getCacheKey() { return `Product:${this.name}`; }
 *   get cascadeDependencies() { return [catalogueDependency]; }
 * }
 */
export interface CacheDependency {
  /** The dependency's key, unique within the service's key space. */
  getCacheKey(): string;
  /**
   * Dependencies invalidated together with this one (transitively, cycle-safe). Only invalidation follows
   * them: adding a dependency registers its own key only. `undefined` means none (so implementations can
   * declare it `Iterable<CacheDependency> | undefined` under `exactOptionalPropertyTypes`).
   */
  readonly cascadeDependencies?: Iterable<CacheDependency> | undefined;
}

/**
 * A dependency identified by a string.
 *
 * @example
 * const priceList = new StringDependency('PriceList');
 * addDependency(priceList);          // same as addDependency('PriceList')
 */
export class StringDependency implements CacheDependency {
  readonly #key: string;
  readonly cascadeDependencies: readonly CacheDependency[] | undefined;

  constructor(key: string, cascadeDependencies?: Iterable<CacheDependency>) {
    if (typeof key !== 'string' || key.length === 0) {
      throw new CachingError(errors.E_INVALID_OPTION, `StringDependency: the key must be a non-empty string, got ${String(key)}.`);
    }
    this.#key = key;
    this.cascadeDependencies = cascadeDependencies ? [...cascadeDependencies] : undefined;
  }

  getCacheKey(): string {
    return this.#key;
  }

  toString(): string {
    return `StringDependency(${this.#key})`;
  }
}

/**
 * A dependency on any keyable object: one with `@CacheKey` properties or a `getCacheKey()` method. Its key
 * is the class-qualified text the object contributes to a method's cache key (`Order{id=42}`,
 * `Product("corn")`), so objects of two classes with the same raw key never collide. The wrapped object's
 * `cascadeDependencies`, if any, are followed on invalidation.
 *
 * @example
 * addDependency(new ObjectDependency(order));   // order has @CacheKey() id
 */
export class ObjectDependency implements CacheDependency {
  readonly #key: string;
  readonly cascadeDependencies: Iterable<CacheDependency> | undefined;

  constructor(object: object) {
    let key: string | null;
    try {
      key = object !== null && typeof object === 'object' ? instanceKeyOf(object) : null;
    } catch (error) {
      const detail = error instanceof UnkeyableValueError ? `${error.description}${error.path ? ` at ${error.shownPath}` : ''}` : 'it threw while being read';
      const fix = error instanceof UnkeyableValueError && error.hint ? error.hint : error instanceof UnkeyableValueError && error.className ? `add @CacheKey properties or a getCacheKey() method to ${error.className}` : 'give it a string key';
      throw new CachingError(errors.E_UNKEYABLE, `ObjectDependency: the object cannot be a dependency (${detail} cannot be part of a key); ${fix}.`, { cause: error instanceof UnkeyableValueError ? error.cause : error });
    }
    if (key === null) {
      const name = (object as { constructor?: { name?: string } } | null)?.constructor?.name ?? typeof object;
      throw new CachingError(
        errors.E_UNKEYABLE,
        `ObjectDependency: a ${name} has no cache key; add @CacheKey properties or a getCacheKey() method to ${name}.`,
      );
    }
    this.#key = key;
    this.cascadeDependencies = (object as Partial<CacheDependency>).cascadeDependencies;
  }

  getCacheKey(): string {
    return this.#key;
  }
}

/** Anything `addDependency`/`invalidate` accept. */
export type DependencyLike = string | CacheDependency;

/**
 * The key of one dependency, validated: a non-empty string, or what a {@link CacheDependency}'s
 * `getCacheKey()` returns, which must be a non-empty string too (never coerced: `String()` would give every
 * object key "[object Object]"). Anything else, or a `getCacheKey()` that throws, is a `CachingError`.
 */
export function dependencyKey(dependency: DependencyLike, where: string): string {
  if (typeof dependency === 'string') {
    if (dependency.length === 0) throw emptyKey(where);
    return dependency;
  }
  let getCacheKey: unknown;
  try {
    getCacheKey = dependency !== null && typeof dependency === 'object' ? dependency.getCacheKey : undefined;
  } catch (error) {
    throw new CachingError(errors.E_UNKEYABLE, `${where}: reading getCacheKey of ${describe(dependency)} threw (${errorText(error)}); pass a string or an object with a getCacheKey() method.`, { cause: error });
  }
  if (typeof getCacheKey === 'function') {
    let key: unknown;
    try {
      key = getCacheKey.call(dependency);
    } catch (error) {
      throw new CachingError(errors.E_UNKEYABLE, `${where}: ${className(dependency)}.getCacheKey() threw (${errorText(error)}); it must return a non-empty string.`, { cause: error });
    }
    if (typeof key !== 'string' || key.length === 0) {
      throw new CachingError(
        errors.E_UNKEYABLE,
        `${where}: ${className(dependency)}.getCacheKey() returned ${typeof key === 'string' ? 'an empty string' : describeType(key)}; make it return a non-empty string.`,
      );
    }
    return key;
  }
  throw new CachingError(
    errors.E_INVALID_OPTION,
    `${where}: ${describe(dependency)} is not a dependency; pass a string or an object with a getCacheKey() method.`,
  );
}

/**
 * The keys of `dependencies` and, transitively, of their `cascadeDependencies`. Cycle-safe: each dependency
 * object is visited once, and the cascades of one key are followed once per distinct set of cascaded keys.
 *
 * Two objects with the same key may cascade to different keys (a product before and after it moved to another
 * category, two touches of one record before and after a rename), so a key already seen does not stop its
 * object's cascades from being followed; what does is the same key with the same cascaded keys, which is also
 * what ends a cycle of cascade objects built fresh on every access.
 */
export function cascadeClosure(dependencies: readonly DependencyLike[], where: string): string[] {
  const keys = new Set<string>();
  const seen = new Set<object>();
  const expanded = new Set<string>();
  const stack: Array<{ dependency: DependencyLike; key: string }> = dependencies.map(dependency => ({ dependency, key: dependencyKey(dependency, where) }));
  while (stack.length > 0) {
    const { dependency, key } = stack.pop()!;
    keys.add(key);
    if (typeof dependency !== 'object' || dependency === null) continue;
    if (seen.has(dependency)) continue;
    seen.add(dependency);
    const cascaded = dependency.cascadeDependencies;
    if (!cascaded) continue;
    const children = [...cascaded].map(child => ({ dependency: child, key: dependencyKey(child, where) }));
    // JSON of strings is injective: distinct (key, cascaded keys) give distinct signatures.
    const signature = JSON.stringify([key, ...children.map(c => c.key).sort()]);
    if (expanded.has(signature)) continue;
    expanded.add(signature);
    stack.push(...children);
  }
  return [...keys];
}

function emptyKey(where: string): CachingError {
  return new CachingError(errors.E_INVALID_OPTION, `${where}: a dependency key must be a non-empty string.`);
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (typeof value === 'object') return `a ${className(value)} object`;
  return `${typeof value} ${safeString(value)}`;
}

function className(value: unknown): string {
  try {
    const ctor = (value as { constructor?: { name?: unknown } } | null)?.constructor;
    if (ctor === undefined) return 'null-prototype';
    return typeof ctor.name === 'string' && ctor.name !== '' ? ctor.name : 'anonymous';
  } catch {
    return 'unreadable';
  }
}

function describeType(value: unknown): string {
  if (value === null) return 'null';
  if (typeof value === 'object') return Array.isArray(value) ? 'an array' : 'an object';
  if (typeof value === 'undefined') return 'undefined';
  return `a ${typeof value} (${safeString(value)})`;
}

function safeString(value: unknown): string {
  try {
    return String(value);
  } catch {
    return '?';
  }
}

function errorText(error: unknown): string {
  return error instanceof Error ? `${error.name}: ${error.message}` : safeString(error);
}
