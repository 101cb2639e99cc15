import { CachingError, errors } from '../errors.js';

// TypeScript's own TC39 emit only creates `context.metadata` when `Symbol.metadata` exists (Node 20–24 lack it);
// SWC and Babel fall back to Symbol.for('Symbol.metadata'). Using the same registered symbol makes both agree.
(Symbol as { metadata?: symbol }).metadata ??= Symbol.for('Symbol.metadata');

/** The context object TC39 decorators receive (the subset used here). */
export interface StandardContext {
  readonly kind: 'class' | 'method' | 'getter' | 'setter' | 'field' | 'accessor';
  readonly name: string | symbol | undefined;
  readonly static?: boolean;
  readonly private?: boolean;
  readonly metadata?: Record<PropertyKey, unknown>;
  addInitializer(initializer: (this: any) => void): void;
}

/** A member decoration, normalised across the two decorator modes. */
export type MemberDecoration =
  | { readonly mode: 'standard'; readonly value: unknown; readonly context: StandardContext }
  | { readonly mode: 'legacy'; readonly target: object; readonly key: string | symbol; readonly descriptor: PropertyDescriptor | undefined };

/**
 * Tells the two decorator modes apart from the call shape: TC39 decorators are called `(value, context)`
 * with `context.kind`; legacy (`experimentalDecorators`) ones `(target, key, descriptor?)` with a string or
 * symbol key.
 */
export function memberDecoration(args: readonly unknown[], decorator: string): MemberDecoration {
  const [first, second, third] = args;
  if (args.length === 2 && isStandardContext(second)) return { mode: 'standard', value: first, context: second };
  if ((typeof second === 'string' || typeof second === 'symbol') && first !== null && (typeof first === 'object' || typeof first === 'function')) {
    return { mode: 'legacy', target: first as object, key: second, descriptor: third as PropertyDescriptor | undefined };
  }
  // Legacy class decorators get (constructor); legacy parameter decorators (target, key | undefined, index).
  if (args.length === 1 && typeof first === 'function') {
    throw new CachingError(errors.E_DECORATOR_TARGET, `${decorator} on class ${first.name || '(anonymous)'}: ${decorator} decorates class members, not classes; ${placement(decorator)}.`);
  }
  if (typeof third === 'number' && first !== null && (typeof first === 'object' || typeof first === 'function')) {
    const cls = typeof first === 'function' ? first : (first as { constructor: Function }).constructor;
    const member = second === undefined ? 'the constructor' : qualified(cls.name, String(second));
    throw new CachingError(errors.E_DECORATOR_TARGET, `${decorator} on parameter ${third} of ${member}: ${decorator} does not decorate parameters; ${placement(decorator)}.`);
  }
  throw new CachingError(errors.E_DECORATOR_TARGET, `${decorator} must decorate a class member; it was called with (${args.map(a => typeof a).join(', ')}). Did you forget the parentheses, as in ${decorator}()?`);
}

/** Where a decorator belongs, for messages about misplaced ones. */
export function placement(decorator: string): string {
  switch (decorator) {
    case '@Cache':
      return 'put @Cache() on its methods (options shared by a class go in @CacheConfiguration({ … }) on the class)';
    case '@CacheKey':
      return 'put @CacheKey() on a public instance field or getter (or give the class a getCacheKey() method)';
    default:
      return `put ${decorator} on a method`;
  }
}

function isStandardContext(value: unknown): value is StandardContext {
  return value !== null && typeof value === 'object' && typeof (value as StandardContext).kind === 'string' && typeof (value as StandardContext).addInitializer === 'function';
}

/** `ClassName.member` for messages, given what a decoration knows. */
export function memberName(decoration: MemberDecoration): { className: string; member: string; isStatic: boolean } {
  if (decoration.mode === 'standard') {
    return { className: '', member: String(decoration.context.name), isStatic: decoration.context.static === true };
  }
  const isStatic = typeof decoration.target === 'function';
  const cls = isStatic ? (decoration.target as Function) : (decoration.target as { constructor: Function }).constructor;
  return { className: cls.name, member: String(decoration.key), isStatic };
}

/**
 * Throws if a decorator factory was itself used as the decorator (`@Cache` instead of `@Cache()`): it then
 * receives the decoration's arguments instead of its options.
 */
export function checkFactoryCall(decorator: string, args: ArrayLike<unknown>): void {
  const first = args[0];
  const second = args[1];
  // A decoration passes a function (TC39 method, legacy static target) or a prototype, then a member key or a
  // TC39 context. Options objects, method names, [Class, 'method'] pairs and { method } targets do not.
  const isTc39Context = second !== null && typeof second === 'object' && typeof (second as StandardContext).kind === 'string';
  const isPrototype =
    first !== null && typeof first === 'object' && !Array.isArray(first) && typeof (first as { method?: unknown }).method !== 'string' && (typeof second === 'string' || typeof second === 'symbol');
  if (typeof first === 'function' || isTc39Context || isPrototype) {
    throw new CachingError(errors.E_DECORATOR_TARGET, `${decorator} is a decorator factory: write ${decorator}() with parentheses.`);
  }
}

/** "ClassName.member" or "member" when the class is not known yet (TC39). */
export function qualified(className: string, member: string): string {
  return className ? `${className}.${member}` : member;
}
