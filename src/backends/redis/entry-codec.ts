/**
 * The `h` field of a Redis entry: everything a hit needs, in one field, so that a hit is one single-field HGET
 * and the cheapest reply to parse:
 *
 *     <cap>|<sliding>|<staleFor>|<async>[r<refresh>]|<deps JSON>\n<payload>
 *
 * cap = absolute expiry cap on the server's clock (ms, 0 = none), sliding and staleFor = windows in ms,
 * async = `1` or `0`, optionally followed by `r` and the eager-refresh deadline (absolute ms on the server's
 * clock; readers that predate it look at the flag's first character only), deps = the dependencies as the
 * service gave them, payload = the serialized value.
 * The SET script (scripts.ts) assembles the field from the parts {@link entryFields} prepares (it computes the
 * cap itself, from the deadline it is sent); {@link unpackEntry} reads it back. The other fields of the entry
 * hash are the scripts' bookkeeping (see scripts.ts); of those, only the moving expiry {@link EXPIRY_FIELD} is
 * read here.
 */
import type { CacheEntryInput, CacheHit } from '../backend.js';
import type { Serializer } from '../../serializers/serializer.js';

/** The entry hash field a lookup reads. */
export const HIT_FIELD = 'h';

/** The entry hash field holding the logical expiry (ms on the server's clock, 0 = none; moves with sliding). */
export const EXPIRY_FIELD = 'e';

/** A decoded `h` field: the hit, and the windows the backend needs to tell fresh from stale. */
export interface StoredEntry {
  /** The hit; its `expiresAt` is the cap converted to the local clock (Infinity if none). */
  readonly hit: CacheHit;
  /** Absolute expiry cap on the server's clock (ms), 0 for none. */
  readonly cap: number;
  /** Sliding window (ms), 0 for none. */
  readonly sliding: number;
  /** Fail-safe window (ms), 0 for none. */
  readonly staleFor: number;
}

/** The parts of the `h` field a store sends to the SET script (besides the payload and the cap's deadline). */
export interface EntryFields {
  /** The dependencies as JSON: returned as given by every hit (never decoded by Lua). */
  readonly depsJson: string;
  readonly sliding: number;
  readonly staleFor: number;
  readonly async: '1' | '0';
}

/** What a store of `entry` with these (deduplicated) dependencies sends for its `h` field. */
export function entryFields(entry: CacheEntryInput, dependencies: readonly string[]): EntryFields {
  return { depsJson: JSON.stringify(dependencies), sliding: entry.sliding, staleFor: entry.staleFor ?? 0, async: entry.async ? '1' : '0' };
}

/**
 * Parses the `h` field. `offset` is the server's clock minus the local one (an upper bound), so the local
 * expiry is never later than the server's. Throws if the field is not an aspect-cache entry (corrupt or
 * written by something else) or its payload does not deserialize: the caller treats that as a miss.
 */
export function unpackEntry(packed: string, serializer: Serializer, offset: number): StoredEntry {
  const newline = packed.indexOf('\n');
  const p1 = packed.indexOf('|');
  const p2 = packed.indexOf('|', p1 + 1);
  const p3 = packed.indexOf('|', p2 + 1);
  const p4 = packed.indexOf('|', p3 + 1);
  if (newline < 0 || p1 < 0 || p2 < 0 || p3 < 0 || p4 < 0 || p4 > newline) throw new Error('not an aspect-cache entry');
  const cap = Number(packed.slice(0, p1));
  const sliding = Number(packed.slice(p1 + 1, p2));
  const staleFor = Number(packed.slice(p2 + 1, p3));
  const dependencies = JSON.parse(packed.slice(p4 + 1, newline)) as unknown;
  if (!Array.isArray(dependencies) || Number.isNaN(cap) || Number.isNaN(sliding) || Number.isNaN(staleFor)) throw new Error('not an aspect-cache entry');
  const value = serializer.deserialize(packed.slice(newline + 1));
  const async = packed.charCodeAt(p3 + 1) === 49; /* '1' */
  let refreshAt: number | undefined;
  if (p4 > p3 + 2) {
    const refresh = packed.charCodeAt(p3 + 2) === 114 /* 'r' */ ? Number(packed.slice(p3 + 3, p4)) : Number.NaN;
    if (Number.isNaN(refresh)) throw new Error('not an aspect-cache entry');
    refreshAt = refresh - offset;
  }
  const expiresAt = cap === 0 ? Infinity : cap - offset;
  // A sliding entry says so (a layered backend keeps it out of its L1); the shape stays the same for all.
  const hit: CacheHit = { hit: true, value, async, dependencies: dependencies as string[], expiresAt, sliding, refreshAt };
  return { hit, cap, sliding, staleFor };
}
