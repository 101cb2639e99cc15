import { CachingError, errors } from '../errors.js';
import type { CacheDependency } from './cache-dependency.js';

/**
 * A value a keyer returns and a `by*` method accepts: the identity of a record under one keyer.
 *
 * Values are keyed by their text, so an id read from a URL and the same id read from a database give the same
 * key whatever their type: `42`, `'42'` and `42n` are one key (a dependency means "this entity"). Strings are
 * keyed as they are (`'042'` and `'42.0'` are not `42`); an integral number as its exact digits (`-0` is `0`,
 * `1e21` is `1000000000000000000000`, the same as `10n ** 21n`); any other number as `String(n)` (`1.5`,
 * `NaN`, `Infinity`); a boolean as `'true'`/`'false'`.
 */
export type DependencyValue = string | number | bigint | boolean;

/** One keyer: reads a record's identity under one name (`byId: (p: Product) => p.id`). */
export type DependencyKeyer = (record: never) => DependencyValue;

/** The keyers given to {@link defineDependency}: `by*` names to functions of the record. */
export type DependencyKeyers = { readonly [name: string]: DependencyKeyer };

/**
 * The record type of a builder: what every keyer accepts (the intersection of their parameter types).
 *
 * @example
 * type P = DependencyRecord<{ byId: (p: Product) => number }>;   // Product
 */
export type DependencyRecord<K extends DependencyKeyers> = K[keyof K] extends (record: infer R) => DependencyValue ? R : never;

/**
 * Rejects, at compile time, keyer names that do not start with `by` (the builder's own members `all`, `of`
 * and `kind` never do, so a keyer can never shadow them). Keyers built at run time (a `Record<string, …>`)
 * are checked when defined only.
 */
export type ByKeyerNames<K> = {
  [N in keyof K]: string extends N ? K[N] : N extends `by${string}` ? K[N] : "a keyer's name must start with 'by' (byId, byName)";
};

/**
 * What {@link defineDependency} returns: one method per keyer (`product.byId(42)`), `all`, `of(record)` and
 * `kind`. Every dependency it gives is a plain {@link CacheDependency}, accepted wherever one is.
 */
export type DependencyBuilder<K extends DependencyKeyers> = {
  /** The kind the builder was defined with (`'product'`): the namespace of its keys. */
  readonly kind: string;
  /**
   * The dependency on every record of this kind (`product|all`): depend on it from lists and aggregates.
   * Invalidated by every `of(record)` touch.
   */
  readonly all: CacheDependency;
  /**
   * Every key `record` has (Kentico's "touch"): invalidating it invalidates each `by*` key of the record and
   * `all`. The record's values are read now (so touch the record as it was, before a rename, and again as it
   * is). Its own key is the first keyer's key, the others and `all` are its `cascadeDependencies`, so adding
   * it as a dependency (`addDependency(product.of(p))`) registers the first keyer's key only: that entry is
   * then invalidated by a touch of the record and by `product.<firstKeyer>(value)`, not by the other keyers
   * alone nor by `all`. Prefer adding the precise key you looked the record up by (`product.byName(name)`).
   */
  of(record: DependencyRecord<K>): CacheDependency;
} & {
  /** The dependency on the record whose value under this keyer is `value` (`product|byid|42`). */
  readonly [N in keyof K]: (value: ReturnType<K[N]>) => CacheDependency;
};

/** The builder's own members, which a keyer cannot be named after, with what each is (for the message). */
const RESERVED = new Map([
  ['all', 'the dependency on every record'],
  ['of', 'the touch of a record, of(record)'],
  ['kind', 'the kind the builder was defined with'],
]);

interface Keyer {
  readonly name: string;
  readonly keyer: (record: unknown) => unknown;
}

/**
 * Defines typed dependency keys for one kind of record (Kentico's dependency builder): `product.byId(42)` is
 * the dependency `product|byid|42`, `product.all` is `product|all`, and `invalidate(product.of(record))`
 * invalidates every key the record has ("touch").
 *
 * Keyers are named `by…` (their names are lowercased in keys; the builder keeps your spelling) and their
 * parameter must be annotated: the record type is inferred from it, each `by*` method accepts what its keyer
 * returns, a misspelt keyer is a compile error. Keys are escaped (`\` and `|` in the kind, the keyer name and
 * the value are prefixed with `\`), so no two kinds, keyers or values ever give the same key: kind `a|b` is
 * `a\|b|…`, never kind `a` with keyer `b`. Values are keyed by their text, so `42`, `'42'` and `42n` are the
 * same key (see {@link DependencyValue}). The same kind defined twice (in two modules or processes) shares its
 * keys: the kind is the namespace.
 *
 * Throws a `CachingError` (`E_INVALID_OPTION`) for an empty kind, keyers that are not an object of
 * functions, no keyer, a keyer name that does not start with `by`, or two names that are equal once
 * lowercased; the `by*` methods and `of` throw one (`E_UNKEYABLE`) for a value that is not a string,
 * number, bigint or boolean.
 *
 * @example
 * const product = defineDependency('product', {
 *   byId: (p: Product) => p.id,
 *   byName: (p: Product) => p.name,
 * });
 *
 * class Catalogue {
 *   @Cache() async getProduct(id: number) { addDependency(product.byId(id)); return db.product(id); }
 *   @Cache() async findByName(name: string) { addDependency(product.byName(name)); return db.byName(name); }
 *   @Cache() async list() { addDependency(product.all); return db.products(); }
 *   async rename(p: Product, name: string) {
 *     const renamed = await db.rename(p.id, name);
 *     await caching.invalidate(product.of(p), product.of(renamed));   // old and new name, the id, the lists
 *   }
 * }
 */
