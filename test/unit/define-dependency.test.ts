// defineDependency (SPEC §12): typed dependency keys, their escaping, value equality, validation, the types,
// and a property-based check that distinct (kind, keyer, value) triples never share a key.
import { describe, expect, expectTypeOf, it } from 'vitest';
import { CachingError, defineDependency, type CacheDependency, type DependencyBuilder, type DependencyValue } from 'aspect-cache';
import { cascadeClosure } from '../../src/dependencies/cache-dependency.js';

interface Product {
  id: number;
  name: string;
}

const product = defineDependency('product', { byId: (p: Product) => p.id, byName: (p: Product) => p.name });

function keyOf(dependency: CacheDependency): string {
  return dependency.getCacheKey();
}

/** The CachingError `fn` throws, checking its code. */
function errorOf(fn: () => unknown, code: string): CachingError {
  let thrown: unknown;
  try {
    fn();
  } catch (error) {
    thrown = error;
  }
  expect(thrown).toBeInstanceOf(CachingError);
  expect(thrown).toMatchObject({ code });
  return thrown as CachingError;
}

describe('defineDependency keys', () => {
  it('product.byId(42) is product|byid|42 and product.all is product|all', () => {
    expect(keyOf(product.byId(42))).toBe('product|byid|42');
    expect(keyOf(product.byName('corn'))).toBe('product|byname|corn');
    expect(keyOf(product.all)).toBe('product|all');
    expect(product.kind).toBe('product');
  });

  it('keeps the keyer spelling on the builder and lowercases it in the key', () => {
    const order = defineDependency('order', { byCustomerID: (o: { customer: string }) => o.customer });
    expect(typeof order.byCustomerID).toBe('function');
    expect(order.byCustomerID.name).toBe('byCustomerID');
    expect(keyOf(order.byCustomerID('c1'))).toBe('order|bycustomerid|c1');
  });

  it('escapes | and \\ in kinds, keyer names and values', () => {
    const kindWithBar = defineDependency('a|byb', { byC: (r: string) => r });
    const keyerWithBar = defineDependency('a', { 'byb|byc': (r: string) => r });
    expect(keyOf(kindWithBar.byC('v'))).toBe('a\\|byb|byc|v');
    expect(keyOf(keyerWithBar['byb|byc']('v'))).toBe('a|byb\\|byc|v');
    expect(keyOf(product.byName('x|y'))).toBe('product|byname|x\\|y');
    expect(keyOf(product.byName('x\\'))).toBe('product|byname|x\\\\');
    expect(keyOf(product.byName('x\\|'))).not.toBe(keyOf(product.byName('x|')));
  });

  it('never lets a kind containing | pose as another kind with a keyer', () => {
    const ab = defineDependency('a|byb', { byX: (r: string) => r });
    const a = defineDependency('a', { byB: (r: string) => r, byX: (r: string) => r });
    expect(keyOf(ab.all)).not.toBe(keyOf(a.byB('all')));
    expect(keyOf(ab.byX('v'))).not.toBe(keyOf(a.byB('byx|v')));
    expect(keyOf(a.byB(''))).not.toBe(keyOf(a.all));
  });

  it('gives an empty string value its own key, distinct from all and from other keyers', () => {
    expect(keyOf(product.byName(''))).toBe('product|byname|');
    expect(new Set([keyOf(product.byName('')), keyOf(product.byId('' as unknown as number)), keyOf(product.all)]).size).toBe(3);
  });

  it('keeps lone surrogates and other unicode as they are', () => {
    expect(keyOf(product.byName('\uD800'))).toBe('product|byname|\uD800');
    expect(keyOf(product.byName('\uDC00'))).not.toBe(keyOf(product.byName('\uD800')));
    expect(keyOf(defineDependency('Prodüct', { byNäme: (p: string) => p }).byNäme('😀'))).toBe('Prodüct|bynäme|😀');
  });

  it('shares the keys of a kind defined twice (the kind is the namespace)', () => {
    const again = defineDependency('product', { byId: (p: { id: number }) => p.id });
    expect(keyOf(again.byId(7))).toBe(keyOf(product.byId(7)));
    expect(keyOf(again.all)).toBe(keyOf(product.all));
  });

  it('is a CacheDependency with a readable toString', () => {
    expect(String(product.byName('corn'))).toBe('product.byName("corn")');
    expect(String(product.byId(42))).toBe('product.byId(42)');
    expect(String(product.all)).toBe('product.all');
    expect(String(product)).toBe('DependencyBuilder(product)');
    expect(product.byId(1).cascadeDependencies).toBeUndefined();
  });
});

