import type { CacheHit, CacheLookup, CachingBackend, InvalidateOptions, InvalidationResult, StoreOutcome } from '../backends/backend.js';
import { MemoryBackend } from '../backends/memory/memory-backend.js';
import { addDependencyKeys, CachingContext, currentContext, currentSource, runInContext, suspendDependencyPropagation } from '../context/caching-context.js';
import { entryOptionsOf } from '../context/set-cache-options.js';
import { ContextSource, familyKey, namesOfRecord, normalizeNames, recordKey, recordValue, sameNames, suffixOf, Variant, variantKey as variantKeyOf, type ContextProviders, type Route } from '../context/vary-by.js';
import type { MethodDescriptor } from '../decorators/method-descriptor.js';
import { cascadeClosure, dependencyKey, type DependencyLike } from '../dependencies/cache-dependency.js';
import { CachingError, errors } from '../errors.js';
import { systemClock, type CacheEventMap, type CacheEventName, type CacheStats, type Clock, type Logger, type MaybePromise, type SkipReason } from '../types.js';
import { createTelemetry, type Telemetry, type TelemetryOption } from '../telemetry/open-telemetry.js';
import { checkKnownOptions, optionNames } from '../options-check.js';
import { currentScope, runInScope, TransactionScope } from './transaction-scope.js';
import { isBackend, validateCacheOptions, type CacheOptions, type FailSafeOptions, type ProfileOptions } from './options.js';

/** Options of {@link CachingService}. */
export interface CachingServiceOptions {
  /** The backend of the default profile. @default new MemoryBackend({ clock }) */
  backend?: CachingBackend;
  /** Named option sets; each may have its own backend. A profile named `default` applies to every method without one. */
  profiles?: Record<string, ProfileOptions>;
  /** Options applied to every method (method, class and profile options override them). */
  defaults?: Omit<CacheOptions, 'key' | 'ignoreArgs' | 'scope'>;
  /** Prepended to every key (method keys and dependency keys): services with different prefixes never meet. @default '' */
  keyPrefix?: string;
  /** Time source for TTLs. Given to the default memory backend. @default Date.now */
  clock?: Clock;
  /** Where errors without an `error` listener, and throwing listeners, are reported. @default console */
  logger?: Logger;
  /**
   * OpenTelemetry: spans around miss computations (`aspect-cache.compute`) and observable counters
   * (`aspect_cache.hits`, `.misses`…). By default on when `@opentelemetry/api` is installed (free without a
   * registered SDK); `false` turns it off; `{ api }` passes the module explicitly.
   */
  telemetry?: TelemetryOption;
  /**
   * Context providers for vary-by (SPEC §11): each reads the application's own request state and returns a
   * keyable value — `{ tenant: () => requestStore.getStore()?.tenant, 'user.roles': () => …, query: name => … }`.
   * `@Cache({ varyBy: ['tenant'] })` adds their values to a method's key, `readContext('tenant')` reads one
   * inside a cached method, and a cached caller varies by whatever its cached callees vary by.
   */
  contexts?: ContextProviders;
}

/** How a method finds its variants on a service with contexts. */
interface VariantPlan {
  readonly source: ContextSource;
  /** The contexts the method declares (`varyBy`). */
  readonly declared: Variant;
  /** What this service last learned each lookup key varies by (a variant record read or written): one lookup on a hit. */
  readonly memo: Map<string, Variant>;
  /** One {@link Variant} per set of names (by the names joined), so their key caches are shared. */
  readonly variants: Map<string, Variant>;
  /**
   * Set once the memo holds a variant beyond the declared contexts: until then a hit needs no memo lookup (the
   * lookup key is the entry's key; a record another process wrote is still read on a miss).
   */
  learned: boolean;
  /** For messages: `@Cache on Class.method`. */
  readonly where: string;
}

/** A method's options resolved for one service: computed on its first call, then reused. */
interface Plan {
  readonly enabled: boolean;
  readonly backend: CachingBackend;
  /** Absolute TTL in ms; 0 for none. */
  readonly ttl: number;
  readonly sliding: number;
  readonly cacheUndefined: boolean;
  readonly ignoreThis: boolean;
  readonly prefix: string;
  /** The profile's name, for messages. */
  readonly profile: string;
  readonly failSafe: FailSafeOptions | null;
  /**
   * Full keys of recent single-argument calls, by argument (strings and numbers). A memoised key is the same
   * string object every time, so the backend's map does not rebuild and rehash it on each hit. Null when
   * the method has a custom key function.
   */
  readonly keys: Map<string | number, string> | null;
  /** Set when the service has contexts: the call may vary by some (declared, or learned from callees). */
  readonly variant: VariantPlan | null;
  /** The `shouldCache` predicate; null for none. */
  readonly shouldCache: ((value: unknown) => boolean) | null;
  /** The `eagerRefresh` fraction of the ttl; 0 for none (the one field a hit tests). */
  readonly eagerRefresh: number;
}

/**
 * How many computations a caller joins whose value turns out uncertified (refused as stale: something it
 * read was invalidated meanwhile) before it computes on its own: bounds the retries under constant writes.
 */
const MAX_JOIN_ATTEMPTS = 3;

export const SERVICE_OPTION_NAMES = optionNames({ backend: 0, profiles: 0, defaults: 0, keyPrefix: 0, clock: 0, logger: 0, telemetry: 0, contexts: 0 } satisfies Record<keyof CachingServiceOptions, 0>);

/** How long the holds of a transaction last when it never ends (its process died). */
const DEFAULT_LEASE_MS = 30_000;
const TRANSACTION_OPTION_NAMES = optionNames({ leaseMs: 0 });

/** Memoised keys per method and service; the memo is cleared when it reaches this size. */
const KEY_MEMO_LIMIT = 2048;

/** What a computation (or a fail-safe fallback) hands to its callers. */
interface Outcome {
  readonly value: unknown;
  readonly async: boolean;
  readonly dependencies: readonly string[];
  readonly expiresAt: number;
  /**
   * True when callers that joined the computation may take the value: the backend stored it, or certified
   * that nothing it depends on was invalidated since the computation began. False for a value refused as
   * stale or never checked; a joiner then computes on its own.
   */
  readonly shareable: boolean;
  /** The key the value is (or would have been) stored under, when not the flight's: a variant key. */
  readonly key?: string;
  /** The contexts the value varies by (normalized, sorted; empty when none) → their encoded values: a caller's computation varies by them too. */
  readonly varies: ReadonlyMap<string, string>;
  /** Why the value could not be stored because of its contexts: a caller's value built on it cannot be either. */
  readonly refusal?: string;
  /**
   * The encoded values of `varies`, when it goes beyond the declared contexts: a caller that joined the
   * computation takes the value only if its own values encode the same.
   */
  readonly suffix?: string;
  /** For a fail-safe fallback: when its window ends (ms, backend clock); a joiner arriving later waits for the computation. */
  readonly servableUntil?: number;
  /** True when the backend stored the value. */
  readonly stored?: boolean;
}

/** What a failed computation varied by (see {@link Flight.failure}). */
interface Failure {
  readonly varies: ReadonlyMap<string, string>;
  readonly refusal: string | undefined;
  readonly suffix: string | null;
}

/** A computation in flight that other callers of the same key (in this service) join. */
interface Flight {
  /** What callers receive; with fail-safe it may answer before the computation does. */
  outcome: Promise<Outcome>;
  /** The computation itself. */
  computation: Promise<Outcome>;
  /** Callers that joined so far: an unstored value is checked with the backend only when someone joined. */
  joiners: number;
  readonly clock: Clock;
  /** Set once fail-safe has answered with the expired value: a caller joining later checks it again. */
  answered?: boolean;
  /** Asks the backend again whether the expired value is still not invalidated (fail-safe flights). */
  recheck?: () => MaybePromise<boolean>;
  /**
   * Set when the computation failed: what it varied by, with the values it saw. A failure is shared like a
   * value: only with joiners whose values agree (`suffix` null: with none, the computing caller's own contexts
   * failed); the others compute on their own.
   */
  failure?: Failure | undefined;
}

/** A cached call recorded instead of run, for `invalidateCall`/`refreshCall`. */
interface CapturedCall {
  readonly descriptor: MethodDescriptor;
  readonly self: unknown;
  readonly args: unknown[];
}

/** Set while `invalidateCall`/`refreshCall` evaluate their lambda: cached wrappers record instead of running. */
export const capture: { active: boolean; calls: CapturedCall[] } = { active: false, calls: [] };

/** The property under which an instance (or class) carries the service bound to it. */
export const BOUND_SERVICE = Symbol.for('aspect-cache.service');

type Listener<E extends CacheEventName> = (event: CacheEventMap[E]) => void;

const NO_TOKEN = Symbol('no-token');

const NO_NAMES: readonly string[] = Object.freeze([]);
const NO_VARIES: ReadonlyMap<string, string> = new Map();

const noop = (): void => {};

let defaultService: CachingService | undefined;
/** True while `CachingService.default` is the one created on first use (not one the application set). */
let defaultIsLazy = false;
/** Set while the getter creates the default, so that the constructor does not count it as the application's. */
let creatingDefault = false;
/** Services the application constructed (not the lazily created default) and has not disposed. */
let applicationServices = 0;
let fallbackWarned = false;
/**
 * What an unbound decorated call uses, once checked: `serviceOf` reads only this on its fast path. Cleared
 * whenever the answer or the warning check could change (default set or disposed, a service constructed).
 */
let checkedFallback: CachingService | undefined;

/**
 * The default service as it is, without creating one, and a way to put one back or clear it: for integrations
 * (the NestJS module) that make their service the default for a while and restore the previous one after.
 */
export const defaultServiceSlot = {
  get: (): CachingService | undefined => defaultService,
  set: (service: CachingService | undefined): void => replaceDefault(service),
};

/**
 * Makes `service` the default (undefined: none, so the next use creates one lazily). The one way the default
 * changes: it also forgets the cached unbound fallback, which would otherwise keep serving the previous default.
 */
function replaceDefault(service: CachingService | undefined): void {
  defaultService = service;
  defaultIsLazy = false;
  checkedFallback = undefined;
}

/** Internal entry points used by the decorators (kept off the public surface). */
export let serviceInternals: {
  /** Computes the keys of cached calls now; the returned function invalidates them (undefined when done synchronously). */
  prepareInvalidation(service: CachingService, calls: readonly CallToInvalidate[]): () => Promise<void> | undefined;
  reportError(service: CachingService, error: unknown, operation: string): void;
  /** The service's context providers (null when it has none). */
  contextsOf(service: CachingService): ContextSource | null;
  /** Whether dispose() was called. */
  isDisposed(service: CachingService): boolean;
};

/** A cached call to invalidate: which method, on which `this`, with which arguments. */
export interface CallToInvalidate {
  readonly descriptor: MethodDescriptor;
  readonly self: unknown;
  readonly args: unknown[];
}

/**
 * Runs cached methods: looks keys up, computes misses once per key, stores values with their dependencies,
 * and invalidates. Decorated methods use the service bound to their instance (see
 * {@link bindCachingService} and the DI integration), else {@link CachingService.default}.
 *
 * @example
 * const caching = new CachingService({ profiles: { hot: { ttl: 5_000 } } });
 * bindCachingService(catalogue, caching);
 * await caching.invalidate('PriceList');
 */
