import { describe, expect, it } from 'vitest';
import {
  DEFAULT_MAX_KEY_LENGTH,
  encodeValue,
  hashKey,
  instanceKeyOf,
  isPlaceholderValue,
  registerCacheKeyProperty,
  UnkeyableValueError,
} from '../../src/keys/key-builder.js';

/** Encodes an argument tuple the way keys are built: each argument encoded, joined by `,`. */
function encodeTuple(args: readonly unknown[]): string {
  return args.map(a => encodeValue(a)).join(',');
}

/** Asserts that every value of the list encodes differently from every other one. */
function expectAllDistinct(values: readonly unknown[]): void {
  const encodings = values.map(v => encodeValue(v));
  const seen = new Map<string, number>();
  encodings.forEach((e, i) => {
    const previous = seen.get(e);
    if (previous !== undefined) {
      throw new Error(`values #${previous} and #${i} both encode as ${e}`);
    }
    seen.set(e, i);
  });
  expect(new Set(encodings).size).toBe(values.length);
}

/** Runs `fn` and returns the UnkeyableValueError it throws (fails the test if it throws anything else or nothing). */
function unkeyableErrorOf(fn: () => unknown): UnkeyableValueError {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(UnkeyableValueError);
    return error as UnkeyableValueError;
  }
  throw new Error('expected an UnkeyableValueError, nothing was thrown');
}

describe('encodeValue: primitives', () => {
  it('distinguishes a number from the string of its digits', () => {
    expect(encodeValue(1)).not.toBe(encodeValue('1'));
    expect(encodeValue(0)).not.toBe(encodeValue('0'));
    expect(encodeValue(1.5)).not.toBe(encodeValue('1.5'));
  });

  it('distinguishes null, undefined and the strings "null" and "undefined"', () => {
    expectAllDistinct([null, undefined, 'null', 'undefined', '', 0, false]);
  });

  it('distinguishes booleans from their string forms', () => {
    expectAllDistinct([true, false, 'true', 'false', 1, 0]);
  });

  it('distinguishes -0 from 0, and from the string "-0"', () => {
    expectAllDistinct([0, -0, '-0', '0']);
    expect(encodeValue(-0)).toBe(encodeValue(-0));
  });

  it('encodes NaN deterministically, distinctly from the string "NaN" and from undefined', () => {
    expect(encodeValue(NaN)).toBe(encodeValue(Number.NaN));
    expect(encodeValue(NaN)).toBe(encodeValue(0 / 0));
    expectAllDistinct([NaN, 'NaN', undefined, null, 0]);
  });

  it('distinguishes Infinity, -Infinity, the largest finite number and their string forms', () => {
    expectAllDistinct([Infinity, -Infinity, Number.MAX_VALUE, -Number.MAX_VALUE, 'Infinity', '-Infinity']);
  });

  it('distinguishes numbers that differ only in their last digits', () => {
    expectAllDistinct([0.1 + 0.2, 0.3, 1e21, 1e21 + 2 ** 20, Number.MIN_VALUE, 5e-324 * 2, 2 ** 53, 2 ** 53 + 2]);
  });

  it('distinguishes a bigint from the number and the strings of the same digits', () => {
    expectAllDistinct([1n, 1, '1', '1n', 0n, -1n, -1]);
  });

  it('encodes large bigints exactly', () => {
    expectAllDistinct([2n ** 64n, 2n ** 64n + 1n, -(2n ** 64n), 2 ** 64]);
    expect(encodeValue(123456789012345678901234567890n)).toBe(encodeValue(BigInt('123456789012345678901234567890')));
  });

  it('encodes each primitive the same way every time (canonical)', () => {
    for (const v of ['a', 1, -0, NaN, 1n, true, null, undefined, 'x,y']) {
      expect(encodeValue(v)).toBe(encodeValue(v));
    }
  });
});

