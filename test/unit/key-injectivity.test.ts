import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { encodeValue, UnkeyableValueError } from '../../src/keys/key-builder.js';

// Property: for argument tuples a and b, encode(a) === encode(b) exactly when a and b are structurally equal.
// Structural equality is defined here, independently of the encoder: Map/Set contents and object keys are
// compared regardless of order, -0 differs from 0, NaN equals NaN, a null-prototype object equals the plain
// object with the same entries, typed arrays are equal when of the same type with the same elements.

/** Encodes an argument tuple as keys do: each argument encoded, joined by `,`. */
function encodeTuple(args: readonly unknown[]): string {
  return args.map(a => encodeValue(a)).join(',');
}

type TypedArray = Uint8Array | Float64Array;

function isPlainObject(v: object): v is Record<string, unknown> {
  const proto = Object.getPrototypeOf(v) as object | null;
  return proto === Object.prototype || proto === null;
}

/** Pairs every item of `as` with a distinct equal item of `bs` (greedy is exact: equality is an equivalence). */
function sameMultiset<T>(as: readonly T[], bs: readonly T[], eq: (x: T, y: T) => boolean): boolean {
  if (as.length !== bs.length) return false;
  const used = new Array<boolean>(bs.length).fill(false);
  for (const x of as) {
    const j = bs.findIndex((y, i) => !used[i] && eq(x, y));
    if (j < 0) return false;
    used[j] = true;
  }
  return true;
}

function structurallyEqual(a: unknown, b: unknown): boolean {
  if (typeof a !== typeof b) return false;
  if (typeof a === 'number') return Object.is(a, b);
  if (typeof a !== 'object' || a === null || b === null) return a === b;
  const x = a as object;
  const y = b as object;
  const sx = special.get(x);
  const sy = special.get(y);
  // Objects with their own key are equal when of the same kind (class, or plain) with the same key.
  if (sx !== undefined || sy !== undefined) return sx !== undefined && sy !== undefined && sx.kind === sy.kind && sx.key === sy.key;
  if (Array.isArray(x) || Array.isArray(y)) {
    return Array.isArray(x) && Array.isArray(y) && x.length === y.length && x.every((v, i) => structurallyEqual(v, y[i]));
  }
  if (x instanceof Date || y instanceof Date) {
    return x instanceof Date && y instanceof Date && Object.is(x.getTime(), y.getTime());
  }
  if (x instanceof Map || y instanceof Map) {
    return x instanceof Map && y instanceof Map && sameMultiset([...x], [...y], ([k1, v1], [k2, v2]) => structurallyEqual(k1, k2) && structurallyEqual(v1, v2));
  }
  if (x instanceof Set || y instanceof Set) {
    return x instanceof Set && y instanceof Set && sameMultiset([...x], [...y], structurallyEqual);
  }
  if (ArrayBuffer.isView(x) || ArrayBuffer.isView(y)) {
    if (!ArrayBuffer.isView(x) || !ArrayBuffer.isView(y) || x.constructor !== y.constructor) return false;
    const p = x as TypedArray;
    const q = y as TypedArray;
    return p.length === q.length && Array.from(p).every((v, i) => Object.is(v, q[i]));
  }
  if (isPlainObject(x) && isPlainObject(y)) {
    const kx = Object.keys(x).sort();
    const ky = Object.keys(y).sort();
    return kx.length === ky.length && kx.every((k, i) => k === ky[i] && structurallyEqual(x[k], y[k]));
  }
  throw new Error(`structurallyEqual: unexpected value ${String(a)}`);
}

// ───────────────────────────── objects with their own key, and unkeyable objects ─────────────────────────────

/**
 * Objects the oracle treats as leaves: keyed ones (`kind` + `key`; equal when both match) and unkeyable ones
 * (`kind` starting with "unkeyable"), each with a factory for a fresh equal copy.
 */
interface Special {
  readonly kind: string;
  readonly key: string;
  readonly make: () => object;
}
const special = new WeakMap<object, Special>();

function register<T extends object>(kind: string, key: string, build: () => T): T {
  const make = (): T => {
    const o = build();
    special.set(o, { kind, key, make });
    return o;
  };
  return make();
}

