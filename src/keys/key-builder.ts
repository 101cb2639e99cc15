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
 * - an object with `getCacheKey()` → `Class("<key>")`; with `@CacheKey` properties → `Class{p=<v>,…}`;
 * - a placeholder for ignored arguments and `AbortSignal` arguments → `_`.
 * Class instances with neither kind of key, functions and symbols throw {@link UnkeyableValueError}.
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
  constructor(
    /** A short description: "a Connection instance", "a function", "a symbol", "a cyclic object". */
    readonly description: string,
    /** The path inside the argument, e.g. `.conn` or `[2]`; empty for the argument itself. */
    readonly path: string,
    /** The class to add `@CacheKey` to, when the value is a class instance. */
    readonly className?: string,
  ) {
    super(`${description}${path ? ` at ${path}` : ''} cannot be part of a cache key`);
  }
}

const abortSignalCtor: Function | undefined = typeof AbortSignal === 'function' ? AbortSignal : undefined;

/** True for values that always encode as a placeholder (`AbortSignal`). */
export function isPlaceholderValue(value: unknown): boolean {
  return abortSignalCtor !== undefined && value instanceof abortSignalCtor;
}

/** Encodes one value; throws {@link UnkeyableValueError}. */
export function encodeValue(value: unknown): string {
  switch (typeof value) {
    case 'string':
      return JSON.stringify(value);
    case 'number':
      return encodeNumber(value);
    default:
      return encodeSlow(value, '', null);
  }
}

function encodeNumber(n: number): string {
  return n === 0 && 1 / n < 0 ? '-0' : String(n);
}

function encodeSlow(value: unknown, path: string, stack: object[] | null): string {
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
      throw new UnkeyableValueError('a symbol', path);
    case 'function':
      throw new UnkeyableValueError(`a function (${value.name || 'anonymous'})`, path);
  }
  if (value === null) return 'null';
  return encodeObject(value as object, path, stack);
}

function encodeObject(value: object, path: string, stack: object[] | null): string {
  if (typeof (value as { getCacheKey?: unknown }).getCacheKey === 'function') {
    return `${className(value)}(${JSON.stringify(String((value as { getCacheKey(): unknown }).getCacheKey()))})`;
  }
  const proto = Object.getPrototypeOf(value) as object | null;
  const ctor = proto === null ? null : (proto as { constructor?: Function }).constructor;
  if (typeof ctor === 'function' && proto !== Object.prototype && proto !== Array.prototype) {
    const keyProps = keyPropertiesOf(ctor);
    if (keyProps !== null) {
      const s = enter(value, path, stack);
      const parts = keyProps.map(p => `${p}=${encodeSlow((value as Record<string, unknown>)[p], `${path}.${p}`, s)}`);
      s.pop();
      return `${ctor.name}{${parts.join(',')}}`;
    }
  }
  if (Array.isArray(value)) {
    const s = enter(value, path, stack);
    const parts: string[] = [];
    // An indexed loop, not map(): holes of sparse arrays encode as undefined instead of vanishing.
    for (let i = 0; i < value.length; i++) parts.push(encodeSlow(value[i], `${path}[${i}]`, s));
    s.pop();
    return `[${parts.join(',')}]`;
  }
  if (proto === Object.prototype || proto === null) {
    const s = enter(value, path, stack);
    const keys = Object.keys(value).sort();
    const parts = keys.map(k => `${JSON.stringify(k)}:${encodeSlow((value as Record<string, unknown>)[k], `${path}.${k}`, s)}`);
    s.pop();
    return `{${parts.join(',')}}`;
  }
  if (value instanceof Date) return `Date(${value.getTime()})`;
  if (value instanceof Map) {
    const s = enter(value, path, stack);
    const parts: string[] = [];
    for (const [k, v] of value) parts.push(`${encodeSlow(k, `${path}<key>`, s)}=>${encodeSlow(v, `${path}.get(…)`, s)}`);
    s.pop();
    return `Map{${parts.sort().join(',')}}`;
  }
  if (value instanceof Set) {
    const s = enter(value, path, stack);
    const parts: string[] = [];
    for (const v of value) parts.push(encodeSlow(v, `${path}<item>`, s));
    s.pop();
    return `Set{${parts.sort().join(',')}}`;
  }
  if (ArrayBuffer.isView(value)) {
    const name = className(value);
    if (value instanceof DataView) return `DataView[${Array.from(new Uint8Array(value.buffer, value.byteOffset, value.byteLength)).join(',')}]`;
    return `${name}[${Array.from(value as unknown as ArrayLike<number | bigint>, x => (typeof x === 'bigint' ? `${x}n` : encodeNumber(x))).join(',')}]`;
  }
  if (value instanceof ArrayBuffer) return `ArrayBuffer[${Array.from(new Uint8Array(value)).join(',')}]`;
  if (value instanceof RegExp) return `RegExp(${JSON.stringify(`${value.source}/${value.flags}`)})`;
  if (value instanceof URL) return `URL(${JSON.stringify(value.href)})`;
  if (isPlaceholderValue(value)) return '_';
  const name = className(value);
  throw new UnkeyableValueError(`a ${name} instance`, path, name);
}

function enter(value: object, path: string, stack: object[] | null): object[] {
  const s = stack ?? [];
  if (s.includes(value)) throw new UnkeyableValueError('a cyclic object', path);
  s.push(value);
  return s;
}

function className(value: object): string {
  const ctor = (value as { constructor?: { name?: string } }).constructor;
  return (typeof ctor === 'function' && ctor.name) || 'Object';
}

/**
 * The key text an object contributes as `this` or as a dependency (`Class("key")` or `Class{p=v}`), or
 * `null` if it has no key of its own (a stateless service).
 */
export function instanceKeyOf(value: object): string | null {
  if (typeof (value as { getCacheKey?: unknown }).getCacheKey === 'function') return encodeObject(value, '', null);
  const ctor = (value as { constructor?: Function }).constructor;
  if (typeof ctor === 'function' && keyPropertiesOf(ctor) !== null) return encodeObject(value, '', null);
  return null;
}

/** Default length above which a key is replaced by `Class.method~<sha256>`. */
export const DEFAULT_MAX_KEY_LENGTH = 250;

/** `readablePrefix~<base64url sha-256 of key>`: fixed length, practically collision-free. */
export function hashKey(readablePrefix: string, key: string): string {
  return `${readablePrefix}~${createHash('sha256').update(key).digest('base64url')}`;
}
