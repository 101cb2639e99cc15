/** The wrappers `@Cache` and `@InvalidateCache` installed, for integrations that look for decorated classes. */
const wrappers = new WeakSet<Function>();

/** The parts of reflect-metadata's API used here (present only when `reflect-metadata` is loaded). */
interface MetadataApi {
  getOwnMetadataKeys(target: object): unknown[];
  getOwnMetadata(key: unknown, target: object): unknown;
  defineMetadata(key: unknown, value: unknown, target: object): void;
}

/** Own properties every function has, which describe the wrapper itself and must stay its own. */
const FUNCTION_OWN = new Set<PropertyKey>(['name', 'length', 'prototype', 'arguments', 'caller']);

/**
 * Gives `wrapper` what other decorators attached to `original` before ours replaced it: the reflect-metadata
 * entries defined on the function (Nest's `@Get`, `@SetMetadata`, guards… write theirs there) and the
 * function's own properties, so that `@Cache` written above another decorator does not hide it. The wrapper's
 * own properties (its name, length, prototype, anything it defined) are never overwritten. Also records
 * `wrapper` as one of ours (see {@link isDecoratedMethod}).
 *
 * Metadata are copied only when reflect-metadata is loaded (`Reflect.getOwnMetadataKeys` exists): without
 * it, no other decorator can have written any. Decorators applied after ours (written above it) write on the
 * wrapper directly and need nothing.
 */
export function copyMetadata(original: Function, wrapper: Function): void {
  wrappers.add(wrapper);
  const reflect = Reflect as unknown as Partial<MetadataApi>;
  if (typeof reflect.getOwnMetadataKeys === 'function' && typeof reflect.getOwnMetadata === 'function' && typeof reflect.defineMetadata === 'function') {
    const own = new Set(reflect.getOwnMetadataKeys(wrapper));
    for (const key of reflect.getOwnMetadataKeys(original)) {
      if (!own.has(key)) reflect.defineMetadata(key, reflect.getOwnMetadata(key, original), wrapper);
    }
  }
  for (const key of Reflect.ownKeys(original)) {
    if (FUNCTION_OWN.has(key) || Object.prototype.hasOwnProperty.call(wrapper, key)) continue;
    const property = Object.getOwnPropertyDescriptor(original, key);
    if (property !== undefined) Object.defineProperty(wrapper, key, property);
  }
}

/** True for a method wrapper installed by `@Cache` or `@InvalidateCache`. */
export function isDecoratedMethod(fn: unknown): boolean {
  return typeof fn === 'function' && wrappers.has(fn);
}

const decoratedPrototypes = new WeakMap<object, boolean>();

/**
 * True when `target` (an instance, or a class for static methods) or an object on its prototype chain has a
 * `@Cache` or `@InvalidateCache` method: binding a service to it changes where those methods cache. Reads
 * property descriptors only (never calls a getter); the answer for each prototype is remembered.
 */
export function hasDecoratedMethods(target: object): boolean {
  if (ownDecorated(target)) return true;
  for (let o: object | null = Object.getPrototypeOf(target); o !== null && o !== Object.prototype && o !== Function.prototype; o = Object.getPrototypeOf(o)) {
    let known = decoratedPrototypes.get(o);
    if (known === undefined) decoratedPrototypes.set(o, (known = ownDecorated(o)));
    if (known) return true;
  }
  return false;
}

function ownDecorated(o: object): boolean {
  for (const key of Reflect.ownKeys(o)) {
    const property = Object.getOwnPropertyDescriptor(o, key);
    if (property !== undefined && 'value' in property && isDecoratedMethod(property.value)) return true;
  }
  return false;
}
