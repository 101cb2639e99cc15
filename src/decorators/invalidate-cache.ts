import { CachingError, errors } from '../errors.js';
import { keyPropertiesOf } from '../keys/key-builder.js';
import { checkKnownOptions } from '../options-check.js';
import { serviceInternals, serviceOf } from '../service/caching-service.js';
import { copyMetadata } from './copy-metadata.js';
import type { MethodOnlyDecorator } from './decorator-types.js';
import { checkFactoryCall, memberDecoration, qualified } from './decorator-shape.js';
import { whenCachedMethod } from './definition-state.js';
import { descriptorOf, type MethodDescriptor } from './method-descriptor.js';
import { parameterNames, type ParameterName } from './parameter-names.js';

/**
 * A method whose cache entries `@InvalidateCache` removes:
 * - `'getPrice'`: a `@Cache` method of the same class;
 * - `[OtherClass, 'getPrice']`: a `@Cache` method of another class;
 * - `{ target?, method, args?, instance? }`: with `args` mapping the decorated method's arguments to the
 *   target's (for renamed or destructured parameters), and `instance` giving the target's `this` when its
 *   instances have their own cache key.
 */
export type InvalidationTarget =
  | string
  | readonly [target: Function, method: string]
  | {
      /** The class that declares the target method; default: the decorated method's own class. */
      readonly target?: Function;
      /** The name of the cached method to invalidate. */
      readonly method: string;
      /** Maps the decorated method's arguments to the target's arguments. */
      readonly args?: (...args: any[]) => readonly unknown[];
      /** Maps the decorated method's arguments to the target's `this` (when its instances have their own cache key). */
      readonly instance?: (...args: any[]) => object;
    };

interface TargetSpec {
  readonly cls: Function | undefined;
  readonly method: string;
  readonly args: ((...args: any[]) => readonly unknown[]) | undefined;
  readonly instance: ((...args: any[]) => object) | undefined;
  readonly label: string;
}

/** A target resolved for calls: how to get its descriptor, `this` and arguments from the decorated call. */
interface ResolvedTarget {
  readonly descriptor: MethodDescriptor;
  readonly self: (self: unknown, args: unknown[]) => unknown;
  readonly args: (self: unknown, args: unknown[]) => unknown[];
}

/**
 * After the decorated method **succeeds** (after its promise resolves), invalidates the entries of the
 * target cached methods for the matching arguments, and everything computed from them. If the method
 * throws, nothing is invalidated.
 *
 * Arguments map to the target's parameters **by name**: `updatePrice(id, price)` invalidates `getPrice(id)`.
 * The mapping is checked when the class is defined: a missing or unnamed (destructured) parameter throws a
 * `CachingError` naming it. Use the object form with `args` for anything else.
 *
 * Minifiers rename parameters (`updatePrice(e, t)`, `getPrice(e)`), which would map the wrong argument
 * silently. So names are trusted only when the decorated method has a single parameter, or at least one
 * parameter name longer than two characters; otherwise (`update(e, t)`, and also hand-written `move(x, y)`) the
 * class definition fails asking for an explicit `args` mapper. Code that is minified should always use `args`. Under TC39 decorators a
 * same-class target that is never decorated with `@Cache` is reported on first instantiation instead.
 *
 * @example
 * @InvalidateCache('getPrice', [ProductList, 'getProducts'])
 * async updatePrice(id: string, price: number) { … }
 */
