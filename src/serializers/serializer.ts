import SuperJSON from 'superjson';

/**
 * Turns values into strings and back, for backends that store outside the process (Redis). Must round-trip
 * what cached methods return; anything it cannot encode must throw, so the value is not stored.
 */
export interface Serializer {
  serialize(value: unknown): string;
  deserialize(text: string): unknown;
}

/**
 * The default serializer: superjson, so `Date`, `Map`, `Set`, `BigInt`, `undefined`, `RegExp` and registered
 * classes round-trip with their prototypes. Register domain classes on the instance you pass (or on the
 * default `SuperJSON` instance): `SuperJSON.registerClass(Product, { identifier: 'Product' })`.
 *
 * Functions and symbols cannot be stored: serializing a value that contains one throws.
 */
export class SuperJsonSerializer implements Serializer {
  readonly #instance: Pick<typeof SuperJSON, 'stringify' | 'parse'>;

  constructor(instance: Pick<typeof SuperJSON, 'stringify' | 'parse'> = SuperJSON) {
    this.#instance = instance;
  }

  serialize(value: unknown): string {
    assertSerializable(value, '', new Set());
    return this.#instance.stringify({ v: value });
  }

  deserialize(text: string): unknown {
    const decoded = this.#instance.parse<{ v: unknown }>(text);
    if (decoded === null || typeof decoded !== 'object' || !('v' in decoded)) throw new Error('not an aspect-cache payload');
    return decoded.v;
  }
}

/** superjson silently drops functions and symbols; a cache must refuse them instead of storing a different value. */
function assertSerializable(value: unknown, path: string, seen: Set<object>): void {
  if (typeof value === 'function') throw new TypeError(`a function${path ? ` at ${path}` : ''} cannot be serialized`);
  if (typeof value === 'symbol') throw new TypeError(`a symbol${path ? ` at ${path}` : ''} cannot be serialized`);
  if (value === null || typeof value !== 'object' || seen.has(value)) return;
  seen.add(value);
  if (value instanceof Map) {
    for (const [k, v] of value) {
      assertSerializable(k, `${path}<key>`, seen);
      assertSerializable(v, `${path}.get(…)`, seen);
    }
  } else if (value instanceof Set) {
    for (const v of value) assertSerializable(v, `${path}<item>`, seen);
  } else if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) assertSerializable(value[i], `${path}[${i}]`, seen);
  } else if (!ArrayBuffer.isView(value) && !(value instanceof Date) && !(value instanceof RegExp)) {
    for (const key of Object.keys(value)) assertSerializable((value as Record<string, unknown>)[key], `${path}.${key}`, seen);
  }
}
