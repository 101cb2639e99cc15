import type { MethodDescriptor } from './method-descriptor.js';

/**
 * What is known about a class while its decorators run, keyed by the class (legacy decorators) or by the
 * class's `context.metadata` object (TC39 decorators, which do not see the class). It lets
 * `@InvalidateCache('getPrice')` be checked against `getPrice` whether `getPrice` is decorated before or after it.
 */
interface DefinitionState {
  readonly cached: Map<string, MethodDescriptor>;
  readonly pending: Map<string, Array<(descriptor: MethodDescriptor) => void>>;
}

const states = new WeakMap<object, DefinitionState>();

function stateOf(owner: object): DefinitionState {
  let state = states.get(owner);
  if (state === undefined) states.set(owner, (state = { cached: new Map(), pending: new Map() }));
  return state;
}

/** Records a `@Cache` method and runs the checks waiting for it (they may throw: still at class definition). */
export function noteCachedMethod(owner: object | undefined, descriptor: MethodDescriptor): void {
  if (owner === undefined) return;
  const state = stateOf(owner);
  state.cached.set(descriptor.methodName, descriptor);
  const waiting = state.pending.get(descriptor.methodName);
  if (waiting === undefined) return;
  state.pending.delete(descriptor.methodName);
  for (const check of waiting) check(descriptor);
}

/** Runs `check` with the `@Cache` method `name` of the class being defined, now or when it gets decorated. */
export function whenCachedMethod(owner: object | undefined, name: string, check: (descriptor: MethodDescriptor) => void): void {
  if (owner === undefined) return;
  const state = stateOf(owner);
  const known = state.cached.get(name);
  if (known !== undefined) return check(known);
  let waiting = state.pending.get(name);
  if (waiting === undefined) state.pending.set(name, (waiting = []));
  waiting.push(check);
}