export function InvalidateCache(...targets: InvalidationTarget[]): MethodOnlyDecorator {
  checkFactoryCall('@InvalidateCache', targets);
  if (targets.length === 0) throw new CachingError(errors.E_INVALIDATION_MAPPING, '@InvalidateCache needs at least one target: a method name, [Class, "method"], or { method, args }.');
  const specs = targets.map(normalize);
  return function invalidateCacheDecorator(...args: unknown[]): any {
    const decoration = memberDecoration(args, '@InvalidateCache');
    if (decoration.mode === 'standard') {
      const { value, context } = decoration;
      const member = String(context.name);
      if (context.kind !== 'method' || typeof value !== 'function') {
        throw new CachingError(errors.E_DECORATOR_TARGET, `@InvalidateCache on ${member}: a ${context.kind} cannot invalidate; put it on a method.`);
      }
      const source = parameterNames(value);
      const resolved: Array<ResolvedTarget | undefined> = specs.map(() => undefined);
      const checked = specs.map(() => false);
      specs.forEach((spec, i) => {
        if (spec.cls !== undefined) {
          resolved[i] = resolveOtherClass(spec, member, source);
          checked[i] = true;
        } else {
          whenCachedMethod(context.metadata, spec.method, descriptor => {
            mapping(spec, member, source, descriptor);
            checked[i] = true;
          });
        }
      });
      if (checked.some(c => !c)) {
        // The class is not visible to TC39 method decorators: the remaining same-class targets are checked
        // when the first instance is created (or, for static methods, when the class is defined).
        context.addInitializer(function (this: unknown) {
          for (let i = 0; i < specs.length; i++) if (resolved[i] === undefined) resolved[i] = resolveSameClass(specs[i]!, this, member, source, context.static === true);
        });
      }
      return wrap(value, member, specs, resolved, source, context.static === true);
    }
    const { target, key, descriptor: property } = decoration;
    const isStatic = typeof target === 'function';
    const cls = isStatic ? (target as Function) : (target as { constructor: Function }).constructor;
    const member = qualified(cls.name, String(key));
    if (property === undefined || typeof property.value !== 'function') {
      throw new CachingError(errors.E_DECORATOR_TARGET, `@InvalidateCache on ${member}: only methods can invalidate; put it on a method.`);
    }
    const source = parameterNames(property.value as Function);
    const resolved: Array<ResolvedTarget | undefined> = specs.map(spec => {
      if (spec.cls !== undefined) return resolveOtherClass(spec, member, source);
      // Legacy decorators run after the class exists: the target method is on the prototype (or the class),
      // decorated or not yet. Check the mapping now; bind the descriptor on first call.
      const fn = findMethod(cls, spec.method);
      if (fn === undefined) throw missingMethod(member, `${cls.name}.${spec.method}`);
      const descriptor = descriptorOf(fn);
      if (descriptor !== undefined) mapping(spec, member, source, descriptor);
      else if (spec.args === undefined) checkNames(spec, member, source, parameterNames(fn), undefined, `${cls.name}.${spec.method}`);
      whenCachedMethod(cls, spec.method, d => mapping(spec, member, source, d));
      return undefined;
    });
    return { ...property, value: wrap(property.value as Function, member, specs, resolved, source, isStatic) };
  };
}

function wrap(original: Function, member: string, specs: readonly TargetSpec[], resolved: Array<ResolvedTarget | undefined>, source: ParameterName[], isStatic: boolean): Function {
  const wrapper = function invalidating(this: unknown, ...args: unknown[]): unknown {
    for (let i = 0; i < specs.length; i++) if (resolved[i] === undefined) resolved[i] = resolveSameClass(specs[i]!, this, member, source, isStatic);
    const service = serviceOf(this, original.name);
    // Keys are computed before the method runs, so a bad argument fails before any side effect.
    const calls = (resolved as ResolvedTarget[]).map(t => ({ descriptor: t.descriptor, self: t.self(this, args), args: t.args(this, args) }));
    const invalidate = serviceInternals.prepareInvalidation(service, calls);
    const result = original.apply(this, args);
    if (result !== null && typeof result === 'object' && typeof (result as PromiseLike<unknown>).then === 'function') {
      return (result as PromiseLike<unknown>).then(async value => {
        await invalidate();
        return value;
      });
    }
    const pending = invalidate();
    if (pending !== undefined) {
      // A synchronous method cannot wait for an asynchronous backend; failures still surface as 'error' events.
      pending.catch(error => serviceInternals.reportError(service, error, 'invalidate'));
    }
    return result;
  };
  Object.defineProperty(wrapper, 'name', { value: original.name, configurable: true });
  copyMetadata(original, wrapper);
  return wrapper;
}

function normalize(target: InvalidationTarget, index: number): TargetSpec {
  if (typeof target === 'string' && target !== '') return { cls: undefined, method: target, args: undefined, instance: undefined, label: `'${target}'` };
  if (Array.isArray(target) && target.length === 2 && typeof target[0] === 'function' && typeof target[1] === 'string') {
    return { cls: target[0], method: target[1], args: undefined, instance: undefined, label: `[${target[0].name}, '${target[1]}']` };
  }
  if (target !== null && typeof target === 'object' && !Array.isArray(target) && typeof (target as { method?: unknown }).method === 'string') {
    const t = target as Exclude<InvalidationTarget, string | readonly unknown[]>;
    checkKnownOptions(`@InvalidateCache: target ${index}`, t, TARGET_OPTION_NAMES);
    if (t.args !== undefined && typeof t.args !== 'function') throw badTarget(index, 'args must be a function (...args) => targetArgs');
    if (t.instance !== undefined && typeof t.instance !== 'function') throw badTarget(index, 'instance must be a function (...args) => object');
    if (t.target !== undefined && typeof t.target !== 'function') throw badTarget(index, 'target must be a class');
    return { cls: t.target, method: t.method, args: t.args, instance: t.instance, label: `{ method: '${t.method}' }` };
  }
  throw badTarget(index, `expected a method name, [Class, 'method'] or { target?, method, args? }, got ${typeof target === 'object' ? JSON.stringify(target) : String(target)}`);
}

