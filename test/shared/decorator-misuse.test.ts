import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { bindCachingService, Cache, CacheConfiguration, CacheKey, CachingError, CachingService, InvalidateCache, type CacheOptions } from 'aspect-cache';
import { definitionError } from '../support/definition-error.js';

// Decoration mistakes throw a CachingError at class definition, naming the member and the fix (SPEC §2,
// STYLE "Errors"), in both decorator modes.

let service: CachingService;

beforeEach(() => {
  service = new CachingService({ logger: { debug: vi.fn(), warn: vi.fn(), error: vi.fn() } });
});

afterEach(async () => {
  await service.dispose();
});


describe('@Cache on something that is not a method', () => {
  it('on an instance field throws E_DECORATOR_TARGET naming the field', () => {
    const error = definitionError(() => {
      class CachedField {
        // @ts-expect-error -- misuse on purpose: the type rejects it, the run-time check is what this test covers
        @Cache()
        cachedTotal = 1;
      }
      return CachedField;
    }, 'E_DECORATOR_TARGET');
    expect(error.message).toContain('cachedTotal');
    expect(error.message).toContain('@Cache');
  });

  it('on a static field throws E_DECORATOR_TARGET naming the field', () => {
    const error = definitionError(() => {
      class CachedStaticField {
        // @ts-expect-error -- misuse on purpose: the type rejects it, the run-time check is what this test covers
        @Cache()
        static staticTotal = 1;
      }
      return CachedStaticField;
    }, 'E_DECORATOR_TARGET');
    expect(error.message).toContain('staticTotal');
  });

  it('on a getter throws E_DECORATOR_TARGET naming the getter', () => {
    const error = definitionError(() => {
      class CachedGetter {
        // @ts-expect-error -- misuse on purpose: the type rejects it, the run-time check is what this test covers
        @Cache()
        get expensiveTotal(): number {
          return 42;
        }
      }
      return CachedGetter;
    }, 'E_DECORATOR_TARGET');
    expect(error.message).toContain('expensiveTotal');
  });

  it('on a setter throws E_DECORATOR_TARGET naming the setter', () => {
    const error = definitionError(() => {
      class CachedSetter {
        #value = 0;

        // @ts-expect-error -- misuse on purpose: the type rejects it, the run-time check is what this test covers
        @Cache()
        set assignedTotal(value: number) {
          this.#value = value;
        }

        read(): number {
          return this.#value;
        }
      }
      return CachedSetter;
    }, 'E_DECORATOR_TARGET');
    expect(error.message).toContain('assignedTotal');
  });
});

