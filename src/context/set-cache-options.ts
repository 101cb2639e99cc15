import { CachingError, errors } from '../errors.js';
import { checkKnownOptions, optionNames } from '../options-check.js';
import { currentContext, type CachingContext } from './caching-context.js';

/** What {@link setCacheOptions} changes for the entry of the computation running now. */
export interface CacheEntryOptions {
  /**
   * Absolute time to live of this entry, in ms, instead of the method's `ttl` (or in addition to none). A cached
   * caller's entry is capped by it, as by any child's expiry: a parent never outlives a child.
   */
  ttl?: number;
  /** Sliding window of this entry, in ms, instead of the method's `slidingExpiration` (still capped by the ttl). */
  sliding?: number;
  /**
   * `true`: the value is returned but not stored (`skip` event, reason `requested`); its cached callers still
   * learn its dependencies and store their own values. `false` undoes an earlier `skip: true`.
   */
  skip?: boolean;
}

const ENTRY_OPTION_NAMES = optionNames({ ttl: 0, sliding: 0, skip: 0 } satisfies Record<keyof CacheEntryOptions, 0>);

/** What each computation asked for, beside its context (kept off CachingContext: only computations that ask pay). */
const requested = new WeakMap<CachingContext, Readonly<CacheEntryOptions>>();

/**
 * Adjusts the entry of the cached computation running now, whichever service runs it: adaptive caching, a TTL
 * chosen from the data (FusionCache's adaptive caching). Options given override the method's for this entry
 * only; calling it again merges (the last value of each option wins). Outside a cached method, inside
 * `suspendDependencyPropagation`, or after the method returned (fire-and-forget work), it does nothing. The
 * argument is checked everywhere: an unknown option or a bad value is a CachingError naming it.
 *
 * Expiry propagates as usual: a cached caller's entry expires no later than this one, on the miss and on later
 * hits. With `eagerRefresh`, the refresh point is the given fraction of this entry's own ttl.
 *
 * @example
 * @Cache({ ttl: 60_000 })
 * async getOrder(id: string): Promise<Order> {
 *   const order = await db.order(id);
 *   if (order.status === 'delivered') setCacheOptions({ ttl: 24 * 3_600_000 }); // it will not change any more
 *   if (order.status === 'draft') setCacheOptions({ skip: true });              // changes all the time
 *   return order;
 * }
 */
export function setCacheOptions(options: CacheEntryOptions): void {
  const where = 'setCacheOptions';
  if (options === null || typeof options !== 'object' || Array.isArray(options)) {
    throw new CachingError(errors.E_INVALID_OPTION, `${where}: pass an object { ttl?, sliding?, skip? }, got ${options === null ? 'null' : Array.isArray(options) ? 'an array' : typeof options}.`);
  }
  checkKnownOptions(where, options, ENTRY_OPTION_NAMES);
  const { ttl, sliding, skip } = options;
  checkDuration(where, 'ttl', ttl);
  checkDuration(where, 'sliding', sliding);
  if (skip !== undefined && typeof skip !== 'boolean') throw new CachingError(errors.E_INVALID_OPTION, `${where}: option skip must be true or false, got ${describe(skip)}.`);
  if (ttl !== undefined && sliding !== undefined && sliding >= ttl) {
    throw new CachingError(errors.E_INVALID_OPTION, `${where}: option sliding (${sliding} ms) must be shorter than ttl (${ttl} ms), otherwise it never applies; drop one of them.`);
  }
  const context = currentContext();
  if (context === undefined || !context.accepting) return;
  const previous = requested.get(context);
  const merged: CacheEntryOptions = { ...previous };
  if (ttl !== undefined) merged.ttl = ttl;
  if (sliding !== undefined) merged.sliding = sliding;
  if (skip !== undefined) merged.skip = skip;
  requested.set(context, Object.freeze(merged));
}

/** What the computation of `context` asked for with {@link setCacheOptions}; undefined when nothing. */
export function entryOptionsOf(context: CachingContext): Readonly<CacheEntryOptions> | undefined {
  return requested.get(context);
}

function checkDuration(where: string, name: string, value: unknown): void {
  if (value !== undefined && !(typeof value === 'number' && Number.isFinite(value) && value > 0)) {
    throw new CachingError(errors.E_INVALID_OPTION, `${where}: option ${name} must be a positive number of milliseconds, got ${describe(value)}.`);
  }
}

function describe(value: unknown): string {
  return typeof value === 'string' ? JSON.stringify(value) : typeof value === 'object' && value !== null ? 'an object' : String(value);
}
