import { CachingError, errors } from '../errors.js';
import type { CachingBackend } from '../backends/backend.js';
import { checkKnownOptions, optionNames } from '../options-check.js';

/**
 * Options of `@Cache`, of a class (`@CacheConfiguration`), of a profile and of a service (`defaults`).
 * The most specific wins: method, then class, then profile, then service defaults.
 */
export interface CacheOptions {
  /** Absolute time to live in ms; a parent's expiry is also capped by its children's. @default no expiry */
  ttl?: number;
  /** Sliding expiration in ms: each hit extends the entry to `now + slidingExpiration` (capped by `ttl`). @default none */
  slidingExpiration?: number;
  /** Name of the profile (an option set with its own backend) this method uses. @default 'default' */
  profile?: string;
  /** Leave `this` out of the key even when it has `@CacheKey` properties or `getCacheKey()`. @default false */
  ignoreThis?: boolean;
  /** Argument positions (0-based) left out of the key; they keep a `_` placeholder. */
  ignoreArgs?: readonly number[];
  /** Replaces argument encoding: return a string, or an array encoded like an argument list. */
  key?: (...args: any[]) => string | readonly unknown[];
  /** When false, the method runs directly, with no caching (nested cached calls still propagate to callers). @default true */
  enabled?: boolean;
  /** Cache `undefined` results (`null` is always cached). @default true */
  cacheUndefined?: boolean;
  /**
   * Fail-safe: keep entries `maxStaleness` ms past their expiry, and when recomputing an expired entry throws
   * (or takes longer than `softTimeout` ms), return the expired value instead, while the computation goes on
   * in the background and replaces the entry when it succeeds. Invalidated entries are never served.
   * `false` turns a profile's or the defaults' fail-safe off for one method. @default off
   */
  failSafe?: FailSafeOptions | false;
  /**
   * Replaces the class name in keys. Use it when two classes share a name (two modules exporting
   * `UserService`) or when a minifier renames classes. @default the class name
   */
  scope?: string;
  /**
   * Contexts (registered on the service's `contexts` option) whose current values become part of the key:
   * `['tenant']`, `['user.roles', 'query:page']`. `user` is more specific than `user.roles`: when both apply,
   * only `user` is used; `query:page` passes `page` to the provider `query`. A method also varies by whatever
   * the cached methods it calls vary by, and by what it reads with `readContext`, without declaring it here.
   * The most specific options object that sets it wins (it is not merged with a profile's). @default none
   */
  varyBy?: readonly string[];
  /**
   * Decides whether a computed value is stored (EF Core's `SkipCachingResults`, inverted): called with the
   * value (resolved, for async methods) after each computation; `false` returns the value to its caller without
   * storing it (`skip` event, reason `predicate`). The caller's cached parents still learn its dependencies, as
   * for any value that is not stored. It must answer synchronously with a boolean: a predicate that throws or
   * answers anything else does not fail the call — the value is returned, not stored, and reported as an
   * `error` event (operation `shouldCache`) plus a `skip` event (reason `predicate`).
   *
   * @example
   * @Cache({ shouldCache: (product: Product | null) => product !== null }) // do not cache "not found"
   */
  shouldCache?: (value: any) => boolean;
  /**
   * Eager refresh, a fraction of the TTL strictly between 0 and 1: a hit on an entry older than
   * `eagerRefresh × ttl` returns the cached value and recomputes the entry in the background — once per key at
   * a time, in this service — replacing it when the recomputation succeeds (a failure keeps the old entry and
   * is reported as an `error` event, operation `eager refresh`). Needs a `ttl` (from the method, class, profile
   * or defaults: a CachingError on first call otherwise). The refresh point is stored with the entry; an entry
   * whose expiry a cached child capped before that point is not refreshed eagerly (it expires with the child).
   * `false` turns a profile's or the defaults' eager refresh off for one method. @default off
   */
  eagerRefresh?: number | false;
}

/** Options of {@link CacheOptions.failSafe}. */
export interface FailSafeOptions {
  /** How long after expiry (ms) an entry may still be served when recomputing it fails. */
  maxStaleness: number;
  /** If recomputing an expired entry takes longer than this (ms), serve the expired value meanwhile. @default none */
  softTimeout?: number;
}

/** A named option set, optionally with a backend of its own. */
export interface ProfileOptions extends Omit<CacheOptions, 'profile' | 'key' | 'ignoreArgs' | 'scope'> {
  /** The backend of methods using this profile. @default the service's backend */
  backend?: CachingBackend;
}

// Each list must name every field of its interface (`satisfies` fails the type check when one is added).
const CACHE_OPTION_NAMES = optionNames({
  ttl: 0, slidingExpiration: 0, profile: 0, ignoreThis: 0, ignoreArgs: 0, key: 0, enabled: 0, cacheUndefined: 0, scope: 0, failSafe: 0, varyBy: 0, shouldCache: 0, eagerRefresh: 0,
} satisfies Record<keyof CacheOptions, 0>);
const PROFILE_OPTION_NAMES = optionNames({
  ttl: 0, slidingExpiration: 0, ignoreThis: 0, enabled: 0, cacheUndefined: 0, backend: 0, failSafe: 0, varyBy: 0, shouldCache: 0, eagerRefresh: 0,
} satisfies Record<keyof ProfileOptions, 0>);
const FAIL_SAFE_OPTION_NAMES = optionNames({ maxStaleness: 0, softTimeout: 0 } satisfies Record<keyof FailSafeOptions, 0>);

/**
 * Checks an options object eagerly and returns a frozen copy. `where` names the place for messages
 * ("@Cache on ProductCatalogue.getPrice", "CachingService profile 'hot'").
 */