class Alpha {
  constructor(readonly k: string) {}
  getCacheKey(): string {
    return this.k;
  }
}
class Beta {
  constructor(readonly k: string) {}
  getCacheKey(): string {
    return this.k;
  }
}
// Classes whose names a naive encoder would confuse with a plain object, a built-in, or a separator.
const { Object: NamedObject, URL: NamedUrl, 'Alpha("a"),Alpha': Forger } = {
  Object: class {
    constructor(readonly k: string) {}
    getCacheKey(): string {
      return this.k;
    }
  },
  URL: class {
    constructor(readonly k: string) {}
    getCacheKey(): string {
      return this.k;
    }
  },
  'Alpha("a"),Alpha': class {
    constructor(readonly k: string) {}
    getCacheKey(): string {
      return this.k;
    }
  },
};
const keyedKinds: ReadonlyArray<readonly [string, (k: string) => object]> = [
  ['Alpha', k => new Alpha(k)],
  ['Beta', k => new Beta(k)],
  ['class named Object', k => new NamedObject(k)],
  ['class named URL', k => new NamedUrl(k)],
  ['class named Alpha("a"),Alpha', k => new Forger(k)],
  ['plain', k => ({ getCacheKey: () => k })],
  // A null-prototype object is a plain object (as everywhere in the encoding): the same kind.
  ['plain', k => Object.assign(Object.create(null) as object, { getCacheKey: () => k })],
];

function anonymousInstance(k: string): object {
  return new (class {
    getCacheKey(): string {
      return k;
    }
  })();
}

const unkeyableKinds: ReadonlyArray<readonly [string, (k: string) => object]> = [
  ['anonymous class', anonymousInstance],
  ['symbol-keyed property', k => ({ a: k, [Symbol(k)]: 1 })],
  ['non-enumerable property', k => Object.defineProperty({ a: k }, 'hidden', { value: 1, enumerable: false })],
  ['getCacheKey returning a number', k => ({ getCacheKey: () => k.length })],
  ['getCacheKey returning an object', k => ({ getCacheKey: () => ({ k }) })],
];
// A throwing getter and a revoked proxy are not generated: fast-check reads them to print a counterexample.
// They are placed inside every kind of container by a deterministic test below.

/** A value easily confused with a keyed object: same key in another kind, the bare key, a near key. */
function confusableKeyed(info: Special, random: () => number): unknown {
  if (info.kind.startsWith('unkeyable')) return pick([{ a: info.key }, {}, info.key], random);
  const [kind, make] = pick(keyedKinds, random);
  return pick(
    [
      register(kind, info.key, () => make(info.key)),
      register(info.kind, `${info.key},`, () => keyedKinds.find(([k]) => k === info.kind)![1](`${info.key},`)),
      info.key,
      `${info.kind}("${info.key}")`,
      [info.key],
    ],
    random,
  );
}

/** True unless the value contains an unkeyable object somewhere. */
function keyable(v: unknown): boolean {
  if (typeof v !== 'object' || v === null) return true;
  const info = special.get(v);
  if (info !== undefined) return !info.kind.startsWith('unkeyable');
  if (v instanceof Date || ArrayBuffer.isView(v)) return true;
  if (Array.isArray(v) || v instanceof Set) return [...v].every(keyable);
  if (v instanceof Map) return [...v].every(([k, x]) => keyable(k) && keyable(x));
  return Object.values(v).every(keyable);
}

// ───────────────────────────── value generation ─────────────────────────────

