/**
 * The Lua scripts of the Redis backend. Each runs atomically on one partition: all the keys it touches share
 * the partition's hash tag, so they live in one slot of a Redis Cluster. Some keys are derived inside the
 * scripts (indexes and markers of discovered dependents); they are in the same slot as the declared ones.
 *
 * Time is the server's (`TIME`), never the application's. Generations are microsecond-based numbers,
 * formatted with %.0f because Lua's tostring would switch to exponent notation and lose precision.
 *
 * Entry hash fields: h = what a hit needs, in one field (`<cap>|<sliding>|<staleFor>|<async>[r<refresh>]|<deps JSON>\n<payload>`:
 * a hit is one single-field HGET, the cheapest read to parse), p = dependency keys (JSON array; their count
 * says which index holds the entry), e = logical expiry (ms, 0 = none; moves with sliding), a = absolute expiry cap (ms, 0 = none),
 * s = sliding window (ms), f = fail-safe window (ms), t = the token it was stored with (a store with an older
 * token never replaces it).
 *
 * Dependency indexes: an entry with exactly one dependency d is a member of `i:<d>`, an entry with several is a
 * member of `m:<d>` for each. Members are the entries' full Redis keys, scored by the time they expire (server
 * ms, fail-safe window included; +inf for none). So an invalidation deletes the single-dependency dependents of
 * a key in bulk, without reading them (the common fan-out), and reads only the others, to unlink them from
 * their other indexes.
 *
 * Dependency lists are closed (see CacheEntryInput.dependencies): an entry that names another entry's key also
 * names that entry's dependencies. So the dependents of a key are exactly the members of its two indexes (no
 * walk through the dependents' own keys), and a marker on the invalidated keys alone refuses every store
 * computed from what they invalidated.
 */

/** Sets an index set's expiry to its longest-lived member's (none if one never expires). */
const RETIME = `
local function retime(ik)
  local top = redis.call('ZRANGE', ik, -1, -1, 'WITHSCORES')
  if top[2] == nil then return end
  if top[2] == 'inf' then redis.call('PERSIST', ik) else redis.call('PEXPIREAT', ik, top[2]) end
end
`;

const NOW = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local nowUs = tonumber(t[1]) * 1000000 + tonumber(t[2])
`;

/**
 * Reading bookkeeping keys that may be corrupt (written by something else, or of a foreign type): a read
 * never raises. A generation or marker is a decimal number below 1e18 (microseconds); anything else is corrupt.
 *
 * - generation(sk, ttl): the partition's generation. A corrupt one is reset ahead of the server clock (by 1 s):
 *   the old generation was at most a few steps ahead of the clock, so no outstanding token can pass a marker
 *   written after the reset — generations never go backwards relative to tokens.
 * - marker(k): a marker's generation, nil when absent, false when corrupt.
 * - newGeneration(sk, ttl): the next generation (what an invalidation writes), stored in sk.
 * - decodeList(json): a JSON array of strings, or nil.
 */
const SAFE = `
local function asGeneration(raw)
  if type(raw) ~= 'string' then return nil end
  local n = tonumber(raw)
  if n and n >= 0 and n < 1e18 then return n end
  return nil
end
local function generation(sk, ttl)
  local raw = redis.pcall('GET', sk)
  if not raw then return 0 end
  local n = asGeneration(raw)
  if n then return n end
  local reset = nowUs + 1000000
  redis.call('DEL', sk)
  redis.call('SET', sk, string.format('%.0f', reset), 'PX', ttl)
  return reset
end
local function marker(k)
  local raw = redis.pcall('GET', k)
  if not raw then return nil end
  return asGeneration(raw) or false
end
local function newGeneration(sk, ttl)
  local gen = string.format('%.0f', math.max(generation(sk, ttl) + 1, nowUs + 1))
  redis.call('SET', sk, gen, 'PX', ttl)
  return gen
end
local function decodeList(json)
  if type(json) ~= 'string' then return nil end
  local ok, list = pcall(cjson.decode, json)
  if not ok or type(list) ~= 'table' then return nil end
  for i = 1, #list do if type(list[i]) ~= 'string' then return nil end end
  return list
end
local function number(v)
  local n = tonumber(v)
  if n == nil or n ~= n or n == math.huge or n == -math.huge then return nil end
  return n