describe('encodeValue: strings with separators, quotes, brackets and backslashes', () => {
  const tricky = [
    '',
    ',',
    ',,',
    'a,b',
    'a',
    'b',
    '"',
    '""',
    '\\',
    '\\"',
    '"\\',
    '\\\\',
    '[',
    ']',
    '[]',
    '{}',
    '{',
    '}',
    '(',
    ')',
    ':',
    '=>',
    '=',
    '_',
    '~',
    '.',
    'a"b',
    'a\\"b',
    'a\nb',
    'a\\nb',
    '\u0000',
    '\\u0000',
    '\ud800',
    '\\ud800',
    '日本',
    '"a","b"',
    '["a","b"]',
    'Date(0)',
    'Map{}',
    'Set{}',
    'Uint8Array[1]',
    '1n',
    'true',
  ];

  it('encodes every tricky string distinctly', () => {
    expectAllDistinct(tricky);
  });

  it('keeps tuples of tricky strings distinct: no string can impersonate a separator', () => {
    // Every split of "a,b" / "a\",\"b" into a tuple must differ from the others.
    const tuples: unknown[][] = [
      ['a,b'],
      ['a', 'b'],
      ['a', ',b'],
      ['a,', 'b'],
      ['a","b'],
      ['a"', '"b'],
      ['a\\', 'b'],
      ['a\\","b'],
      [',', ''],
      ['', ','],
      ['', '', ''],
      [',,'],
      ['', ''],
      [''],
      [],
    ];
    const encodings = tuples.map(encodeTuple);
    expect(new Set(encodings).size).toBe(tuples.length);
  });

  it('distinguishes ["a,b"] from ["a","b"] as array values', () => {
    expect(encodeValue(['a,b'])).not.toBe(encodeValue(['a', 'b']));
    expect(encodeValue(['a', 'b'])).toBe(encodeValue(['a', 'b']));
  });

  it('distinguishes strings that contain an encoded array or object from the array or object', () => {
    expect(encodeValue('["a"]')).not.toBe(encodeValue(['a']));
    expect(encodeValue('{"a":1}')).not.toBe(encodeValue({ a: 1 }));
    expect(encodeValue(`${encodeValue([1, 2])}`)).not.toBe(encodeValue([1, 2]));
  });
});

describe('encodeValue: Date', () => {
  it('encodes equal instants equally and different instants differently', () => {
    expect(encodeValue(new Date(0))).toBe(encodeValue(new Date('1970-01-01T00:00:00.000Z')));
    expect(encodeValue(new Date(0))).not.toBe(encodeValue(new Date(1)));
  });

  it('distinguishes a Date from its timestamp and from its ISO string', () => {
    const d = new Date('2024-05-06T07:08:09.010Z');
    expectAllDistinct([d, d.getTime(), d.toISOString(), String(d.getTime())]);
  });

  it('encodes an invalid Date deterministically and distinctly from valid dates, NaN and "Invalid Date"', () => {
    expect(encodeValue(new Date(NaN))).toBe(encodeValue(new Date('not a date')));
    expectAllDistinct([new Date(NaN), new Date(0), NaN, 'Invalid Date', null]);
  });
});

