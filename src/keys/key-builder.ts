import { createHash } from 'node:crypto';

/**
 * Canonical, injective encoding of values into cache-key text.
 *
 * Grammar (every production is self-delimiting, so a tuple joined by `,` stays injective):
 * - string → JSON string (`"a,b"`), number → `1`, `-0`, `NaN`, `Infinity`; bigint → `1n`; `true`, `false`,
 *   `null`, `undefined`;
 * - Date → `Date(<ms>)`, RegExp → `RegExp(<source>/<flags>)` (JSON-quoted), URL → `URL("<href>")`;
 * - array → `[a,b]`, plain object → `{"a":1,"b":2}` with sorted keys, Map → `Map{k=>v,…}` and Set → `Set{a,…}`
 *   with sorted entries, typed array → `Uint8Array[1,2]`;
 * - an object with `getCacheKey()` (which must return a string) → `Class("<key>")`; with `@CacheKey` properties
 *   → `Class{p=<v>,…}`. `Class` is the class name, JSON-quoted when it is not an identifier or is one of the
 *   built-in tags above (`"URL"("…")`); a plain object with `getCacheKey()` is tagged `Object`; an instance of an
 *   anonymous class is unkeyable (see {@link classTag});
 * - a placeholder for ignored arguments and `AbortSignal` arguments → `_`.
 * Class instances with neither kind of key, functions, symbols, plain objects with symbol-keyed or
 * non-enumerable own properties, cycles and values nested deeper than {@link MAX_KEY_DEPTH} throw
 * {@link UnkeyableValueError}; so does anything that throws while being read (a getter, a revoked proxy).
 * Arrays, Maps, Sets, Dates and typed arrays are keyed by their contents: other own properties added to them
 * are not part of the key (as with JSON).
 */

/** Where `@CacheKey` properties are recorded (legacy decorators): class → property names in declaration order. */
const cacheKeyProperties = new WeakMap<Function, string[]>();
/** Resolved list (own + inherited) per constructor, filled on first use. */
let resolvedKeyProperties = new WeakMap<Function, readonly string[] | null>();
/** Bumped whenever a registration changes what {@link keyPropertiesOf} answers, so callers can cache it. */
export let keyRegistrationGeneration = 0;

/** Where TC39 `@CacheKey` decorators record property names: an own array on the class's `context.metadata`. */
export const CACHE_KEY_METADATA = Symbol.for('aspect-cache.cacheKeyProperties');
const metadataSymbol: symbol = (Symbol as { metadata?: symbol }).metadata ?? Symbol.for('Symbol.metadata');

/** Records that `property` of instances of `ctor` is part of their cache key. */
export function registerCacheKeyProperty(ctor: Function, property: string): void {
  let list = cacheKeyProperties.get(ctor);
  if (!list) cacheKeyProperties.set(ctor, (list = []));
  if (!list.includes(property)) {
    list.push(property);
    resolvedKeyProperties = new WeakMap(); // subclasses may have cached the old list
    keyRegistrationGeneration++;
  }
}

/** The `@CacheKey` properties of instances of `ctor` (inherited ones first), or null if it has none. */
export function keyPropertiesOf(ctor: Function): readonly string[] | null {
  let resolved = resolvedKeyProperties.get(ctor);
  if (resolved !== undefined) return resolved;
  const chain: Function[] = [];
  for (let c: Function | null = ctor; c && c !== Function.prototype; c = Object.getPrototypeOf(c)) chain.unshift(c);
  const all: string[] = [];
  for (const c of chain) {
    for (const p of cacheKeyProperties.get(c) ?? []) if (!all.includes(p)) all.push(p);
    const metadata = Object.prototype.hasOwnProperty.call(c, metadataSymbol) ? (c as unknown as Record<symbol, Record<symbol, unknown> | undefined>)[metadataSymbol] : undefined;
    const own = metadata && Object.prototype.hasOwnProperty.call(metadata, CACHE_KEY_METADATA) ? (metadata[CACHE_KEY_METADATA] as string[]) : undefined;
    for (const p of own ?? []) if (!all.includes(p)) all.push(p);
  }
  resolved = all.length > 0 ? all : null;
  resolvedKeyProperties.set(ctor, resolved);
  return resolved;
}

/** Thrown by the encoder for a value that cannot be part of a key; the caller adds class, method and position. */
export class UnkeyableValueError extends Error {
  #path: string;

  constructor(
    /** A short description: "a Connection instance", "a function", "a symbol", "a cyclic object". */
    readonly description: string,
    path: string,
    /** The class to add `@CacheKey` to, when the value is a class instance. */
    readonly className?: string,
    /** The specific fix, when adding `@CacheKey` is not it ("make Money.getCacheKey() return a string"). */
    readonly hint?: string,
    options?: { cause?: unknown },
  ) {
    super('', options);
    this.#path = path;
    this.message = this.#text();
  }

