import { afterEach, describe, expect, it, vi } from 'vitest';
import { addDependency, bindCachingService, Cache, CacheKey, CachingError, CachingService, ObjectDependency, type Logger } from 'aspect-cache';
import { failureOf } from '../support/failure-of.js';

// Keys that used to collide or fail raw (SPEC §3, issue 8 case 9): getCacheKey() results that are not strings,
// anonymous classes and plain objects with getCacheKey, class names that look like built-ins, symbol-keyed and
// non-enumerable properties, and values whose reading throws (a getter, a revoked proxy, a 20,000-deep value).
// Every such call fails with a CachingError naming the class, the method and the argument, and runs nothing.

const services: CachingService[] = [];

function quietLogger(): Logger {
  return { debug: vi.fn(), warn: vi.fn(), error: vi.fn() };
}

function makeService(): CachingService {
  const service = new CachingService({ logger: quietLogger() });
  services.push(service);
  return service;
}

afterEach(async () => {
  await Promise.all(services.splice(0).map(s => s.dispose()));
});

/** Asserts an E_UNKEYABLE CachingError whose message contains every fragment. */
function expectUnkeyable(error: unknown, ...fragments: Array<string | RegExp>): void {
  expect(error).toBeInstanceOf(CachingError);
  expect(error).toMatchObject({ code: 'E_UNKEYABLE' });
  const message = (error as Error).message;
  for (const f of fragments) {
    if (typeof f === 'string') expect(message).toContain(f);
    else expect(message).toMatch(f);
  }
}

/**
 * A cached lookup of one argument that counts its runs, in a class named `name`. A class declaration, renamed:
 * legacy decorators on class expressions are not applied by every transformer.
 */
function lookupService(name: string) {
  const runs = { count: 0 };
  class Lookup {
    @Cache()
    async find(_where: string, value: unknown): Promise<number> {
      return ++runs.count;
    }
  }
  Object.defineProperty(Lookup, 'name', { value: name });
  return { instance: bindCachingService(new Lookup(), makeService()), runs };
}

