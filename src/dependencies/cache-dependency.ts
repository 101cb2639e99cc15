import { CachingError, errors } from '../errors.js';
import { instanceKeyOf } from '../keys/key-builder.js';

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
   * them: adding a dependency registers its own key only.
   */
  readonly cascadeDependencies?: Iterable<CacheDependency>;
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
    const key = object !== null && typeof object === 'object' ? instanceKeyOf(object) : null;
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

/** The key of one dependency, validated. */
export function dependencyKey(dependency: DependencyLike, where: string): string {
  if (typeof dependency === 'string') {
    if (dependency.length === 0) throw emptyKey(where);
    return dependency;
  }
  if (dependency !== null && typeof dependency === 'object' && typeof dependency.getCacheKey === 'function') {
    const key = dependency.getCacheKey();
    if (typeof key !== 'string' || key.length === 0) {
      throw new CachingError(
        errors.E_INVALID_OPTION,
        `${where}: ${describe(dependency)}.getCacheKey() returned ${typeof key === 'string' ? 'an empty string' : String(key)}; it must return a non-empty string.`,
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
 * object and each key is visited once.
 */
export function cascadeClosure(dependencies: readonly DependencyLike[], where: string): string[] {
  const keys = new Set<string>();
  const seen = new Set<object>();
  const stack: DependencyLike[] = [...dependencies];
  while (stack.length > 0) {
    const dependency = stack.pop()!;
    if (typeof dependency === 'object' && dependency !== null) {
      if (seen.has(dependency)) continue;
      seen.add(dependency);
    }
    const key = dependencyKey(dependency, where);
    // Dedupe by key too: a cascadeDependencies getter may build fresh objects on every access.
    if (keys.has(key)) continue;
    keys.add(key);
    if (typeof dependency === 'object' && dependency.cascadeDependencies) {
      for (const cascaded of dependency.cascadeDependencies) stack.push(cascaded);
    }
  }
  return [...keys];
}

function emptyKey(where: string): CachingError {
  return new CachingError(errors.E_INVALID_OPTION, `${where}: a dependency key must be a non-empty string.`);
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (typeof value === 'object') return `a ${(value as object).constructor?.name ?? 'null-prototype'} object`;
  return `${typeof value} ${String(value)}`;
}