  /** The path inside the argument, e.g. `.conn` or `[2]`; empty for the argument itself. */
  get path(): string {
    return this.#path;
  }

  /** The path as shown in messages: very deep paths (a 1,000-level nesting) are cut. */
  get shownPath(): string {
    return this.#path.length > 120 ? `${this.#path.slice(0, 120)}…` : this.#path;
  }

  /** Prepends the segment of the container the value was found in (paths are built while unwinding). */
  within(segment: string): this {
    this.#path = segment + this.#path;
    this.message = this.#text();
    return this;
  }

  #text(): string {
    return `${this.description}${this.#path ? ` at ${this.shownPath}` : ''} cannot be part of a cache key`;
  }
}

/**
 * Values nested deeper than this are unkeyable: encoding recurses, and a 20,000-level value would otherwise
 * overflow the stack with a raw `RangeError`. Real arguments are a few levels deep.
 */
export const MAX_KEY_DEPTH = 1000;

const abortSignalCtor: Function | undefined = typeof AbortSignal === 'function' ? AbortSignal : undefined;

/** True for values that always encode as a placeholder (`AbortSignal`). */
export function isPlaceholderValue(value: unknown): boolean {
  if (abortSignalCtor === undefined) return false;
  try {
    return value instanceof abortSignalCtor;
  } catch {
    // a revoked proxy throws on getPrototypeOf: not a signal; encoding it reports the failure properly
    return false;
  }
}

/**
 * Encodes one value; throws {@link UnkeyableValueError}, and only that: whatever reading the value throws (a
 * getter, a revoked proxy, a too deep nesting) is reported as an unkeyable value with its path and cause.
 */
export function encodeValue(value: unknown): string {
  switch (typeof value) {
    case 'string':
      return JSON.stringify(value);
    case 'number':
      return encodeNumber(value);
    default:
      try {
        return encodeSlow(value, null);
      } catch (error) {
        throw unkeyable(error);
      }
  }
}

function encodeNumber(n: number): string {
  return n === 0 && 1 / n < 0 ? '-0' : String(n);
}

/** `error` as an {@link UnkeyableValueError}: the encoder's own, or a wrapper of what user code threw. */
function unkeyable(error: unknown): UnkeyableValueError {
  if (error instanceof UnkeyableValueError) return error;
  if (error instanceof RangeError && /call stack/i.test(error.message)) {
    return new UnkeyableValueError('a value nested too deeply', '', undefined, 'pass a flatter value, or a key option', { cause: error });
  }
  return new UnkeyableValueError(`a value that threw while being read (${describeError(error)})`, '', undefined, undefined, { cause: error });
}

function describeError(error: unknown): string {
  try {
    return error instanceof Error ? `${error.name}: ${error.message}` : String(error);
  } catch {
    return 'an unprintable error';
  }
}

/** Re-throws what a child threw, as an unkeyable value found at `segment` of the current container. */
function fromChild(error: unknown, segment: string): UnkeyableValueError {
  return unkeyable(error).within(segment);
}

function encodeSlow(value: unknown, stack: object[] | null): string {
  switch (typeof value) {
    case 'string':
      return JSON.stringify(value);
    case 'number':
      return encodeNumber(value);
    case 'bigint':
      return `${value}n`;
    case 'boolean':
      return value ? 'true' : 'false';
    case 'undefined':
      return 'undefined';
    case 'symbol':
      throw new UnkeyableValueError('a symbol', '');
    case 'function':
      throw new UnkeyableValueError(`a function (${value.name || 'anonymous'})`, '');
  }
  if (value === null) return 'null';
  return encodeObject(value as object, stack);
}