/** Deterministic PRNG so a pair is reproducible from fast-check's seed. */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function shuffled<T>(items: readonly T[], random: () => number): T[] {
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

/** Builds an object from entries with plain data properties (an own "__proto__" key stays a key). */
function makeObject(entries: ReadonlyArray<readonly [string, unknown]>, nullPrototype: boolean): Record<string, unknown> {
  const o = (nullPrototype ? Object.create(null) : {}) as Record<string, unknown>;
  for (const [k, v] of entries) Object.defineProperty(o, k, { value: v, enumerable: true, writable: true, configurable: true });
  return o;
}

/** A structurally equal deep copy, with object keys and Map/Set entries in another insertion order. */
function reshuffle(v: unknown, random: () => number): unknown {
  if (typeof v !== 'object' || v === null) return v;
  const info = special.get(v);
  if (info !== undefined) return info.make();
  if (Array.isArray(v)) return v.map(x => reshuffle(x, random));
  if (v instanceof Date) return new Date(v.getTime());
  if (v instanceof Map) return new Map(shuffled([...v], random).map(([k, x]) => [reshuffle(k, random), reshuffle(x, random)]));
  if (v instanceof Set) return new Set(shuffled([...v], random).map(x => reshuffle(x, random)));
  if (v instanceof Uint8Array) return new Uint8Array(v);
  if (v instanceof Float64Array) return new Float64Array(v);
  const o = v as Record<string, unknown>;
  return makeObject(
    shuffled(Object.keys(o), random).map(k => [k, reshuffle(o[k], random)] as const),
    Object.getPrototypeOf(o) === null,
  );
}

function pick<T>(options: readonly T[], random: () => number): T {
  return options[Math.floor(random() * options.length)]!;
}

/** A value easily confused with `v` by a naive encoder (same text, same shape or same contents). */
function confusable(v: unknown, random: () => number): unknown {
  switch (typeof v) {
    case 'number':
      return pick([v === 0 ? (Object.is(v, -0) ? 0 : -0) : -v, String(v), Number.isInteger(v) ? BigInt(v) : v + 1, v + 1, NaN, 0, -0, null, undefined, [v]], random);
    case 'string':
      return pick([`${v},`, v.split(','), Number(v), JSON.stringify(v), '', v.slice(1), `${v}"`, [v]], random);
    case 'bigint':
      return pick([Number(v), String(v), `${v}n`, v + 1n], random);
    case 'boolean':
      return pick([!v, String(v), v ? 1 : 0], random);
    case 'undefined':
      return pick([null, 'undefined', [], [undefined]], random);
  }
  if (v === null) return pick([undefined, 'null', 0, NaN, {}], random);
  const info = special.get(v as object);
  if (info !== undefined) return confusableKeyed(info, random);
  if (Array.isArray(v)) {
    return pick([v.slice(1), [...v, undefined], [v], new Set(v), makeObject(v.map((x, i) => [String(i), x] as const), false), v.filter(x => typeof x === 'string').join(',')], random);
  }
  if (v instanceof Date) return pick([v.getTime(), new Date(v.getTime() + 1), String(v.getTime()), [v.getTime()]], random);
  if (v instanceof Map) {
    const entries = [...v];
    return pick([new Map(entries.slice(1)), entries, new Set(entries.map(([k]) => k)), new Map([...entries, ['k', undefined]])], random);
  }
  if (v instanceof Set) return pick([[...v], new Set([...v].slice(1)), new Set([...v, undefined]), new Map([...v].map(x => [x, x]))], random);
  if (v instanceof Uint8Array) return pick([Array.from(v), new Float64Array(v), new Uint8Array([...v, 0])], random);
  if (v instanceof Float64Array) return pick([Array.from(v), new Uint8Array(v), new Float64Array([...v].reverse())], random);
  const o = v as Record<string, unknown>;
  const keys = Object.keys(o);
  return pick(
    [
      makeObject(keys.slice(1).map(k => [k, o[k]] as const), false),
      makeObject([...keys.map(k => [k, o[k]] as const), ['a', undefined]], false),
      new Map(keys.map(k => [k, o[k]])),
      keys.map(k => o[k]),
      keys.map(k => [k, o[k]]),
    ],
    random,
  );
}

/** The number of nodes of `v` that {@link mutateAt} can replace: itself and everything inside it. */
function countNodes(v: unknown): number {
  if (typeof v !== 'object' || v === null || v instanceof Date || ArrayBuffer.isView(v) || special.has(v)) return 1;
  if (Array.isArray(v) || v instanceof Set) return 1 + [...v].reduce((n: number, x) => n + countNodes(x), 0);
  if (v instanceof Map) return 1 + [...v].reduce((n: number, [k, x]) => n + countNodes(k) + countNodes(x), 0);
  const o = v as Record<string, unknown>;
  return 1 + Object.keys(o).reduce((n, k) => n + countNodes(o[k]), 0);
}

/** A copy of `v` whose node number `state.target` (depth-first) is replaced by a confusable value. */
function mutateAt(v: unknown, random: () => number, state: { target: number }): unknown {
  if (state.target-- === 0) return confusable(v, random);
  if (state.target < 0 || typeof v !== 'object' || v === null || special.has(v)) return v;
  if (Array.isArray(v)) return v.map(x => mutateAt(x, random, state));
  if (v instanceof Map) return new Map([...v].map(([k, x]) => [mutateAt(k, random, state), mutateAt(x, random, state)]));
  if (v instanceof Set) return new Set([...v].map(x => mutateAt(x, random, state)));
  if (v instanceof Date || ArrayBuffer.isView(v)) return v;
  const o = v as Record<string, unknown>;
  return makeObject(
    Object.keys(o).map(k => [k, mutateAt(o[k], random, state)] as const),
    Object.getPrototypeOf(o) === null,
  );
}

/** A copy of the tuple `t` with one node (chosen uniformly) made confusable, or with its arity changed. */
function mutateTuple(t: readonly unknown[], random: () => number): unknown[] {
  const nodes = t.reduce((n: number, v) => n + countNodes(v), 0);
  const r = random();
  if (nodes === 0 || r < 0.1) return random() < 0.5 ? [...t, undefined] : t.slice(0, -1);
  if (r < 0.25) {
    // Tuple-level confusions: one string argument split at its separators, or two string arguments joined.
    const i = Math.floor(random() * t.length);
    const [x, y] = [t[i], t[i + 1]];
    if (typeof x === 'string' && typeof y === 'string') return [...t.slice(0, i), pick([`${x},${y}`, `${x}","${y}`, `${x}${y}`], random), ...t.slice(i + 2)];
    if (typeof x === 'string') return [...t.slice(0, i), ...x.split(pick([',', '","', '"'], random)), ...t.slice(i + 1)];
  }
  const state = { target: Math.floor(random() * nodes) };
  return t.map(v => mutateAt(v, random, state));
}

const separatorUnit = fc.constantFrom(',', '"', '\\', '[', ']', '{', '}', '(', ')', ':', '=', '>', '_', '~', '.', ' ', 'a', 'b', '1', 'n', 'u', 'l');

const stringArb = fc.oneof(
  fc.constantFrom('', 'a', 'b', '1', '-0', 'NaN', 'null', 'undefined', 'true', 'a,b', ',', '"', '\\', '"a","b"', '[]', '{}', 'Date(0)', '1n', '_', '=>', 'a","b', '","'),
  fc.string({ unit: separatorUnit, maxLength: 6 }),
  fc.string({ unit: 'binary', maxLength: 4 }),
);

const numberArb = fc.oneof(
  fc.constantFrom(0, -0, NaN),
  fc.constantFrom(0, -0, 1, -1, NaN, Infinity, -Infinity, 1.5, 1e21, Number.MIN_VALUE, 2 ** 53),
  fc.integer({ min: -3, max: 3 }),
  fc.double(),
);

const bigintArb = fc.oneof(fc.bigInt({ min: -3n, max: 3n }), fc.bigInt());

const dateArb = fc.oneof(
  fc.constantFrom(0, 1, NaN).map(t => new Date(t)),
  fc.date({ noInvalidDate: false }),
);

const typedArrayArb = fc.oneof(
  fc.array(fc.integer({ min: 0, max: 3 }), { maxLength: 3 }).map(xs => new Uint8Array(xs)),
  fc.array(fc.oneof(fc.constantFrom(0, -0, NaN, 1), fc.double()), { maxLength: 2 }).map(xs => new Float64Array(xs)),
);

const objectKeyArb = fc.oneof(fc.constantFrom('a', 'b', 'a,b', '"', '', ':', '0', '__proto__'), fc.string({ unit: separatorUnit, maxLength: 3 }));

const leafArb = fc.oneof(stringArb, numberArb, bigintArb, fc.boolean(), fc.constant(null), fc.constant(undefined), dateArb, typedArrayArb);

const { value: valueArb } = fc.letrec<{ value: unknown }>(tie => ({
  value: fc.oneof(
    { depthIdentifier: 'value', maxDepth: 3, depthSize: 'small' },
    leafArb,
    fc.array(tie('value'), { maxLength: 3, depthIdentifier: 'value' }),
    fc
      .tuple(fc.array(fc.tuple(objectKeyArb, tie('value')), { maxLength: 3, depthIdentifier: 'value' }), fc.boolean())
      .map(([entries, nullPrototype]) => makeObject(entries, nullPrototype)),
    fc.array(fc.tuple(tie('value'), tie('value')), { maxLength: 3, depthIdentifier: 'value' }).map(entries => new Map(entries)),
    fc.array(tie('value'), { maxLength: 3, depthIdentifier: 'value' }).map(items => new Set(items)),
  ),
}));

// Arguments are often primitives: weight them up at the top level so tuple-level confusions are common.
const tupleArb = fc.array(fc.oneof(valueArb, stringArb, numberArb), { maxLength: 4 });

/** Independent tuples, equal tuples built differently, and near-miss tuples (one node made confusable). */
const pairArb = fc.oneof(
  fc.tuple(tupleArb, tupleArb),
  fc.tuple(tupleArb, fc.integer()).map(([t, seed]) => [t, reshuffle(t, rng(seed))] as [unknown[], unknown[]]),
  fc.tuple(tupleArb, fc.integer()).map(([t, seed]) => [t, mutateTuple(t, rng(seed))] as [unknown[], unknown[]]),
);

describe('key encoding is canonical and injective (property-based)', () => {
  it('the structural equality used as the oracle behaves as specified', () => {
    expect(structurallyEqual(-0, 0)).toBe(false);
    expect(structurallyEqual(NaN, NaN)).toBe(true);
    expect(structurallyEqual({ a: 1, b: 2 }, { b: 2, a: 1 })).toBe(true);
    expect(structurallyEqual(new Set([1, 2]), new Set([2, 1]))).toBe(true);
    expect(structurallyEqual(new Set([[1], [1]]), new Set([[1]]))).toBe(false);
    expect(structurallyEqual(new Map([['a', 1]]), new Map([['a', '1']]))).toBe(false);
    expect(structurallyEqual([1], ['1'])).toBe(false);
  });

  it('two argument tuples encode equally exactly when they are structurally equal', () => {
    let equalPairs = 0;
    let distinctPairs = 0;
    fc.assert(
      fc.property(pairArb, ([a, b]) => {
        const equal = structurallyEqual(a, b);
        if (equal) equalPairs++;
        else distinctPairs++;
        const ea = encodeTuple(a);
        const eb = encodeTuple(b);
        if ((ea === eb) !== equal) {
          throw new Error(`structurallyEqual=${equal} but encodings ${ea === eb ? 'collide' : 'differ'}:\n  ${ea}\n  ${eb}`);
        }
        // The same holds when the tuple is a single array argument.
        expect(encodeValue(a) === encodeValue(b)).toBe(equal);
      }),
      { numRuns: 2_000 },
    );
    // Both sides of the equivalence must have been exercised for the property to mean anything.
    expect(equalPairs).toBeGreaterThan(300);
    expect(distinctPairs).toBeGreaterThan(300);
  });

  it('encodes a value the same way however its objects, Maps and Sets were built', () => {
    fc.assert(
      fc.property(valueArb, fc.integer(), (v, seed) => {
        expect(encodeValue(reshuffle(v, rng(seed)))).toBe(encodeValue(v));
      }),
      { numRuns: 1_000 },
    );
  });
});

// ───────────────────────────── with keyed and unkeyable objects ─────────────────────────────

const keyArb = fc.oneof(fc.constantFrom('a', 'b', '', 'a,b', '"', 'Alpha("a")', ')'), fc.string({ unit: separatorUnit, maxLength: 4 }));
const keyedArb = fc.tuple(fc.integer({ min: 0, max: keyedKinds.length - 1 }), keyArb).map(([i, key]) => {
  const [kind, make] = keyedKinds[i]!;
  return register(kind, key, () => make(key));
});
const unkeyableArb = fc.tuple(fc.integer({ min: 0, max: unkeyableKinds.length - 1 }), keyArb).map(([i, key]) => {
  const [kind, make] = unkeyableKinds[i]!;
  return register(`unkeyable: ${kind}`, key, () => make(key));
});

const { value: valueWithObjectsArb } = fc.letrec<{ value: unknown }>(tie => ({
  value: fc.oneof(
    { depthIdentifier: 'value', maxDepth: 3, depthSize: 'small' },
    leafArb,
    keyedArb,
    keyedArb,
    fc.constant(null).chain(() => unkeyableArb),
    fc.array(tie('value'), { maxLength: 3, depthIdentifier: 'value' }),
    fc
      .tuple(fc.array(fc.tuple(objectKeyArb, tie('value')), { maxLength: 3, depthIdentifier: 'value' }), fc.boolean())
      .map(([entries, nullPrototype]) => makeObject(entries, nullPrototype)),
    fc.array(fc.tuple(tie('value'), tie('value')), { maxLength: 3, depthIdentifier: 'value' }).map(entries => new Map(entries)),
    fc.array(tie('value'), { maxLength: 3, depthIdentifier: 'value' }).map(items => new Set(items)),
  ),
}));

const tupleWithObjectsArb = fc.array(fc.oneof(valueWithObjectsArb, keyedArb, stringArb), { maxLength: 4 });

const pairWithObjectsArb = fc.oneof(
  fc.tuple(tupleWithObjectsArb, tupleWithObjectsArb),
  fc.tuple(tupleWithObjectsArb, fc.integer()).map(([t, seed]) => [t, reshuffle(t, rng(seed))] as [unknown[], unknown[]]),
  fc.tuple(tupleWithObjectsArb, fc.integer()).map(([t, seed]) => [t, mutateTuple(t, rng(seed))] as [unknown[], unknown[]]),
);

/** The encoding of a tuple, or the UnkeyableValueError it fails with (any other error fails the property). */
function encodeOrUnkeyable(t: readonly unknown[]): string | UnkeyableValueError {
  try {
    return encodeTuple(t);
  } catch (error) {
    if (error instanceof UnkeyableValueError) return error;
    throw new Error(`encoding threw a raw ${(error as Error)?.name ?? typeof error}, not an UnkeyableValueError: ${String(error)}`);
  }
}

describe('key encoding with objects that have their own key, and unkeyable objects (property-based)', () => {
  it('the oracle tells keyed objects apart by kind and key', () => {
    const a = register('Alpha', 'a', () => new Alpha('a'));
    expect(structurallyEqual(a, special.get(a)!.make())).toBe(true);
    expect(structurallyEqual(a, register('Beta', 'a', () => new Beta('a')))).toBe(false);
    expect(keyable([register('unkeyable: x', 'a', () => ({}))])).toBe(false);
  });

  it('a tuple fails with UnkeyableValueError exactly when it holds an unkeyable value; keyable tuples encode equally exactly when equal', () => {
    let equalPairs = 0;
    let distinctPairs = 0;
    let unkeyablePairs = 0;
    let keyedPairs = 0;
    fc.assert(
      fc.property(pairWithObjectsArb, ([a, b]) => {
        const ea = encodeOrUnkeyable(a);
        const eb = encodeOrUnkeyable(b);
        const ka = a.every(keyable);
        const kb = b.every(keyable);
        if (ka !== (typeof ea === 'string')) throw new Error(`keyable=${ka} but encoding ${typeof ea === 'string' ? `succeeded: ${ea}` : `failed: ${ea.message}`}`);
        if (kb !== (typeof eb === 'string')) throw new Error(`keyable=${kb} but encoding ${typeof eb === 'string' ? `succeeded: ${eb}` : `failed: ${eb.message}`}`);
        if (!ka || !kb) {
          unkeyablePairs++;
          return;
        }
        if ([...a, ...b].some(v => typeof v === 'object' && v !== null && special.has(v))) keyedPairs++;
        const equal = structurallyEqual(a, b);
        if (equal) equalPairs++;
        else distinctPairs++;
        if ((ea === eb) !== equal) throw new Error(`structurallyEqual=${equal} but encodings ${ea === eb ? 'collide' : 'differ'}:\n  ${String(ea)}\n  ${String(eb)}`);
      }),
      { numRuns: 2_000 },
    );
    expect(equalPairs).toBeGreaterThan(150);
    expect(distinctPairs).toBeGreaterThan(300);
    expect(unkeyablePairs).toBeGreaterThan(100);
    expect(keyedPairs).toBeGreaterThan(300);
  });

  it('a throwing getter or a revoked proxy anywhere in a value is an UnkeyableValueError, never a raw error', () => {
    const hostile = (): unknown[] => {
      const { proxy, revoke } = Proxy.revocable({ a: 1 }, {});
      revoke();
      const getter = {
        get a(): number {
          throw new TypeError('getter');
        },
      };
      const { proxy: trapped } = Proxy.revocable({}, {
        ownKeys() {
          throw new Error('ownKeys trap');
        },
      });
      return [proxy, getter, trapped];
    };
    const containers: Array<(v: unknown) => unknown> = [
      v => v,
      v => [1, v],
      v => ({ b: 'x', a: v }),
      v => new Map([['k', v]]),
      v => new Map([[v, 1]]),
      v => new Set([v]),
      v => [{ deep: [new Set([v])] }],
    ];
    for (const wrap of containers) {
      for (const value of hostile()) {
        expect(encodeOrUnkeyable(['ok', wrap(value)])).toBeInstanceOf(UnkeyableValueError);
      }
    }
  });
});
