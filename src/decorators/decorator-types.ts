/**
 * The types of the decorators this package returns. Each accepts exactly what its decorator supports, in both
 * decorator modes, so that a misplaced decorator is a compile error where TypeScript can tell:
 * - TC39 decorators (`experimentalDecorators` off) are called `(value, context)`; the context type says what is
 *   decorated (`ClassMethodDecoratorContext`, `ClassFieldDecoratorContext`…), and whether it is static or private.
 * - Legacy decorators (`experimentalDecorators` on) are called `(prototype or class, key, descriptor)` for
 *   methods and accessors, `(prototype or class, key)` for fields, and `(class)` for classes.
 * The run-time checks stay: JavaScript callers, and casts, can still misuse a decorator.
 */

/** Any function a method can be (sync or async, overloaded or generic). */
type AnyMethod = (...args: any) => any;

/**
 * A decorator for methods only (instance or static, sync or async, with TC39 decorators also `#private`):
 * what `@Cache()` and `@InvalidateCache()` return. On a field, a getter, a setter or an `accessor` it does not
 * type-check (with legacy decorators, a getter or setter whose value is itself a function is not caught).
 */
export interface MethodOnlyDecorator {
  /** TC39 decorators: a method and its context. The method is replaced by a wrapper of the same type. */
  <This, Method extends AnyMethod>(value: Method, context: ClassMethodDecoratorContext<This, Method>): Method | void;
  /** Legacy decorators (`experimentalDecorators`): the prototype (or the class), the name and the descriptor of a method. */
  <Method extends AnyMethod>(target: object, propertyKey: string | symbol, descriptor: TypedPropertyDescriptor<Method>): TypedPropertyDescriptor<Method> | void;
}

/** The part of a TC39 member context `@CacheKey` requires: a public, non-static member with a string name. */
interface PublicInstanceMember {
  readonly static: false;
  readonly private: false;
  readonly name: string;
}

/**
 * A decorator for the public instance properties that form an instance's cache key: what `@CacheKey()`
 * returns. With TC39 decorators it accepts fields, getters and `accessor` fields, not static, `#private` or
 * symbol-named ones, and not methods or setters. With legacy decorators it accepts fields and accessors with
 * string names, not static properties and not methods; a setter, or a getter whose value is a function, is not
 * caught by the type, and a symbol-named property is rejected when the class is defined.
 */
export interface CacheKeyDecorator {
  /** TC39: a field. */
  <This, Value>(value: undefined, context: ClassFieldDecoratorContext<This, Value> & PublicInstanceMember): void;
  /** TC39: a getter. */
  <This, Value>(value: (this: This) => Value, context: ClassGetterDecoratorContext<This, Value> & PublicInstanceMember): void;
  /** TC39: an `accessor` field. */
  <This, Value>(value: ClassAccessorDecoratorTarget<This, Value>, context: ClassAccessorDecoratorContext<This, Value> & PublicInstanceMember): void;
  /**
   * Legacy: a field (no descriptor). The descriptor parameter is there to be `undefined`: TypeScript accepts a
   * decorator with fewer parameters on a method, which would let a method through.
   */
  <Target extends object>(target: Prototype<Target>, propertyKey: string, descriptor?: undefined): void;
  /** Legacy: a getter or accessor; the value must not be a function (that is a method). */
  <Target extends object, Value>(target: Prototype<Target>, propertyKey: string, descriptor: TypedPropertyDescriptor<Value> & NotAMethod<Value>): void;
}

/** A legacy member decorator's target when it is a prototype (an instance member), `never` when it is the class (a static one). */
type Prototype<Target> = Target extends AnyClass ? never : Target;

/** Rejects a legacy descriptor whose value is a function: a method, not a property. */
type NotAMethod<Value> = [Value] extends [AnyMethod] ? { readonly value: never } : unknown;

/** Any class, abstract or not. */
type AnyClass = abstract new (...args: any) => any;

/** A decorator for classes only: what `@CacheConfiguration()` returns. On a member it does not type-check. */
export interface ClassOnlyDecorator {
  /** TC39 decorators: the class and its context. */
  <Class extends AnyClass>(value: Class, context: ClassDecoratorContext<Class>): void;
  /** Legacy decorators: the class (the `undefined` key keeps it off static members, whose target is the class too). */
  <Class extends AnyClass>(target: Class, propertyKey?: undefined): void;
}
