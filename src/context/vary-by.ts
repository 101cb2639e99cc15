import { createHash } from 'node:crypto';
import { CachingError, errors } from '../errors.js';
import { encodeValue, UnkeyableValueError } from '../keys/key-builder.js';

/**
 * Vary-by contexts (SPEC §11): the application's ambient request state (tenant, user, roles, query values)
 * made part of cache keys, so that one tenant's data is never served to another.
 *
 * Key layout. A cached call has a *root* key `K` (prefix, scope, method, arguments: what `invalidateCall`
 * names). A call that varies by contexts `F` (a sorted set of names) is stored under the *variant key*
 * `K␟<S>`, where `␟` is U+001F and `S` encodes each name in `F` with the value its provider gave
 * (`"tenant"="acme","user"=42`, hashed to `~<sha256>` when long). The names are part of the key, so an
 * entry is found only by a caller whose values agree on every context it was computed under: a wrong guess
 * of which contexts apply costs a miss, never a leak.
 *
 * The contexts a call varies by are its declared `varyBy` (known before it runs: their values are part of
 * the *lookup key* `B = K␟<S_declared>`, or `B = K` when none) and those it learns while it runs (its
 * children's, and `readContext`). A call that learned more than it declared leaves a *variant record* under
 * `B␟` (the names, as a small entry) so that the next caller, in any process, knows which variant key to
 * read; each service also remembers the names per lookup key, so a hit on a known variant is one lookup.
 *
 * Every variant and record depends on the call's family key `K␟␟`, which `invalidateCall` invalidates with `K`. U+001F never appears
 * in an encoded argument or value (JSON escapes control characters), and Redis partitions keys by the text
 * before their first U+001F, so a call's variants and record share one partition with its root.
 */

/** Separates a root key from its variant suffix. */
export const VARIANT_SEPARATOR = '\u001f';

/** A context provider: reads the application's own request state; `param` is the part after `:` in `query:page`. */
export type ContextProvider = (param?: string) => unknown;

/** The providers of a service, by name (`tenant`, `user`, `user.roles`, `query`). */
export type ContextProviders = Readonly<Record<string, ContextProvider>>;

/** A suffix longer than this is replaced by its hash, keeping keys short. */
const MAX_SUFFIX_LENGTH = 160;

/** The property of a variant record's value: a control character no application field uses. */
const RECORD_FIELD = '\u001faspect-cache:varies';

const NO_NAMES: readonly string[] = Object.freeze([]);

/** A service's context providers, validated once, with what the call path needs from them. */
export class ContextSource {
  readonly #providers = new Map<string, ContextProvider>();

  constructor(providers: unknown, where: string) {
    if (providers === null || typeof providers !== 'object' || Array.isArray(providers)) {
      throw new CachingError(errors.E_INVALID_OPTION, `${where}: option contexts must be an object of provider functions, e.g. { tenant: () => requestStore.getStore()?.tenant }.`);
    }
    for (const [name, provider] of Object.entries(providers)) {
      if (name === '' || name.includes(':') || name.startsWith('.') || name.endsWith('.') || name.includes('..')) {
        throw new CachingError(errors.E_INVALID_OPTION, `${where}: context name ${JSON.stringify(name)} is invalid; use dotted names without ':' ('tenant', 'user.roles'); a parameter is passed at use ('query:page' calls the provider 'query' with 'page').`);
      }
      if (typeof provider !== 'function') throw new CachingError(errors.E_INVALID_OPTION, `${where}: context '${name}' must be a function returning the current value, got ${typeof provider}.`);
      this.#providers.set(name, provider as ContextProvider);
    }
  }

  /** True when no provider is registered (the service then takes none of the vary-by paths). */
  get empty(): boolean {
    return this.#providers.size === 0;
  }