describe('getCacheKey() must return a string', () => {
  it('an argument whose getCacheKey() returns an object fails, instead of sharing the key "[object Object]" with every other', async () => {
    class Money {
      constructor(readonly cents: number) {}
      getCacheKey(): unknown {
        return { cents: this.cents };
      }
    }
    const { instance, runs } = lookupService('MoneyLookup');
    const error = await failureOf(() => instance.find('a', new Money(1)));
    expectUnkeyable(error, 'MoneyLookup.find', /argument 1\b/, 'Money', 'getCacheKey() returned an object', 'return a string', 'ignoreArgs: [1]');
    await failureOf(() => instance.find('a', new Money(2)));
    expect(runs.count).toBe(0);
  });

  it('numbers, undefined and null returned by getCacheKey() are rejected too, never coerced', async () => {
    const { instance, runs } = lookupService('CoercionLookup');
    for (const returned of [1, undefined, null, 1n, true]) {
      const error = await failureOf(() => instance.find('a', { getCacheKey: () => returned }));
      expectUnkeyable(error, 'CoercionLookup.find', /argument 1\b/, 'getCacheKey() returned', 'return a string');
    }
    expect(runs.count).toBe(0);
  });

  it('a `this` whose getCacheKey() returns a number fails naming `this`', () => {
    let runs = 0;
    class NumberedAccount {
      constructor(readonly id: number) {}
      getCacheKey(): unknown {
        return this.id;
      }
      @Cache()
      balance(): number {
        return ++runs;
      }
    }
    const service = makeService();
    let error: unknown;
    try {
      bindCachingService(new NumberedAccount(1), service).balance();
    } catch (e) {
      error = e;
    }
    expectUnkeyable(error, 'NumberedAccount.balance', '`this`', 'returned a number (1)', 'ignoreThis: true');
    expect(runs).toBe(0);
  });

  it('a getCacheKey() that throws fails with a CachingError carrying the cause', async () => {
    const boom = new Error('no key today');
    class Flaky {
      getCacheKey(): string {
        throw boom;
      }
    }
    const { instance } = lookupService('FlakyLookup');
    const error = await failureOf(() => instance.find('a', [new Flaky()]));
    expectUnkeyable(error, 'FlakyLookup.find', /argument 1\b/, 'getCacheKey() threw', 'no key today', '[0]');
    expect((error as Error).cause).toBe(boom);
  });

  it('a dependency whose getCacheKey() returns a non-string fails addDependency and invalidate with E_UNKEYABLE', async () => {
    const service = makeService();
    class PriceRow {
      getCacheKey(): unknown {
        return { id: 1 };
      }
    }
    class Prices {
      @Cache()
      async price(id: string): Promise<number> {
        addDependency(new PriceRow() as never);
        return id.length;
      }
    }
    const p = bindCachingService(new Prices(), service);
    const added = await failureOf(() => p.price('corn'));
    expect(added).toBeInstanceOf(CachingError);
    expect(added).toMatchObject({ code: 'E_UNKEYABLE' });
    expect((added as Error).message).toContain('addDependency');
    expect((added as Error).message).toContain('PriceRow.getCacheKey() returned an object');
    const invalidated = await failureOf(() => service.invalidate({ getCacheKey: () => Object.create(null) } as never));
    expect(invalidated).toMatchObject({ code: 'E_UNKEYABLE' });
    expect((invalidated as Error).message).toContain('CachingService.invalidate');
    const thrown = await failureOf(() =>
      service.invalidate({
        getCacheKey(): string {
          throw new Error('db down');
        },
      }),
    );
    expect(thrown).toMatchObject({ code: 'E_UNKEYABLE' });
    expect((thrown as Error).message).toContain('db down');
  });

  it('an ObjectDependency of an object whose getCacheKey() returns a non-string is rejected when constructed', () => {
    class Row {
      getCacheKey(): unknown {
        return 7;
      }
    }
    let error: unknown;
    try {
      new ObjectDependency(new Row());
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(CachingError);
    expect(error).toMatchObject({ code: 'E_UNKEYABLE' });
    expect((error as Error).message).toContain('ObjectDependency');
    expect((error as Error).message).toContain('returned a number (7)');
  });
});

describe('objects with their own key encode distinctly by kind of class', () => {
  it('instances of an anonymous class are unkeyable (two anonymous classes would share a key)', async () => {
    const first = new (class {
      getCacheKey(): string {
        return 'x';
      }
    })();
    const second = new (class {
      getCacheKey(): string {
        return 'x';
      }
    })();
    const { instance, runs } = lookupService('AnonymousLookup');
    for (const value of [first, second]) {
      const error = await failureOf(() => instance.find('a', value));
      expectUnkeyable(error, 'AnonymousLookup.find', /argument 1\b/, 'anonymous class', 'give the class a name');
    }
    expect(runs.count).toBe(0);
  });

  it('an anonymous class with @CacheKey properties is unkeyable too', async () => {
    const Anonymous = (() => {
      class Keyed {
        @CacheKey() id = 1;
      }
      Object.defineProperty(Keyed, 'name', { value: '' });
      return Keyed;
    })();
    const value = new Anonymous();
    expect(Anonymous.name).toBe('');
    const { instance } = lookupService('AnonymousKeyedLookup');
    expectUnkeyable(await failureOf(() => instance.find('a', value)), 'AnonymousKeyedLookup.find', 'anonymous class');
  });

  it('a plain object with getCacheKey() and a class that happens to be named Object get separate entries', async () => {
    const { Object: Impostor } = {
      Object: class {
        getCacheKey(): string {
          return 'x';
        }
      },
    };
    expect(Impostor.name).toBe('Object');
    const { instance, runs } = lookupService('PlainVersusNamedLookup');
    expect(await instance.find('a', { getCacheKey: () => 'x' })).toBe(1);
    expect(await instance.find('a', { getCacheKey: () => 'x' })).toBe(1); // plain objects are keyed by their key
    expect(await instance.find('a', new Impostor())).toBe(2);
    expect(await instance.find('a', new Impostor())).toBe(2);
    expect(runs.count).toBe(2);
  });

  it('a class named URL or RegExp cannot impersonate the built-in value with the same text', async () => {
    const { URL: FakeUrl, RegExp: FakeRegExp } = {
      URL: class {
        getCacheKey(): string {
          return 'https://example.com/';
        }
      },
      RegExp: class {
        getCacheKey(): string {
          return 'a/g';
        }
      },
    };
    const { instance, runs } = lookupService('BuiltinImpostorLookup');
    expect(await instance.find('a', new URL('https://example.com/'))).toBe(1);
    expect(await instance.find('a', new FakeUrl())).toBe(2);
    expect(await instance.find('a', /a/g)).toBe(3);
    expect(await instance.find('a', new FakeRegExp())).toBe(4);
    expect(await instance.find('a', new URL('https://example.com/'))).toBe(1);
    expect(runs.count).toBe(4);
  });

  it('a class name containing separators cannot forge a tuple of two keyed objects', async () => {
    class Tag {
      constructor(readonly key: string) {}
      getCacheKey(): string {
        return this.key;
      }
    }
    const forged = { ['Tag("a"),Tag']: class {
      getCacheKey(): string {
        return 'b';
      }
    } }['Tag("a"),Tag']!;
    const { instance, runs } = lookupService('ForgedNameLookup');
    expect(await instance.find('a', [new Tag('a'), new Tag('b')])).toBe(1);
    expect(await instance.find('a', [new forged()])).toBe(2);
    expect(runs.count).toBe(2);
  });
});

describe('properties a key cannot see make a plain object unkeyable', () => {
  it('a symbol-keyed property fails instead of sharing the entry of the object without it', async () => {
    const { instance, runs } = lookupService('SymbolLookup');
    expect(await instance.find('a', {})).toBe(1);
    const error = await failureOf(() => instance.find('a', { [Symbol('tenant')]: 'acme' }));
    expectUnkeyable(error, 'SymbolLookup.find', /argument 1\b/, 'symbol-keyed property', 'Symbol(tenant)');
    const nested = await failureOf(() => instance.find('a', { filter: { [Symbol.for('x')]: 1 } }));
    expectUnkeyable(nested, '.filter');
    expect(runs.count).toBe(1);
  });

  it('a non-enumerable property fails likewise', async () => {
    const { instance, runs } = lookupService('HiddenLookup');
    expect(await instance.find('a', { a: 1 })).toBe(1);
    const hidden = Object.defineProperty({ a: 1 }, 'tenant', { value: 'acme', enumerable: false });
    const error = await failureOf(() => instance.find('a', hidden));
    expectUnkeyable(error, 'HiddenLookup.find', /argument 1\b/, 'non-enumerable property ("tenant")');
    expect(runs.count).toBe(1);
  });
});

describe('values that throw while being read fail with a CachingError, never a raw error', () => {
  it('a throwing getter, naming the path and keeping the cause', async () => {
    const boom = new Error('getter exploded');
    const { instance, runs } = lookupService('GetterLookup');
    const error = await failureOf(() =>
      instance.find('a', {
        filter: {
          get region(): string {
            throw boom;
          },
        },
      }),
    );
    expectUnkeyable(error, 'GetterLookup.find', /argument 1\b/, '.filter.region', 'getter exploded', 'ignoreArgs: [1]');
    expect((error as Error).cause).toBe(boom);
    expect(runs.count).toBe(0);
  });

  it('a throwing @CacheKey getter of `this`', () => {
    class Tenant {
      @CacheKey()
      get id(): string {
        throw new Error('no tenant');
      }
      @Cache()
      name(): string {
        return 'x';
      }
    }
    let error: unknown;
    try {
      bindCachingService(new Tenant(), makeService()).name();
    } catch (e) {
      error = e;
    }
    expectUnkeyable(error, 'Tenant.name', '`this`', '.id', 'no tenant');
  });

  it('a revoked proxy, as the argument or inside it', async () => {
    const { proxy, revoke } = Proxy.revocable({ id: 1 }, {});
    revoke();
    const { instance, runs } = lookupService('ProxyLookup');
    expectUnkeyable(await failureOf(() => instance.find('a', proxy)), 'ProxyLookup.find', /argument 1\b/, 'revoked');
    expectUnkeyable(await failureOf(() => instance.find('a', [1, proxy])), 'ProxyLookup.find', '[1]', 'revoked');
    expect(runs.count).toBe(0);
  });

  it('a 20,000-deep value fails with a CachingError, not a stack overflow', async () => {
    let deep: unknown = 'leaf';
    for (let i = 0; i < 20_000; i++) deep = i % 2 === 0 ? [deep] : { next: deep };
    const { instance, runs } = lookupService('DeepLookup');
    const error = await failureOf(() => instance.find('a', deep));
    expectUnkeyable(error, 'DeepLookup.find', /argument 1\b/, 'nested more than');
    expect((error as Error).message.length).toBeLessThan(1_000);
    expect(runs.count).toBe(0);
  });

  it('a cycle still fails with E_UNKEYABLE naming where it closes', async () => {
    const loop: Record<string, unknown> = { a: 1 };
    loop.self = { back: loop };
    const { instance } = lookupService('CycleLookup');
    expectUnkeyable(await failureOf(() => instance.find('a', loop)), 'cyclic object', '.self.back');
  });

  it('keyable values keep their entries after such failures', async () => {
    const { instance, runs } = lookupService('RecoveryLookup');
    const { proxy, revoke } = Proxy.revocable({}, {});
    revoke();
    await failureOf(() => instance.find('a', proxy));
    expect(await instance.find('a', { id: 1 })).toBe(1);
    expect(await instance.find('a', { id: 1 })).toBe(1);
    expect(await instance.find('a', { id: 2 })).toBe(2);
    expect(runs.count).toBe(2);
  });
});