describe('encodeValue: Map and Set', () => {
  it('encodes a Map independently of insertion order', () => {
    const a = new Map<unknown, unknown>([
      ['x', 1],
      ['y', 2],
      [3, 'z'],
    ]);
    const b = new Map<unknown, unknown>([
      [3, 'z'],
      ['y', 2],
      ['x', 1],
    ]);
    expect(encodeValue(a)).toBe(encodeValue(b));
  });

  it('distinguishes Maps whose keys or values differ, including by type', () => {
    expectAllDistinct([
      new Map([['a', 1]]),
      new Map([['a', '1']]),
      new Map([[1, 1]]),
      new Map([['a', 2]]),
      new Map([['b', 1]]),
      new Map(),
      new Map<unknown, unknown>([
        ['a', 1],
        ['b', 1],
      ]),
    ]);
  });

  it('keeps Map keys and values apart even when they contain the entry separators', () => {
    expectAllDistinct([
      new Map([['a=>b', 'c']]),
      new Map([['a', 'b=>c']]),
      new Map([['a,b', 'c']]),
      new Map<string, string>([
        ['a', 'b'],
        ['c', 'd'],
      ]),
      new Map([['a', 'b,c=>d']]),
    ]);
  });

  it('encodes Maps with object keys structurally', () => {
    expect(encodeValue(new Map([[{ id: 1 }, 'v']]))).toBe(encodeValue(new Map([[{ id: 1 }, 'v']])));
    expect(encodeValue(new Map([[{ id: 1 }, 'v']]))).not.toBe(encodeValue(new Map([[{ id: 2 }, 'v']])));
  });

  it('encodes a Set independently of insertion order', () => {
    expect(encodeValue(new Set([1, 'a', null, 2n]))).toBe(encodeValue(new Set([2n, null, 'a', 1])));
    expect(encodeValue(new Set([[1], [2]]))).toBe(encodeValue(new Set([[2], [1]])));
  });

  it('distinguishes Sets by content and by element type', () => {
    expectAllDistinct([new Set(), new Set([1]), new Set(['1']), new Set([1, 2]), new Set(['1,2']), new Set([[1, 2]])]);
  });

  it('distinguishes a Map, a Set, an array and a plain object with the same contents', () => {
    expectAllDistinct([new Map([['a', 1]]), new Set(['a', 1]), ['a', 1], { a: 1 }, [['a', 1]]]);
    expectAllDistinct([new Map(), new Set(), [], {}]);
  });
});

describe('encodeValue: typed arrays and buffers', () => {
  it('encodes equal typed arrays equally', () => {
    expect(encodeValue(new Uint8Array([1, 2, 3]))).toBe(encodeValue(Uint8Array.from([1, 2, 3])));
  });

  it('distinguishes typed arrays by element type, by content and from plain arrays', () => {
    expectAllDistinct([
      new Uint8Array([1, 2]),
      new Int8Array([1, 2]),
      new Uint16Array([1, 2]),
      new Float64Array([1, 2]),
      new Uint8Array([1, 3]),
      new Uint8Array([1, 2, 0]),
      [1, 2],
      '1,2',
    ]);
  });

  it('keeps -0 and NaN in float arrays', () => {
    expectAllDistinct([new Float64Array([0]), new Float64Array([-0]), new Float64Array([NaN])]);
    expect(encodeValue(new Float32Array([NaN]))).toBe(encodeValue(new Float32Array([NaN])));
  });

  it('encodes bigint typed arrays distinctly from number arrays', () => {
    expectAllDistinct([new BigInt64Array([1n]), new BigUint64Array([1n]), new Float64Array([1]), new BigInt64Array([2n])]);
  });

  it('encodes only the window of a typed array view, not its whole buffer', () => {
    const buffer = new Uint8Array([9, 1, 2, 9]).buffer;
    expect(encodeValue(new Uint8Array(buffer, 1, 2))).toBe(encodeValue(new Uint8Array([1, 2])));
    expect(encodeValue(new DataView(buffer, 1, 2))).toBe(encodeValue(new DataView(new Uint8Array([1, 2]).buffer)));
    expect(encodeValue(new DataView(buffer, 1, 2))).not.toBe(encodeValue(new DataView(buffer)));
  });

  it('encodes ArrayBuffers by content', () => {
    expect(encodeValue(new Uint8Array([1, 2]).buffer)).toBe(encodeValue(new Uint8Array([1, 2]).buffer));
    expect(encodeValue(new Uint8Array([1, 2]).buffer)).not.toBe(encodeValue(new Uint8Array([2, 1]).buffer));
    expect(encodeValue(new Uint8Array([1, 2]).buffer)).not.toBe(encodeValue(new Uint8Array([1, 2])));
  });
});

