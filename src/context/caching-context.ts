import { AsyncLocalStorage } from 'node:async_hooks';
import type { ContextSource, Route } from './vary-by.js';

const EMPTY: readonly string[] = Object.freeze([]);

/**
 * The context of one cached computation: it collects the dependency keys and child method keys the
 * computation used, and the earliest expiry among the children it was computed from.
 *
 * Contexts chain to their caller's context (`parent`), which is how self-recursion is detected. A
 * *suspended* context (from `suspendDependencyPropagation`) swallows everything added to it.
 */
export class CachingContext {
  /** Dependency keys added with `addDependency` (null until the first one). */
  #own: Set<string> | null = null;
  /** Keys of the cached children this computation used (null until the first one). */
  #children: Set<string> | null = null;
  /** The dependency lists of those children, expanded only when the entry is stored. */
  #childDependencies: Array<readonly string[]> | null = null;
  /** The contexts the computation varies by (its children's and `readContext`'s), name → encoded value; null until the first one. */
  #varies: Map<string, string> | null = null;
  /** Why the computation's value must not be stored (a context read with two values, an unkeyable value); null when it may. */
  refusal: string | null = null;
  /** Earliest absolute expiry among children (ms on the service clock); Infinity when none. */
  expiresAt = Infinity;
  /** Set when the computation has returned: late additions (fire-and-forget work) are ignored. */
  closed = false;
  /** Where the computed value goes when the service has contexts (see vary-by.ts); null otherwise. */
  route: Route | null = null;

  constructor(
    /** The cache key being computed; null for a suspended scope. */
    readonly key: string | null,
    readonly parent: CachingContext | undefined,
    /** The key prefix of the service computing it; dependency keys added here get it. */
    readonly prefix: string = '',
    /** The context providers of the service computing it (what `readContext` reads); null when it has none. */
    readonly source: ContextSource | null = null,
  ) {}

  /** True if this context accepts dependencies. */
  get accepting(): boolean {
    return this.key !== null && !this.closed;
  }

  /** Adds one dependency key. */
  add(key: string): void {
    if (this.key === null || this.closed) return;
    (this.#own ??= new Set()).add(key);
  }

  /**
   * Receives a child's key, its dependencies and its expiry. This runs on every cache hit inside a cached
   * computation, so it only records the child (once per key) and keeps a reference to its dependency list;
   * `collect()` expands them when the entry is stored.
   */
  receive(childKey: string, dependencies: readonly string[], expiresAt: number): void {
    if (this.key === null || this.closed) return;
    if (expiresAt < this.expiresAt) this.expiresAt = expiresAt;
    const children = (this.#children ??= new Set());
    const before = children.size;
    children.add(childKey);
    // A child seen before has handed up its dependencies already (if it changed since, the key was
    // invalidated and this computation will not be stored anyway).
    if (children.size !== before && dependencies.length > 0) (this.#childDependencies ??= []).push(dependencies);
  }

  /**
   * Records that the computation varies by a context, with the (encoded) value it saw — read by itself, or by a
   * cached child. A suspended scope passes it on to the computation around it: varying by more is always safe,
   * and a parent that awaited the suspended work may have used what it read. A context seen with two values
   * (the request state changed during the computation) makes the value unstorable.
   */
  vary(name: string, encoded: string): void {
    if (this.key === null) {
      this.parent?.vary(name, encoded);
      return;
    }
    if (this.closed) return;
    const varies = (this.#varies ??= new Map());
    const seen = varies.get(name);
    if (seen === undefined) varies.set(name, encoded);
    else if (seen !== encoded) this.refusal ??= `it read context '${name}' with two different values (${seen} and ${encoded}) while it ran`;
  }

  /** Marks the value unstorable (a child's value was, or a context value could not be keyed); passes through suspended scopes. */
  refuse(reason: string): void {
    if (this.key === null) {
      this.parent?.refuse(reason);
      return;
    }
    if (!this.closed) this.refusal ??= reason;
  }

  /** The contexts the computation varies by, name → encoded value (not normalized). */
  get varies(): ReadonlyMap<string, string> | null {
    return this.#varies;
  }

  /** All the keys this computation depends on: its own dependencies, its children and theirs (deduplicated). */
  collect(): readonly string[] {
    if (this.#children === null) return this.#own === null ? EMPTY : [...this.#own];
    const all = new Set<string>(this.#own);
    for (const child of this.#children) all.add(child);
    if (this.#childDependencies !== null) for (const list of this.#childDependencies) for (const key of list) all.add(key);
    return [...all];
  }

  /**
   * The context (this one or an ancestor) computing `key`, if any. The walk crosses suspended scopes: the
   * library cannot tell whether the enclosing computation awaits the suspended work, and joining its own
   * computation would then deadlock. Fire-and-forget work that recurses gets an `E_RECURSION` rejection.
   */
  computing(key: string): CachingContext | undefined {
    for (let c: CachingContext | undefined = this; c !== undefined; c = c.parent) if (c.key === key) return c;
    return undefined;
  }
}

// Created on first use: an active AsyncLocalStorage makes every `await` in the process slower, so an
// application that never misses the cache never pays for it.
let storage: AsyncLocalStorage<CachingContext> | undefined;

/** The context of the cached computation running now, if any. */
export function currentContext(): CachingContext | undefined {
  return storage === undefined ? undefined : storage.getStore();
}

/** Runs `fn` with `context` as the current context. */
export function runInContext<T>(context: CachingContext, fn: () => T): T {
  return (storage ??= new AsyncLocalStorage<CachingContext>()).run(context, fn);
}

/**
 * Runs `fn` so that nothing done inside it (dependencies added, cached methods called) reaches the enclosing
 * context. Cached methods inside still cache normally. Nesting restores the previous state on return.
 *
 * @example
 * suspendDependencyPropagation(() => void warmUpRelatedProducts(id)); // fire-and-forget from a cached method
 */
export function suspendDependencyPropagation<T>(fn: () => T): T {
  const current = currentContext();
  if (current === undefined) return fn();
  return runInContext(new CachingContext(null, current), fn);
}

/** The context providers that apply here: those of the innermost computation that has some. */
export function currentSource(): ContextSource | null {
  for (let c = currentContext(); c !== undefined; c = c.parent) if (c.source !== null) return c.source;
  return null;
}

/**
 * Adds dependency keys (unprefixed) to the cached computation running now, with its service's prefix.
 * Outside a cached method (or inside a suspended scope) it does nothing.
 */
export function addDependencyKeys(keys: readonly string[]): void {
  const context = currentContext();
  if (context === undefined || !context.accepting) return;
  for (const key of keys) context.add(context.prefix + key);
}
