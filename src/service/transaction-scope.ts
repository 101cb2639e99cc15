import { AsyncLocalStorage } from 'node:async_hooks';

/**
 * The invalidation scope of `CachingService.transaction` (SPEC §13): what was invalidated inside it, by which
 * service, so that the keys can be invalidated again and their holds released when the transaction ends.
 */
export class TransactionScope {
  /** Keys (prefixed) invalidated inside the scope, per service that invalidated them. */
  readonly keys = new Map<object, Set<string>>();

  constructor(
    /** How long (ms) the holds of this scope's invalidations last if the scope never ends (the process died). */
    readonly leaseMs: number,
  ) {}

  record(service: object, keys: readonly string[]): void {
    let set = this.keys.get(service);
    if (set === undefined) this.keys.set(service, (set = new Set()));
    for (const key of keys) set.add(key);
  }
}

// Created on first use, like the caching context's: a process that never opens a transaction pays nothing.
let storage: AsyncLocalStorage<TransactionScope> | undefined;

/** The transaction scope the current code runs in, if any. */
export function currentScope(): TransactionScope | undefined {
  return storage === undefined ? undefined : storage.getStore();
}

/** Runs `fn` inside `scope`. */
export function runInScope<T>(scope: TransactionScope, fn: () => T): T {
  return (storage ??= new AsyncLocalStorage<TransactionScope>()).run(scope, fn);
}