// Paths (`.a[2]`) are only built when something fails: each container catches what its children throw and
// prepends its own segment, so a successful encoding allocates no path strings.
function encodeObject(value: object, stack: object[] | null): string {
  if (typeof (value as { getCacheKey?: unknown }).getCacheKey === 'function') return encodeOwnKey(value);
  const proto = Object.getPrototypeOf(value) as object | null;
  const ctor = proto === null ? null : (proto as { constructor?: Function }).constructor;
  if (typeof ctor === 'function' && proto !== Object.prototype && proto !== Array.prototype) {
    const keyProps = keyPropertiesOf(ctor);
    if (keyProps !== null) {
      const tag = classTag(proto);
      const s = enter(value, stack);
      let text = '';
      let i = 0;
      try {
        for (; i < keyProps.length; i++) {
          const p = keyProps[i]!;
          text += `${i > 0 ? ',' : ''}${p}=${encodeSlow((value as Record<string, unknown>)[p], s)}`;
        }
      } catch (error) {
        throw fromChild(error, `.${keyProps[i]}`);
      }
      s.pop();
      return `${tag}{${text}}`;
    }
  }
  if (Array.isArray(value)) {
    const s = enter(value, stack);
    let text = '';
    let i = 0;
    try {
      // An indexed loop, not map(): holes of sparse arrays encode as undefined instead of vanishing.
      for (; i < value.length; i++) text += (i > 0 ? ',' : '') + encodeSlow(value[i], s);
    } catch (error) {
      throw fromChild(error, `[${i}]`);
    }
    s.pop();
    return `[${text}]`;
  }
  if (proto === Object.prototype || proto === null) {
    const s = enter(value, stack);
    const keys = Object.keys(value);
    checkPlainProperties(value, keys);
    keys.sort();
    let text = '';
    let i = 0;
    try {
      for (; i < keys.length; i++) {
        const k = keys[i]!;
        text += `${i > 0 ? ',' : ''}${JSON.stringify(k)}:${encodeSlow((value as Record<string, unknown>)[k], s)}`;
      }
    } catch (error) {
      throw fromChild(error, `.${keys[i]}`);
    }
    s.pop();
    return `{${text}}`;
  }
  if (value instanceof Date) return `Date(${value.getTime()})`;
  if (value instanceof Map) {
    const s = enter(value, stack);
    const parts: string[] = [];
    let segment = '<key>';
    try {
      for (const [k, v] of value) {
        segment = '<key>';
        const key = encodeSlow(k, s);
        segment = '.get(…)';
        parts.push(`${key}=>${encodeSlow(v, s)}`);
      }
    } catch (error) {
      throw fromChild(error, segment);
    }
    s.pop();
    return `Map{${parts.sort().join(',')}}`;
  }
  if (value instanceof Set) {
    const s = enter(value, stack);
    const parts: string[] = [];
    try {
      for (const v of value) parts.push(encodeSlow(v, s));
    } catch (error) {
      throw fromChild(error, '<item>');
    }
    s.pop();
    return `Set{${parts.sort().join(',')}}`;
  }
  if (ArrayBuffer.isView(value)) {
    const name = builtinName(value);
    if (value instanceof DataView) return `DataView[${Array.from(new Uint8Array(value.buffer, value.byteOffset, value.byteLength)).join(',')}]`;
    return `${name}[${Array.from(value as unknown as ArrayLike<number | bigint>, x => (typeof x === 'bigint' ? `${x}n` : encodeNumber(x))).join(',')}]`;
  }
  if (value instanceof ArrayBuffer) return `ArrayBuffer[${Array.from(new Uint8Array(value)).join(',')}]`;
  if (value instanceof RegExp) return `RegExp(${JSON.stringify(`${value.source}/${value.flags}`)})`;
  if (value instanceof URL) return `URL(${JSON.stringify(value.href)})`;
  if (isPlaceholderValue(value)) return '_';
  const name = typeof ctor === 'function' && typeof ctor.name === 'string' ? ctor.name : '';
  if (name === '') throw new UnkeyableValueError('an instance of an anonymous class', '', undefined, 'give the class a name and add @CacheKey properties or a getCacheKey() method to it');
  throw new UnkeyableValueError(`a ${name} instance`, '', name);
}

/**
 * `Tag("key")` for an object with `getCacheKey()`. The key must be a string: coercing anything else with
 * `String()` would make `{ id: 1 }` and `{ id: 2 }` (both "[object Object]") share a key.
 */
