import { CachingError, errors } from '../errors.js';
import { DEFAULT_MAX_KEY_LENGTH, encodeValue, hashKey, instanceKeyOf, isPlaceholderValue, keyPropertiesOf, keyRegistrationGeneration, UnkeyableValueError } from '../keys/key-builder.js';
import type { CacheOptions } from '../service/options.js';
import { claimKeyHead, classOptionsOf, configuredClassOf } from './class-registry.js';
import { parameterNames, type ParameterName } from './parameter-names.js';

const AsyncFunction = Object.getPrototypeOf(async () => {}).constructor as Function;
const AsyncGeneratorFunction = Object.getPrototypeOf(async function* () {}).constructor as Function;

/**
 * Everything about one `@Cache` method that does not depend on the service: its class and scope (resolved
 * on first use, since TC39 decorators do not see the class), its options, and its key encoding.
 */
export class MethodDescriptor {
  /** The wrapper installed in place of the method. */
  wrapper!: Function;
  /** Per-service resolved plan; the last used service is cached here (one service is the common case). */
  planOwner: object | undefined = undefined;
  plan: unknown = undefined;

  /** Declared `async`: known to return a promise before its first call. */
  readonly declaredAsync: boolean;
  /** Known to return a promise: declared async, typed `Promise` (legacy design:returntype), or seen doing so. */
  returnsPromise: boolean;
  /** Known to be synchronous before its first call (legacy design:returntype names a non-Promise type). */
  declaredSync = false;
  #cls: Function | undefined;
  #scope = '';
  /** `Scope.method`: key head when `this` contributes nothing. */
  #head: string | undefined;
  #thisKeyed = false;
  #lastConstructor: unknown = undefined;
  #lastGeneration = -1;
  #lastConstructorKeyed = false;
  #options: Readonly<CacheOptions>;
  #ignored: boolean[] | null = null;
  #keyFn: CacheOptions['key'] | undefined;
  #parameters: ParameterName[] | undefined;

  constructor(
    readonly methodName: string,
    readonly isStatic: boolean,
    readonly fn: Function,
    readonly methodOptions: Readonly<CacheOptions>,
  ) {
    this.#options = methodOptions;
    this.declaredAsync = fn instanceof AsyncFunction || fn instanceof AsyncGeneratorFunction;
    this.returnsPromise = this.declaredAsync;
  }

  /** The declaring class, if known yet. */
  get declaringClass(): Function | undefined {
    return this.#cls;
  }

  /** Method options merged over `@CacheConfiguration` class options (resolved with the class). */
  get options(): Readonly<CacheOptions> {
    return this.#options;
  }

  /** Which decorator set option `name` of this method, for messages: `@Cache`, `@CacheConfiguration on X`, or undefined. */
  optionSource(name: keyof CacheOptions): string | undefined {
    if (this.methodOptions[name] !== undefined) return '@Cache';
    const configured = this.#cls === undefined ? undefined : configuredClassOf(this.#cls);
    if (configured !== undefined && classOptionsOf(configured)?.[name] !== undefined) return `@CacheConfiguration on ${configured.name}`;
    return undefined;
  }