export function defineDependency<const K extends DependencyKeyers>(kind: string, keyers: K & ByKeyerNames<K>): DependencyBuilder<K> {
  if (typeof kind !== 'string' || kind.length === 0) {
    throw new CachingError(
      errors.E_INVALID_OPTION,
      `defineDependency: the kind must be a non-empty string naming the records (defineDependency('product', …)), got ${typeof kind === 'string' ? 'an empty string' : describe(kind)}.`,
    );
  }
  const where = `defineDependency('${kind}')`;
  const definitions = readKeyers(where, kind, keyers);
  const escapedKind = escape(kind);
  const prefixes = new Map(definitions.map(({ name }) => [name, `${escapedKind}|${escape(name.toLowerCase())}|`]));
  const byKey = (name: string, value: DependencyValue): BuilderDependency =>
    new BuilderDependency(prefixes.get(name)! + escape(valueText(value)), `${kind}.${name}(${shown(value)})`, shown(value));
  const builder: Record<string, unknown> = {};
  for (const { name } of definitions) {
    const method = (value: unknown): CacheDependency => byKey(name, checkedValue(value, kind, name, 'value'));
    // Named after the keyer, so stack traces and `product.byId.name` read as the user wrote them.
    Object.defineProperty(method, 'name', { value: name });
    builder[name] = method;
  }
  const all = new BuilderDependency(`${escapedKind}|all`, `${kind}.all`, '');
  builder['kind'] = kind;
  builder['all'] = all;
  builder['of'] = (record: unknown): CacheDependency => {
    const [own, ...others] = definitions.map(({ name, keyer }) => {
      let value: unknown;
      try {
        value = keyer(record);
      } catch (error) {
        throw new CachingError(
          errors.E_UNKEYABLE,
          `${kind}.of(record): the keyer ${name} threw (${errorText(error)}); pass a record it can read, or make it return a value for every record.`,
          { cause: error },
        );
      }
      return byKey(name, checkedValue(value, kind, name, 'result'));
    }) as [BuilderDependency, ...BuilderDependency[]];
    const fields = [own, ...others].map((d, i) => `${definitions[i]!.name}: ${d.shownValue}`).join(', ');
    return new BuilderDependency(own.getCacheKey(), `${kind}.of({ ${fields} })`, '', [...others, all]);
  };
  builder['toString'] = () => `DependencyBuilder(${kind})`;
  return Object.freeze(builder) as DependencyBuilder<K>;
}

/**
 * A dependency a builder gives: a fixed key, a readable description (its `toString()`, for logs and test
 * failures), and for `of`, the record's other keys.
 */
class BuilderDependency implements CacheDependency {
  readonly #key: string;
  readonly cascadeDependencies: readonly CacheDependency[] | undefined;

  constructor(
    key: string,
    readonly description: string,
    readonly shownValue: string,
    cascadeDependencies?: readonly CacheDependency[],
  ) {
    this.#key = key;
    this.cascadeDependencies = cascadeDependencies ? Object.freeze(cascadeDependencies) : undefined;
  }

  getCacheKey(): string {
    return this.#key;
  }

  toString(): string {
    return this.description;
  }
}