function encodeOwnKey(value: object): string {
  const tag = classTag(Object.getPrototypeOf(value) as object | null);
  const what = tag === 'Object' ? 'an object' : `a ${tag}`;
  let key: unknown;
  try {
    key = (value as { getCacheKey(): unknown }).getCacheKey();
  } catch (error) {
    throw new UnkeyableValueError(`${what} whose getCacheKey() threw (${describeError(error)})`, '', undefined, `make its getCacheKey() return a string without throwing`, { cause: error });
  }
  if (typeof key !== 'string') {
    throw new UnkeyableValueError(`${what} whose getCacheKey() returned ${describeType(key)}`, '', undefined, `make ${tag === 'Object' ? "the object's" : `${tag}'s`} getCacheKey() return a string`);
  }
  return `${tag}(${JSON.stringify(key)})`;
}

/**
 * Every own property of a plain object must be an enumerable string-keyed one: a symbol-keyed or
 * non-enumerable property would otherwise be left out of the key, and `{ [s]: 1 }` share the key of `{}`.
 * Symbols have no canonical text (two `Symbol('a')` differ), so such objects are unkeyable.
 */
function checkPlainProperties(value: object, keys: readonly string[]): void {
  const symbols = Object.getOwnPropertySymbols(value);
  if (symbols.length > 0) {
    throw new UnkeyableValueError(`an object with a symbol-keyed property (${String(symbols[0])})`, '', undefined, 'use string keys (symbol-keyed properties have no canonical key), or a key option');
  }
  const names = Object.getOwnPropertyNames(value);
  if (names.length !== keys.length) {
    const hidden = names.find(n => !Object.prototype.propertyIsEnumerable.call(value, n));
    throw new UnkeyableValueError(`an object with a non-enumerable property (${JSON.stringify(hidden)})`, '', undefined, 'make the property enumerable or remove it, or use a key option');
  }
}

function describeType(value: unknown): string {
  if (value === null) return 'null';
  switch (typeof value) {
    case 'object':
      return Array.isArray(value) ? 'an array' : 'an object';
    case 'undefined':
      return 'undefined';
    case 'symbol':
    case 'function':
      return `a ${typeof value}`;
    default:
      return `a ${typeof value} (${String(value)})`;
  }
}

function enter(value: object, stack: object[] | null): object[] {
  const s = stack ?? [];
  if (s.length >= MAX_KEY_DEPTH) throw new UnkeyableValueError(`a value nested more than ${MAX_KEY_DEPTH} levels deep`, '', undefined, 'pass a flatter value, or a key option');
  if (s.includes(value)) throw new UnkeyableValueError('a cyclic object', '');
  s.push(value);
  return s;
}

/** Names the grammar uses for built-in values: a user class with one of them is quoted, never mistaken for it. */
const RESERVED_TAGS = new Set([
  'Object', 'Date', 'RegExp', 'URL', 'Map', 'Set', 'DataView', 'ArrayBuffer', 'Int8Array', 'Uint8Array',
  'Uint8ClampedArray', 'Int16Array', 'Uint16Array', 'Int32Array', 'Uint32Array', 'Float16Array', 'Float32Array',
  'Float64Array', 'BigInt64Array', 'BigUint64Array',
]);
const IDENTIFIER = /^[\p{ID_Start}$_][\p{ID_Continue}$\u200c\u200d]*$/u;

/**
 * The class part of a keyed object's encoding, chosen so that it is injective:
 * - a plain object (prototype `Object.prototype`, `null`, or a prototype without a constructor of its own
 *   class) → `Object`: it is keyed by its `getCacheKey()` alone;
 * - a named class → its name, unchanged when it is an identifier that the grammar does not use for a
 *   built-in (so existing keys stay as they were), JSON-quoted otherwise (`"Object"`, `"URL"`, `"a,b"`),
 *   so no class name can impersonate a plain object, a built-in or a separator;
 * - an anonymous class → unkeyable: it has no name to tell it from another anonymous class, and a per-process
 *   number would differ between processes sharing a store.
 * Two different classes with the same name still share keys: class names are not unique (SPEC §3).
 */
function classTag(proto: object | null): string {
  if (proto === null || proto === Object.prototype) return 'Object';
  const ctor = (proto as { constructor?: unknown }).constructor;
  if (typeof ctor !== 'function' || ctor === Object) return 'Object';
  const name = (ctor as { name?: unknown }).name;
  if (typeof name !== 'string' || name === '') {
    throw new UnkeyableValueError(
      'an instance of an anonymous class',
      '',
      undefined,
      'give the class a name (an anonymous class cannot be told apart from another one in a key)',
    );
  }
  return IDENTIFIER.test(name) && !RESERVED_TAGS.has(name) ? name : JSON.stringify(name);
}

/** The constructor name of a built-in value (a typed array), as encoded so far. */
function builtinName(value: object): string {
  const ctor = (value as { constructor?: { name?: string } }).constructor;
  return (typeof ctor === 'function' && ctor.name) || 'Object';
}

/**
 * The key text an object contributes as `this` or as a dependency (`Class("key")` or `Class{p=v}`), or
 * `null` if it has no key of its own (a stateless service). Throws {@link UnkeyableValueError} only.
 */
export function instanceKeyOf(value: object): string | null {
  try {
    if (typeof (value as { getCacheKey?: unknown }).getCacheKey === 'function') return encodeObject(value, null);
    const ctor = (value as { constructor?: Function }).constructor;
    if (typeof ctor === 'function' && keyPropertiesOf(ctor) !== null) return encodeObject(value, null);
    return null;
  } catch (error) {
    throw unkeyable(error);
  }
}

/** Default length above which a key is replaced by `Class.method~<sha256>`. */
export const DEFAULT_MAX_KEY_LENGTH = 250;

/** `readablePrefix~<base64url sha-256 of key>`: fixed length, practically collision-free. */
export function hashKey(readablePrefix: string, key: string): string {
  return `${readablePrefix}~${createHash('sha256').update(key).digest('base64url')}`;
}