export function validateCacheOptions(options: unknown, where: string, kind: 'method' | 'class' | 'profile' | 'defaults'): Readonly<CacheOptions & ProfileOptions> {
  if (options === undefined) return EMPTY_OPTIONS;
  if (options === null || typeof options !== 'object' || Array.isArray(options)) {
    throw invalid(where, `options must be an object, got ${describe(options)}`);
  }
  checkKnownOptions(where, options, kind === 'profile' ? PROFILE_OPTION_NAMES : CACHE_OPTION_NAMES);
  const o = options as CacheOptions & ProfileOptions;
  checkDuration(where, 'ttl', o.ttl);
  checkDuration(where, 'slidingExpiration', o.slidingExpiration);
  if (o.ttl !== undefined && o.slidingExpiration !== undefined && o.slidingExpiration >= o.ttl) {
    throw invalid(where, `slidingExpiration (${o.slidingExpiration} ms) must be shorter than ttl (${o.ttl} ms), otherwise it never applies; drop one of them`);
  }
  checkBoolean(where, 'ignoreThis', o.ignoreThis);
  checkBoolean(where, 'enabled', o.enabled);
  checkBoolean(where, 'cacheUndefined', o.cacheUndefined);
  if (o.profile !== undefined && (typeof o.profile !== 'string' || o.profile === '')) throw invalid(where, `option profile must be a non-empty string, got ${describe(o.profile)}`);
  if (o.scope !== undefined && (typeof o.scope !== 'string' || o.scope === '')) throw invalid(where, `option scope must be a non-empty string, got ${describe(o.scope)}`);
  if (o.key !== undefined && typeof o.key !== 'function') throw invalid(where, `option key must be a function (...args) => string | unknown[], got ${describe(o.key)}`);
  if (o.ignoreArgs !== undefined) {
    if (!Array.isArray(o.ignoreArgs) || !o.ignoreArgs.every(i => Number.isSafeInteger(i) && i >= 0)) {
      throw invalid(where, `option ignoreArgs must be an array of 0-based argument positions, got ${describe(o.ignoreArgs)}`);
    }
    if (o.key !== undefined) throw invalid(where, `options key and ignoreArgs cannot be combined: a custom key replaces argument encoding, so leave the arguments out in the key function instead`);
  }
  if (o.failSafe !== undefined && o.failSafe !== false) {
    const f = o.failSafe as unknown;
    if (f === null || typeof f !== 'object' || Array.isArray(f)) throw invalid(where, `option failSafe must be false or { maxStaleness, softTimeout? }, got ${describe(f)}`);
    checkKnownOptions(where, f, FAIL_SAFE_OPTION_NAMES, 'failSafe.');
    checkDuration(where, 'failSafe.maxStaleness', (f as FailSafeOptions).maxStaleness);
    if ((f as FailSafeOptions).maxStaleness === undefined) throw invalid(where, 'option failSafe needs maxStaleness: how long (ms) past expiry a value may still be served');
    checkDuration(where, 'failSafe.softTimeout', (f as FailSafeOptions).softTimeout);
  }
  if (o.varyBy !== undefined && !(Array.isArray(o.varyBy) && o.varyBy.every(n => typeof n === 'string' && n !== '' && !n.startsWith(':')))) {
    throw invalid(where, `option varyBy must be an array of context names registered on the service ('tenant', 'user.roles', 'query:page'), got ${describe(o.varyBy)}`);
  }
  if (o.shouldCache !== undefined && typeof o.shouldCache !== 'function') throw invalid(where, `option shouldCache must be a function (value) => boolean, got ${describe(o.shouldCache)}`);
  if (o.eagerRefresh !== undefined && o.eagerRefresh !== false && !(typeof o.eagerRefresh === 'number' && o.eagerRefresh > 0 && o.eagerRefresh < 1)) {
    throw invalid(where, `option eagerRefresh must be a fraction of the ttl between 0 and 1 (exclusive), e.g. 0.8, or false, got ${describe(o.eagerRefresh)}`);
  }
  if (o.backend !== undefined && !isBackend(o.backend)) {
    throw invalid(where, `option backend must be a CachingBackend (with get, set, invalidate…), got ${describe(o.backend)}`);
  }
  return Object.freeze({ ...o, ...(o.ignoreArgs ? { ignoreArgs: Object.freeze([...o.ignoreArgs]) } : {}), ...(o.varyBy ? { varyBy: Object.freeze([...o.varyBy]) } : {}) });
}

/** True if `value` looks like a {@link CachingBackend}. */
export function isBackend(value: unknown): value is CachingBackend {
  const b = value as Partial<CachingBackend> | null;
  return (
    b !== null &&
    typeof b === 'object' &&
    typeof b.get === 'function' &&
    typeof b.set === 'function' &&
    typeof b.begin === 'function' &&
    typeof b.invalidate === 'function' &&
    typeof b.abandon === 'function'
  );
}

const EMPTY_OPTIONS: Readonly<CacheOptions & ProfileOptions> = Object.freeze({});

function checkDuration(where: string, name: string, value: unknown): void {
  if (value !== undefined && !(typeof value === 'number' && Number.isFinite(value) && value > 0)) {
    throw invalid(where, `option ${name} must be a positive number of milliseconds, got ${describe(value)}`);
  }
}

function checkBoolean(where: string, name: string, value: unknown): void {
  if (value !== undefined && typeof value !== 'boolean') throw invalid(where, `option ${name} must be true or false, got ${describe(value)}`);
}

function invalid(where: string, detail: string): CachingError {
  return new CachingError(errors.E_INVALID_OPTION, `${where}: ${detail}.`);
}

function describe(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'function') return 'a function';
  if (Array.isArray(value)) return JSON.stringify(value);
  if (value !== null && typeof value === 'object') return `a ${value.constructor?.name ?? 'null-prototype'} object`;
  return String(value);
}