end
`;

/**
 * LOOKUP — KEYS: [seq, entry1, entry2…] (one partition); ARGV: [field]. A standalone server's batch of lookups
 * (see ReadBatcher) in one command: {generation, TIME, the field of each entry}, the generation and the time read
 * before the entries (a miss takes its token from them). It only reads: the generation is returned as it is
 * (false when absent), and a key of another type answers its own error in its place (pcall), never the batch's.
 * Flagged no-writes (Redis ≥ 7.0): it runs while writes are paused (CLIENT PAUSE WRITE, a failover), as the
 * plain reads it replaces did.
 */
export const LOOKUP_SCRIPT = `#!lua flags=no-writes
local out = {redis.pcall('GET', KEYS[1]), redis.call('TIME')}
for i = 2, #KEYS do out[i + 1] = redis.pcall('HGET', KEYS[i], ARGV[1]) end
return out
`;

/**
 * BEGIN — KEYS: [seq, lock, entry]; ARGV: [lockLeaseMs (0: no lock), lockOwner, markerTtlMs, withEntry ('1' | '0')].
 * Returns {token, now, locked}: the partition's generation when a computation begins, the server time, and
 * `locked` = 1 when this caller now holds the computation lease (or no lock is used), 0 when another process
 * holds it, 2 when a fresh entry is present (stored since this caller looked: read it instead of computing —
 * checked in the same atomic step as taking the lease, so a lease released by a holder that just stored its
 * value is never taken to compute it again).
 * With `withEntry`, a fourth element is the entry's `h` field (false if absent), read atomically with the
 * token: a fail-safe caller holding an expired copy learns whether it was invalidated before the token.
 * (A hit does not use BEGIN: its lookup, LOOKUP or a pipeline, brings the token; see ReadBatcher.)
 */
export const BEGIN_SCRIPT = `${NOW}${SAFE}
local lease = number(ARGV[1])
local ttl = number(ARGV[3])
if not lease or not ttl then return redis.error_reply('aspect-cache BEGIN: invalid arguments') end
local token = string.format('%.0f', math.max(generation(KEYS[1], ttl), nowUs))
local entry = false
if ARGV[4] == '1' then
  local h = redis.pcall('HGET', KEYS[3], 'h')
  if type(h) == 'string' then entry = h end
end
local locked = 1
if lease > 0 then
  local e = number(redis.pcall('HGET', KEYS[3], 'e'))
  if e and (e == 0 or now < e) then return {token, now, 2, entry} end
  if not redis.call('SET', KEYS[2], ARGV[2], 'NX', 'PX', ARGV[1]) then
    -- A lease always expires; a lease key without expiry (or of another type) is corrupt: replace it.
    if redis.call('PTTL', KEYS[2]) == -1 or redis.call('TYPE', KEYS[2]).ok ~= 'string' then
      redis.call('DEL', KEYS[2])
      redis.call('SET', KEYS[2], ARGV[2], 'PX', ARGV[1])
    else
      locked = 0
    end
  end
end
return {token, now, locked, entry}
`;

/**
 * Index helpers. `indexOf(base, n, d)`: the index of dependency d holding an entry with n dependencies.
 * `extend(ik, score, now)`: after a ZADD of a member with this score, the index lives at least as long as it (an
 * index without expiry holds a never-expiring member, or was just created by the ZADD).
 */
const INDEX = `
local function indexOf(base, n, d)
  if n == 1 then return base .. 'i:' .. d end
  return base .. 'm:' .. d
end
local function extend(ik, score)
  if score == '+inf' then redis.call('PERSIST', ik) return end
  local ttl = redis.call('PTTL', ik)
  if ttl == -1 then
    if redis.call('ZCARD', ik) == 1 then redis.call('PEXPIREAT', ik, score) end
  elseif ttl >= 0 and now + ttl < tonumber(score) then
    redis.call('PEXPIREAT', ik, score)
  end