const TARGET_OPTION_NAMES: readonly string[] = ['target', 'method', 'args', 'instance'];

function badTarget(index: number, detail: string): CachingError {
  return new CachingError(errors.E_INVALIDATION_MAPPING, `@InvalidateCache: target ${index} is invalid: ${detail}.`);
}

function findMethod(cls: Function, name: string): Function | undefined {
  const onPrototype = (cls.prototype as Record<string, unknown> | undefined)?.[name];
  if (typeof onPrototype === 'function') return onPrototype;
  const onClass = (cls as unknown as Record<string, unknown>)[name];
  return typeof onClass === 'function' ? onClass : undefined;
}

function missingMethod(member: string, target: string): CachingError {
  return new CachingError(errors.E_INVALIDATION_MAPPING, `@InvalidateCache on ${member}: ${target} does not exist; name a @Cache method.`);
}

function resolveOtherClass(spec: TargetSpec, member: string, source: ParameterName[]): ResolvedTarget {
  const cls = spec.cls!;
  const fn = findMethod(cls, spec.method);
  if (fn === undefined) throw missingMethod(member, `${cls.name}.${spec.method}`);
  const descriptor = descriptorOf(fn);
  if (descriptor === undefined) throw notCached(member, `${cls.name}.${spec.method}`);
  if (descriptor.declaringClass === undefined) descriptor.locateClassFrom(descriptor.isStatic ? cls : cls.prototype);
  return mapping(spec, member, source, descriptor);
}

function resolveSameClass(spec: TargetSpec, self: unknown, member: string, source: ParameterName[], sourceIsStatic: boolean): ResolvedTarget {
  const cls = sourceIsStatic ? (self as Function) : ((self as { constructor?: Function } | null)?.constructor as Function);
  const fn = cls === undefined ? undefined : findMethod(cls, spec.method);
  if (fn === undefined) throw missingMethod(member, `${cls?.name ?? '?'}.${spec.method}`);
  const descriptor = descriptorOf(fn);
  if (descriptor === undefined) throw notCached(member, `${cls.name}.${spec.method}`);
  if (descriptor.declaringClass === undefined) descriptor.locateClassFrom(descriptor.isStatic ? cls : cls.prototype);
  return mapping(spec, member, source, descriptor);
}

function notCached(member: string, target: string): CachingError {
  return new CachingError(errors.E_INVALIDATION_MAPPING, `@InvalidateCache on ${member}: ${target} is not a @Cache method, so it has no entries to invalidate; add @Cache to it or remove the target.`);
}

/** Builds (and checks) how a decorated call becomes the target's `this` and arguments. */
function mapping(spec: TargetSpec, member: string, source: ParameterName[], descriptor: MethodDescriptor): ResolvedTarget {
  const targetName = `${descriptor.declaringClass?.name ?? spec.cls?.name ?? ''}${descriptor.declaringClass || spec.cls ? '.' : ''}${spec.method}`;
  const self = selfMapping(spec, member, descriptor);
  if (spec.args !== undefined) {
    const mapper = spec.args;
    return {
      descriptor,
      self,
      args: (thisArg, args) => {
        const mapped = mapper.apply(thisArg, args);
        if (!Array.isArray(mapped)) throw new CachingError(errors.E_INVALIDATION_MAPPING, `@InvalidateCache on ${member}: the args mapper for ${targetName} returned ${typeof mapped}; it must return an array of ${targetName}'s arguments.`);
        return mapped as unknown[];
      },
    };
  }
  const positions = checkNames(spec, member, source, descriptor.parameters, descriptor.methodOptions.ignoreArgs, targetName);
  return {
    descriptor,
    self,
    args: (_thisArg, args) => positions.map(p => (p < 0 ? undefined : args[p])),
  };
}

/**
 * Longest parameter name a minifier plausibly emits. Minifiers (esbuild, terser, SWC, Oxc, uglify) rename the
 * parameters of every function to the shortest free names (`e`, `t`, `n`…, then two characters once the 54
 * one-character names are taken); three characters would take more than 3,500 names in one scope.
 */
const MANGLED_NAME_LENGTH = 2;