/** Validates the keyers object and copies it, so later changes to the object do not change the builder. */
function readKeyers(where: string, kind: string, keyers: unknown): Keyer[] {
  const notKeyers = (cause?: unknown): CachingError =>
    new CachingError(
      errors.E_INVALID_OPTION,
      `${where}: the keyers must be a plain object of functions, e.g. { byId: (p: Product) => p.id }, got ${describe(keyers)}.`,
      cause === undefined ? undefined : { cause },
    );
  if (keyers === null || typeof keyers !== 'object') throw notKeyers();
  let prototype: unknown;
  let names: Array<string | symbol>;
  try {
    prototype = Object.getPrototypeOf(keyers);
    names = Reflect.ownKeys(keyers);
  } catch (error) {
    throw notKeyers(error); // a proxy whose traps throw
  }
  // A plain object only: keyers on a class's prototype would not be own properties, and would be missed.
  if (prototype !== Object.prototype && prototype !== null) throw notKeyers();
  const definitions: Keyer[] = [];
  const lowered = new Map<string, string>();
  for (const name of names) {
    if (typeof name === 'symbol') {
      throw new CachingError(errors.E_INVALID_OPTION, `${where}: the keyer ${String(name)} is a symbol; name keyers with strings starting with 'by' (byId, byName).`);
    }
    const reserved = RESERVED.get(name);
    if (reserved !== undefined) {
      throw new CachingError(
        errors.E_INVALID_OPTION,
        `${where}: '${name}' cannot be a keyer, ${kind}.${name} is ${reserved}; name keyers by… (byId, byName).`,
      );
    }
    if (!name.startsWith('by')) {
      const suggestion = `by${name.charAt(0).toUpperCase()}${name.slice(1)}`;
      throw new CachingError(
        errors.E_INVALID_OPTION,
        `${where}: the keyer '${name}' must be named by…, e.g. ${suggestion}, so that it reads ${kind}.${suggestion}(value).`,
      );
    }
    let keyer: unknown;
    try {
      keyer = (keyers as Record<string, unknown>)[name];
    } catch (error) {
      throw new CachingError(errors.E_INVALID_OPTION, `${where}: reading the keyer ${name} threw (${errorText(error)}); pass plain functions.`, { cause: error });
    }
    if (typeof keyer !== 'function') {
      throw new CachingError(
        errors.E_INVALID_OPTION,
        `${where}: the keyer ${name} must be a function of the record, e.g. ${name}: (p: Product) => p.${name.length > 2 ? name.charAt(2).toLowerCase() + name.slice(3) : 'id'}, got ${describe(keyer)}.`,
      );
    }
    const key = name.toLowerCase();
    const clash = lowered.get(key);
    if (clash !== undefined) {
      throw new CachingError(
        errors.E_INVALID_OPTION,
        `${where}: the keyers ${clash} and ${name} would share the key ${kind}|${key}|… (keyer names are lowercased in keys); rename or remove one.`,
      );
    }
    lowered.set(key, name);
    definitions.push({ name, keyer: keyer as (record: unknown) => unknown });
  }
  if (definitions.length === 0) {
    throw new CachingError(
      errors.E_INVALID_OPTION,
      `${where}: define at least one keyer, e.g. { byId: (p: Product) => p.id }; for a single key use new StringDependency(…).`,
    );
  }
  return definitions;
}

/**
 * `value` if it can be keyed (see {@link DependencyValue}), else a `CachingError`. `role` says whether it was
 * passed to a `by*` method or returned by a keyer inside `of`, for the message.
 */
function checkedValue(value: unknown, kind: string, name: string, role: 'value' | 'result'): DependencyValue {
  switch (typeof value) {
    case 'string':
    case 'number':
    case 'bigint':
    case 'boolean':
      return value;
  }
  const got = describe(value);
  if (role === 'result') {
    throw new CachingError(
      errors.E_UNKEYABLE,
      `${kind}.of(record): the keyer ${name} returned ${got}; a keyer must return a string, number, bigint or boolean for every record passed to ${kind}.of.`,
    );
  }
  const hint = value !== null && typeof value === 'object' ? ` (to depend on a whole record, use ${kind}.of(record))` : '';
  throw new CachingError(
    errors.E_UNKEYABLE,
    `${kind}.${name}(value): got ${got}, which cannot be part of a dependency key; pass a string, number, bigint or boolean${hint}.`,
  );
}

/** The text a value is keyed by (see {@link DependencyValue}). */
function valueText(value: DependencyValue): string {
  switch (typeof value) {
    case 'string':
      return value;
    case 'number':
      // Integral numbers as exact digits so a number id and a bigint id of the same entity agree (1e21 and
      // 10n ** 21n); BigInt(-0) is 0n, so -0 and 0 agree too.
      return Number.isInteger(value) ? BigInt(value).toString() : String(value);
    case 'bigint':
      return value.toString();
    case 'boolean':
      return value ? 'true' : 'false';
  }
}

/** `\` and `|` prefixed with `\`: an escaped part never holds a bare `|`, so the parts of a key are unambiguous. */
function escape(part: string): string {
  return part.replace(/[\\|]/g, '\\$&');
}

function shown(value: DependencyValue): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'bigint') return `${value}n`;
  return Object.is(value, -0) ? '-0' : String(value);
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (value === undefined) return 'undefined';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'function') return 'a function';
  if (typeof value === 'object') {
    let name: unknown;
    try {
      name = (value as { constructor?: { name?: unknown } }).constructor?.name;
    } catch {
      name = undefined;
    }
    return typeof name === 'string' && name !== '' && name !== 'Object' ? `a ${name} object` : 'an object';
  }
  if (typeof value === 'symbol') return `a symbol (${value.description ?? ''})`;
  return `${typeof value} ${String(value)}`;
}

function errorText(error: unknown): string {
  try {
    return error instanceof Error ? `${error.name}: ${error.message}` : String(error);
  } catch {
    return 'unreadable error';
  }
}