describe('encodeValue: arrays and plain objects', () => {
  it('distinguishes different nestings of the same leaves', () => {
    expectAllDistinct([[[1], 2], [[1, 2]], [1, [2]], [1, 2], [[[1, 2]]], [[1], [2]]]);
  });

  it('encodes a plain object independently of key order', () => {
    expect(encodeValue({ a: 1, b: 2 })).toBe(encodeValue({ b: 2, a: 1 }));
    expect(encodeValue({ outer: { x: [1, { p: 1, q: 2 }], y: null } })).toBe(encodeValue({ outer: { y: null, x: [1, { q: 2, p: 1 }] } }));
  });

  it('distinguishes objects whose values differ only in type', () => {
    expectAllDistinct([{ a: 1 }, { a: '1' }, { a: 1n }, { a: true }, { a: null }, { a: undefined }, { a: [1] }, { a: { b: 1 } }]);
  });

  it('distinguishes {} from { a: undefined }', () => {
    expect(encodeValue({})).not.toBe(encodeValue({ a: undefined }));
  });

  it('keeps object keys apart even when they contain quotes, colons and commas', () => {
    expectAllDistinct([
      { 'a:1,b': 2 },
      { a: 1, b: 2 },
      { 'a"': 1 },
      { a: '"1' },
      { 'a,b': 1 },
      { a: 1, ',b': 1 },
      { '': 1 },
    ]);
  });

  it('distinguishes an array from an object with index keys', () => {
    expect(encodeValue(['x'])).not.toBe(encodeValue({ 0: 'x' }));
    expect(encodeValue([])).not.toBe(encodeValue({}));
  });

  it('does not confuse a sparse array with a shorter dense one', () => {
    // new Array(1) has length 1; [] has length 0: they are different arguments.
    expect(encodeValue(new Array(1))).not.toBe(encodeValue([]));
    expect(encodeValue([, 1])).not.toBe(encodeValue([1]));
  });

  it('encodes a null-prototype object like the plain object with the same entries, in any key order', () => {
    const a = Object.assign(Object.create(null) as Record<string, unknown>, { a: 1, b: 'x' });
    const b = Object.assign(Object.create(null) as Record<string, unknown>, { b: 'x', a: 1 });
    expect(encodeValue(a)).toBe(encodeValue(b));
    expect(encodeValue(a)).toBe(encodeValue({ a: 1, b: 'x' }));
    expect(encodeValue(a)).not.toBe(encodeValue(Object.assign(Object.create(null) as object, { a: 2, b: 'x' })));
  });

  it('encodes an object reached twice without a cycle (a shared reference) normally', () => {
    const shared = { id: 1 };
    expect(() => encodeValue([shared, shared, { again: shared }])).not.toThrow();
    expect(encodeValue([shared, shared])).toBe(encodeValue([{ id: 1 }, { id: 1 }]));
  });

  it('encodes an own "__proto__" key as data, distinct from an object without it', () => {
    const withProtoKey = JSON.parse('{"__proto__": 1}') as object;
    expect(Object.keys(withProtoKey)).toEqual(['__proto__']);
    expect(encodeValue(withProtoKey)).not.toBe(encodeValue({}));
  });
});

