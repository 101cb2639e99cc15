import SuperJSON from 'superjson';

/**
 * Turns values into strings and back, for backends that store outside the process (Redis). Must round-trip
 * what cached methods return; anything it cannot encode faithfully must throw (the message, naming the type
 * and where it is in the value, becomes the `detail` of the `skip` event), so the value is not stored.
 */
export interface Serializer {
  /** Turns a value into text; throws (a `TypeError` saying what and where) if it cannot be restored faithfully. */
  serialize(value: unknown): string;
  /** Restores a value from the text `serialize` produced. */
  deserialize(text: string): unknown;
}

/** What the serializer needs of a superjson instance (the `SuperJSON` class itself, or `new SuperJSON()`). */
type SuperJsonInstance = Pick<typeof SuperJSON, 'stringify' | 'parse'>;

/** The registries of a superjson instance: what it knows how to encode beyond its built-ins. */
interface Registries {
  readonly classRegistry: { getIdentifier(value: unknown): string | undefined };
  readonly symbolRegistry: { getIdentifier(value: unknown): string | undefined };
  readonly customTransformerRegistry: { findApplicable(value: unknown): unknown };
  registerCustom(transformer: { isApplicable(v: unknown): boolean; serialize(v: never): string | number | null; deserialize(v: never): unknown }, name: string): void;
}

/** Deeper values are refused up front: superjson's recursive walk overflows the stack around 1,500 levels. */
const MAX_DEPTH = 500;

/**
 * The default serializer: superjson, so `Date`, `Map`, `Set`, `BigInt`, `undefined`, `RegExp`, `URL`, `-0`,
 * `NaN` and registered classes round-trip with their prototypes. Register domain classes on the instance you
 * pass (or on the default `SuperJSON` instance): `SuperJSON.registerClass(Product, { identifier: 'Product' })`.
 *
 * It adds transformers (to that instance, under `aspect-cache:` names) so that `Buffer`, typed arrays
 * (including `BigInt64Array`, and `Float64Array` holding `NaN`), `ArrayBuffer`, `DataView` and invalid `Date`s
 * round-trip exactly.
 *
 * A value that would come back different is refused (`serialize` throws, the store is skipped with reason
 * `not-serializable` and a detail naming the type and its path): functions, unregistered symbols, instances of
 * classes not registered with superjson (including subclasses of `Map`, `Date`… and boxed primitives),
 * `Error`s (superjson loses their class and stack), sparse arrays and arrays with extra properties,
 * symbol-keyed or non-enumerable properties, and values nested deeper than 500 levels. Objects with a `null`
 * prototype (`Object.groupBy`) are accepted: they come back with the same properties on `Object.prototype`.
 * Cycles and shared references are kept.
 */
export class SuperJsonSerializer implements Serializer {
  readonly #instance: SuperJsonInstance;
  readonly #registries: Registries | undefined;