export class CachingService {
  readonly #backend: CachingBackend;
  readonly #backends: readonly CachingBackend[];
  readonly #profiles = new Map<string, Readonly<ProfileOptions>>();
  readonly #defaults: Readonly<CacheOptions>;
  readonly #prefix: string;
  readonly #logger: Logger;
  readonly #plans = new WeakMap<MethodDescriptor, Plan>();
  readonly #inFlight = new Map<string, Flight>();
  readonly #listeners = new Map<CacheEventName, Set<Listener<any>>>();
  /** Shortcuts so the hit and miss paths test one field when nobody listens. */
  #hitListeners: Set<Listener<'hit'>> | undefined;
  #missListeners: Set<Listener<'miss'>> | undefined;
  readonly #counters: CacheStats = { hits: 0, misses: 0, joins: 0, sets: 0, skips: 0, invalidations: 0, invalidatedEntries: 0, errors: 0, failsafes: 0 };
  #disposed = false;
  readonly #telemetry: Telemetry | null;
  /** Removes this service's listeners from its backends (on dispose). */
  readonly #unsubscribe: ReadonlyArray<() => void>;
  /** The context providers (null when the service has none: then no call takes a vary-by path). */
  readonly #contexts: ContextSource | null;
  /** Keys being refreshed in the background (eager refresh): one refresh per key at a time. */
  readonly #refreshing = new Set<string>();
  /** Constructed by the application (not the default created on first use): counted in `applicationServices`. */
  readonly #byApplication: boolean;