end
`;

/**
 * Reads many markers in few calls: the newest generation among the keys KEYS[from..], and the keys found
 * corrupt (not a generation, or of another type). MGET answers nil for a key of another type, so EXISTS
 * (which counts every type) tells whether one hides among the nils; only then are they looked at one by one.
 */
const MARKERS = `
local function newestMarker(from)
  local newest = 0
  local corrupt = {}
  local last = #KEYS
  local i = from
  while i <= last do
    local j = math.min(last, i + 999)
    local values = redis.call('MGET', unpack(KEYS, i, j))
    local present = 0
    for x = 1, j - i + 1 do
      local raw = values[x]
      if raw then
        present = present + 1
        local g = asGeneration(raw)
        if not g then corrupt[#corrupt + 1] = KEYS[i + x - 1]
        elseif g > newest then newest = g end
      end
    end
    if redis.call('EXISTS', unpack(KEYS, i, j)) > present then
      for x = 1, j - i + 1 do
        if not values[x] and redis.call('EXISTS', KEYS[i + x - 1]) == 1 then corrupt[#corrupt + 1] = KEYS[i + x - 1] end
      end
    end
    i = j + 1
  end
  return newest, corrupt
end
`;

/**
 * TOUCH — KEYS: [entry]; ARGV: [base, slideUntil (absolute server ms, optional)]. Extends a sliding entry after
 * a hit (the hit itself was already answered): expiry = min(absolute cap, slideUntil — the hit's time plus the
 * window, as the hit reported it — or now + sliding), for the entry and its index memberships. The memberships
 * are extended first, and the entry only if all of them were (an index of another type makes ZADD fail without
 * writing): an entry never outlives its place in an index. Returns the server time.
 */
export const TOUCH_SCRIPT = `${NOW}${SAFE}${INDEX}
local h = redis.pcall('HMGET', KEYS[1], 'p', 'e', 'a', 's', 'f')
if h.err then return now end
local s = tonumber(h[4] or '0') or 0
if not h[1] or s == 0 then return now end
local deps = decodeList(h[1])
if not deps then return now end
local e = tonumber(h[2]) or 0
if e ~= 0 and now >= e then return now end
local a = tonumber(h[3]) or 0
local f = tonumber(h[5]) or 0
local ne = tonumber(ARGV[2] or '') or (now + s)
if a ~= 0 and a < ne then ne = a end
if ne <= e then return now end
local until_ = string.format('%.0f', ne + f)
for _, d in ipairs(deps) do
  local ik = indexOf(ARGV[1], #deps, d)
  local r = redis.pcall('ZADD', ik, 'XX', 'GT', until_, KEYS[1])
  if type(r) == 'table' and r.err then return now end
  local ttl = redis.call('PTTL', ik)
  if ttl >= 0 and now + ttl < ne + f then redis.call('PEXPIREAT', ik, until_) end
end
redis.call('HSET', KEYS[1], 'e', string.format('%.0f', ne))
redis.call('PEXPIREAT', KEYS[1], until_)
return now
`;

/**
 * CHECK — KEYS: [clearMarker, marker(entryKey), marker(dep1)…]; ARGV: [token, tokenTimeMs, markerTtlMs].
 * Returns 1 if a store with this token would pass SET's staleness test now (nothing invalidated since the
 * token, and the token younger than the markers live), else 0. Writes nothing.
 */
export const CHECK_SCRIPT = `${NOW}${SAFE}${MARKERS}
local token = number(ARGV[1])
local issued = number(ARGV[2])
local ttl = number(ARGV[3])
if not token or not issued or not ttl then return redis.error_reply('aspect-cache CHECK: invalid arguments') end
if now - issued > ttl then return 0 end
local newest, corrupt = newestMarker(1)
-- A corrupt marker certifies nothing (SET refuses and repairs it).
if #corrupt > 0 or newest > token then return 0 end
return 1
`;

/** UNLOCK — KEYS: [lock]; ARGV: [owner]. Releases a computation lease if this caller still holds it. */
export const UNLOCK_SCRIPT = `
if redis.pcall('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`;

/**
 * SET — KEYS: [entry, seq, clearMarker, marker(entryKey), marker(dep1)…] (the lease is released separately);
 * ARGV: [token, tokenTimeMs, markerTtlMs, payload, depsJson, expiresAt ('none', or absolute ms on the server's clock), slidingMs,
 *        staleForMs, async, base, '' (unused), dependencyCount (checked only), indexDepsJson ('' = depsJson), slideUntil (absolute
 *        server ms: the first sliding deadline, or ''), refreshAt (absolute server ms: the eager-refresh deadline, or
 *        '' — written after the async flag in the h field, never interpreted here)].
 * Deadlines are absolute, converted by the caller with a lower bound of the clock offset, so however late the
 * script runs, an entry never lives longer than the expiry the service computed (a parent never outlives a child).
 * depsJson is what a hit returns (the dependencies as given, JSON from JavaScript, never decoded here);
 * indexDepsJson names the index keys (the dependencies as encoded for Redis key names, which cjson can decode).
 * Refuses ('stale') if the key, a dependency or the whole partition was invalidated after the token, or if
 * the token is older than the markers live. Otherwise replaces the entry and its index memberships. The
 * markers (clear marker included) are read with one MGET.
 *
 * Everything is validated before the first write. Corrupt keys are repaired, never left to fail the next
 * store: a marker that is not a generation counts as an invalidation now (this store is refused, the marker
 * is rewritten so that the next store passes); an entry key of another type, or with an unreadable dependency
 * list, is replaced; an index key of another type is deleted and 'corrupt-index' returned (its entries can no
 * longer be found by an invalidation: the caller removes the partition's entries). The entry is removed before
 * its old memberships and written after its new ones, so a store that stops at a corrupt index leaves no entry
 * that an index misses.
 */
export const SET_SCRIPT = `${NOW}${SAFE}${RETIME}${INDEX}${MARKERS}
local token = number(ARGV[1])
local tokenTime = number(ARGV[2])
local markerTtl = number(ARGV[3])
local sliding = number(ARGV[7])
local f = number(ARGV[8])
local ttl = ARGV[6] == 'none' and 0 or number(ARGV[6])
local slideUntil = (ARGV[14] == nil or ARGV[14] == '') and 0 or number(ARGV[14])
local deps = decodeList(ARGV[13] ~= '' and ARGV[13] or ARGV[5])
local refresh = (ARGV[15] == nil or ARGV[15] == '') and '' or number(ARGV[15])
if not (token and tokenTime and markerTtl and sliding and f and ttl and slideUntil and deps and refresh and type(ARGV[4]) == 'string' and type(ARGV[10]) == 'string' and (ARGV[9] == '0' or ARGV[9] == '1') and number(ARGV[12])) then
  return redis.error_reply('aspect-cache SET: invalid arguments')
end
if now - tokenTime > markerTtl then return 'stale' end
local newest, corrupt = newestMarker(3)
if #corrupt > 0 then
  local gen = newGeneration(KEYS[2], markerTtl)
  for _, k in ipairs(corrupt) do
    redis.call('DEL', k)
    redis.call('SET', k, gen, 'PX', markerTtl)
  end
  return 'stale'
end
if newest > token then return 'stale' end
local base = ARGV[10]
local ek = KEYS[1]
-- A store never replaces an entry computed from a later token (an older computation that finishes last,
-- after a refreshCall stored a newer value, say).
local old = redis.pcall('HMGET', ek, 't', 'p')
local oldDeps = {}
if old.err then
  -- Not a hash: a foreign key in the entry's place. Its dependencies are unknown; the entry is rebuilt.
  redis.call('DEL', ek)
else
  local ct = number(old[1])
  if ct and ct > token then return 'stale' end
  if old[2] then oldDeps = decodeList(old[2]) or {} end
  if redis.call('DEL', ek) == 1 then
    for _, d in ipairs(oldDeps) do
      local ik = indexOf(base, #oldDeps, d)
      local r = redis.pcall('ZREM', ik, ek)
      if type(r) == 'table' and r.err then
        redis.call('DEL', ik)
        return 'corrupt-index'
      elseif r == 1 then retime(ik) end
    end
  end
end
local a = 0
if ARGV[6] ~= 'none' then a = math.max(1, ttl) end
local e = a
if sliding > 0 then
  e = slideUntil > 0 and slideUntil or now + sliding
  if a ~= 0 and a < e then e = a end
end
if e ~= 0 and e + f <= now then return 'stored' end
local score = '+inf'
if e > 0 then score = string.format('%.0f', e + f) end
for _, d in ipairs(deps) do
  local ik = indexOf(base, #deps, d)
  local r = redis.pcall('ZADD', ik, score, ek)
  if type(r) == 'table' and r.err then
    redis.call('DEL', ik)
    return 'corrupt-index'
  end
  if r == 1 then redis.call('ZREMRANGEBYSCORE', ik, '-inf', '(' .. now) end
  extend(ik, score)
end
local flag = ARGV[9]
if refresh ~= '' then flag = flag .. 'r' .. string.format('%.0f', refresh) end
local header = string.format('%.0f', a) .. '|' .. ARGV[7] .. '|' .. ARGV[8] .. '|' .. flag .. '|' .. ARGV[5] .. '\\n'
redis.call('HSET', ek, 'h', header .. ARGV[4], 'p', ARGV[13] ~= '' and ARGV[13] or ARGV[5], 'e', string.format('%.0f', e), 'a', string.format('%.0f', a), 's', ARGV[7], 'f', ARGV[8], 't', ARGV[1])
if e > 0 then redis.call('PEXPIREAT', ek, score) end
return 'stored'
`;

/**
 * INVALIDATE — KEYS: [seq]; ARGV: [partitionBase, markerTtlMs, protectedKeysJson, holdMs, release ('1'|'0'),
 * fenceMs, unfence, key1, key2…] — protected keys (roots of a refresh) keep their entries.
 * Marks every given key with a new generation (refusing in-flight writes that depend on it: their dependency
 * lists are closed, so they name the given key), removes the entries of the keys, and the entries of the
 * partition that depend on them: the members of their `i:` indexes in bulk, those of their `m:` indexes one by
 * one, each also unlinked from its other indexes.
 * Holds (a transaction not committed yet): with holdMs > 0 the markers are set in the future (now + holdMs, or
 * the end of a fence in effect if later; never lowered), so every store depending on them is refused until then, whenever its token was taken; an
 * invalidation without release keeps a key's hold; with release the markers are set to the new generation,
 * ending their holds (stores whose tokens predate it are still refused).
 * Fences (the two rounds of an invalidation on several partitions, see RedisBackend#invalidateEverywhere): with
 * fenceMs > 0 the markers are raised to a generation in the future like a hold (odd, where holds are even: a
 * hold in effect or a later fence stays; with release, always set), and that value is returned; `unfence` (that
 * value) sets the markers still holding it, and those not in the future, to the new generation, leaving other
 * fences and holds alone.
 * Returns {removed entry keys (full Redis keys), corruptIndex, fence, more removed entry keys (strings, each a JSON
 * array of them)}: corruptIndex = 1 when an index key of another
 * type was found (and deleted): its entries could not be found, so the caller removes every entry of the
 * partition. Corrupt generations, markers and entries are repaired.
 */
export const INVALIDATE_SCRIPT = `${NOW}${SAFE}${RETIME}
local base = ARGV[1]
local markerTtl = ARGV[2]
local protectedList = decodeList(ARGV[3])
local holdMs = number(ARGV[4])
if not protectedList or not number(markerTtl) or not holdMs or holdMs < 0 or (ARGV[5] ~= '0' and ARGV[5] ~= '1') then
  return redis.error_reply('aspect-cache INVALIDATE: invalid arguments')
end
local release = ARGV[5] == '1'
local fenceMs = number(ARGV[6])
local unfence = ARGV[7]
if not fenceMs or fenceMs < 0 or type(unfence) ~= 'string' then return redis.error_reply('aspect-cache INVALIDATE: invalid arguments') end
local protected = {}
for _, k in ipairs(protectedList) do protected[base .. 'v:' .. k] = true end
local gen = newGeneration(KEYS[1], markerTtl)
-- Markers in the future are holds (even values) or fences (odd values): a fence never replaces a hold.
local function parity(n, odd)
  if (n % 2 == 1) == odd then return n end
  return n + 1
end
local fence = ''
if fenceMs > 0 then fence = string.format('%.0f', parity(math.max(tonumber(gen), nowUs + fenceMs * 1000), true)) end
local corruptIndex = 0
local roots = {}
local isRoot = {}
for i = 8, #ARGV do
  local k = ARGV[i]
  if not isRoot[k] then
    isRoot[k] = true
    roots[#roots + 1] = k
  end
end
for _, k in ipairs(roots) do
  -- A root's marker may be a hold (in the future): kept unless released.
  local mk = base .. 'g:' .. k
  if holdMs > 0 then
    -- A longer hold stays. A fence in effect (odd: another invalidation between its two rounds) becomes a hold
    -- at least as long: that invalidation's second round lowers only its own fence, never this hold.
    local future = parity(math.max(tonumber(gen), nowUs + holdMs * 1000), false)
    local current = marker(mk)
    if current and current > future and current % 2 == 1 then future = current + 1 end
    if not (current and current >= future) then
      redis.call('DEL', mk)
      redis.call('SET', mk, string.format('%.0f', future), 'PX', number(markerTtl) + math.ceil((future - nowUs) / 1000))
    end
  elseif fenceMs > 0 then
    -- A hold in effect stays (it refuses every store until it is released). Another invalidation's fence is
    -- raised to this one, never lowered: that is safe for it, since this one began after that one's first round
    -- reached here (so after its data changed), and this fence is lowered only once every partition has
    -- removed what either could find.
    local current = marker(mk)
    local held = current and current > nowUs and current % 2 == 0
    if release or not current or current <= nowUs or (not held and current < tonumber(fence)) then
      redis.call('DEL', mk)
      redis.call('SET', mk, fence, 'PX', number(markerTtl) + fenceMs)
    end
  elseif not release then
    -- A later marker (a hold, another invalidation's fence) stays; this invalidation's own fence is lowered.
    local current = marker(mk)
    if not (current and current > tonumber(gen)) or (unfence ~= '' and string.format('%.0f', current) == unfence) then
      if current == false then redis.call('DEL', mk) end
      redis.call('SET', mk, gen, 'PX', markerTtl)
    end
  else
    redis.call('DEL', mk)
    redis.call('SET', mk, gen, 'PX', markerTtl)
  end
end
local removed = {}
local visited = {}
-- Removes one entry read first: a multi-dependency dependent, or a root's own entry. Its memberships in the
-- indexes of other dependencies are removed too (the roots' indexes are deleted whole).
local function removeRead(ek)
  local p = redis.pcall('HGET', ek, 'p')
  if type(p) ~= 'string' then p = nil end
  if redis.call('DEL', ek) ~= 1 then return end
  removed[#removed + 1] = ek
  local deps = p and decodeList(p) or {}
  for _, d in ipairs(deps) do
    if not isRoot[d] then
      local ik = (#deps == 1 and base .. 'i:' or base .. 'm:') .. d
      local r = redis.pcall('ZREM', ik, ek)
      if type(r) == 'table' and r.err then
        redis.call('DEL', ik)
        corruptIndex = 1
      elseif r == 1 then retime(ik) end
    end
  end
end
-- The live members of an index (an expired member's entry is gone), and the index deleted; nil if corrupt.
-- UNLINK: a large index is freed off the main thread.
local function takeMembers(ik)
  local members = redis.pcall('ZRANGE', ik, now, '+inf', 'BYSCORE')
  if members.err then
    -- An index of another type: the entries it recorded cannot be found. Deleted, and reported, so that
    -- the caller removes every entry of the partition rather than leave dependents stale.
    redis.call('DEL', ik)
    corruptIndex = 1
    return {}
  end
  redis.call('UNLINK', ik)
  return members
end
for _, k in ipairs(roots) do
  local ek = base .. 'v:' .. k
  if not protected[ek] and not visited[ek] then
    visited[ek] = true
    removeRead(ek)
  end
end
-- Single-dependency dependents: their only membership is the index, deleted here; they are removed unread, in
-- bulk, and the list of members is returned as one JSON array, a single string (a reply of 10,000 strings costs
-- ioredis several times more to parse than JSON.parse of the same list; cjson builds it in C, where a Lua
-- table.concat would cost Redis more). Without protected keys, the common case, the list is not even copied; a
-- key found twice, a root's own entry say, is deleted once and listed twice: the caller deduplicates.
local bulk = {}
local function deleteAll(list)
  local i = 1
  while i <= #list do
    local j = math.min(#list, i + 999)
    redis.call('DEL', unpack(list, i, j))
    i = j + 1
  end
end
for _, k in ipairs(roots) do
  local members = takeMembers(base .. 'i:' .. k)
  if #protectedList > 0 then
    local kept = {}
    for _, ek in ipairs(members) do if not protected[ek] then kept[#kept + 1] = ek end end
    members = kept
  end
  if #members > 0 then
    deleteAll(members)
    bulk[#bulk + 1] = cjson.encode(members)
  end
  for _, ek in ipairs(takeMembers(base .. 'm:' .. k)) do
    if not visited[ek] then
      visited[ek] = true
      if not protected[ek] then removeRead(ek) end
    end
  end
end
return {removed, corruptIndex, fence, bulk}
`;

/** CLEAR-MARK — KEYS: [seq, clearMarker]; ARGV: [markerTtlMs]. Refuses every write whose token predates it. */
export const CLEAR_MARK_SCRIPT = `${NOW}${SAFE}
if not number(ARGV[1]) then return redis.error_reply('aspect-cache CLEAR-MARK: invalid arguments') end
local gen = newGeneration(KEYS[1], ARGV[1])
redis.call('SET', KEYS[2], gen, 'PX', ARGV[1])
return gen
`;
