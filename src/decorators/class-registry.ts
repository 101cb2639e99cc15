import type { CacheOptions } from '../service/options.js';

// The registries below are keyed by class (WeakMap/WeakRef): classes defined again by tests or hot reload
// are collected normally.

/** Class-level defaults set by `@CacheConfiguration`. */
const classOptions = new WeakMap<Function, Readonly<CacheOptions>>();

export function setClassOptions(cls: Function, options: Readonly<CacheOptions>): void {
  classOptions.set(cls, options);
}

/** The `@CacheConfiguration` options of `cls` or its nearest configured ancestor. */
export function classOptionsOf(cls: Function): Readonly<CacheOptions> | undefined {
  const configured = configuredClassOf(cls);
  return configured === undefined ? undefined : classOptions.get(configured);
}

/** `cls` or its nearest ancestor that has `@CacheConfiguration` (for messages: which class set an option). */
export function configuredClassOf(cls: Function): Function | undefined {
  for (let c: Function | null = cls; c && c !== Function.prototype; c = Object.getPrototypeOf(c)) {
    if (classOptions.has(c)) return c;
  }
  return undefined;
}

/** `Scope.method` → the class that produced keys with it first. */
const keyHeads = new Map<string, WeakRef<Function>>();
const warnedScopes = new Set<string>();

/**
 * Records that `cls` produces keys starting with `head` (`Scope.method`). If another live class already
 * does, emits a process warning once per scope: the two classes would share entries.
 */
export function claimKeyHead(head: string, scope: string, cls: Function): void {
  const owner = keyHeads.get(head)?.deref();
  if (owner !== undefined && owner !== cls && !isSameLineage(owner, cls) && !warnedScopes.has(scope)) {
    warnedScopes.add(scope);
    process.emitWarning(
      `aspect-cache: two different classes named '${cls.name}' produce the same cache keys '${head}(…)'. ` +
        `They would read each other's entries. Give one of them a distinct scope: @Cache({ scope: '…' }) or @CacheConfiguration({ scope: '…' }). ` +
        `(Defining the same class again, as tests and hot reload do, is harmless.)`,
      { code: 'ASPECT_CACHE_SCOPE_COLLISION' },
    );
  }
  keyHeads.set(head, new WeakRef(cls));
}

function isSameLineage(a: Function, b: Function): boolean {
  return Object.prototype.isPrototypeOf.call(a, b) || Object.prototype.isPrototypeOf.call(b, a);
}