describe('defineDependency values', () => {
  const keyed = defineDependency('thing', { byKey: (v: DependencyValue) => v });
  const k = (v: DependencyValue): string => keyOf(keyed.byKey(v));

  it('keys 42, "42" and 42n alike: a dependency means the entity, whatever the id type', () => {
    expect(k(42)).toBe('thing|bykey|42');
    expect(k('42')).toBe(k(42));
    expect(k(42n)).toBe(k(42));
  });

  it('keys -0 as 0, and large integral numbers by their digits, like the same bigint', () => {
    expect(k(-0)).toBe(k(0));
    expect(k(1e21)).toBe('thing|bykey|1000000000000000000000');
    expect(k(1e21)).toBe(k(10n ** 21n));
    expect(k(-(2 ** 60))).toBe(k(-(2n ** 60n)));
  });

  it('keeps distinct texts distinct: "042", "42.0" and " 42" are not 42', () => {
    const keys = [k(42), k('042'), k('42.0'), k(' 42'), k(42.5), k('4.2e1')];
    expect(new Set(keys).size).toBe(keys.length);
  });

  it('accepts NaN, Infinity, fractions and booleans without failing, keyed by their text', () => {
    expect(k(NaN)).toBe('thing|bykey|NaN');
    expect(k(Infinity)).toBe('thing|bykey|Infinity');
    expect(k(-Infinity)).toBe('thing|bykey|-Infinity');
    expect(k(0.1)).toBe('thing|bykey|0.1');
    expect(k(true)).toBe('thing|bykey|true');
    expect(k(false)).toBe(k('false'));
    expect(k(Number.MIN_VALUE)).toBe('thing|bykey|5e-324');
  });

  it.each([
    ['an object', { id: 1 }, /got an object.*pass a string, number, bigint or boolean \(to depend on a whole record, use thing\.of\(record\)\)/],
    ['an array', [1], /got an array/],
    ['undefined', undefined, /got undefined/],
    ['null', null, /got null/],
    ['a symbol', Symbol('s'), /got a symbol \(s\)/],
    ['a function', () => 1, /got a function/],
    ['a Date', new Date(0), /got a Date object/],
  ])('rejects %s with a CachingError naming the kind, the keyer and the fix', (_label, value, message) => {
    const error = errorOf(() => keyed.byKey(value as never), 'E_UNKEYABLE');
    expect(error.message).toMatch(/^thing\.byKey\(value\): /);
    expect(error.message).toMatch(message);
  });
});