  constructor(instance: SuperJsonInstance = SuperJSON) {
    this.#instance = instance;
    this.#registries = registriesOf(instance);
    if (this.#registries !== undefined) installTransformers(this.#registries);
  }

  serialize(value: unknown): string {
    const failure = check(value, this.#registries, new Set(), 0);
    if (failure !== undefined) {
      const at = failure.path.length > 0 ? ` at ${failure.path.reverse().join('')}` : '';
      throw new TypeError(`${failure.what}${at} cannot be serialized faithfully${failure.fix ? `: ${failure.fix}` : ''}`);
    }
    return this.#instance.stringify({ v: value });
  }

  deserialize(text: string): unknown {
    const decoded = this.#instance.parse<{ v: unknown }>(text);
    if (decoded === null || typeof decoded !== 'object' || !('v' in decoded)) throw new Error('not an aspect-cache payload');
    return decoded.v;
  }
}

/** The registries of `SuperJSON` (its default instance) or of a `new SuperJSON()`; undefined for anything else. */
function registriesOf(instance: SuperJsonInstance): Registries | undefined {
  // The static API delegates to a default instance that holds the registries (private in superjson's types).
  const candidate = (instance as { defaultInstance?: unknown }).defaultInstance ?? instance;
  const r = candidate as Partial<Registries>;
  if (typeof r.registerCustom !== 'function' || r.classRegistry === undefined || r.symbolRegistry === undefined || r.customTransformerRegistry === undefined) return undefined;
  return candidate as Registries;
}

const TYPED_ARRAYS = [Int8Array, Uint8Array, Uint8ClampedArray, Int16Array, Uint16Array, Int32Array, Uint32Array, Float32Array, Float64Array, BigInt64Array, BigUint64Array];
const TYPED_ARRAY_PROTOTYPES = new Set<object>(TYPED_ARRAYS.map(c => c.prototype));
const TYPED_ARRAY_BY_NAME = new Map<string, new (buffer: ArrayBuffer) => ArrayBufferView>(TYPED_ARRAYS.map(c => [c.name, c as unknown as new (buffer: ArrayBuffer) => ArrayBufferView]));

function bytesOf(view: ArrayBufferView): string {
  return Buffer.from(view.buffer, view.byteOffset, view.byteLength).toString('base64');
}

function copyOf(base64: string): ArrayBuffer {
  const bytes = Buffer.from(base64, 'base64');
  const copy = new ArrayBuffer(bytes.byteLength);
  new Uint8Array(copy).set(bytes);
  return copy;
}

/**
 * Binary values as base64 of their bytes (superjson's own typed-array rule goes through JSON numbers: NaN and
 * bigints are lost, and a Buffer is written under a name it cannot read back). Registered once per instance
 * (superjson keys transformers by name, so registering again replaces them).
 */
function installTransformers(registries: Registries): void {
  registries.registerCustom(
    {
      isApplicable: v => v instanceof Uint8Array && Object.getPrototypeOf(v) === Buffer.prototype,
      serialize: (v: Buffer) => bytesOf(v),
      deserialize: (v: string) => Buffer.from(v, 'base64'),
    },
    'aspect-cache:Buffer',
  );
  registries.registerCustom(
    {
      isApplicable: v => ArrayBuffer.isView(v) && TYPED_ARRAY_PROTOTYPES.has(Object.getPrototypeOf(v) as object),
      serialize: (v: ArrayBufferView) => `${v.constructor.name}:${bytesOf(v)}`,
      deserialize: (v: string) => {
        const colon = v.indexOf(':');
        const ctor = TYPED_ARRAY_BY_NAME.get(v.slice(0, colon));
        if (ctor === undefined) throw new Error(`unknown typed array ${v.slice(0, colon)}`);
        return new ctor(copyOf(v.slice(colon + 1)));
      },
    },
    'aspect-cache:TypedArray',
  );
  registries.registerCustom(
    {
      isApplicable: v => v instanceof DataView && Object.getPrototypeOf(v) === DataView.prototype,
      serialize: (v: DataView) => bytesOf(v),
      deserialize: (v: string) => new DataView(copyOf(v)),
    },
    'aspect-cache:DataView',
  );
  registries.registerCustom(
    {
      isApplicable: v => v instanceof ArrayBuffer && Object.getPrototypeOf(v) === ArrayBuffer.prototype,
      serialize: (v: ArrayBuffer) => Buffer.from(v).toString('base64'),
      deserialize: (v: string) => copyOf(v),
    },
    'aspect-cache:ArrayBuffer',
  );
  registries.registerCustom(
    {
      // superjson writes an invalid Date as null.
      isApplicable: v => v instanceof Date && Object.getPrototypeOf(v) === Date.prototype && Number.isNaN(v.getTime()),
      serialize: () => 0,
      deserialize: () => new Date(Number.NaN),
    },
    'aspect-cache:InvalidDate',
  );
}

/** Why a value cannot be stored, and where (path segments, innermost first: built only on failure). */
interface Failure {
  readonly what: string;
  readonly fix?: string;
  readonly path: string[];
}

const fail = (what: string, fix?: string): Failure => (fix === undefined ? { what, path: [] } : { what, fix, path: [] });

/** Built-in prototypes superjson round-trips faithfully (exact prototypes only: a subclass loses its class). */
const FAITHFUL_LEAVES = new Set<object>([Date.prototype, RegExp.prototype, URL.prototype]);

/**
 * Walks `value` the way superjson will encode it and returns why it would not come back the same, if so.
 * Linear: every object is visited once (`seen`, so cycles and shared references end the walk); depth-bounded.
 */
function check(value: unknown, registries: Registries | undefined, seen: Set<object>, depth: number): Failure | undefined {
  if (typeof value === 'function') {
    if (registries?.customTransformerRegistry.findApplicable(value) !== undefined) return undefined;
    return fail(`a function${value.name ? ` (${value.name})` : ''}`);
  }
  if (typeof value === 'symbol') {
    if (registries?.symbolRegistry.getIdentifier(value) !== undefined) return undefined;
    return fail(`a symbol (${String(value.description)})`, 'register it with SuperJSON.registerSymbol');
  }
  if (value === null || typeof value !== 'object' || seen.has(value)) return undefined;
  if (depth >= MAX_DEPTH) return fail(`a value nested deeper than ${MAX_DEPTH} levels`);
  seen.add(value);
  // Registered classes and custom transformers come first, as in superjson.
  const registeredClass = registries !== undefined && registries.classRegistry.getIdentifier((value as { constructor?: unknown }).constructor) !== undefined;
  if (!registeredClass && registries?.customTransformerRegistry.findApplicable(value) !== undefined) return undefined;
  const proto = Object.getPrototypeOf(value) as object | null;
  if (registeredClass) return checkProperties(value, Object.keys(value), registries, seen, depth);
  if (proto === Object.prototype || proto === null) return checkProperties(value, Reflect.ownKeys(value), registries, seen, depth, true);
  if (proto === Array.prototype) return checkArray(value as unknown[], registries, seen, depth);
  if (proto === Map.prototype) {
    for (const [k, v] of value as Map<unknown, unknown>) {
      const failure = check(k, registries, seen, depth + 1) ?? check(v, registries, seen, depth + 1);
      if (failure !== undefined) return within(failure, '.get(…)');
    }
    return undefined;
  }
  if (proto === Set.prototype) {
    for (const v of value as Set<unknown>) {
      const failure = check(v, registries, seen, depth + 1);
      if (failure !== undefined) return within(failure, '<item>');
    }
    return undefined;
  }
  if (FAITHFUL_LEAVES.has(proto as object)) return undefined;
  const name = typeNameOf(value);
  if (value instanceof Error) return fail(`an error (${name})`, 'superjson keeps only the name and message of an Error (not its class, stack or properties); return plain data instead');
  if (registries === undefined) return undefined; // without access to the registries, classes cannot be told apart: trust the instance
  return fail(`an instance of ${name}`, `register the class with SuperJSON.registerClass(${name}, { identifier: '${name}' }) (or a transformer with SuperJSON.registerCustom)`);
}

function checkArray(array: unknown[], registries: Registries | undefined, seen: Set<object>, depth: number): Failure | undefined {
  // One key per index when the array is dense and has nothing else: holes and extra properties are lost.
  if (Object.keys(array).length !== array.length) {
    for (let i = 0; i < array.length; i++) if (!(i in array)) return fail(`a sparse array (hole at index ${i})`, 'fill the holes (with undefined or null)');
    return fail('an array with extra properties', 'return them in an object instead');
  }
  for (let i = 0; i < array.length; i++) {
    const failure = check(array[i], registries, seen, depth + 1);
    if (failure !== undefined) return within(failure, `[${i}]`);
  }
  return undefined;
}

function checkProperties(object: object, keys: ReadonlyArray<string | symbol>, registries: Registries | undefined, seen: Set<object>, depth: number, strict = false): Failure | undefined {
  for (const key of keys) {
    if (typeof key === 'symbol') return fail(`a symbol-keyed property (${String(key.description)})`);
    if (strict && !Object.prototype.propertyIsEnumerable.call(object, key)) return within(fail('a non-enumerable property'), `.${key}`);
    const failure = check((object as Record<string, unknown>)[key], registries, seen, depth + 1);
    if (failure !== undefined) return within(failure, `.${key}`);
  }
  return undefined;
}

function within(failure: Failure, segment: string): Failure {
  failure.path.push(segment);
  return failure;
}

function typeNameOf(value: object): string {
  const ctor = (value as { constructor?: { name?: unknown } }).constructor;
  return typeof ctor?.name === 'string' && ctor.name !== '' ? ctor.name : 'an anonymous class';
}