describe('@Cache without parentheses', () => {
  // `@Cache` instead of `@Cache()`: the decorator factory itself receives the decoration arguments.
  const BareCache = Cache as unknown as (...args: any[]) => any;

  it('on an instance method gives a CachingError that tells to write @Cache()', () => {
    let thrown: unknown;
    let cls: (new () => { total(): number }) | undefined;
    try {
      class Forgot {
        @BareCache
        total(): number {
          return 1;
        }
      }
      cls = Forgot;
    } catch (error) {
      thrown = error;
    }
    // If the class got defined anyway, the mistake must not pass silently either.
    if (thrown === undefined && cls !== undefined) {
      try {
        bindCachingService(new cls(), service).total();
      } catch (error) {
        thrown = error;
      }
    }
    expect(thrown).toBeInstanceOf(CachingError);
    expect((thrown as Error).message).toContain('@Cache()');
  });

  it('on a static method gives a CachingError that tells to write @Cache()', () => {
    let thrown: unknown;
    try {
      class ForgotStatic {
        @BareCache
        static total(): number {
          return 1;
        }
      }
      void ForgotStatic;
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(CachingError);
    expect((thrown as Error).message).toContain('@Cache()');
  });
});

describe('other decorators on the wrong target', () => {
  it('@InvalidateCache on a field throws E_DECORATOR_TARGET', () => {
    const error = definitionError(() => {
      class InvalidatingField {
        @Cache()
        async get(id: string): Promise<string> {
          return id;
        }

        // @ts-expect-error -- misuse on purpose: the type rejects it, the run-time check is what this test covers
        @InvalidateCache('get')
        invalidator = 1;
      }
      return InvalidatingField;
    }, 'E_DECORATOR_TARGET');
    expect(error.message).toContain('invalidator');
  });

  it('@InvalidateCache on a getter throws E_DECORATOR_TARGET', () => {
    const error = definitionError(() => {
      class InvalidatingGetter {
        @Cache()
        async get(id: string): Promise<string> {
          return id;
        }

        // @ts-expect-error -- misuse on purpose: the type rejects it, the run-time check is what this test covers
        @InvalidateCache('get')
        get invalidatingGetter(): number {
          return 1;
        }
      }
      return InvalidatingGetter;
    }, 'E_DECORATOR_TARGET');
    expect(error.message).toContain('invalidatingGetter');
  });

  it('@CacheConfiguration on a method throws E_DECORATOR_TARGET', () => {
    definitionError(() => {
      class ConfiguredMethod {
        // @ts-expect-error -- misuse on purpose: the type rejects it, the run-time check is what this test covers
        @CacheConfiguration({ ttl: 1_000 })
        get(): number {
          return 1;
        }
      }
      return ConfiguredMethod;
    }, 'E_DECORATOR_TARGET');
  });

  it('@Cache options that are not an object throw E_INVALID_OPTION', () => {
    definitionError(() => Cache(5_000 as unknown as CacheOptions), 'E_INVALID_OPTION');
    definitionError(() => Cache([1] as unknown as CacheOptions), 'E_INVALID_OPTION');
  });
});

describe('correct decoration still works next to these checks', () => {
  it('a decorated method on a class with fields, getters and setters is cached', () => {
    let runs = 0;
    class Fine {
      label = 'fine';

      get upper(): string {
        return this.label.toUpperCase();
      }

      set upper(value: string) {
        this.label = value.toLowerCase();
      }

      @Cache()
      describe(n: number): string {
        runs++;
        return `${this.upper}-${n}`;
      }
    }
    const f = bindCachingService(new Fine(), service);
    expect(f.describe(1)).toBe('FINE-1');
    expect(f.describe(1)).toBe('FINE-1');
    expect(runs).toBe(1);
  });
});

// Casts keep these mistakes compiling whatever the decorators' declared types reject: what is checked here is
// the runtime message, for code that got past the type checker (plain JavaScript, `any`, a looser tsconfig).
const AnyDecorator = (decorator: unknown) => decorator as (...args: any[]) => any;

describe('@Cache() on a class', () => {
  it('throws E_DECORATOR_TARGET naming the class and pointing to its methods and @CacheConfiguration', () => {
    const error = definitionError(() => {
      @(AnyDecorator(Cache()))
      class WholeCatalogue {
        price(): number {
          return 1;
        }
      }
      return WholeCatalogue;
    }, 'E_DECORATOR_TARGET');
    expect(error.message).toContain('@Cache');
    expect(error.message).toContain('class WholeCatalogue');
    expect(error.message).toContain('@CacheConfiguration');
    expect(error.message).not.toContain('parentheses');
  });

  it('@CacheKey() on a class names the class and says where @CacheKey goes', () => {
    const error = definitionError(() => {
      @(AnyDecorator(CacheKey()))
      class KeyedWhole {
        id = 1;
      }
      return KeyedWhole;
    }, 'E_DECORATOR_TARGET');
    expect(error.message).toContain('class KeyedWhole');
    expect(error.message).toContain('field or getter');
    expect(error.message).not.toContain('parentheses');
  });
});

describe('@CacheKey() on a method', () => {
  it('throws E_DECORATOR_TARGET naming the method, in both modes', () => {
    const error = definitionError(() => {
      class KeyedByMethod {
        @(AnyDecorator(CacheKey()))
        identity(): string {
          return 'k';
        }
      }
      return KeyedByMethod;
    }, 'E_DECORATOR_TARGET');
    expect(error.message).toContain('@CacheKey on');
    expect(error.message).toContain('identity');
    expect(error.message).toContain('a method');
    expect(error.message).toContain('getter');
  });
});

describe('options that only conflict once combined', () => {
  it('options key and ignoreArgs together name the method', () => {
    const error = definitionError(() => {
      class KeyedLookup {
        @Cache({ key: (id: string) => id, ignoreArgs: [1] })
        find(id: string, trace: string): string {
          return id + trace;
        }
      }
      return KeyedLookup;
    }, 'E_INVALID_OPTION');
    expect(error.message).toMatch(/^@Cache on (KeyedLookup\.)?find: /);
    expect(error.message).toContain('key and ignoreArgs');
  });

  it("a ttl from @CacheConfiguration shorter than the method's slidingExpiration names @CacheConfiguration and the class, not a profile", async () => {
    let runs = 0;
    @CacheConfiguration({ ttl: 1_000 })
    class ShortLived {
      @Cache({ slidingExpiration: 5_000 })
      async get(id: string): Promise<string> {
        runs++;
        return id;
      }
    }
    const error = await bindCachingService(new ShortLived(), service).get('a').then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(CachingError);
    expect(error).toMatchObject({ code: 'E_INVALID_OPTION' });
    const message = (error as Error).message;
    expect(message).toContain('ShortLived.get');
    expect(message).toContain('slidingExpiration (5000 ms, from @Cache)');
    expect(message).toContain('ttl (1000 ms, from @CacheConfiguration on ShortLived)');
    expect(message).not.toContain('profile');
    expect(runs).toBe(0);
  });

  it('a slidingExpiration from @CacheConfiguration reaching the ttl of a profile names both', async () => {
    const profiled = new CachingService({ profiles: { brief: { ttl: 2_000 } }, logger: { debug: vi.fn(), warn: vi.fn(), error: vi.fn() } });
    try {
      @CacheConfiguration({ slidingExpiration: 2_000, profile: 'brief' })
      class Sliding {
        @Cache()
        read(id: string): string {
          return id;
        }
      }
      const sliding = bindCachingService(new Sliding(), profiled);
      let thrown: unknown;
      try {
        sliding.read('a');
      } catch (e) {
        thrown = e;
      }
      expect(thrown).toMatchObject({ code: 'E_INVALID_OPTION' });
      const message = (thrown as Error).message;
      expect(message).toContain('slidingExpiration (2000 ms, from @CacheConfiguration on Sliding)');
      expect(message).toContain("ttl (2000 ms, from profile 'brief')");
    } finally {
      await profiled.dispose();
    }
  });

  it('an invalid @CacheConfiguration option names the class', () => {
    const error = definitionError(() => {
      @CacheConfiguration({ ttl: 1_000, slidingExpiration: 1_000 })
      class BadlyConfigured {
        @Cache()
        get(): number {
          return 1;
        }
      }
      return BadlyConfigured;
    }, 'E_INVALID_OPTION');
    expect(error.message).toMatch(/^@CacheConfiguration on BadlyConfigured: slidingExpiration/);
  });
});