describe('encodeValue: objects with their own key', () => {
  class Product {
    constructor(readonly id: string) {}
    getCacheKey(): string {
      return this.id;
    }
  }
  class Category {
    constructor(readonly id: string) {}
    getCacheKey(): string {
      return this.id;
    }
  }

  it('encodes an object with getCacheKey() by its key: equal keys give equal encodings', () => {
    expect(encodeValue(new Product('corn'))).toBe(encodeValue(new Product('corn')));
    expect(encodeValue(new Product('corn'))).not.toBe(encodeValue(new Product('wheat')));
  });

  it('includes the class name with a getCacheKey() key, so two classes with the same key differ', () => {
    expect(encodeValue(new Product('1'))).not.toBe(encodeValue(new Category('1')));
    expect(encodeValue(new Product('1'))).toContain('Product');
  });

  it('distinguishes a keyed object from the bare key string and from a plain object', () => {
    expectAllDistinct([new Product('corn'), 'corn', { id: 'corn' }, ['corn']]);
  });

  it('keeps getCacheKey() results containing quotes and parentheses injective', () => {
    expectAllDistinct([new Product('a")'), new Product('a'), new Product('a"),Product("b'), [new Product('a'), new Product('b')]]);
    expect(encodeTuple([new Product('a"),Product("b')])).not.toBe(encodeTuple([new Product('a'), new Product('b')]));
  });

  it('keeps the established formats: Class("key") for named classes, Object("key") for plain objects', () => {
    expect(encodeValue(new Product('corn'))).toBe('Product("corn")');
    expect(encodeValue({ getCacheKey: () => 'corn' })).toBe('Object("corn")');
    expect(encodeValue(Object.assign(Object.create(null) as object, { getCacheKey: () => 'corn' }))).toBe('Object("corn")');
  });

  it('quotes class names that are not identifiers or that name a built-in, so none impersonates another encoding', () => {
    const classes = {
      Object: class {
        getCacheKey(): string {
          return 'x';
        }
      },
      URL: class {
        getCacheKey(): string {
          return 'https://a.example/';
        }
      },
      'Product("a"),Product': class {
        getCacheKey(): string {
          return 'b';
        }
      },
    };
    expect(encodeValue(new classes.Object())).toBe('"Object"("x")');
    expect(encodeValue(new classes.URL())).not.toBe(encodeValue(new URL('https://a.example/')));
    expect(encodeValue([new classes['Product("a"),Product']()])).not.toBe(encodeValue([new Product('a'), new Product('b')]));
    expect(encodeValue(new (class Größe {
      getCacheKey(): string {
        return 'x';
      }
    })())).toBe('Größe("x")');
  });

  it('rejects an instance of an anonymous class, and a getCacheKey() that does not return a string', () => {
    const anonymous = new (class {
      getCacheKey(): string {
        return 'x';
      }
    })();
    expect(unkeyableErrorOf(() => encodeValue(anonymous)).description).toContain('anonymous class');
    expect(unkeyableErrorOf(() => encodeValue([{ getCacheKey: () => 1 }])).path).toBe('[0]');
    expect(unkeyableErrorOf(() => encodeValue({ a: { getCacheKey: () => ({}) } })).description).toContain('getCacheKey() returned an object');
  });

  it('ignores the other fields of an object with getCacheKey()', () => {
    class Row {
      constructor(
        readonly id: number,
        readonly loadedAt: number,
      ) {}
      getCacheKey(): string {
        return `Row:${this.id}`;
      }
    }
    expect(encodeValue(new Row(1, 100))).toBe(encodeValue(new Row(1, 200)));
  });

  it('encodes a @CacheKey instance by its class and key properties only', () => {
    class Order {
      constructor(
        public id: number,
        public tenant: string,
        public note: string,
      ) {}
    }
    registerCacheKeyProperty(Order, 'id');
    registerCacheKeyProperty(Order, 'tenant');
    expect(encodeValue(new Order(1, 't', 'x'))).toBe(encodeValue(new Order(1, 't', 'y')));
    expectAllDistinct([new Order(1, 't', 'x'), new Order(2, 't', 'x'), new Order(1, 'u', 'x'), new Order(1, '1', 'x')]);
    expect(encodeValue(new Order(1, 't', 'x'))).toContain('Order');
  });

  it('encodes @CacheKey properties declared on a base class for subclass instances', () => {
    class Entity {
      constructor(public id: number) {}
    }
    registerCacheKeyProperty(Entity, 'id');
    class Customer extends Entity {}
    expect(() => encodeValue(new Customer(1))).not.toThrow();
    expect(encodeValue(new Customer(1))).not.toBe(encodeValue(new Customer(2)));
  });

  it('reports an unkeyable value inside a @CacheKey property with its path', () => {
    class Holder {
      constructor(public conn: unknown) {}
    }
    registerCacheKeyProperty(Holder, 'conn');
    class Socket {}
    const error = unkeyableErrorOf(() => encodeValue({ h: new Holder(new Socket()) }));
    expect(error.path).toBe('.h.conn');
    expect(error.className).toBe('Socket');
  });

  it('gives instanceKeyOf() a key for keyed instances and null for stateless ones', () => {
    class Stateless {}
    expect(instanceKeyOf(new Stateless())).toBeNull();
    expect(instanceKeyOf(new Product('corn'))).toBe(encodeValue(new Product('corn')));
  });
});