  /** Parameter names of the original method, for `@InvalidateCache` mapping. */
  get parameters(): ParameterName[] {
    return (this.#parameters ??= parameterNames(this.fn));
  }

  /** "ProductCatalogue.getPrice" (class name, or the method name alone before the class is known). */
  get displayName(): string {
    return this.#cls ? `${this.#cls.name}.${this.methodName}` : this.methodName;
  }

  /** Records the declaring class (legacy decorators know it at definition; TC39 ones learn it on first call). */
  bindClass(cls: Function): void {
    this.#cls = cls;
  }

  /** Resolves class, scope and key head; throws if the class cannot be found from `self`. */
  resolve(self: unknown): void {
    const cls = this.#cls ?? this.#findClass(self);
    this.#cls = cls;
    const classOptions = classOptionsOf(cls);
    this.#options = classOptions ? { ...classOptions, ...this.methodOptions } : this.methodOptions;
    const o = this.#options;
    this.#scope = o.scope ?? cls.name;
    this.#head = `${this.#scope}.${this.methodName}`;
    this.#keyFn = o.key;
    if (o.ignoreArgs && o.ignoreArgs.length > 0) {
      this.#ignored = [];
      for (const i of o.ignoreArgs) this.#ignored[i] = true;
    }
    // Whether `this` has a key is decided per instance (an own getCacheKey field, a keyed subclass…).
    this.#thisKeyed = !this.isStatic && o.ignoreThis !== true;
    claimKeyHead(this.#head, this.#scope, cls);
  }

  /** Finds the declaring class starting from a prototype (instance methods) or a class (static methods). */
  locateClassFrom(start: object): void {
    this.#cls = this.#findClass(this.isStatic ? start : Object.create(start));
  }

  /** Resolves class, scope and options on first use. */
  ensureResolved(self: unknown): void {
    if (this.#head === undefined) this.resolve(self);
  }

  /**
   * The key of a call, without the service prefix. `ignoreThis` comes from the resolved plan (service
   * defaults and profiles can set it too).
   */
  keyFor(self: unknown, args: readonly unknown[], ignoreThis = false): string {
    if (this.#head === undefined) this.resolve(self);
    let head = this.#head!;
    if (this.#thisKeyed && !ignoreThis && self !== null && typeof self === 'object') {
      const own = this.#instanceKey(self);
      if (own !== null) head = `${this.#scope}[${own}].${this.methodName}`;
    }
    let key: string;
    if (this.#keyFn !== undefined) key = `${head}(${this.#customArguments(self, args)})`;
    else {
      // Trailing undefined, ignored and AbortSignal arguments are dropped: getX(1), getX(1, undefined) and
      // getX(1, signal) are one call, and @InvalidateCache's mapped arguments produce the same key.
      let n = args.length;
      while (n > 0 && this.#isBlank(args[n - 1], n - 1)) n--;
      if (n === 0) key = `${head}()`;
      else if (n === 1 && this.#ignored === null) key = `${head}(${this.#encodeArgument(args[0], 0)})`;
      else {
        let text = '';
        for (let i = 0; i < n; i++) {
          if (i > 0) text += ',';
          text += this.#ignored !== null && this.#ignored[i] === true ? '_' : this.#encodeArgument(args[i], i);
        }
        key = `${head}(${text})`;
      }
    }
    return key.length > DEFAULT_MAX_KEY_LENGTH ? hashKey(this.#head!, key) : key;
  }

  #isBlank(value: unknown, position: number): boolean {
    return value === undefined || (this.#ignored !== null && this.#ignored[position] === true) || (typeof value === 'object' && value !== null && isPlaceholderValue(value));
  }

  #encodeArgument(value: unknown, position: number): string {
    try {
      return encodeValue(value);
    } catch (error) {
      throw this.#unkeyable(error, `argument ${position} (0-based)`, `exclude the argument with ignoreArgs: [${position}]`);
    }
  }

  /** True if `this` adds nothing to the key of a call (a stateless service, a static method, ignoreThis). */
  isThisNeutral(self: unknown, ignoreThis: boolean): boolean {
    if (this.#head === undefined) this.resolve(self);
    if (!this.#thisKeyed || ignoreThis || self === null || typeof self !== 'object') return true;
    return typeof (self as { getCacheKey?: unknown }).getCacheKey !== 'function' && !this.#constructorKeyed(self);
  }

  /** Whether instances of `self`'s class have `@CacheKey` properties; remembered for the last class seen. */
  #constructorKeyed(self: object): boolean {
    const ctor = (self as { constructor?: unknown }).constructor;
    if (ctor !== this.#lastConstructor || this.#lastGeneration !== keyRegistrationGeneration) {
      this.#lastConstructor = ctor;
      this.#lastGeneration = keyRegistrationGeneration;
      this.#lastConstructorKeyed = typeof ctor === 'function' && keyPropertiesOf(ctor) !== null;
    }
    return this.#lastConstructorKeyed;
  }

  #instanceKey(self: object): string | null {
    try {
      // Most instances are stateless services: no getCacheKey and a class without @CacheKey properties.
      if (typeof (self as { getCacheKey?: unknown }).getCacheKey !== 'function' && !this.#constructorKeyed(self)) return null;
      return instanceKeyOf(self);
    } catch (error) {
      // instanceKeyOf throws UnkeyableValueError only; the checks above can meet a throwing getter too
      throw this.#unkeyable(error instanceof UnkeyableValueError ? error : new UnkeyableValueError('an instance that threw while being read', '', undefined, undefined, { cause: error }), '`this`', 'use ignoreThis: true');
    }
  }

  #customArguments(self: unknown, args: readonly unknown[]): string {
    const custom = this.#keyFn!.apply(self, args as unknown[]);
    if (typeof custom === 'string') return JSON.stringify(custom);
    if (!Array.isArray(custom)) {
      throw new CachingError(errors.E_UNKEYABLE, `@Cache on ${this.displayName}: the key option returned ${typeof custom}; it must return a string or an array.`);
    }
    return custom.map((v, i) => {
      try {
        return encodeValue(v);
      } catch (error) {
        throw this.#unkeyable(error, `element ${i} of the key option's result`, 'return keyable values from the key function');
      }
    }).join(',');
  }

  #unkeyable(error: unknown, what: string, fix: string): unknown {
    if (!(error instanceof UnkeyableValueError)) return error;
    const add = error.hint ? `${error.hint}, or ` : error.className ? `add @CacheKey properties or a getCacheKey() method to ${error.className}, or ` : '';
    return new CachingError(
      errors.E_UNKEYABLE,
      `@Cache on ${this.displayName}: ${what} (${error.description}${error.path ? ` at ${error.shownPath}` : ''}) cannot be part of a cache key; ${add}${fix}.`,
      error.cause !== undefined ? { cause: error.cause } : undefined,
    );
  }

  /** Finds the class whose prototype (or which, for static methods) owns the wrapper. */
  #findClass(self: unknown): Function {
    const name = this.methodName;
    if (self !== null && (typeof self === 'object' || typeof self === 'function')) {
      for (let o: object | null = this.isStatic ? (self as object) : Object.getPrototypeOf(self); o !== null; o = Object.getPrototypeOf(o)) {
        const own = Object.getOwnPropertyDescriptor(o, name);
        if (own !== undefined && own.value === this.wrapper) return this.isStatic ? (o as Function) : (o as { constructor: Function }).constructor;
      }
      // private methods (#name) are not on the prototype; the instance's class is the best we can know
      const ctor = this.isStatic ? self : (self as { constructor?: unknown }).constructor;
      if (typeof ctor === 'function') return ctor;
    }
    throw new CachingError(
      errors.E_DECORATOR_TARGET,
      `@Cache on ${name}: the method was called without an instance (this is ${String(self)}), so its class is unknown; call it as obj.${name}(…) or bind it.`,
    );
  }
}

/** Wrapper function → its descriptor. */
const descriptors = new WeakMap<Function, MethodDescriptor>();

export function registerDescriptor(wrapper: Function, descriptor: MethodDescriptor): void {
  descriptor.wrapper = wrapper;
  descriptors.set(wrapper, descriptor);
}

/** The descriptor of a `@Cache` wrapper, or undefined for any other function. */
export function descriptorOf(fn: unknown): MethodDescriptor | undefined {
  return typeof fn === 'function' ? descriptors.get(fn) : undefined;
}