  constructor(options: CachingServiceOptions = {}) {
    const where = 'CachingService';
    if (options === null || typeof options !== 'object') throw new CachingError(errors.E_INVALID_OPTION, `${where}: options must be an object.`);
    checkKnownOptions(where, options, SERVICE_OPTION_NAMES);
    const { backend, profiles = {}, defaults, keyPrefix = '', clock, logger, telemetry, contexts } = options;
    const source = contexts === undefined ? null : new ContextSource(contexts, where);
    this.#contexts = source === null || source.empty ? null : source;
    if (backend !== undefined && !isBackend(backend)) {
      throw new CachingError(errors.E_INVALID_OPTION, `${where}: option backend must be a CachingBackend (MemoryBackend, RedisBackend, LayeredBackend…).`);
    }
    if (typeof keyPrefix !== 'string') throw new CachingError(errors.E_INVALID_OPTION, `${where}: option keyPrefix must be a string.`);
    if (clock !== undefined && typeof clock?.now !== 'function') throw new CachingError(errors.E_INVALID_OPTION, `${where}: option clock must have a now() method.`);
    this.#defaults = validateCacheOptions(defaults, `${where} defaults`, 'defaults');
    if ((this.#defaults as CacheOptions).key || (this.#defaults as CacheOptions).ignoreArgs || (this.#defaults as CacheOptions).scope) {
      throw new CachingError(errors.E_INVALID_OPTION, `${where} defaults: key, ignoreArgs and scope are per method; set them on @Cache.`);
    }
    this.#prefix = keyPrefix;
    this.#logger = logger ?? console;
    this.#backend = backend ?? new MemoryBackend({ clock: clock ?? systemClock });
    if (profiles === null || typeof profiles !== 'object') throw new CachingError(errors.E_INVALID_OPTION, `${where}: option profiles must be an object of named profiles.`);
    const backends = new Set<CachingBackend>([this.#backend]);
    for (const [name, profile] of Object.entries(profiles)) {
      const validated = validateCacheOptions(profile, `${where} profile '${name}'`, 'profile');
      if (this.#defaults.ttl !== undefined && validated.slidingExpiration !== undefined && validated.ttl === undefined && validated.slidingExpiration >= this.#defaults.ttl) {
        throw new CachingError(errors.E_INVALID_OPTION, `${where} profile '${name}': slidingExpiration (${validated.slidingExpiration} ms) must be shorter than the default ttl (${this.#defaults.ttl} ms).`);
      }
      this.#profiles.set(name, validated);
      if (validated.backend) backends.add(validated.backend);
    }
    this.#backends = [...backends];
    // varyBy in the defaults or a profile names contexts this service must provide: checked now, not on first call.
    for (const [label, varyBy] of [['defaults', this.#defaults.varyBy], ...[...this.#profiles].map(([name, p]) => [`profile '${name}'`, p.varyBy] as const)] as const) {
      if (varyBy !== undefined && varyBy.length > 0) this.#variantPlan(varyBy, `${where} ${label}`);
    }
    this.#telemetry = createTelemetry(telemetry, () => this.#counters, keyPrefix || 'default');
    // Each service subscribes on its own: a backend shared by several services reports to all of them.
    this.#unsubscribe = this.#backends.map(
      b =>
        b.subscribe?.({
          onRemoval: (key, reason) => this.#emit('evict', { key, reason }),
          onEvent: event => {
            if (event.type === 'error') this.#reportError(event.error, event.operation);
            else if (event.type === 'circuit') this.#emit('circuit', { state: event.state, backend: b.name });
            else if (event.type === 'resync') this.#emit('resync', { reason: event.reason, backend: b.name });
          },
        }) ?? noop,
    );
    this.#byApplication = !creatingDefault;
    if (this.#byApplication) {
      applicationServices++;
      // The next unbound decorated call checks again whether it falls back to a private default (not this call).
      if (!fallbackWarned) checkedFallback = undefined;
    }
  }

  /**
   * The service used by decorated methods whose instance has none bound. Created on first use (a memory
   * cache of its own) unless set: `CachingService.default = caching` makes unbound instances use `caching`.
   * When a decorated call falls back to the created one while the application has constructed another
   * service, a process warning (`ASPECT_CACHE_DEFAULT_FALLBACK`, once per process) names the method and the fix.
   */
  static get default(): CachingService {
    if (defaultService === undefined) {
      creatingDefault = true;
      try {
        defaultService = new CachingService();
      } finally {
        creatingDefault = false;
      }
      defaultIsLazy = true;
    }
    return defaultService;
  }

  /** Replaces the default service (throws a {@link CachingError} if `service` is not a CachingService). */
  static set default(service: CachingService) {
    if (!(service instanceof CachingService)) throw new CachingError(errors.E_INVALID_OPTION, 'CachingService.default must be set to a CachingService.');
    replaceDefault(service);
  }

  /** The default profile's backend. */
  get backend(): CachingBackend {
    return this.#backend;
  }

  /** The key prefix of this service. */
  get keyPrefix(): string {
    return this.#prefix;
  }

  // ───────────────────────────── the call path ─────────────────────────────

  /**
   * Runs one call of a cached method (used by the `@Cache` wrapper).
   * @internal
   */
  invoke(descriptor: MethodDescriptor, self: unknown, args: unknown[]): unknown {
    const plan = (descriptor.planOwner === this ? descriptor.plan : this.#planFor(descriptor, self)) as Plan;
    // Inside a transaction the data may be uncommitted: the method runs, nothing is read from or stored in the cache.
    if (!plan.enabled || currentScope() !== undefined) return descriptor.fn.apply(self, args);
    let key: string | undefined;
    if (args.length === 1 && plan.keys !== null) {
      const arg = args[0];
      if ((typeof arg === 'string' || (typeof arg === 'number' && (arg !== 0 || 1 / arg > 0))) && descriptor.isThisNeutral(self, plan.ignoreThis)) {
        key = plan.keys.get(arg);
        if (key === undefined) {
          key = plan.prefix + descriptor.keyFor(self, args, plan.ignoreThis);
          if (plan.keys.size >= KEY_MEMO_LIMIT) plan.keys.clear();
          plan.keys.set(arg, key);
        }
      }
    }
    key ??= plan.prefix + descriptor.keyFor(self, args, plan.ignoreThis);
    const caller = currentContext();
    if (plan.variant !== null) return this.#invokeVaried(descriptor, plan, self, args, key, caller);
    const backend = plan.backend;
    if (!backend.isSync) {
      if (descriptor.returnsPromise) return this.#invokeOnAsyncBackend(descriptor, plan, self, args, key, caller);
      return this.#probeOnAsyncBackend(descriptor, plan, self, args, key, caller);
    }
    const lookup = backend.get(key) as CacheLookup;
    if (lookup.hit) {
      this.#counters.hits++;
      if (this.#hitListeners !== undefined) this.#emit('hit', { key });
      if (caller !== undefined) caller.receive(key, lookup.dependencies, lookup.expiresAt);
      if (plan.eagerRefresh !== 0) this.#refreshIfDue(descriptor, plan, self, args, key, lookup, null);
      return lookup.async ? Promise.resolve(lookup.value) : lookup.value;
    }
    return this.#missOnSyncBackend(descriptor, plan, self, args, key, caller, lookup.token, plan.failSafe !== null ? lookup.stale : undefined, null);
  }

  /**
   * A call on a service with contexts: the lookup key carries the declared contexts' values, and the entry may
   * be a variant found through what this service remembers of the variant record, or the record itself.
   */
  #invokeVaried(descriptor: MethodDescriptor, plan: Plan, self: unknown, args: unknown[], root: string, caller: CachingContext | undefined): unknown {
    const variant = plan.variant!;
    const backend = plan.backend;
    let route: Route;
    let looked: CacheLookup | undefined;
    let missedKey: string | undefined;
    if (backend.isSync) {
      // The hit path builds no route: the lookup key, then the variant this service knows for it (cached keys).
      // The values read for the key are kept only when a caller must learn them.
      let key: string;
      let known: Variant | undefined;
      const values: string[] | undefined = caller === undefined ? undefined : [];
      try {
        const base = variant.declared.keyOf(root, values);
        known = variant.learned ? variant.memo.get(base) : undefined;
        key = base;
        if (known !== undefined && known !== variant.declared) {
          if (values !== undefined) values.length = 0;
          key = knownKey(known, root, values) ?? base;
          if (key === base) known = undefined;
        }
      } catch (error) {
        // A caller that catches this failure must not store a value for every value of the context.
        caller?.refuse(error instanceof Error ? error.message : String(error));
        if (descriptor.returnsPromise) return Promise.reject(error);
        throw error;
      }
      looked = backend.get(key) as CacheLookup;
      const lookup = looked;
      if (lookup.hit) {
        this.#counters.hits++;
        if (this.#hitListeners !== undefined) this.#emit('hit', { key });
        if (caller !== undefined) {
          caller.receive(key, lookup.dependencies, lookup.expiresAt);
          const names = (known ?? variant.declared).names;
          for (let i = 0; i < names.length; i++) caller.vary(names[i]!, values![i]!);
        }
        if (plan.eagerRefresh !== 0) this.#refreshIfDue(descriptor, plan, self, args, root, lookup, null);
        return lookup.async ? Promise.resolve(lookup.value) : lookup.value;
      }
      missedKey = key;
    }
    try {
      // On a miss the route is built from a fresh read; the lookup is reused when it was of the same key.
      route = this.#route(variant, root);
    } catch (error) {
      if (looked !== undefined && !looked.hit) this.#abandon(backend, looked.token);
      caller?.refuse(error instanceof Error ? error.message : String(error));
      if (descriptor.returnsPromise) return Promise.reject(error);
      throw error;
    }
    if (backend.isSync) {
      if (looked !== undefined && !looked.hit && missedKey !== route.key) {
        this.#abandon(backend, looked.token);
        looked = undefined;
      }
      const lookup = this.#findVariant(plan, route, looked) as CacheLookup;
      if (lookup.hit) {
        const value = this.#served(route.key, lookup, caller, route);
        if (plan.eagerRefresh !== 0) this.#refreshIfDue(descriptor, plan, self, args, route.key, lookup, route);
        return lookup.async ? Promise.resolve(value) : value;
      }
      return this.#missOnSyncBackend(descriptor, plan, self, args, route.key, caller, lookup.token, plan.failSafe !== null ? lookup.stale : undefined, route);
    }
    // Callers of a known variant fly apart from other variants' (their values cannot be shared anyway).
    if (descriptor.returnsPromise) return this.#invokeOnAsyncBackend(descriptor, plan, self, args, route.key, caller, route);
    return this.#probeOnAsyncBackend(descriptor, plan, self, args, route.key, caller, route);
  }

  /**
   * The route of one call: its lookup key (the root with the declared contexts' values, read now) and, when
   * this service knows which contexts the lookup key varies by, the variant key to read. A declared context
   * whose provider throws or returns an unkeyable value fails the call here (a CachingError naming it); a
   * remembered one only makes the call look its lookup key up (its computation may not read it).
   */
  #route(variant: VariantPlan, root: string): Route {
    const declared = variant.declared;
    const declaredValues: string[] = [];
    const base = declared.keyOf(root, declaredValues);
    const known = variant.memo.get(base);
    const plain = (recorded: boolean): Route => ({ root, base, declared: declared.names, declaredValues, names: declared.names, recorded, key: base, keyNames: declared.names, keyValues: declaredValues });
    if (known === undefined || known === declared) return plain(known !== undefined);
    const keyValues: string[] = [];
    const key = knownKey(known, root, keyValues);
    if (key === undefined) return plain(false);
    return { root, base, declared: declared.names, declaredValues, names: known.names, recorded: true, key, keyNames: known.names, keyValues };
  }

  /**
   * Looks a call up on a service with contexts. With a known variant: one lookup of its key. Otherwise the
   * lookup key (an entry that varies by the declared contexts only), then its variant record, then the variant
   * it names. A miss returns the earliest token (the others are released): all keys of a call share a Redis
   * partition, so any of them may store under another. `route` is updated to what was found.
   */
  #findVariant(plan: Plan, route: Route, looked?: CacheLookup): MaybePromise<CacheLookup> {
    const backend = plan.backend;
    if (route.key !== route.base || route.recorded) return looked ?? backend.get(route.key);
    return after(looked ?? backend.get(route.base), first => {
      if (first.hit) return first;
      return after(
        guarded(() => backend.get(recordKey(route.base)), error => this.#dropToken(backend, first, error)),
        record => {
          if (!record.hit) {
            this.#abandon(backend, record.token);
            return first;
          }
          const names = namesOfRecord(record.value);
          if (names === undefined || sameNames(names, route.declared)) return first;
          const known = intern(plan.variant!, names);
          const values: string[] = [];
          // A record naming a context this caller cannot read: compute (a child that reads it will say why).
          const key = knownKey(known, route.root, values);
          if (key === undefined) return first;
          remember(plan.variant!, route.base, known);
          route.names = names;
          route.recorded = true;
          return after(
            guarded(() => backend.get(key), error => this.#dropToken(backend, first, error)),
            second => {
              if (!second.hit) {
                this.#abandon(backend, second.token);
                return first;
              }
              this.#abandon(backend, first.token);
              route.key = key;
              route.keyNames = names;
              route.keyValues = values;
              return second;
            },
          );
        },
      );
    });
  }

  /** A later lookup of a route failed: release the first miss's token, then fail as the lookup did. */
  #dropToken(backend: CachingBackend, first: CacheLookup, error: unknown): never {
    if (!first.hit) this.#abandon(backend, first.token);
    throw error;
  }

  #missOnSyncBackend(
    descriptor: MethodDescriptor,
    plan: Plan,
    self: unknown,
    args: unknown[],
    key: string,
    caller: CachingContext | undefined,
    token: unknown,
    stale: CacheHit | undefined,
    route: Route | null,
  ): unknown {
    const backend = plan.backend;
    const flight = this.#inFlight.get(key);
    const selfCall = this.#selfCall(caller, key, plan);
    if (selfCall === 'recursion') {
      backend.abandon(token);
      throw this.#recursion(descriptor, key);
    }
    if (flight !== undefined && selfCall !== 'apart') return this.#join(flight, descriptor, plan, self, args, key, caller, token, 0, route);
    this.#counters.misses++;
    if (this.#missListeners !== undefined) this.#emit('miss', { key });
    const context = this.#newContext(key, caller, plan, route);
    let result: unknown;
    try {
      result = this.#run(descriptor, key, context, self, args);
    } catch (error) {
      context.closed = true;
      if (stale !== undefined) {
        // A synchronous backend answers `check` synchronously.
        const fallback = this.#fallback(plan, key, token, stale, error, route) as Outcome | undefined;
        this.#abandon(backend, token);
        if (fallback !== undefined) {
          this.#receive(fallback, key, caller);
          return fallback.async ? Promise.resolve(fallback.value) : fallback.value;
        }
      } else this.#abandon(backend, token);
      this.#failedUp(this.#failureOf(context, error), caller);
      throw error;
    }
    if (isThenable(result)) return this.#fly(plan, key, context, token, result, stale, caller);
    context.closed = true;
    this.#receive(this.#store(plan, key, context, token, result, false, null) as Outcome, key, caller);
    return result;
  }

  #invokeOnAsyncBackend(descriptor: MethodDescriptor, plan: Plan, self: unknown, args: unknown[], key: string, caller: CachingContext | undefined, route: Route | null = null): Promise<unknown> {
    const selfCall = this.#selfCall(caller, key, plan);
    if (selfCall === 'recursion') return Promise.reject(this.#recursion(descriptor, key));
    // A separate computation of the key an ancestor computes (under other context values) must not join it.
    if (selfCall === 'apart') return this.#lookUpAndCompute(descriptor, plan, self, args, key, caller, MAX_JOIN_ATTEMPTS, route);
    const flight = this.#inFlight.get(key);
    if (flight !== undefined) return this.#joinFlight(flight, key, caller, () => this.#lookUpAndCompute(descriptor, plan, self, args, key, caller, 1, route), plan);
    return this.#lookUpAndCompute(descriptor, plan, self, args, key, caller, 0, route);
  }

  /**
   * Looks the key up and, on a miss, computes it — or joins a computation of the key already in flight.
   * `attempt` counts the flights this caller joined whose value could not be certified; after
   * {@link MAX_JOIN_ATTEMPTS} it computes on its own.
   */
  #lookUpAndCompute(descriptor: MethodDescriptor, plan: Plan, self: unknown, args: unknown[], key: string, caller: CachingContext | undefined, attempt: number, route: Route | null): Promise<unknown> {
    let lookup: Promise<CacheLookup>;
    // A retry (after joining a flight whose value could not be taken) looks up again from the start.
    if (route !== null && attempt > 0) route = this.#route(plan.variant!, route.root);
    try {
      const answer = route === null ? plan.backend.get(key) : this.#findVariant(plan, route);
      if (!isThenable(answer)) {
        // An asynchronous backend may still answer a hit at once (a layered backend's L1): no promise to wait for.
        if (answer.hit) {
          if (plan.eagerRefresh !== 0) this.#refreshIfDue(descriptor, plan, self, args, key, answer, route);
          return Promise.resolve(this.#served(key, answer, caller, route));
        }
        lookup = Promise.resolve(answer);
      } else lookup = answer as Promise<CacheLookup>;
    } catch (error) {
      lookup = Promise.reject(error);
    }
    // A hit costs the lookup's promise and this one callback; a flight is registered only once a miss is
    // known. Two callers missing concurrently still compute once: the first to see its miss registers the
    // flight synchronously, and the second finds it when its own lookup answers.
    return lookup.then(
      result => {
        if (result.hit) {
          if (plan.eagerRefresh !== 0) this.#refreshIfDue(descriptor, plan, self, args, key, result, route);
          return this.#served(key, result, caller, route);
        }
        return this.#missOnAsyncBackend(descriptor, plan, self, args, key, caller, result.token, plan.failSafe !== null ? result.stale : undefined, attempt, route);
      },
      error => {
        // A failing backend never fails the call: the method runs and its result is returned unstored.
        this.#reportError(error, 'get', key);
        return this.#missOnAsyncBackend(descriptor, plan, self, args, key, caller, NO_TOKEN, undefined, attempt, route);
      },
    );
  }

  /** A hit (on an asynchronous backend, or a routed one): counted, reported, handed to the caller's context; returns its value. */
  #served(key: string, hit: CacheHit, caller: CachingContext | undefined, route: Route | null): unknown {
    if (route !== null) key = route.key;
    this.#counters.hits++;
    if (this.#hitListeners !== undefined) this.#emit('hit', { key });
    if (caller !== undefined) {
      caller.receive(key, hit.dependencies, hit.expiresAt);
      if (route !== null) for (let i = 0; i < route.keyNames.length; i++) caller.vary(route.keyNames[i]!, route.keyValues[i]!);
    }
    return hit.value;
  }

  #missOnAsyncBackend(
    descriptor: MethodDescriptor,
    plan: Plan,
    self: unknown,
    args: unknown[],
    key: string,
    caller: CachingContext | undefined,
    token: unknown,
    stale: CacheHit | undefined,
    attempt: number,
    route: Route | null,
  ): Promise<unknown> {
    if (attempt < MAX_JOIN_ATTEMPTS) {
      const flight = this.#inFlight.get(key);
      if (flight !== undefined) return this.#join(flight, descriptor, plan, self, args, key, caller, token, attempt, route);
    }
    this.#counters.misses++;
    if (this.#missListeners !== undefined) this.#emit('miss', { key });
    const context = this.#newContext(key, caller, plan, route);
    let result: unknown;
    try {
      result = this.#run(descriptor, key, context, self, args);
    } catch (error) {
      result = Promise.reject(error);
    }
    return this.#fly(plan, key, context, token, result, stale, caller);
  }

  /** Joins another caller's computation of `key`, releasing this caller's own token. */
  #join(flight: Flight, descriptor: MethodDescriptor, plan: Plan, self: unknown, args: unknown[], key: string, caller: CachingContext | undefined, token: unknown, attempt: number, route: Route | null): Promise<unknown> {
    if (token !== NO_TOKEN) this.#abandon(plan.backend, token);
    return this.#joinFlight(flight, key, caller, () => this.#lookUpAndCompute(descriptor, plan, self, args, key, caller, attempt + 1, route), plan);
  }

  /**
   * Waits for a computation another caller started. Its value is taken only if it is certified fresh (the
   * backend stored it, or confirmed that nothing it depends on was invalidated since it began): the joiner
   * may have started after an invalidation that another process (or another service on the same store) made
   * while the computation ran, and this process cannot know. Otherwise the joiner looks up again (`retry`):
   * a hit, a newer flight to join, or a computation of its own. Callers that joined together retry together,
   * so they still compute once between them.
   */
  #joinFlight(flight: Flight, key: string, caller: CachingContext | undefined, retry: () => Promise<unknown>, plan: Plan): Promise<unknown> {
    flight.joiners++;
    this.#counters.joins++;
    // The fallback was certified when it was answered, before this caller came: it must be certified again.
    const late = flight.answered === true;
    const joinedAt = flight.clock.now();
    // One tenant's failure (its error may name its data) is not another's: a joiner whose values differ retries.
    const failed = (error: unknown): Promise<unknown> => {
      const failure = flight.failure;
      if (failure !== undefined && !this.#agrees(plan, failure)) return retry();
      this.#failedUp(failure, caller);
      throw error;
    };
    return flight.outcome.then(outcome => {
      if (!outcome.shareable) return retry();
      // A value that varies by contexts beyond the lookup key's is taken only by a caller whose values agree.
      if (outcome.suffix !== undefined && !this.#agrees(plan, outcome)) return retry();
      // A value that had expired before this caller came (a long computation over short-lived children) is
      // not served to it, as an expired entry would not be.
      if (outcome.servableUntil === undefined) return outcome.expiresAt <= joinedAt ? retry() : this.#receive(outcome, key, caller);
      const waitForComputation = () => flight.computation.then(fresh => (fresh.shareable && (fresh.suffix === undefined || this.#agrees(plan, fresh)) ? this.#receive(fresh, key, caller) : retry()), failed);
      // A fail-safe fallback whose window has ended since: wait for the computation itself.
      if (flight.clock.now() >= outcome.servableUntil) return waitForComputation();
      if (!late || flight.recheck === undefined) return this.#receive(outcome, key, caller);
      const fresh = flight.recheck();
      const decide = (ok: boolean) => (ok && flight.clock.now() < outcome.servableUntil! ? this.#receive(outcome, key, caller) : waitForComputation());
      return typeof fresh === 'boolean' ? decide(fresh) : fresh.then(decide);
    }, failed);
  }

  /**
   * Stops new callers from joining a flight whose value is about to be certified: the certificate (the store,
   * or `check`) covers only the callers that were already waiting. Later callers look the key up.
   */
  #seal(key: string, flight: Flight): void {
    if (this.#inFlight.get(key) === flight) this.#inFlight.delete(key);
  }

  /** True when this caller's values of the contexts a computation varied by are the ones it was computed with. */
  #agrees(plan: Plan, outcome: Pick<Outcome, 'varies'> & { readonly suffix?: string | null }): boolean {
    if (outcome.suffix === null || plan.variant === null) return false;
    try {
      return plan.variant.source.encode([...outcome.varies.keys()], plan.variant.where) === outcome.suffix;
    } catch {
      return false; // its own computation will say why
    }
  }

  /**
   * What a failed computation varied by, with the values it saw, or undefined when it varied by nothing (the
   * failure is then anyone's). A context error (E_CONTEXT) is the computing caller's own: shared with nobody.
   */
  #failureOf(context: CachingContext, error: unknown): Failure | undefined {
    const { varies, refusal } = this.#variesOf(context);
    const own = refusal !== undefined || (error instanceof CachingError && error.code === errors.E_CONTEXT);
    if (varies.size === 0 && !own) return undefined;
    return { varies, refusal: refusal ?? (own ? (error as Error).message : undefined), suffix: own ? null : suffixOf([...varies.keys()], [...varies.values()]) };
  }

  /** A failure hands up what the computation varied by, as a value does: a caller that catches it varies too. */
  #failedUp(failure: Failure | undefined, caller: CachingContext | undefined): void {
    if (caller === undefined || failure === undefined) return;
    for (const [name, value] of failure.varies) caller.vary(name, value);
    if (failure.refusal !== undefined) caller.refuse(failure.refusal);
  }

  #receive(outcome: Outcome, key: string, caller: CachingContext | undefined): unknown {
    if (caller !== undefined) {
      caller.receive(outcome.key ?? key, outcome.dependencies, outcome.expiresAt);
      if (outcome.varies.size > 0) for (const [name, value] of outcome.varies) caller.vary(name, value);
      if (outcome.refusal !== undefined) caller.refuse(outcome.refusal);
    }
    return outcome.value;
  }

  /** The context of a miss's computation; it carries the call's route when the service has contexts. */
  #newContext(key: string, caller: CachingContext | undefined, plan: Plan, route: Route | null): CachingContext {
    const context = new CachingContext(key, caller, plan.prefix, this.#contexts);
    context.route = route;
    return context;
  }

  /** Makes a running computation the flight of `key` (behind fail-safe when an expired value is at hand) and hands its outcome to the caller. */
  #fly(plan: Plan, key: string, context: CachingContext, token: unknown, result: unknown, stale: CacheHit | undefined, caller: CachingContext | undefined): Promise<unknown> {
    const flight = { joiners: 0, clock: plan.backend.clock } as Flight;
    if (stale === undefined) flight.outcome = flight.computation = this.#settle(plan, key, context, token, result, flight);
    else this.#failSafe(flight, plan, key, context, token, result, stale);
    this.#track(key, flight);
    return this.#handUp(flight.outcome, key, caller, () => flight.failure);
  }

  /**
   * First call of a method not declared `async` on an asynchronous backend: a method that returns a promise is
   * learned as asynchronous; a synchronous one cannot be served and fails. The method had to run before a
   * token could be taken (to keep a synchronous failure synchronous), so an invalidation between its reads and
   * the token would go unseen: this one value is returned but not stored (`skip`, reason `first-call`).
   */
  #probeOnAsyncBackend(descriptor: MethodDescriptor, plan: Plan, self: unknown, args: unknown[], key: string, caller: CachingContext | undefined, route: Route | null = null): unknown {
    if (descriptor.declaredSync) throw this.#syncOnAsync(descriptor, plan);
    const context = this.#newContext(key, caller, plan, route);
    let result: unknown;
    try {
      result = this.#run(descriptor, key, context, self, args);
    } catch (error) {
      context.closed = true;
      throw error;
    }
    if (!isThenable(result)) {
      context.closed = true;
      throw this.#syncOnAsync(descriptor, plan);
    }
    descriptor.returnsPromise = true;
    this.#counters.misses++;
    if (this.#missListeners !== undefined) this.#emit('miss', { key });
    let failure: Failure | undefined;
    const computation = (async (): Promise<Outcome> => {
      let value: unknown;
      try {
        value = await result;
      } catch (error) {
        failure = this.#failureOf(context, error);
        throw error;
      } finally {
        context.closed = true;
      }
      return this.#skipped(key, 'first-call', value, true, context, undefined, false);
    })();
    return this.#handUp(computation, key, caller, () => failure);
  }

  /** Awaits a computation's value and stores it; `NO_TOKEN` (the backend failed) returns it unstored. */
  async #settle(plan: Plan, key: string, context: CachingContext, token: unknown, promise: unknown, flight: Flight): Promise<Outcome> {
    let value: unknown;
    try {
      value = await promise;
    } catch (error) {
      if (token !== NO_TOKEN) this.#abandon(plan.backend, token);
      flight.failure = this.#failureOf(context, error);
      throw error;
    } finally {
      context.closed = true;
    }
    this.#seal(key, flight);
    // The backend could not be reached at all: nothing can be certified, and nothing invalidated elsewhere
    // can be seen either; joiners take the value (documented in the README's consistency guarantees).
    if (token === NO_TOKEN) return this.#skipped(key, 'backend-error', value, true, context, undefined, true);
    return this.#store(plan, key, context, token, value, true, flight);
  }

  /**
   * Fail-safe around a recomputation of an expired entry: if it rejects, or is still running after the soft
   * timeout, its callers get the expired value — provided the entry is still inside its window and the backend
   * confirms that nothing it depends on was invalidated since the lookup found it. The computation goes on and
   * stores its result when it succeeds. The token is released only after that check.
   */
  #failSafe(flight: Flight, plan: Plan, key: string, context: CachingContext, token: unknown, result: unknown, stale: CacheHit): void {
    const backend = plan.backend;
    let answered = false;
    let resolve!: (outcome: Outcome) => void;
    let reject!: (error: unknown) => void;
    flight.outcome = new Promise<Outcome>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    const answer = (outcome: Outcome): void => {
      if (answered) return;
      answered = true;
      flight.answered = true;
      resolve(outcome);
    };
    flight.recheck = () => (token === NO_TOKEN ? false : this.#check(backend, token, key, stale.dependencies));
    const computation = (async (): Promise<Outcome> => {
      let value: unknown;
      try {
        value = await result;
      } catch (error) {
        context.closed = true;
        flight.failure = this.#failureOf(context, error);
        if (answered) this.#reportError(error, 'background refresh', key); // its callers already have the expired value
        else {
          const fallback = await this.#fallback(plan, key, token, stale, error, context.route);
          if (fallback !== undefined) answer(fallback);
        }
        this.#seal(key, flight); // the token is released now: nobody joins what can no longer be checked
        if (token !== NO_TOKEN) this.#abandon(backend, token);
        throw error;
      }
      context.closed = true;
      this.#seal(key, flight);
      if (token === NO_TOKEN) return this.#skipped(key, 'backend-error', value, true, context, undefined, true);
      return this.#store(plan, key, context, token, value, true, flight);
    })();
    flight.computation = computation;
    computation.then(answer, error => {
      if (answered) return;
      answered = true;
      reject(error);
    });
    const softTimeout = plan.failSafe?.softTimeout;
    if (softTimeout === undefined) return;
    const timer = setTimeout(() => {
      if (answered) return;
      const error = new CachingError(errors.E_TIMEOUT, `@Cache: recomputing ${key} took longer than its soft timeout (${softTimeout} ms); the expired value was served and the computation goes on in the background.`);
      void Promise.resolve(this.#fallback(plan, key, token, stale, error, context.route)).then(fallback => {
        if (fallback !== undefined) answer(fallback);
      });
    }, softTimeout);
    const stop = (): void => clearTimeout(timer);
    computation.then(stop, stop);
  }

  /**
   * The expired value as a fail-safe answer, or undefined when it may not be served: its window has ended, or
   * the key or one of its dependencies was invalidated since the lookup that found it (asked of the backend
   * with the lookup's token, so an invalidation made by another process counts too).
   */
  #fallback(plan: Plan, key: string, token: unknown, stale: CacheHit, error: unknown, route: Route | null): MaybePromise<Outcome | undefined> {
    const servableUntil = stale.expiresAt + (plan.failSafe?.maxStaleness ?? 0);
    // The expired copy is the entry the lookup found (a variant's, on a service with contexts).
    const variant: Pick<Outcome, 'key' | 'varies' | 'suffix'> = route === null ? { varies: NO_VARIES } : this.#variantOf(route, new Map(route.keyNames.map((n, i) => [n, route.keyValues[i]!])));
    const serve = (fresh: boolean): Outcome | undefined => {
      if (!fresh || plan.backend.clock.now() >= servableUntil) return undefined;
      this.#counters.failsafes++;
      this.#emit('failsafe', { key: variant.key ?? key, error });
      return { value: stale.value, async: stale.async, dependencies: stale.dependencies, expiresAt: stale.expiresAt, shareable: true, servableUntil, ...variant };
    };
    if (plan.backend.clock.now() >= servableUntil || token === NO_TOKEN) return undefined;
    const fresh = this.#check(plan.backend, token, key, stale.dependencies);
    return typeof fresh === 'boolean' ? serve(fresh) : fresh.then(serve);
  }

  /** Asks the backend whether nothing `key` depends on was invalidated since `token`; false when it cannot say. */
  #check(backend: CachingBackend, token: unknown, key: string, dependencies: readonly string[]): MaybePromise<boolean> {
    if (backend.check === undefined) return false;
    const failed = (error: unknown): false => {
      this.#reportError(error, 'check', key);
      return false;
    };
    try {
      const fresh = backend.check(token, key, dependencies);
      return typeof fresh === 'boolean' ? fresh : fresh.then(f => f === true, failed);
    } catch (error) {
      return failed(error);
    }
  }