/**
 * True when `source`'s parameter names cannot be trusted to say which argument is which: it has two or more
 * parameters and none has a name longer than {@link MANGLED_NAME_LENGTH}. That is what minified code looks
 * like — `updatePrice(price, id)` becomes `updatePrice(e, t)`, and `getPrice(id)` becomes `getPrice(e)`, so
 * the mapping by name would silently pass `price` as `id`. A minifier renames all the parameters of a
 * function or none (eval), so one longer name shows the names are the author's. With a single parameter there
 * is nothing to confuse, so any names are accepted. The price: hand-written short names (`move(x, y)`) need an
 * explicit `args` mapper too.
 */
export function parameterNamesUntrusted(source: readonly ParameterName[]): boolean {
  return source.length >= 2 && source.every(p => p.name === null || p.name.length <= MANGLED_NAME_LENGTH);
}

/** For each target parameter, the position of the same-named source parameter (-1: ignored by the target). */
function checkNames(spec: TargetSpec, member: string, source: ParameterName[], target: ParameterName[], ignored: readonly number[] | undefined, targetName: string): number[] {
  const sourceList = source.map(s => (s.rest ? '...' : '') + (s.name ?? '{…}')).join(', ');
  if (parameterNamesUntrusted(source) && target.some((_, i) => !ignored?.includes(i))) {
    throw new CachingError(
      errors.E_INVALIDATION_MAPPING,
      `@InvalidateCache on ${member}: its parameters (${sourceList}) have names of at most ${MANGLED_NAME_LENGTH} characters, as minified code has, so mapping ${targetName}'s arguments by name could silently invalidate the wrong entry; map them explicitly with { method: '${spec.method}', args: (${sourceList}) => [/* ${targetName}'s arguments */] }, or give a parameter a longer name if the code is never minified.`,
    );
  }
  return target.map((parameter, i) => {
    if (ignored?.includes(i)) return -1;
    if (parameter.name === null) {
      throw new CachingError(errors.E_INVALIDATION_MAPPING, `@InvalidateCache on ${member}: parameter ${i} of ${targetName} is destructured, so it has no name to map by; use { method: '${spec.method}', args: (…) => [...] }.`);
    }
    if (parameter.rest) {
      throw new CachingError(errors.E_INVALIDATION_MAPPING, `@InvalidateCache on ${member}: parameter ${i} of ${targetName} is a rest parameter (...${parameter.name}), which is ambiguous to map by name; use { method: '${spec.method}', args: (…) => [...] }.`);
    }
    const matches = source.map((s, j) => (s.name === parameter.name ? j : -1)).filter(j => j >= 0);
    if (matches.length === 0) {
      throw new CachingError(
        errors.E_INVALIDATION_MAPPING,
        `@InvalidateCache on ${member}: parameter '${parameter.name}' of ${targetName} has no parameter of the same name in ${member}(${sourceList}); rename it, or map explicitly with { method: '${spec.method}', args: (…) => [...] }${parameter.name.length <= MANGLED_NAME_LENGTH ? ' (in minified code parameter names are not the ones you wrote: map explicitly)' : ''}.`,
      );
    }
    return matches[0]!;
  });
}

function selfMapping(spec: TargetSpec, member: string, descriptor: MethodDescriptor): (self: unknown, args: unknown[]) => unknown {
  if (descriptor.isStatic) {
    const cls = descriptor.declaringClass ?? spec.cls;
    return cls !== undefined ? () => cls : self => (typeof self === 'function' ? self : (self as { constructor: Function }).constructor);
  }
  if (spec.instance !== undefined) {
    const instance = spec.instance;
    return (self, args) => instance.apply(self, args);
  }
  if (spec.cls === undefined) return self => self; // same class: the decorated call's own instance
  const cls = descriptor.declaringClass ?? spec.cls;
  // Service defaults or a profile may still set ignoreThis; then the instance does not matter and this check
  // is stricter than needed — the `instance` option resolves it either way.
  const keyed = descriptor.options.ignoreThis !== true && (typeof (cls.prototype as { getCacheKey?: unknown }).getCacheKey === 'function' || keyPropertiesOf(cls) !== null);
  if (keyed) {
    throw new CachingError(
      errors.E_INVALIDATION_MAPPING,
      `@InvalidateCache on ${member}: instances of ${cls.name} have their own cache key, so ${spec.label} does not say which instance's entry to invalidate; use { target: ${cls.name}, method: '${spec.method}', instance: (…args) => theInstance }.`,
    );
  }
  // Another class whose instances are stateless services: its keys do not depend on the instance.
  const stateless = Object.create(cls.prototype) as object;
  return () => stateless;
}