describe('encodeValue: unkeyable values', () => {
  class Connection {
    open = true;
  }

  it('throws for a class instance without @CacheKey or getCacheKey(), naming the class', () => {
    const error = unkeyableErrorOf(() => encodeValue(new Connection()));
    expect(error.className).toBe('Connection');
    expect(error.description).toContain('Connection');
    expect(error.path).toBe('');
    expect(error.message).toContain('Connection');
  });

  it('gives the path of an unkeyable value nested in objects and arrays', () => {
    expect(unkeyableErrorOf(() => encodeValue({ conn: new Connection() })).path).toBe('.conn');
    expect(unkeyableErrorOf(() => encodeValue([1, new Connection()])).path).toBe('[1]');
    const nested = unkeyableErrorOf(() => encodeValue({ a: [{ b: new Connection() }] }));
    expect(nested.path).toBe('.a[0].b');
    expect(nested.message).toContain('.a[0].b');
  });

  it('reports unkeyable values inside Maps and Sets', () => {
    const inMap = unkeyableErrorOf(() => encodeValue(new Map([['k', new Connection()]])));
    expect(inMap.className).toBe('Connection');
    expect(inMap.path).not.toBe('');
    const inSet = unkeyableErrorOf(() => encodeValue(new Set([new Connection()])));
    expect(inSet.className).toBe('Connection');
    expect(inSet.path).not.toBe('');
  });

  it('throws for functions, named or anonymous, at any depth', () => {
    function loadPrice(): number {
      return 1;
    }
    const named = unkeyableErrorOf(() => encodeValue(loadPrice));
    expect(named.description).toContain('function');
    expect(named.description).toContain('loadPrice');
    const nested = unkeyableErrorOf(() => encodeValue({ cb: () => 1 }));
    expect(nested.description).toContain('function');
    expect(nested.path).toBe('.cb');
    expect(() => encodeValue(class Foo {})).toThrow(UnkeyableValueError);
  });

  it('throws for symbols, at the top level and nested', () => {
    expect(unkeyableErrorOf(() => encodeValue(Symbol('s'))).description).toContain('symbol');
    expect(unkeyableErrorOf(() => encodeValue([Symbol.iterator])).path).toBe('[0]');
  });

  it('throws for a cyclic object, naming where the cycle closes', () => {
    const a: Record<string, unknown> = { id: 1 };
    a.self = a;
    const error = unkeyableErrorOf(() => encodeValue(a));
    expect(error.description).toContain('cyclic');
    expect(error.path).toBe('.self');
  });

  it('throws for cyclic arrays and for cycles through Maps', () => {
    const arr: unknown[] = [1];
    arr.push([arr]);
    expect(unkeyableErrorOf(() => encodeValue(arr)).path).toBe('[1][0]');
    const map = new Map<string, unknown>();
    map.set('me', map);
    expect(unkeyableErrorOf(() => encodeValue(map)).description).toContain('cyclic');
  });

  it('throws for built-in class instances that have no canonical form (Promise, WeakMap, boxed primitives)', () => {
    expect(() => encodeValue(Promise.resolve(1))).toThrow(UnkeyableValueError);
    expect(() => encodeValue(new WeakMap())).toThrow(UnkeyableValueError);
    expect(() => encodeValue(Object(1))).toThrow(UnkeyableValueError);
  });
});

describe('placeholders and hashing', () => {
  it('treats every AbortSignal as the same placeholder', () => {
    const s1 = new AbortController().signal;
    const s2 = AbortSignal.abort();
    expect(isPlaceholderValue(s1)).toBe(true);
    expect(isPlaceholderValue({})).toBe(false);
    expect(encodeValue(s1)).toBe(encodeValue(s2));
  });

  it('hashes a key behind its readable prefix, deterministically and distinctly', () => {
    const long = `Catalogue.find(${'x'.repeat(400)})`;
    const h = hashKey('Catalogue.find', long);
    expect(h.startsWith('Catalogue.find~')).toBe(true);
    expect(h.length).toBeLessThanOrEqual(DEFAULT_MAX_KEY_LENGTH);
    expect(hashKey('Catalogue.find', long)).toBe(h);
    expect(hashKey('Catalogue.find', `${long}y`)).not.toBe(h);
  });
});
