/**
 * The Redis key layout of RedisBackend, in one place: every key is `<prefix>ac2:{p<n>}:<kind>:<key>`,
 * where `{p<n>}` is the hash tag of partition n (all keys of a partition share one cluster slot, so each
 * script runs on one node) and the kind is one letter:
 *
 * - `v:<key>` the entry (a hash; see entry-codec.ts for its `h` field),
 * - `i:<key>` and `m:<key>` the dependency indexes of `<key>` (sorted sets of the entries that depend on it: those
 *   with that one dependency, and those with several; see scripts.ts),
 * - `g:<key>` the invalidation marker of `<key>` (the generation that last invalidated it),
 * - `l:<key>` the lease of a computation (distributed single-flight),
 * - `s` the partition's generation sequence, `c` its clear marker (no key name).
 *
 * The Lua scripts (scripts.ts) derive some of these names themselves from the partition's base (the
 * `v:`, `i:`, `m:` and `g:` keys of the keys they are given and of the entries they find): a change here must be made there too.
 */

/** The schema version in every key: entries written by another layout are never read. */
export const SCHEMA = 'ac2';

/** The base of every key of one partition: `<prefix>ac2:{p<n>}:`. */
export function partitionBase(prefix: string, partition: number): string {
  return `${prefix}${SCHEMA}:{p${partition}}:`;
}

/**
 * The partition of a cache key. FNV-1a: cheap and well spread; it only needs to be stable across processes
 * (every process must agree where an entry lives), so it must never change within one schema version.
 *
 * Only the text before the first U+001F counts: the variants of a call and its variant record (`K␟…`, see
 * context/vary-by.ts) share the partition of the call's key, so a token taken by the miss of one may store
 * another (tokens are per partition). Plain keys never contain U+001F unless a prefix or scope does.
 */
export function partitionOf(key: string, partitions: number): number {
  if (partitions === 1) return 0;
  let hash = 0x811c9dc5;
  let end = key.indexOf('\u001f');
  if (end < 0) end = key.length;
  for (let i = 0; i < end; i++) {
    hash ^= key.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return (hash >>> 0) % partitions;
}

/** The entry of an (encoded) key name. */
export function entryKey(base: string, name: string): string {
  return `${base}v:${name}`;
}

/** The (encoded) key name of an entry's Redis key (the scripts return removed entries by their Redis keys). */
export function entryNameOf(base: string, redisKey: string): string {
  return redisKey.slice(base.length + 2);
}

/** The lease of an (encoded) key name. */
export function leaseKey(base: string, name: string): string {
  return `${base}l:${name}`;
}

/** The partition's generation sequence. */
export function sequenceKey(base: string): string {
  return `${base}s`;
}

/** The partition's clear marker: a store whose token predates it is refused. */
export function clearMarkerKey(base: string): string {
  return `${base}c`;
}

/** The invalidation markers a store (and `check`) compares with its token: the entry's own and its dependencies'. */
export function markerKeys(base: string, name: string, dependencyNames: readonly string[]): string[] {
  return [`${base}g:${name}`, ...dependencyNames.map(d => `${base}g:${d}`)];
}

/** A SCAN pattern of the entries and indexes of one partition (what a repair of the partition removes). */
export function partitionDataPattern(base: string): string {
  return `${escapeGlob(base)}[vim]:*`;
}

/** A SCAN pattern of the entries and indexes of every partition under a prefix (what `clear` removes). */
export function allDataPattern(prefix: string): string {
  return `${escapeGlob(prefix)}${SCHEMA}:{p*}:[vim]:*`;
}

function escapeGlob(text: string): string {
  return text.replace(/[*?[\]\\]/g, c => `\\${c}`);
}

/**
 * The escape character of Redis key names: U+FFFE, a noncharacter that text does not use. A Redis key is
 * bytes, and ioredis sends a JS string as UTF-8, where a lone surrogate becomes U+FFFD: two keys differing only
 * in a lone surrogate would collide, and Lua's cjson cannot decode one. Key names (entries, dependencies,
 * markers, index members) are therefore sent encoded, injectively: the escape character is doubled and a lone
 * surrogate becomes the escape character and its 4 hex digits. Normal strings pass through after one regex test.
 */
const ESCAPE = '\ufffe';
const NEEDS_ENCODING = /[\ud800-\udfff\ufffe]/;
const LONE_SURROGATE_OR_ESCAPE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]|\ufffe/g;
const ENCODED = /\ufffe(\ufffe|[0-9a-f]{4})/g;

/** A key as its Redis key name (well-formed UTF-16, so it survives UTF-8), injective over all JS strings. */
export function encodeKey(key: string): string {
  if (!NEEDS_ENCODING.test(key)) return key;
  return key.replace(LONE_SURROGATE_OR_ESCAPE, c => (c === ESCAPE ? ESCAPE + ESCAPE : ESCAPE + c.charCodeAt(0).toString(16)));
}

/** The inverse of {@link encodeKey}. */
export function decodeKey(name: string): string {
  if (!name.includes(ESCAPE)) return name;
  return name.replace(ENCODED, (_, code: string) => (code === ESCAPE ? ESCAPE : String.fromCharCode(Number.parseInt(code, 16))));
}