  /** Throws unless `name` (`tenant`, `query:page`) has a provider; `where` names the place that uses it. */
  check(name: unknown, where: string): void {
    if (typeof name !== 'string' || name === '') throw new CachingError(errors.E_CONTEXT, `${where}: a context name must be a non-empty string, got ${typeof name === 'string' ? '""' : typeof name}.`);
    const provider = providerName(name);
    if (this.#providers.has(provider)) return;
    const known = [...this.#providers.keys()];
    throw new CachingError(
      errors.E_CONTEXT,
      `${where}: context '${name}' has no provider (registered: ${known.length > 0 ? known.map(k => `'${k}'`).join(', ') : 'none'}); add '${provider}' to the CachingService's contexts option.`,
    );
  }

  /** The provider of a checked name and its parameter (the part after `:`). */
  providerOf(name: string): { readonly provider: ContextProvider; readonly param: string | undefined } {
    const colon = name.indexOf(':');
    return { provider: this.#providers.get(colon < 0 ? name : name.slice(0, colon))!, param: colon < 0 ? undefined : name.slice(colon + 1) };
  }

  /** The provider's value for `name` now; a provider that throws fails with a CachingError naming it. */
  read(name: string, where: string): unknown {
    this.check(name, where);
    const colon = name.indexOf(':');
    const provider = this.#providers.get(colon < 0 ? name : name.slice(0, colon))!;
    try {
      return colon < 0 ? provider() : provider(name.slice(colon + 1));
    } catch (error) {
      throw new CachingError(errors.E_CONTEXT, `${where}: the provider of context '${name}' threw (${error instanceof Error ? error.message : String(error)}); a provider must return the current value (null when there is none), never throw.`, { cause: error });
    }
  }

  /**
   * A context value as it goes into keys (canonical, injective: see key-builder.ts). Throws a CachingError naming
   * the context when the value is unkeyable.
   */
  encodeValue(name: string, value: unknown, where: string): string {
    try {
      return encodeValue(value);
    } catch (error) {
      const what = error instanceof UnkeyableValueError ? error.message : String(error);
      throw new CachingError(errors.E_CONTEXT, `${where}: the value of context '${name}' is unkeyable (${what}); return a string, number, array or plain object from its provider.`, { cause: error });
    }
  }

  /**
   * The variant suffix of `names` (normalized) with their current values, read once each; the encoded values
   * are pushed to `values` when given (the caller hands them to its computation's context). Throws a
   * CachingError naming the context whose provider throws or returns an unkeyable value.
   */
  encode(names: readonly string[], where: string, values?: string[]): string {
    const encoded = names.map(name => this.encodeValue(name, this.read(name, where), where));
    if (values !== undefined) values.push(...encoded);
    return suffixOf(names, encoded);
  }
}

/**
 * The suffix of names (normalized) with their encoded values: `"tenant"="acme","user"=42`, injective (names
 * and values are self-delimiting), replaced by `~<sha256>` when long. The hierarchy applies here, to values: a
 * name covered by another (`user.roles` by `user`) is left out — unless the covering value is null (an
 * anonymous caller's roles still tell callers apart).
 */
export function suffixOf(names: readonly string[], encoded: readonly string[]): string {
  let suffix = '';
  for (let i = 0; i < names.length; i++) {
    const name = names[i]!;
    if (names.some((m, j) => j !== i && encoded[j] !== NULL && covers(m, name))) continue;
    suffix += (suffix === '' ? '' : ',') + JSON.stringify(name) + '=' + encoded[i]!;
  }
  return suffix.length > MAX_SUFFIX_LENGTH ? `~${createHash('sha256').update(suffix).digest('base64url')}` : suffix;
}

/** How many keys a {@link Variant} remembers before it starts over. */
const VARIANT_KEY_CACHE_LIMIT = 8192;

/**
 * A set of context names (normalized) and the keys it gives. For one name whose value is a primitive (a
 * tenant id, a user id), the key of each (root, value) is remembered, so a hit builds no string and the
 * backend's map finds a key whose hash is already computed; other values are encoded on every call. Each
 * provider is read once per key: the key and the values handed on are those of that one read.
 */
export class Variant {
  readonly #source: ContextSource;
  readonly #where: string;
  readonly #single: { readonly name: string; readonly provider: ContextProvider; readonly param: string | undefined } | null;
  #keys = new Map<string, Map<unknown, string>>();
  #encoded = new Map<unknown, string>();
  #size = 0;

  constructor(
    readonly names: readonly string[],
    source: ContextSource,
    where: string,
  ) {
    this.#source = source;
    this.#where = where;
    this.#single = names.length === 1 ? { name: names[0]!, ...source.providerOf(names[0]!) } : null;
  }

  /**
   * The key of the call `root` for the current values of these contexts (the root itself when there are none);
   * their encoded values are pushed to `values` when given.
   */
  keyOf(root: string, values?: string[]): string {
    if (this.names.length === 0) return root;
    const single = this.#single;
    if (single === null) return variantKey(root, this.#source.encode(this.names, this.#where, values));
    let value: unknown;
    try {
      value = single.param === undefined ? single.provider() : single.provider(single.param);
    } catch {
      return variantKey(root, this.#source.encode(this.names, this.#where, values)); // reads it again and reports it
    }
    const type = typeof value;
    if (!(type === 'string' || (type === 'number' && !Object.is(value, -0)) || type === 'boolean' || value === null)) {
      const encoded = this.#source.encodeValue(single.name, value, this.#where);
      values?.push(encoded);
      return variantKey(root, suffixOf(this.names, [encoded]));
    }
    let byValue = this.#keys.get(root);
    let key = byValue?.get(value);
    // A hit with no caller to hand the value to needs nothing more.
    if (key !== undefined && values === undefined) return key;
    let encoded = this.#encoded.get(value);
    if (encoded === undefined) {
      encoded = this.#source.encodeValue(single.name, value, this.#where);
      this.#encoded.set(value, encoded);
    }
    values?.push(encoded);
    if (key !== undefined) return key;
    key = variantKey(root, suffixOf(this.names, [encoded]));
    if (this.#size >= VARIANT_KEY_CACHE_LIMIT) {
      this.#keys = new Map();
      this.#encoded = new Map();
      this.#size = 0;
      byValue = undefined;
    }
    if (byValue === undefined) this.#keys.set(root, (byValue = new Map()));
    byValue.set(value, key);
    this.#size++;
    return key;
  }
}

/** The provider a context name uses: `query` for `query:page`. */
function providerName(name: string): string {
  const colon = name.indexOf(':');
  return colon < 0 ? name : name.slice(0, colon);
}

/** Sorted and duplicate-free (the hierarchy is applied to values, by {@link suffixOf}). */
export function normalizeNames(names: Iterable<string>): readonly string[] {
  const sorted = [...new Set(names)].sort();
  return sorted.length === 0 ? NO_NAMES : sorted;
}

/** The encoding of `null`: a covering context with this value covers nothing. */
const NULL = 'null';

/**
 * True when `covering` makes `name` redundant: `user` covers `user.roles` (and `user.roles.x`), since the user
 * determines the roles. A parameterised name (`query:page`) covers nothing.
 */
function covers(covering: string, name: string): boolean {
  return !covering.includes(':') && name.startsWith(`${covering}.`);
}

/** True when two normalized name lists are equal. */
export function sameNames(a: readonly string[], b: readonly string[]): boolean {
  if (a === b) return true;
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** The key of a variant: the root and the suffix of its names' values. */
export function variantKey(root: string, suffix: string): string {
  return root + VARIANT_SEPARATOR + suffix;
}

/**
 * The dependency every stored variant of the call `root`, its lookup key's entry and its variant records
 * carry (never an entry itself): invalidating it removes all of them, and `refreshCall` can remove all but
 * the new one. `invalidateCall` invalidates it with the root.
 */
export function familyKey(root: string): string {
  return root + VARIANT_SEPARATOR + VARIANT_SEPARATOR;
}

/** Where the variant record of a lookup key lives. */
export function recordKey(lookupKey: string): string {
  return lookupKey + VARIANT_SEPARATOR;
}

/** The value stored as a variant record: which contexts the calls of a lookup key vary by. */
export function recordValue(names: readonly string[]): unknown {
  return { [RECORD_FIELD]: names };
}

/** The names of a variant record's value, or undefined when `value` is not one. */
export function namesOfRecord(value: unknown): readonly string[] | undefined {
  if (value === null || typeof value !== 'object') return undefined;
  const names = (value as Record<string, unknown>)[RECORD_FIELD];
  return Array.isArray(names) && names.every(n => typeof n === 'string') ? normalizeNames(names as string[]) : undefined;
}

/**
 * Where one call of a method on a service with contexts looks and stores. Built before the lookup (the
 * declared contexts' values are read then), updated by the lookup, read again when the value is stored.
 */
export interface Route {
  /** The call's key without contexts: what `invalidateCall` names; every variant depends on it. */
  readonly root: string;
  /** The lookup key: the root with the declared contexts' values (the root itself when none are declared). */
  readonly base: string;
  /** The declared contexts (normalized). */
  readonly declared: readonly string[];
  /** The contexts the call is known to vary by (declared, or from the variant record): a store varies by at least these. */
  names: readonly string[];
  /** True when the variant record (or this service's memory of it) already says `names`: no record to write. */
  recorded: boolean;
  /** The encoded values of the declared contexts, as read for the lookup key. */
  readonly declaredValues: readonly string[];
  /** The key of the entry the lookup answered for (a hit, or an expired copy offered to fail-safe), its contexts and their values. */
  key: string;
  keyNames: readonly string[];
  keyValues: readonly string[];
}