describe('defineDependency of(record), the touch', () => {
  const corn: Product = { id: 1, name: 'corn' };

  it('has the first keyer key as its own key, and every other key of the record and all as cascades', () => {
    const touch = product.of(corn);
    expect(keyOf(touch)).toBe('product|byid|1');
    expect([...touch.cascadeDependencies!].map(keyOf)).toEqual(['product|byname|corn', 'product|all']);
    expect(String(touch)).toBe('product.of({ byId: 1, byName: "corn" })');
  });

  it('closes over every key the record has, which invalidate uses', () => {
    expect(cascadeClosure([product.of(corn)], 'test').sort()).toEqual(['product|all', 'product|byid|1', 'product|byname|corn']);
  });

  it('reads the record when called, so a later change to the record does not change the touch', () => {
    const record: Product = { id: 3, name: 'oats' };
    const before = product.of(record);
    record.name = 'barley';
    expect(cascadeClosure([before], 'test')).toContain('product|byname|oats');
    expect(cascadeClosure([before], 'test')).not.toContain('product|byname|barley');
  });

  it('keys the record values as the by* methods do', () => {
    const keys = cascadeClosure([product.of({ id: 42, name: 'a|b' })], 'test');
    expect(keys).toContain(keyOf(product.byId(42)));
    expect(keys).toContain(keyOf(product.byName('a|b')));
  });

  it('wraps a throwing keyer in a CachingError with the cause', () => {
    const boom = new Error('boom');
    const fragile = defineDependency('fragile', {
      byId: (r: { id: number }) => {
        if (r.id < 0) throw boom;
        return r.id;
      },
    });
    const error = errorOf(() => fragile.of({ id: -1 }), 'E_UNKEYABLE');
    expect(error.message).toMatch(/^fragile\.of\(record\): the keyer byId threw \(Error: boom\)/);
    expect(error.cause).toBe(boom);
    expect(errorOf(() => product.of(null as never), 'E_UNKEYABLE').message).toMatch(/the keyer byId threw \(TypeError/);
  });

  it('rejects a keyer result that cannot be keyed, naming the keyer', () => {
    const error = errorOf(() => product.of({ id: 1, name: undefined } as never), 'E_UNKEYABLE');
    expect(error.message).toBe(
      'product.of(record): the keyer byName returned undefined; a keyer must return a string, number, bigint or boolean for every record passed to product.of.',
    );
  });
});

describe('defineDependency validation', () => {
  it('rejects an empty or non-string kind', () => {
    expect(errorOf(() => defineDependency('', { byId: (p: Product) => p.id }), 'E_INVALID_OPTION').message).toMatch(/the kind must be a non-empty string.*got an empty string/);
    expect(errorOf(() => defineDependency(42 as never, { byId: (p: Product) => p.id }), 'E_INVALID_OPTION').message).toMatch(/got number 42/);
  });

  it.each([
    ['null', null, /got null/],
    ['an array', [() => 1], /got an array/],
    ['a function', () => 1, /got a function/],
    ['a class instance', new (class ProductKeyers { byId = () => 1; })(), /got a ProductKeyers object/],
  ])('rejects keyers that are %s', (_label, keyers, message) => {
    const error = errorOf(() => defineDependency('product', keyers as never), 'E_INVALID_OPTION');
    expect(error.message).toMatch(/^defineDependency\('product'\): the keyers must be a plain object of functions, e\.g\. \{ byId: \(p: Product\) => p\.id \}/);
    expect(error.message).toMatch(message);
  });

  it('rejects no keyer, pointing to StringDependency', () => {
    expect(errorOf(() => defineDependency('product', {}), 'E_INVALID_OPTION').message).toMatch(/define at least one keyer.*StringDependency/);
  });

  it.each([
    ['all', 'the dependency on every record'],
    ['of', 'the touch of a record, of(record)'],
    ['kind', 'the kind the builder was defined with'],
  ])('rejects the reserved keyer name %s, saying what it is', (name, what) => {
    const error = errorOf(() => defineDependency('product', { [name]: (p: Product) => p.id } as never), 'E_INVALID_OPTION');
    expect(error.message).toBe(`defineDependency('product'): '${name}' cannot be a keyer, product.${name} is ${what}; name keyers by… (byId, byName).`);
  });

  it('rejects a keyer name without the by prefix, suggesting one', () => {
    const error = errorOf(() => defineDependency('product', { id: (p: Product) => p.id } as never), 'E_INVALID_OPTION');
    expect(error.message).toBe("defineDependency('product'): the keyer 'id' must be named by…, e.g. byId, so that it reads product.byId(value).");
    errorOf(() => defineDependency('product', { ById: (p: Product) => p.id } as never), 'E_INVALID_OPTION');
    errorOf(() => defineDependency('product', { toString: () => 'x' } as never), 'E_INVALID_OPTION');
  });

  it('rejects a symbol-named keyer and a keyer that is not a function', () => {
    expect(errorOf(() => defineDependency('product', { [Symbol('byId')]: () => 1 } as never), 'E_INVALID_OPTION').message).toMatch(/Symbol\(byId\) is a symbol/);
    expect(errorOf(() => defineDependency('product', { byId: 'id' } as never), 'E_INVALID_OPTION').message).toBe(
      "defineDependency('product'): the keyer byId must be a function of the record, e.g. byId: (p: Product) => p.id, got string id.",
    );
  });

  it('rejects two keyer names that are equal once lowercased (they would share keys)', () => {
    const error = errorOf(() => defineDependency('product', { byId: (p: Product) => p.id, byID: (p: Product) => p.id }), 'E_INVALID_OPTION');
    expect(error.message).toMatch(/the keyers byId and byID would share the key product\|byid\|… .*rename or remove one/);
    // U+212A KELVIN SIGN lowercases to k: caught the same way.
    errorOf(() => defineDependency('product', { byk: (p: Product) => p.id, 'by\u212A': (p: Product) => p.id }), 'E_INVALID_OPTION');
  });

  it('wraps a keyers proxy whose traps throw', () => {
    const boom = new Error('trap');
    const keyers = new Proxy({}, { ownKeys: () => { throw boom; } });
    expect(errorOf(() => defineDependency('product', keyers as never), 'E_INVALID_OPTION').cause).toBe(boom);
  });

  it('copies the keyers: changing the object afterwards changes nothing, and the builder is frozen', () => {
    const keyers = { byId: (p: Product) => p.id };
    const builder = defineDependency('copied', keyers);
    keyers.byId = (p: Product) => p.id * 100;
    expect(cascadeClosure([builder.of({ id: 2, name: 'x' })], 'test')).toContain('copied|byid|2');
    expect(Object.isFrozen(builder)).toBe(true);
  });
});

describe('defineDependency types', () => {
  it('infers the record from the keyers and each by* parameter from its keyer', () => {
    expectTypeOf(product.byId).parameter(0).toEqualTypeOf<number>();
    expectTypeOf(product.byName).parameter(0).toEqualTypeOf<string>();
    expectTypeOf(product.of).parameter(0).toEqualTypeOf<Product>();
    expectTypeOf(product.all).toEqualTypeOf<CacheDependency>();
    expectTypeOf(product.byId(1)).toEqualTypeOf<CacheDependency>();
    expectTypeOf(product).toExtend<DependencyBuilder<{ byId: (p: Product) => number; byName: (p: Product) => string }>>();
  });

  it('requires every keyer parameter of a record built from several types', () => {
    const listing = defineDependency('listing', { byId: (p: { id: number }) => p.id, bySku: (p: { sku: string }) => p.sku });
    expectTypeOf(listing.of).parameter(0).toEqualTypeOf<{ id: number } & { sku: string }>();
    // @ts-expect-error the record lacks sku
    expect(() => listing.of({ id: 1 })).toThrow(CachingError);
  });

  it('keeps literal types of keyer results', () => {
    const light = defineDependency('light', { byState: (l: { state: 'on' | 'off' }) => l.state });
    expectTypeOf(light.byState).parameter(0).toEqualTypeOf<'on' | 'off'>();
    // @ts-expect-error 'dim' is not a state
    light.byState('dim');
  });

  it('makes mistakes compile errors (checked by npm run typecheck), and says what each does at run time', () => {
    // @ts-expect-error a misspelt keyer
    expect(() => product.byID(42)).toThrow(TypeError);
    // @ts-expect-error a name passed to byId: at run time any scalar is a valid value
    expect(keyOf(product.byId('corn'))).toBe('product|byid|corn');
    // @ts-expect-error a record lacking name
    expect(() => product.of({ id: 1 })).toThrow(/the keyer byName returned undefined/);
    // @ts-expect-error a keyer not named by…
    expect(() => defineDependency('p', { id: (p: Product) => p.id })).toThrow(/must be named by…/);
    // @ts-expect-error a reserved name
    expect(() => defineDependency('p', { all: (p: Product) => p.id })).toThrow(/'all' cannot be a keyer/);
    // @ts-expect-error a keyer returning an object: at run time, found when a record is touched
    const objects = defineDependency('p', { byId: (p: Product) => ({ id: p.id }) });
    expect(() => objects.of({ id: 1, name: 'x' } as never)).toThrow(/the keyer byId returned an object/);
    // @ts-expect-error a keyer that may return undefined
    const optional = defineDependency('p', { byId: (p: { id?: number }) => p.id });
    expect(() => optional.of({} as never)).toThrow(/the keyer byId returned undefined/);
  });
});

// ───────────────────────────── property: no collisions ─────────────────────────────

/** mulberry32: a small seeded PRNG, so a failure reproduces. */
function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * The entity a value denotes, written out independently of the builder: texts are compared, numbers and
 * bigints by mathematical value (an integral number is the bigint of the same value; -0 is 0), other numbers
 * by String(n); a boolean is its word. Two values denote the same entity when their texts are equal.
 */
function entity(value: DependencyValue): string {
  if (typeof value === 'number' && Number.isFinite(value) && Math.trunc(value) === value) return BigInt(value).toString();
  return String(value);
}

describe('defineDependency keys never collide (property, seeded)', () => {
  // A small alphabet with the separator, the escape character, letters of "by" and "all", upper case (keyer
  // names are lowercased), non-ASCII and lone surrogates: short strings over it hit every near-collision.
  const alphabet = ['a', 'l', 'b', 'y', 'B', 'Y', '|', '\\', 'é', '😀', '\uD800', '\uDC00', '1', '0', '-', '.'];
  const numbers = [0, -0, 1, 42, -1, 1.5, 0.1, 1e21, -1e21, 2 ** 53, NaN, Infinity, -Infinity, 5e-324];

  function run(seed: number, cases: number) {
    const random = mulberry32(seed);
    const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)]!;
    const text = (max: number): string => Array.from({ length: Math.floor(random() * (max + 1)) }, () => pick(alphabet)).join('');
    const value = (): DependencyValue => {
      const r = random();
      if (r < 0.5) return text(3);
      if (r < 0.7) return pick(numbers);
      if (r < 0.8) return BigInt(pick([0, 1, 42, -1])) * pick([1n, 10n ** 21n]);
      if (r < 0.9) return pick(['0', '1', '42', '-1', '1.5', '0.1', 'NaN', 'Infinity', '1000000000000000000000', 'true', 'false', '042']);
      return random() < 0.5;
    };

    const byKey = new Map<string, string>(); // key -> the triple it stands for
    const byTriple = new Map<string, string>(); // triple -> its key
    const allKeys = new Set<string>();
    const byKeys = new Set<string>();
    let naiveCollisions = 0;
    const naive = new Map<string, string>();

    for (let i = 0; i < cases; i++) {
      const kind = text(3) || 'a';
      const names = [`by${text(2)}`, `by${text(2)}`];
      if (names[0]!.toLowerCase() === names[1]!.toLowerCase()) names.pop();
      const keyers = Object.fromEntries(names.map(n => [n, (v: DependencyValue) => v]));
      const builder = defineDependency(kind, keyers);
      allKeys.add(builder.all.getCacheKey());
      for (const name of names) {
        const v = value();
        const key = builder[name]!(v).getCacheKey();
        byKeys.add(key);
        const triple = JSON.stringify([kind, name.toLowerCase(), entity(v)]);
        const known = byKey.get(key);
        if (known !== undefined && known !== triple) throw new Error(`collision: ${triple} and ${known} both give ${JSON.stringify(key)}`);
        byKey.set(key, triple);
        const knownKey = byTriple.get(triple);
        if (knownKey !== undefined && knownKey !== key) throw new Error(`${triple} gave two keys: ${JSON.stringify(knownKey)} and ${JSON.stringify(key)}`);
        byTriple.set(triple, key);
        // What plain concatenation would give: counted to show the generator does reach the hard cases.
        const plain = `${kind}|${name.toLowerCase()}|${entity(v)}`;
        if (naive.has(plain) && naive.get(plain) !== triple) naiveCollisions++;
        naive.set(plain, triple);
      }
    }
    return { allKeys, byKeys, byTriple, naiveCollisions };
  }

  it('gives distinct keys to distinct (kind, keyer, value) triples over 12,000 builders, and all never equals a by-key', () => {
    const { allKeys, byKeys, byTriple, naiveCollisions } = run(0x5eed, 12_000);
    expect(byTriple.size).toBeGreaterThan(10_000);
    expect(naiveCollisions).toBeGreaterThan(0); // unescaped keys would have collided on these inputs
    for (const key of allKeys) expect(byKeys.has(key)).toBe(false);
  });

  it('also holds for other seeds', () => {
    for (const seed of [1, 2, 3]) {
      const { allKeys, byKeys } = run(seed, 3_000);
      for (const key of allKeys) expect(byKeys.has(key)).toBe(false);
    }
  });

  it('gives distinct kinds distinct all keys', () => {
    const random = mulberry32(7);
    const kinds = new Set<string>();
    const keys = new Set<string>();
    for (let i = 0; i < 5_000; i++) {
      const kind = Array.from({ length: 1 + Math.floor(random() * 3) }, () => alphabet[Math.floor(random() * alphabet.length)]).join('');
      if (kinds.has(kind)) continue;
      kinds.add(kind);
      keys.add(defineDependency(kind, { byX: (v: string) => v }).all.getCacheKey());
    }
    expect(keys.size).toBe(kinds.size);
    expect(kinds.size).toBeGreaterThan(1_000);
  });
});
