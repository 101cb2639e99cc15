/**
 * The Lua scripts of the Redis backend. Each runs atomically on one partition: all the keys it touches share
 * the partition's hash tag, so they live in one slot of a Redis Cluster. Some keys are derived inside the
 * scripts (indexes and markers of discovered dependents); they are in the same slot as the declared ones.
 *
 * Time is the server's (`TIME`), never the application's. Generations are microsecond-based numbers,
 * formatted with %.0f because Lua's tostring would switch to exponent notation and lose precision.
 *
 * Entry hash fields: h = what a hit needs, in one field (`<cap>|<sliding>|<staleFor>|<async>|<deps JSON>\n<payload>`:
 * a hit is one single-field HGET, the cheapest read to parse), p = dependency keys (JSON array), n = their
 * count, e = logical expiry (ms, 0 = none; moves with sliding), a = absolute expiry cap (ms, 0 = none),
 * s = sliding window (ms), f = fail-safe window (ms).
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
 * BEGIN — KEYS: [seq, lock, entry]; ARGV: [lockLeaseMs (0: no lock), lockOwner, withEntry ('1' | absent)].
 * Returns {token, now, locked}: the partition's generation when a computation begins, the server time, and
 * `locked` = 1 when this caller now holds the computation lease (or no lock is used), 0 when another process
 * holds it, 2 when a fresh entry is present (stored since this caller looked: read it instead of computing —
 * checked in the same atomic step as taking the lease, so a lease released by a holder that just stored its
 * value is never taken to compute it again).
 * With `withEntry`, a fourth element is the entry's `h` field (false if absent), read atomically with the
 * token: a fail-safe caller holding an expired copy learns whether it was invalidated before the token.
 * (A hit is not a script: it is one HGET of the entry's `h` field.)
 */
export const BEGIN_SCRIPT = `${NOW}
local seq = tonumber(redis.call('GET', KEYS[1]) or '0')
local token = string.format('%.0f', math.max(seq, nowUs))
local entry = false
if ARGV[3] == '1' then entry = redis.call('HGET', KEYS[3], 'h') end
local locked = 1
if tonumber(ARGV[1]) > 0 then
  local e = redis.call('HGET', KEYS[3], 'e')
  if e and (tonumber(e) == 0 or now < tonumber(e)) then return {token, now, 2, entry} end
  if not redis.call('SET', KEYS[2], ARGV[2], 'NX', 'PX', ARGV[1]) then locked = 0 end
end
return {token, now, locked, entry}
`;

/**
 * TOUCH — KEYS: [entry]; ARGV: [indexPrefix, entryKey]. Extends a sliding entry after a hit (the hit itself
 * was already answered): expiry = min(absolute cap, now + sliding), for the entry and its index memberships.
 * Returns the server time.
 */
export const TOUCH_SCRIPT = `${NOW}
local h = redis.call('HMGET', KEYS[1], 'p', 'e', 'a', 's', 'f')
local s = tonumber(h[4] or '0') or 0
if not h[1] or s == 0 then return now end
local e = tonumber(h[2]) or 0
if e ~= 0 and now >= e then return now end
local a = tonumber(h[3]) or 0
local f = tonumber(h[5]) or 0
local ne = now + s
if a ~= 0 and a < ne then ne = a end
if ne <= e then return now end
local until_ = string.format('%.0f', ne + f)
redis.call('HSET', KEYS[1], 'e', string.format('%.0f', ne))
redis.call('PEXPIREAT', KEYS[1], until_)
for _, d in ipairs(cjson.decode(h[1])) do
  local ik = ARGV[1] .. d
  redis.call('ZADD', ik, 'XX', 'GT', until_, ARGV[2])
  local ttl = redis.call('PTTL', ik)
  if ttl >= 0 and now + ttl < ne + f then redis.call('PEXPIREAT', ik, until_) end
end
return now
`;

/**
 * CHECK — KEYS: [clearMarker, marker(entryKey), marker(dep1)…]; ARGV: [token, tokenTimeMs, markerTtlMs].
 * Returns 1 if a store with this token would pass SET's staleness test now (nothing invalidated since the
 * token, and the token younger than the markers live), else 0. Writes nothing.
 */
export const CHECK_SCRIPT = `${NOW}
local token = tonumber(ARGV[1])
if now - tonumber(ARGV[2]) > tonumber(ARGV[3]) then return 0 end
for i = 1, #KEYS do
  local g = redis.call('GET', KEYS[i])
  if g then
    local n = tonumber(g)
    if n == nil or n > token then return 0 end
  end
end
return 1
`;

/** UNLOCK — KEYS: [lock]; ARGV: [owner]. Releases a computation lease if this caller still holds it. */
export const UNLOCK_SCRIPT = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`;

/**
 * SET — KEYS: [entry, clearMarker, marker(entryKey), marker(dep1)…] (the lease is released separately);
 * ARGV: [token, tokenTimeMs, markerTtlMs, payload, depsJson, ttlMs ('none', or signed ms from now), slidingMs, staleForMs, async,
 *        indexPrefix, entryKey, dependencyCount].
 * Refuses ('stale') if the key, a dependency or the whole partition was invalidated after the token, or if
 * the token is older than the markers live. Otherwise replaces the entry and its index memberships.
 */
export const SET_SCRIPT = `${NOW}${RETIME}
local token = tonumber(ARGV[1])
if now - tonumber(ARGV[2]) > tonumber(ARGV[3]) then return 'stale' end
for i = 2, #KEYS do
  local g = redis.call('GET', KEYS[i])
  if g and tonumber(g) > token then return 'stale' end