  /** Registers `flight` as what callers of `key` join, until its computation settles. */
  #track(key: string, flight: Flight): void {
    this.#inFlight.set(key, flight);
    const done = () => {
      if (this.#inFlight.get(key) === flight) this.#inFlight.delete(key);
    };
    flight.computation.then(done, done);
  }

  /** Gives a computation's value to a caller, and its key, dependencies and expiry to the caller's context. */
  #handUp(computation: Promise<Outcome>, key: string, caller: CachingContext | undefined, failure: () => Failure | undefined): Promise<unknown> {
    return computation.then(
      outcome => this.#receive(outcome, key, caller),
      (error: unknown) => {
        this.#failedUp(failure(), caller);
        throw error;
      },
    );
  }

  /** Stores a computed value; `flight` (null for a synchronous computation, which nobody can join) counts its joiners. */
  #store(plan: Plan, key: string, context: CachingContext, token: unknown, value: unknown, async: boolean, flight: Flight | null): Outcome | Promise<Outcome> {
    const backend = plan.backend;
    const route = context.route;
    let dependencies = context.collect();
    // Where the value goes: the variant of every context it varies by, with the values the computation saw (read
    // for its lookup key, by itself, or by its cached callees) — never read again here.
    const { varies, refusal } = this.#variesOf(context);
    if (refusal !== undefined) {
      this.#abandon(backend, token);
      this.#countSkip(key, 'context', refusal);
      if (route !== null) dependencies = withFamily(dependencies, route);
      return { value, async, dependencies, expiresAt: context.expiresAt, shareable: false, varies, refusal };
    }
    const variant: Pick<Outcome, 'key' | 'varies' | 'suffix'> = route === null ? { varies } : this.#variantOf(route, varies);
    const storeKey = variant.key ?? key;
    if (route !== null) dependencies = withFamily(dependencies, route);
    // setCacheOptions inside the computation overrides the method's ttl and sliding window for this entry.
    const requested = entryOptionsOf(context);
    const ttl = requested?.ttl ?? plan.ttl;
    const sliding = requested?.sliding ?? plan.sliding;
    let expiresAt = context.expiresAt;
    const now = ttl > 0 || sliding > 0 ? backend.clock.now() : 0;
    if (ttl > 0) {
      const own = now + ttl;
      if (own < expiresAt) expiresAt = own;
    }
    // What the caller's context receives is the expiry a hit would report right now: with sliding expiration
    // the entry lapses after the window unless it is read, so a parent must not outlive that (SPEC §4).
    const handedUp = sliding > 0 && now + sliding < expiresAt ? now + sliding : expiresAt;
    const outcome: Outcome = { value, async, dependencies, expiresAt: handedUp, shareable: true, ...variant };
    if (value === undefined && !plan.cacheUndefined) return this.#notStored(plan, storeKey, token, 'undefined', outcome, flight);
    const declined = requested?.skip === true ? 'requested' : plan.shouldCache === null ? undefined : this.#declinedByPredicate(plan, storeKey, value);
    if (declined !== undefined) return this.#notStored(plan, storeKey, token, declined, outcome, flight);
    let stored: StoreOutcome | Promise<StoreOutcome>;
    try {
      const staleFor = plan.failSafe?.maxStaleness ?? 0;
      stored = backend.set(storeKey, { value, async, dependencies, expiresAt, sliding, staleFor, refreshAt: plan.eagerRefresh === 0 ? undefined : refreshPoint(now, ttl, plan.eagerRefresh, expiresAt) }, token);
    } catch (error) {
      this.#reportError(error, 'set', storeKey);
      return this.#skipped(storeKey, 'backend-error', value, async, context, outcome, false);
    }
    const done = (result: StoreOutcome): Outcome => {
      if (route !== null && result === 'stored') this.#recordVariant(plan, route, [...outcome.varies.keys()], now, expiresAt);
      return this.#afterStore(storeKey, result, outcome);
    };
    if (typeof stored === 'string' || !('then' in stored)) return done(stored);
    return stored.then(done, error => {
      this.#reportError(error, 'set', storeKey);
      return this.#skipped(storeKey, 'backend-error', value, async, context, outcome, false);
    });
  }

  /**
   * What a computation varies by (normalized) with the values it saw: the declared contexts as read for its
   * lookup key, and those it learned (read itself, or handed up by cached callees). `refusal` says why its value
   * cannot be stored: a context seen with two values, an unkeyable value, a callee's refusal, or — on a service
   * without contexts — any context at all (a callee of another service may have handed some up).
   */
  #variesOf(context: CachingContext): { varies: ReadonlyMap<string, string>; refusal: string | undefined } {
    const route = context.route;
    const learned = context.varies;
    let refusal = context.refusal ?? undefined;
    if (route === null) {
      if (learned === null) return { varies: NO_VARIES, refusal };
      const names = normalizeNames(learned.keys());
      refusal ??= `its value varies by ${names.map(n => `'${n}'`).join(', ')} (a cached method it called does), but this CachingService has no contexts option, so it cannot be stored without mixing the values of ${names.length === 1 ? 'that context' : 'those contexts'}; give this service the same contexts`;
      return { varies: new Map(names.map(n => [n, learned.get(n)!])), refusal };
    }
    if (learned === null && route.declared.length === 0) return { varies: NO_VARIES, refusal };
    const all = new Map<string, string>();
    route.declared.forEach((name, i) => all.set(name, route.declaredValues[i]!));
    if (learned !== null) {
      for (const [name, value] of learned) {
        const seen = all.get(name);
        if (seen === undefined) all.set(name, value);
        else if (seen !== value) refusal ??= `context '${name}' had the value ${seen} when the call was looked up and ${value} while it ran`;
      }
    }
    const names = normalizeNames(all.keys());
    return { varies: new Map(names.map(n => [n, all.get(n)!])), refusal };
  }

  /** Where a value that varies by `varies` (normalized) goes: the lookup key when those are the declared contexts, else their variant key. */
  #variantOf(route: Route, varies: ReadonlyMap<string, string>): Pick<Outcome, 'key' | 'varies' | 'suffix'> {
    const names = [...varies.keys()];
    if (sameNames(names, route.declared)) return { key: route.base, varies };
    const suffix = suffixOf(names, [...varies.values()]);
    return { key: variantKeyOf(route.root, suffix), varies, suffix };
  }

  /**
   * After a variant was stored: remember which contexts its lookup key varies by, and leave the variant record
   * for other callers (and processes) when it did not say so already. The record is written in the background
   * (it only guides lookups: a lost or late record costs a miss, never a wrong value).
   */
  #recordVariant(plan: Plan, route: Route, varies: readonly string[], now: number, expiresAt: number): void {
    const variant = plan.variant!;
    if (sameNames(varies, route.declared)) {
      // Also when the record said more: a call that no longer reads a context stops varying by it.
      remember(variant, route.base, variant.declared);
      return;
    }
    remember(variant, route.base, intern(variant, varies));
    if (route.recorded && sameNames(route.names, varies)) return;
    const backend = plan.backend;
    const key = recordKey(route.base);
    const recordExpiry = plan.sliding > 0 ? Math.min(expiresAt, (now || backend.clock.now()) + plan.sliding) : expiresAt;
    const failed = (error: unknown): void => this.#reportError(error, 'set', key);
    try {
      const written = after(backend.begin(key), token =>
        backend.set(key, { value: recordValue(varies), async: false, dependencies: [familyKey(route.root)], expiresAt: recordExpiry, sliding: 0 }, token),
      );
      if (isThenable(written)) (written as Promise<unknown>).then(undefined, failed);
    } catch (error) {
      failed(error);
    }
  }

  /**
   * A value that is not stored: joiners may take it only if the backend certifies it fresh, which is asked only
   * when somebody joined (late joiners find it uncertified and compute on their own).
   */
  #notStored(plan: Plan, key: string, token: unknown, reason: SkipReason, outcome: Outcome, flight: Flight | null): Outcome | Promise<Outcome> {
    const done = (fresh: boolean): Outcome => {
      this.#abandon(plan.backend, token);
      this.#countSkip(key, reason);
      return fresh ? outcome : { ...outcome, shareable: false };
    };
    if (flight === null || flight.joiners === 0) return done(flight === null);
    const fresh = this.#check(plan.backend, token, key, outcome.dependencies);
    return typeof fresh === 'boolean' ? done(fresh) : fresh.then(done);
  }

  #afterStore(key: string, result: StoreOutcome, outcome: Outcome): Outcome {
    if (result === 'stored') {
      this.#counters.sets++;
      if (this.#listeners.has('set')) this.#emit('set', { key, dependencies: outcome.dependencies, expiresAt: outcome.expiresAt });
      return { ...outcome, stored: true };
    }
    const reason = typeof result === 'string' ? result : result.reason;
    this.#countSkip(key, reason, typeof result === 'string' ? undefined : result.detail);
    // 'too-large' and 'not-serializable' certify freshness (see StoreOutcome); 'stale' and 'backend-error' do not.
    return reason === 'stale' || reason === 'backend-error' ? { ...outcome, shareable: false } : outcome;
  }

  #skipped(key: string, reason: SkipReason, value: unknown, async: boolean, context: CachingContext, outcome: Outcome | undefined, shareable: boolean): Outcome {
    this.#countSkip(key, reason);
    if (outcome !== undefined) return outcome.shareable === shareable ? outcome : { ...outcome, shareable };
    // Not stored: the caller still learns what the value depends on and varies by. A value that varies beyond
    // its lookup key is not shared (joiners could not be told apart).
    const route = context.route;
    let dependencies = context.collect();
    const { varies, refusal } = this.#variesOf(context);
    if (route !== null) dependencies = withFamily(dependencies, route);
    const beyond = refusal !== undefined || (route === null ? varies.size > 0 : !sameNames([...varies.keys()], route.declared));
    const unstored: Outcome = { value, async, dependencies, expiresAt: context.expiresAt, shareable: shareable && !beyond, varies };
    return refusal === undefined ? unstored : { ...unstored, refusal };
  }

  #countSkip(key: string, reason: SkipReason, detail?: string): void {
    this.#counters.skips++;
    this.#emit('skip', detail === undefined ? { key, reason } : { key, reason, detail });
  }

  #abandon(backend: CachingBackend, token: unknown): void {
    try {
      backend.abandon(token);
    } catch (error) {
      this.#reportError(error, 'abandon');
    }
  }

  #planFor(descriptor: MethodDescriptor, self: unknown): Plan {
    let plan = this.#plans.get(descriptor);
    if (plan === undefined) {
      if (this.#disposed) throw new CachingError(errors.E_DISPOSED, `CachingService: ${descriptor.displayName} was called after dispose().`);
      descriptor.ensureResolved(self);
      plan = this.#resolvePlan(descriptor);
      this.#plans.set(descriptor, plan);
    }
    descriptor.planOwner = this;
    descriptor.plan = plan;
    return plan;
  }

  #resolvePlan(descriptor: MethodDescriptor): Plan {
    const method = descriptor.options;
    const where = `@Cache on ${descriptor.displayName}`;
    const profileName = method.profile ?? this.#defaults.profile ?? 'default';
    const profile = this.#profiles.get(profileName);
    if (profile === undefined && profileName !== 'default') {
      const known = [...this.#profiles.keys()];
      throw new CachingError(
        errors.E_UNKNOWN_PROFILE,
        `${where}: profile '${profileName}' is not defined by this CachingService (defined: ${known.length ? known.map(k => `'${k}'`).join(', ') : 'none'}); add it to the service's profiles option.`,
      );
    }
    const merged = { ...this.#defaults, ...profile, ...method };
    // Which level set an option, so that a conflict names the decorator, profile or defaults to change.
    const from = (name: keyof CacheOptions): string =>
      descriptor.optionSource(name) ?? (profile !== undefined && (profile as CacheOptions)[name] !== undefined ? `profile '${profileName}'` : 'the service defaults');
    if (merged.ttl !== undefined && merged.slidingExpiration !== undefined && merged.slidingExpiration >= merged.ttl) {
      throw new CachingError(
        errors.E_INVALID_OPTION,
        `${where}: slidingExpiration (${merged.slidingExpiration} ms, from ${from('slidingExpiration')}) must be shorter than ttl (${merged.ttl} ms, from ${from('ttl')}), otherwise it never applies; lower one of them.`,
      );
    }
    const backend = profile?.backend ?? this.#backend;
    const eagerRefresh = merged.eagerRefresh === undefined || merged.eagerRefresh === false ? 0 : merged.eagerRefresh;
    if (eagerRefresh !== 0 && merged.ttl === undefined) {
      throw new CachingError(
        errors.E_INVALID_OPTION,
        `${where}: eagerRefresh (${eagerRefresh}) is a fraction of the ttl, but no ttl applies once profile '${profileName}' and the defaults are applied (eagerRefresh is from ${from('eagerRefresh')}); give the method, its class or its profile a ttl.`,
      );
    }
    return {
      enabled: merged.enabled !== false,
      backend,
      ttl: merged.ttl ?? 0,
      sliding: merged.slidingExpiration ?? 0,
      cacheUndefined: merged.cacheUndefined !== false,
      ignoreThis: merged.ignoreThis === true,
      prefix: this.#prefix,
      profile: profileName,
      failSafe: merged.failSafe ? merged.failSafe : null,
      keys: method.key === undefined ? new Map() : null,
      variant: this.#variantPlan(merged.varyBy, where),
      shouldCache: merged.shouldCache ?? null,
      eagerRefresh,
    };
  }

  /** The vary-by part of a plan: null on a service without contexts (where `varyBy` is a configuration error). */
  #variantPlan(varyBy: readonly string[] | undefined, where: string): VariantPlan | null {
    const source = this.#contexts;
    if (source === null) {
      if (varyBy === undefined || varyBy.length === 0) return null;
      throw new CachingError(errors.E_CONTEXT, `${where}: varyBy names ${varyBy.map(n => `'${n}'`).join(', ')}, but this CachingService has no contexts option; register a provider for each, e.g. new CachingService({ contexts: { ${varyBy[0]!.split(':')[0]}: () => … } }).`);
    }
    for (const name of varyBy ?? NO_NAMES) source.check(name, `${where} (varyBy)`);
    const declared = new Variant(normalizeNames(varyBy ?? NO_NAMES), source, where);
    return { source, declared, memo: new Map(), variants: new Map([[declared.names.join('\u0000'), declared]]), where, learned: false };
  }

  #syncOnAsync(descriptor: MethodDescriptor, plan: Plan): CachingError {
    return new CachingError(
      errors.E_SYNC_ON_ASYNC_BACKEND,
      `@Cache on ${descriptor.displayName}: the method is synchronous but profile '${plan.profile}' uses the ${plan.backend.name} backend, which answers asynchronously; make the method async (or return a Promise), or give it a profile with a synchronous backend (MemoryBackend).`,
    );
  }

  /** Runs the method for a miss inside its caching context (and a span when telemetry is on). */
  #run(descriptor: MethodDescriptor, key: string, context: CachingContext, self: unknown, args: unknown[]): unknown {
    const run = () => runInContext(context, () => descriptor.fn.apply(self, args));
    return this.#telemetry === null ? run() : this.#telemetry.compute(key, descriptor.displayName, run);
  }

  /**
   * Whether a call of `key` comes from inside its own computation: `recursion` (joining it would deadlock), or —
   * on a service with contexts — `apart` when the computing ancestor has seen other values of its contexts
   * than this call sees now (a tenant tree rolled up by switching the tenant): a separate computation, which
   * must not join the ancestor's. Undefined when no ancestor computes `key`.
   */
  #selfCall(caller: CachingContext | undefined, key: string, plan: Plan): 'recursion' | 'apart' | undefined {
    if (caller === undefined) return undefined;
    const ancestor = caller.computing(key);
    if (ancestor === undefined) return undefined;
    const seen = ancestor.varies;
    const variant = plan.variant;
    if (variant === null || seen === null) return 'recursion';
    for (const [name, value] of seen) {
      let now: string;
      try {
        now = variant.source.encodeValue(name, variant.source.read(name, variant.where), variant.where);
      } catch {
        continue;
      }
      if (now !== value) return 'apart';
    }
    return 'recursion';
  }

  #recursion(descriptor: MethodDescriptor, key: string): CachingError {
    return new CachingError(
      errors.E_RECURSION,
      `@Cache on ${descriptor.displayName}: the call ${key} is already being computed by one of its callers (the method calls itself with the same key, directly or indirectly); waiting for it would deadlock. Vary the arguments, or call the undecorated logic for the inner call.`,
    );
  }

  // ───────────────────────────── per-call control (SPEC §14) ─────────────────────────────

  /**
   * `shouldCache` for one value: undefined when it may be stored, else the skip reason. A predicate that throws
   * or answers anything but a boolean never fails the call: the value is not stored and the error is reported.
   */
  #declinedByPredicate(plan: Plan, key: string, value: unknown): SkipReason | undefined {
    let answer: unknown;
    try {
      answer = plan.shouldCache!(value);
    } catch (error) {
      this.#reportError(error, 'shouldCache', key);
      return 'predicate';
    }
    if (answer === true) return undefined;
    if (answer !== false) {
      const got = isThenable(answer) ? 'a promise' : typeof answer;
      this.#reportError(new CachingError(errors.E_INVALID_OPTION, `shouldCache for ${key} answered ${got}, not true or false; the value was returned but not stored. The predicate must answer synchronously with a boolean.`), 'shouldCache', key);
    }
    return 'predicate';
  }

  /**
   * Eager refresh: a hit on an entry past its refresh point starts one background recomputation of the key (a
   * later hit while it runs starts none). `route` is the hit's route on a service with contexts; null there
   * means the sync hit path, which built none: it is built now from the lookup key's root (`key`).
   */
  #refreshIfDue(descriptor: MethodDescriptor, plan: Plan, self: unknown, args: unknown[], key: string, hit: CacheHit, route: Route | null): void {
    const at = hit.refreshAt;
    if (at === undefined || this.#disposed || plan.backend.clock.now() < at) return;
    if (route === null && plan.variant !== null) {
      try {
        route = this.#route(plan.variant, key);
      } catch {
        return; // a context cannot be read now: the entry expires and a later call says why
      }
    }
    const refreshKey = route?.key ?? key;
    if (this.#refreshing.has(refreshKey)) return;
    this.#refreshing.add(refreshKey);
    const done = () => this.#refreshing.delete(refreshKey);
    this.#refreshInBackground(descriptor, plan, self, args, refreshKey, route).then(done, done);
  }

  /**
   * Recomputes an entry in the background and replaces it, like `refreshCall`: the token is taken before the
   * method runs, so a concurrent invalidation refuses the store (no stale write). It runs outside the hit's
   * caller context (the caller already has the cached value; nothing is handed up). The entries computed from
   * the old value are not invalidated: each expires no later than the old value would have (a parent never
   * outlives a child), which is all a TTL promised. A failure keeps the old entry and is reported.
   */
  async #refreshInBackground(descriptor: MethodDescriptor, plan: Plan, self: unknown, args: unknown[], key: string, route: Route | null): Promise<void> {
    const backend = plan.backend;
    const failed = (error: unknown): void => {
      if (!this.#disposed) this.#reportError(error, 'eager refresh', key);
    };
    let token: unknown;
    try {
      token = await backend.begin(key);
    } catch (error) {
      return failed(error);
    }
    const context = this.#newContext(key, undefined, plan, route);
    let computed: { value: unknown; async: boolean };
    try {
      computed = await this.#recompute(descriptor, plan, context, token, self, args);
    } catch (error) {
      return failed(error);
    }
    try {
      await this.#store(plan, key, context, token, computed.value, computed.async, null);
    } catch (error) {
      failed(error);
    }
  }

  /**
   * Runs the method for `refreshCall` or an eager refresh, under a token already taken (released if the method
   * fails), and closes its context.
   */
  async #recompute(descriptor: MethodDescriptor, plan: Plan, context: CachingContext, token: unknown, self: unknown, args: unknown[]): Promise<{ value: unknown; async: boolean }> {
    try {
      const result = this.#run(descriptor, context.key!, context, self, args);
      return { value: await result, async: isThenable(result) };
    } catch (error) {
      this.#abandon(plan.backend, token);
      throw error;
    } finally {
      context.closed = true;
    }
  }

  // ───────────────────────────── dependencies ─────────────────────────────

  /**
   * Adds dependencies to the cached computation running now (of whichever service runs it). Outside a
   * cached method it does nothing. Only the dependencies' own keys are added; cascades apply on invalidation.
   */
  addDependency(...dependencies: DependencyLike[]): void {
    addDependency(...dependencies);
  }

  /**
   * The current value of a context of this service, and — inside a cached method — makes the running
   * computation vary by it (its entry is then stored per value, and so are its cached callers'). See the free
   * function {@link readContext}.
   */
  readContext(name: string): unknown {
    if (this.#contexts === null) throw new CachingError(errors.E_CONTEXT, `CachingService.readContext('${String(name)}'): this service has no contexts option; register the provider with new CachingService({ contexts: { … } }).`);
    return readContextOf(this.#contexts, name, `readContext('${String(name)}')`);
  }

  /** Runs `fn` so that nothing inside it reaches the enclosing cached computation; see the free function. */
  suspendDependencyPropagation<T>(fn: () => T): T {
    return suspendDependencyPropagation(fn);
  }

  /**
   * Invalidates dependencies and, transitively, their `cascadeDependencies`: every entry that recorded one of
   * their keys (directly or through a nested cached call) is removed from every backend of every profile, and
   * computations in flight that depend on them will not be stored.
   *
   * Resolves `{ pending: true }` when a backend could not reach its store (Redis down, say) and queued the
   * invalidation for retry: it is never dropped, this process does not serve the affected entries meanwhile,
   * but other processes may until it lands (within about a second of the store being reachable again). A
   * write endpoint that must not acknowledge before every process sees the write checks `pending`.
   *
   * @example
   * await caching.invalidate(product);            // a CacheDependency; cascades to the catalogue
   * const { pending } = await caching.invalidate('PriceList');
   * if (pending) throw new ServiceUnavailable('saved, but caches may serve the old price for a moment');
   */
  invalidate(...dependencies: DependencyLike[]): Promise<{
    /** A store could not be reached: the invalidation is queued and retried until it lands. */
    pending: boolean;
  }> {
    try {
      const keys = cascadeClosure(dependencies, 'CachingService.invalidate');
      return Promise.resolve(this.#invalidateKeys(keys.map(k => this.#prefix + k)));
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /**
   * Removes the entry of one cached call, and every entry computed from it, without running the method.
   *
   * @example
   * await caching.invalidateCall(() => catalogue.getPrice('corn'));
   */
  invalidateCall(call: () => unknown): Promise<void> {
    try {
      const calls = captureCalls(call, 'invalidateCall');
      return Promise.resolve(serviceInternals.prepareInvalidation(this, calls)());
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /**
   * Recomputes one cached call (nested cached calls use the cache), replaces its entry, and invalidates the
   * entries computed from it. If the method throws, the old entry stays and the error is rethrown.
   *
   * @example
   * const fresh = await caching.refreshCall(() => catalogue.getPrice('corn'));
   */
  async refreshCall<T>(call: () => T | Promise<T>): Promise<Awaited<T>> {
    const calls = captureCalls(call, 'refreshCall');
    if (calls.length !== 1) {
      throw new CachingError(errors.E_NO_CACHED_CALL, `refreshCall: the function must call exactly one cached method, it called ${calls.length}.`);
    }
    const { descriptor, self, args } = calls[0]!;
    return serviceOf(self, descriptor).#refresh(descriptor, self, args) as Promise<Awaited<T>>;
  }

  async #refresh(descriptor: MethodDescriptor, self: unknown, args: unknown[]): Promise<unknown> {
    const plan = this.#planFor(descriptor, self);
    if (!plan.enabled) return await descriptor.fn.apply(self, args);
    const root = plan.prefix + descriptor.keyFor(self, args, plan.ignoreThis);
    if (currentScope() !== undefined) {
      // In a transaction the new value may be uncommitted: it is returned, and the entry invalidated (and held).
      const value: unknown = await descriptor.fn.apply(self, args);
      await this.#invalidateKeys(plan.variant === null ? [root] : [root, familyKey(root)]);
      return value;
    }
    // On a service with contexts, the current contexts' variant is recomputed (the others are removed below).
    const route = plan.variant === null ? null : this.#route(plan.variant, root);
    const key = route === null ? root : route.base;
    const caller = currentContext();
    const token = await plan.backend.begin(key);
    const context = this.#newContext(key, caller, plan, route);
    const { value, async } = await this.#recompute(descriptor, plan, context, token, self, args);
    const outcome = await this.#store(plan, key, context, token, value, async, null);
    // Replace first, then drop what was computed from the old value: a reader in between sees the new entry.
    // If the new value was not stored (refused as stale: a concurrent write, say), the old entry must go too.
    // On a service with contexts the call's other entries go too (the family key reaches every variant, the
    // lookup key's entry and the records): the new value may vary by other contexts than the old one, and a
    // caller elsewhere must not find the old value where it looked before.
    const replaced = outcome.key ?? key;
    const keys = route === null ? [replaced] : [familyKey(route.root), replaced];
    await this.#invalidateKeys(keys, outcome.stored === true ? { preserveRoots: true } : undefined);
    this.#receive(outcome, key, caller);
    return value;
  }

  /**
   * Removes every entry of this service's backends — the default one and every profile's; with a layered
   * backend every process's local copies too (it publishes the clear) — and refuses the stores of computations
   * that began before it (they still answer their callers). Calls that start afterwards compute. On Redis it
   * marks every partition (one script each), then deletes the keys under the backend's prefix with an
   * incremental `SCAN … COUNT` on each master — never `KEYS`, and nothing on the hit path.
   *
   * A backend holds whatever is stored in it: a backend shared with another service (another `keyPrefix`) loses
   * that service's entries too. Rejects with a CachingError (`E_BACKEND`, the first failure as its `cause`) when
   * a backend could not be cleared; the others are cleared anyway.
   *
   * @example
   * await caching.clear(); // after a bulk import, say
   */
  async clear(): Promise<void> {
    // Computations running now may have read what is being cleared: later callers do not join them (their
    // stores are refused by the backends, whose clear refuses every token issued before it).
    this.#inFlight.clear();
    const results = await Promise.allSettled(
      this.#backends.map(backend => {
        try {
          return Promise.resolve(backend.clear());
        } catch (error) {
          return Promise.reject(error);
        }
      }),
    );
    const failures = results.flatMap((r, i) => (r.status === 'rejected' ? [{ backend: this.#backends[i]!, error: r.reason as unknown }] : []));
    if (failures.length === 0) return;
    for (const { error } of failures) this.#reportError(error, 'clear');
    throw new CachingError(
      errors.E_BACKEND,
      `CachingService.clear: ${failures.length} of ${this.#backends.length} backends could not be cleared (${failures.map(f => f.backend.name).join(', ')}); the others were. Call clear() again once the store is reachable.`,
      { cause: failures[0]!.error },
    );
  }

  #invalidateKeys(keys: readonly string[], options?: InvalidateOptions): { pending: boolean } | Promise<{ pending: boolean }> {
    if (keys.length === 0) return { pending: false };
    // Inside a transaction: the keys are also held (no store depending on them) until it ends, then invalidated again.
    const scope = currentScope();
    if (scope !== undefined && options?.release !== true) {
      scope.record(this, keys);
      options = { ...options, holdMs: scope.leaseMs };
    }
    this.#counters.invalidations++;
    // A computation already running may have read the data being invalidated (its dependencies are not all
    // known until it returns): callers arriving from now on start a new computation instead of joining it.
    // The running one still answers its own callers; the backend refuses to store its result if stale.
    this.#inFlight.clear();
    const results: InvalidationResult[] = [];
    const pending: Promise<unknown>[] = [];
    for (const backend of this.#backends) {
      const result = backend.invalidate(keys, options);
      if (isThenable(result)) pending.push((result as Promise<InvalidationResult>).then(r => results.push(r)));
      else results.push(result as InvalidationResult);
    }
    const finish = (): { pending: boolean } => {
      const entries = results.length === 1 ? results[0]!.removed : results.flatMap(r => r.removed);
      this.#counters.invalidatedEntries += entries.length;
      if (this.#listeners.has('invalidate')) this.#emit('invalidate', { keys, entries });
      return { pending: results.some(r => r.pending === true) };
    };
    if (pending.length === 0) return finish();
    return Promise.all(pending).then(finish);
  }

  /**
   * Runs `fn` — which runs your database transaction — in an invalidation scope (SPEC §13), so that no entry
   * computed from data read before the commit survives it:
   * - an invalidation inside `fn` (`invalidate`, `invalidateCall`, an `@InvalidateCache` method, of any service)
   *   removes the entries at once **and holds** the keys: every store depending on them is refused, in every
   *   process sharing the backend (on Redis the hold is a marker in Redis), until the scope ends;
   * - when `fn` resolves (committed), the keys are invalidated again and the holds released, and only then does
   *   `transaction` resolve; when `fn` rejects (rolled back), the same, and the error is rethrown;
   * - if the process dies in between, the holds end after `leaseMs` (default 30 s): keep transactions shorter;
   * - cached calls made inside `fn` may read uncommitted data: they run the method and neither read nor store;
   * - scopes nest: an inner `transaction` just runs its function, the outermost acts.
   *
   * @example
   * await caching.transaction(async () => {
   *   await db.query('BEGIN');
   *   try { await db.query('UPDATE prices …'); await catalogue.priceChanged(id); await db.query('COMMIT'); }
   *   catch (error) { await db.query('ROLLBACK'); throw error; }
   * });
   */
  async transaction<T>(fn: () => T | Promise<T>, options?: { leaseMs?: number }): Promise<Awaited<T>> {
    if (typeof fn !== 'function') throw new CachingError(errors.E_INVALID_OPTION, 'CachingService.transaction: pass a function that runs the database transaction, e.g. caching.transaction(async () => { … }).');
    if (options !== undefined) checkKnownOptions('CachingService.transaction', options, TRANSACTION_OPTION_NAMES);
    const leaseMs = options?.leaseMs ?? DEFAULT_LEASE_MS;
    if (!(typeof leaseMs === 'number' && Number.isFinite(leaseMs) && leaseMs > 0)) {
      throw new CachingError(errors.E_INVALID_OPTION, `CachingService.transaction: option leaseMs must be a positive number of milliseconds, got ${String(leaseMs)}.`);
    }
    if (currentScope() !== undefined) return await fn();
    const scope = new TransactionScope(leaseMs);
    let result: Awaited<T>;
    try {
      result = await runInScope(scope, fn);
    } catch (error) {
      await CachingService.#endScope(scope);
      throw error;
    }
    await CachingService.#endScope(scope);
    return result;
  }

  /** Invalidates a scope's keys again, releasing their holds, in every service that invalidated some. */
  static async #endScope(scope: TransactionScope): Promise<void> {
    await Promise.all([...scope.keys].map(([service, keys]) => (service as CachingService).#invalidateKeys([...keys], { release: true })));
  }

  // ───────────────────────────── events and lifecycle ─────────────────────────────

  /**
   * Subscribes to an event; returns the unsubscribe function. A listener that throws is reported to the
   * logger and never breaks a call.
   *
   * @example
   * const off = caching.on('invalidate', e => log.info('invalidated', e.entries));
   */
  on<E extends CacheEventName>(event: E, listener: (event: CacheEventMap[E]) => void): () => void {
    if (typeof listener !== 'function') throw new CachingError(errors.E_INVALID_OPTION, `CachingService.on('${event}'): the listener must be a function.`);
    let set = this.#listeners.get(event);
    if (set === undefined) this.#listeners.set(event, (set = new Set()));
    set.add(listener);
    this.#refreshShortcuts();
    return () => {
      set.delete(listener);
      if (set.size === 0) this.#listeners.delete(event);
      this.#refreshShortcuts();
    };
  }

  /** A snapshot of the counters. */
  stats(): CacheStats {
    return { ...this.#counters };
  }

  /** Disposes the service's backends and forgets listeners; the default service is recreated on next use. */
  async dispose(): Promise<void> {
    if (this.#disposed) return;
    this.#disposed = true;
    for (const unsubscribe of this.#unsubscribe) unsubscribe();
    this.#listeners.clear();
    this.#refreshShortcuts();
    this.#telemetry?.dispose();
    if (this.#byApplication) applicationServices--;
    await Promise.all(this.#backends.map(b => b.dispose()));
    if (defaultService === this) defaultService = undefined;
    if (checkedFallback === this) checkedFallback = undefined;
  }

  #refreshShortcuts(): void {
    this.#hitListeners = this.#listeners.get('hit') as Set<Listener<'hit'>> | undefined;
    this.#missListeners = this.#listeners.get('miss') as Set<Listener<'miss'>> | undefined;
  }

  #emit<E extends CacheEventName>(event: E, payload: CacheEventMap[E]): void {
    const listeners = this.#listeners.get(event);
    if (listeners === undefined) return;
    for (const listener of listeners) {
      try {
        listener(payload);
      } catch (error) {
        this.#counters.errors++;
        this.#logger.error(`aspect-cache: a '${event}' listener threw; the call was not affected.`, error);
      }
    }
  }

  #reportError(error: unknown, operation: string, key?: string): void {
    this.#counters.errors++;
    if (this.#listeners.has('error')) this.#emit('error', { error, operation, ...(key !== undefined ? { key } : {}) });
    else this.#logger.error(`aspect-cache: backend ${operation}${key !== undefined ? ` of ${key}` : ''} failed; the call went on without the cache.`, error);
  }

  static {
    serviceInternals = {
      prepareInvalidation(service, calls) {
        // Each call's entry lives in the service bound to its instance (else the given one): group by it.
        const byService = new Map<CachingService, string[]>();
        for (const { descriptor, self, args } of calls) {
          const bound = self !== null && self !== undefined ? (self as Record<symbol, unknown>)[BOUND_SERVICE] : undefined;
          const owner = bound instanceof CachingService ? bound : service;
          const plan = owner.#planFor(descriptor, self);
          const keys = byService.get(owner) ?? [];
          const key = plan.prefix + descriptor.keyFor(self, args, plan.ignoreThis);
          keys.push(key);
          // On a service with contexts, every variant of the call (and its record) depends on its family key.
          if (plan.variant !== null) keys.push(familyKey(key));
          byService.set(owner, keys);
        }
        return () => {
          const pending: Promise<unknown>[] = [];
          for (const [owner, keys] of byService) {
            const result = owner.#invalidateKeys(keys);
            if (isThenable(result)) pending.push(result as Promise<unknown>);
          }
          return pending.length > 0 ? Promise.all(pending).then(() => undefined) : undefined;
        };
      },
      reportError(service, error, operation) {
        service.#reportError(error, operation);
      },
      contextsOf(service) {
        return service.#contexts;
      },
      isDisposed(service) {
        return service.#disposed;
      },
    };
  }
}

/** The service a decorated method called on `self` uses; `method` (its descriptor or name) is for the fallback warning. */
export function serviceOf(self: unknown, method?: MethodDescriptor | string): CachingService {
  if (self !== null && self !== undefined) {
    const bound = (self as Record<symbol, unknown>)[BOUND_SERVICE];
    if (bound !== undefined) return bound as CachingService;
  }
  return checkedFallback ?? checkFallback(self, method);
}

/** The slow path of an unbound call: the default, after warning (once) if it is a private cache nobody chose. */
function checkFallback(self: unknown, method: MethodDescriptor | string | undefined): CachingService {
  const service = CachingService.default;
  if (defaultIsLazy && applicationServices > 0 && !fallbackWarned) {
    fallbackWarned = true;
    const methodName = typeof method === 'string' ? method : method?.methodName;
    const isClass = typeof self === 'function';
    const className = (isClass ? (self as Function).name : (self as { constructor?: Function } | null | undefined)?.constructor?.name) || '(anonymous class)';
    const target = isClass ? className : 'instance';
    process.emitWarning(
      `aspect-cache: ${className}.${methodName ?? '(method)'} was called on ${isClass ? 'a class' : `an instance of ${className}`} with no CachingService bound, ` +
        `so it uses CachingService.default — a private memory cache created on first use — although this process constructed another CachingService. ` +
        `That service does not see these entries, and its invalidations do not reach them. ` +
        `Bind the service: bindCachingService(${target}, service); or make it the default: CachingService.default = service; ` +
        `or let the container bind it: @CachingInjectable() from aspect-cache/tsyringe, CachingModule from aspect-cache/nestjs. ` +
        `(Warned once per process.)`,
      { code: 'ASPECT_CACHE_DEFAULT_FALLBACK' },
    );
  }
  checkedFallback = service;
  return service;
}

/**
 * Binds a service to an instance (or, for static methods, a class): its cached methods use that service
 * instead of {@link CachingService.default}. The DI integration does this for the instances it creates.
 *
 * @example
 * const catalogue = bindCachingService(new ProductCatalogue(db), caching);
 */
export function bindCachingService<T extends object>(target: T, service: CachingService): T {
  if (!(service instanceof CachingService)) throw new CachingError(errors.E_INVALID_OPTION, 'bindCachingService: the second argument must be a CachingService.');
  Object.defineProperty(target, BOUND_SERVICE, { value: service, configurable: true, writable: true, enumerable: false });
  return target;
}

/**
 * Adds dependencies to the cached computation running now, whichever service runs it. Outside a cached
 * method (or inside `suspendDependencyPropagation`) it does nothing.
 *
 * @example
 * @Cache() async getPrice(id: string) { addDependency(`ProductPrice:${id}`); return db.price(id); }
 */
export function addDependency(...dependencies: DependencyLike[]): void {
  const keys = dependencies.map(d => dependencyKey(d, 'addDependency'));
  addDependencyKeys(keys);
}

/**
 * Reads a vary-by context inside a cached method: returns the provider's value (the provider registered on the
 * service computing the method, under `contexts`) and makes the running computation vary by it, exactly as
 * `addDependency` makes it depend on a key — its entry, and those of its cached callers, are then stored per
 * value of the context. A provider that throws, or a value that cannot be keyed, fails with a `CachingError`
 * (`E_CONTEXT`) naming the context. Outside a cached method it reads the provider and records nothing.
 * `name:param` passes `param` to the provider (`readContext('query:page')`).
 *
 * @example
 * @Cache() async getPrices() { const tenant = readContext('tenant') as string; return db.prices(tenant); }
 */
export function readContext(name: string): unknown {
  const source = currentSource() ?? serviceInternals.contextsOf(CachingService.default);
  const where = `readContext('${String(name)}')`;
  if (source === null) throw new CachingError(errors.E_CONTEXT, `${where}: the service running this method has no contexts option; register a provider with new CachingService({ contexts: { … } }).`);
  return readContextOf(source, name, where);
}

function readContextOf(source: ContextSource, name: string, where: string): unknown {
  const value = source.read(name, where);
  const context = currentContext();
  if (context !== undefined) {
    // The value as read here is what the computation is keyed by (never read again at the store).
    let encoded: string;
    try {
      encoded = source.encodeValue(name, value, where);
    } catch (error) {
      // SPEC §11: an unkeyable context value fails the call (a caller that catches it cannot be stored either).
      context.refuse(error instanceof Error ? error.message : String(error));
      throw error;
    }
    context.vary(name, encoded);
  }
  return value;
}

/** An entry's dependencies plus its call's family key (see {@link familyKey}), once. */
function withFamily(dependencies: readonly string[], route: Route): readonly string[] {
  const family = familyKey(route.root);
  return dependencies.includes(family) ? dependencies : [...dependencies, family];
}

/** The key of a remembered variant for the current values, or undefined when one cannot be read (then the lookup key is used). */
function knownKey(known: Variant, root: string, values?: string[]): string | undefined {
  try {
    return known.keyOf(root, values);
  } catch {
    return undefined;
  }
}

/**
 * When an entry stored at `now` with its own `ttl` should be refreshed eagerly: `fraction × ttl` into its life,
 * or undefined when that is not before its expiry (a cached child capped it sooner: it expires with the child).
 */
function refreshPoint(now: number, ttl: number, fraction: number, expiresAt: number): number | undefined {
  if (ttl <= 0) return undefined;
  const at = now + ttl * fraction;
  return at < expiresAt ? at : undefined;
}

/** Runs `next` on a value or on what a promise of it resolves to (synchronous backends stay synchronous). */
function after<T, R>(value: MaybePromise<T>, next: (value: T) => MaybePromise<R>): MaybePromise<R> {
  return isThenable(value) ? (value as Promise<T>).then(next) : next(value as T);
}

/** Runs a lookup and passes its failure (thrown or rejected) to `onError`. */
function guarded<T>(lookup: () => MaybePromise<T>, onError: (error: unknown) => never): MaybePromise<T> {
  let answer: MaybePromise<T>;
  try {
    answer = lookup();
  } catch (error) {
    return onError(error);
  }
  return isThenable(answer) ? (answer as Promise<T>).then(undefined, onError) : answer;
}

/** How many lookup keys a method's memo of variant records holds before it starts over. */
const VARIANT_MEMO_LIMIT = 4096;

function remember(variant: VariantPlan, base: string, known: Variant): void {
  if (variant.memo.size >= VARIANT_MEMO_LIMIT && !variant.memo.has(base)) variant.memo.clear();
  variant.memo.set(base, known);
  if (known !== variant.declared) variant.learned = true;
}

/** The plan's {@link Variant} of a set of normalized names (one per set: their key caches are shared). */
function intern(variant: VariantPlan, names: readonly string[]): Variant {
  const id = names.join('\u0000');
  let found = variant.variants.get(id);
  if (found === undefined) variant.variants.set(id, (found = new Variant(names, variant.source, variant.where)));
  return found;
}

function captureCalls(call: () => unknown, where: string): CapturedCall[] {
  if (typeof call !== 'function') throw new CachingError(errors.E_NO_CACHED_CALL, `${where}: pass a function that calls the cached method, e.g. ${where}(() => catalogue.getPrice('corn')).`);
  if (capture.active) throw new CachingError(errors.E_NO_CACHED_CALL, `${where}: cannot be nested inside another invalidateCall/refreshCall lambda.`);
  capture.active = true;
  capture.calls = [];
  let calls: CapturedCall[];
  try {
    const result = call();
    if (isThenable(result)) (result as Promise<unknown>).then(undefined, () => undefined);
  } finally {
    capture.active = false;
    calls = capture.calls;
    capture.calls = [];
  }
  if (calls.length === 0) {
    throw new CachingError(errors.E_NO_CACHED_CALL, `${where}: the function did not call any @Cache method; write it as ${where}(() => service.cachedMethod(args)).`);
  }
  return calls;
}

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return value !== null && (typeof value === 'object' || typeof value === 'function') && typeof (value as { then?: unknown }).then === 'function';
}