end
local old = redis.call('HGET', KEYS[1], 'p')
if old then
  for _, d in ipairs(cjson.decode(old)) do
    local ik = ARGV[10] .. d
    if redis.call('ZREM', ik, ARGV[11]) == 1 then retime(ik) end
  end
  redis.call('DEL', KEYS[1])
end
local sliding = tonumber(ARGV[7])
local f = tonumber(ARGV[8])
local a = 0
if ARGV[6] ~= 'none' then a = now + tonumber(ARGV[6]) end
local e = a
if sliding > 0 then
  e = now + sliding
  if a ~= 0 and a < e then e = a end
end
if e ~= 0 and e + f <= now then return 'stored' end
local header = string.format('%.0f', a) .. '|' .. ARGV[7] .. '|' .. ARGV[8] .. '|' .. ARGV[9] .. '|' .. ARGV[5] .. '\\n'
redis.call('HSET', KEYS[1], 'h', header .. ARGV[4], 'p', ARGV[5], 'n', ARGV[12], 'e', string.format('%.0f', e), 'a', string.format('%.0f', a), 's', ARGV[7], 'f', ARGV[8])
local score = '+inf'
if e > 0 then
  score = string.format('%.0f', e + f)
  redis.call('PEXPIREAT', KEYS[1], score)
end
for _, d in ipairs(cjson.decode(ARGV[5])) do
  local ik = ARGV[10] .. d
  redis.call('ZREMRANGEBYSCORE', ik, '-inf', '(' .. now)
  redis.call('ZADD', ik, score, ARGV[11])
  retime(ik)
end
return 'stored'
`;

/**
 * INVALIDATE — KEYS: [seq]; ARGV: [partitionBase, markerTtlMs, protectedKeysJson, continuation ('1'|'0'), key1, key2…]
 * — protected keys (roots of a refresh) keep their entries. A continuation round carries keys removed in other
 * partitions: each gets a marker here, and its dependents are looked up only where something recorded it.
 * Marks every visited key with a new generation (refusing in-flight writes that depend on it), removes the
 * entries of the keys and, transitively, of the entries that recorded them. Returns the removed keys.
 */
export const INVALIDATE_SCRIPT = `${NOW}${RETIME}
local base = ARGV[1]
local markerTtl = ARGV[2]
local protected = {}
for _, k in ipairs(cjson.decode(ARGV[3])) do protected[k] = true end
local seq = tonumber(redis.call('GET', KEYS[1]) or '0')
local gen = string.format('%.0f', math.max(seq + 1, nowUs + 1))
redis.call('SET', KEYS[1], gen, 'PX', markerTtl)
local queue = {}
local visited = {}
for i = 5, #ARGV do
  local k = ARGV[i]
  if not visited[k] then
    visited[k] = true
    queue[#queue + 1] = k
  end
end
local given = #queue
local continuation = ARGV[4] == '1'
local removed = {}
local i = 1
while i <= #queue do
  local k = queue[i]
  local vk = base .. 'v:' .. k
  local ik = base .. 'i:' .. k
  -- Every visited key gets a marker, even where nothing recorded it yet: a computation in flight here may
  -- store an entry that depends on it.
  redis.call('SET', base .. 'g:' .. k, gen, 'PX', markerTtl)
  if not (continuation and i <= given and redis.call('EXISTS', ik, vk) == 0) then
    if not protected[k] then
      local h = redis.call('HMGET', vk, 'p', 'n')
      if redis.call('DEL', vk) == 1 then
        removed[#removed + 1] = k
        -- An entry found through an index with a single dependency depends only on the key that led here,
        -- whose index is being deleted: nothing else to unlink (the common fan-out case).
        if h[1] and not (i > given and h[2] == '1') then
          for _, d in ipairs(cjson.decode(h[1])) do
            if not visited[d] then
              local dk = base .. 'i:' .. d
              if redis.call('ZREM', dk, k) == 1 then retime(dk) end
            end
          end
        end
      end
    end
    local members = redis.call('ZRANGE', ik, 0, -1)
    if #members > 0 then
      redis.call('DEL', ik)
      for _, m in ipairs(members) do
        if not visited[m] then
          visited[m] = true
          queue[#queue + 1] = m
        end
      end
    end
  end
  i = i + 1
end
return removed
`;

/** CLEAR-MARK — KEYS: [seq, clearMarker]; ARGV: [markerTtlMs]. Refuses every write whose token predates it. */
export const CLEAR_MARK_SCRIPT = `${NOW}
local seq = tonumber(redis.call('GET', KEYS[1]) or '0')
local gen = string.format('%.0f', math.max(seq + 1, nowUs + 1))
redis.call('SET', KEYS[1], gen, 'PX', ARGV[1])
redis.call('SET', KEYS[2], gen, 'PX', ARGV[1])
return gen
`;
