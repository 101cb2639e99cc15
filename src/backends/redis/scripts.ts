/**
 * The Lua scripts of the Redis backend. Each runs atomically on one partition: all the keys it touches share
 * the partition's hash tag, so they live in one slot of a Redis Cluster. Some keys are derived inside the
 * scripts (indexes and markers of discovered dependents); they are in the same slot as the declared ones.
 *
 * Time is the server's (`TIME`), never the application's. Generations are microsecond-based numbers,
 * formatted with %.0f because Lua's tostring would switch to exponent notation and lose precision.
 *
 * Entry hash fields: d = payload, p = dependency keys (JSON array), e = expiry (ms, 0 = none),
 * a = absolute cap for sliding entries (ms, 0 = none), s = sliding window (ms), f = fail-safe window (ms),
 * y = '1' if the method returned a promise.
 */

const NOW = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local nowUs = tonumber(t[1]) * 1000000 + tonumber(t[2])
`;

/**
 * GET — KEYS: [entry, seq, lock]; ARGV: [indexPrefix, entryKey, lockLeaseMs (0: no lock), lockOwner].
 * Hit: {1, payload, deps, expiry, async, now}.
 * Miss: {0, token, now, locked[, stale payload, deps, expiry, async]} — `locked` is 1 when this caller now holds
 * the computation lease (or no lock is used), 0 when another process holds it.
 * A sliding hit extends the entry, and its index memberships, in the same call.
 */
export const GET_SCRIPT = `${NOW}
local h = redis.call('HMGET', KEYS[1], 'd', 'p', 'e', 'a', 's', 'f', 'y')
-- Only a miss needs the generation token: a hit reads one hash.
local function token()
  local seq = tonumber(redis.call('GET', KEYS[2]) or '0')
  return string.format('%.0f', math.max(seq, nowUs))
end
local function lock()
  if tonumber(ARGV[3]) == 0 then return 1 end
  if redis.call('SET', KEYS[3], ARGV[4], 'NX', 'PX', ARGV[3]) then return 1 end
  return 0
end
if not h[1] then return {0, token(), now, lock()} end
local e = tonumber(h[3]) or 0
local f = tonumber(h[6]) or 0
if e == 0 or now < e then
  local s = tonumber(h[5]) or 0
  if s > 0 then
    local a = tonumber(h[4]) or 0
    local ne = now + s
    if a > 0 and a < ne then ne = a end
    if ne > e then
      e = ne
      local until_ = string.format('%.0f', e + f)
      redis.call('HSET', KEYS[1], 'e', string.format('%.0f', e))
      redis.call('PEXPIREAT', KEYS[1], until_)
      for _, d in ipairs(cjson.decode(h[2])) do
        local ik = ARGV[1] .. d
        redis.call('ZADD', ik, 'XX', 'GT', until_, ARGV[2])
        local ttl = redis.call('PTTL', ik)
        if ttl >= 0 and now + ttl < e + f then redis.call('PEXPIREAT', ik, until_) end
      end
    end
  end
  return {1, h[1], h[2], e, h[7], now}
end
if f > 0 and now < e + f then return {0, token(), now, lock(), h[1], h[2], e, h[7]} end
return {0, token(), now, lock()}
`;

/** UNLOCK — KEYS: [lock]; ARGV: [owner]. Releases a computation lease if this caller still holds it. */
export const UNLOCK_SCRIPT = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`;

/** BEGIN — KEYS: [seq]. Returns {token, now}. */
export const BEGIN_SCRIPT = `${NOW}
local seq = tonumber(redis.call('GET', KEYS[1]) or '0')
return {string.format('%.0f', math.max(seq, nowUs)), now}
`;

/**
 * SET — KEYS: [entry, clearMarker, marker(entryKey), marker(dep1)…] (the lease is released separately);
 * ARGV: [token, tokenTimeMs, markerTtlMs, payload, depsJson, ttlMs ('none', or signed ms from now), slidingMs, staleForMs, async,
 *        indexPrefix, entryKey].
 * Refuses ('stale') if the key, a dependency or the whole partition was invalidated after the token, or if
 * the token is older than the markers live. Otherwise replaces the entry and its index memberships.
 */
export const SET_SCRIPT = `${NOW}
local token = tonumber(ARGV[1])
if now - tonumber(ARGV[2]) > tonumber(ARGV[3]) then return 'stale' end
for i = 2, #KEYS do
  local g = redis.call('GET', KEYS[i])
  if g and tonumber(g) > token then return 'stale' end
end
local old = redis.call('HGET', KEYS[1], 'p')
if old then
  for _, d in ipairs(cjson.decode(old)) do redis.call('ZREM', ARGV[10] .. d, ARGV[11]) end
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
redis.call('HSET', KEYS[1], 'd', ARGV[4], 'p', ARGV[5], 'e', string.format('%.0f', e), 'a', string.format('%.0f', a), 's', ARGV[7], 'f', ARGV[8], 'y', ARGV[9])
local score = '+inf'
if e > 0 then
  score = string.format('%.0f', e + f)
  redis.call('PEXPIREAT', KEYS[1], score)
end
for _, d in ipairs(cjson.decode(ARGV[5])) do
  local ik = ARGV[10] .. d
  redis.call('ZREMRANGEBYSCORE', ik, '-inf', '(' .. now)
  redis.call('ZADD', ik, score, ARGV[11])
  local top = redis.call('ZRANGE', ik, -1, -1, 'WITHSCORES')
  if top[2] == 'inf' then redis.call('PERSIST', ik) else redis.call('PEXPIREAT', ik, top[2]) end
end
return 'stored'
`;

/**
 * INVALIDATE — KEYS: [seq]; ARGV: [partitionBase, markerTtlMs, preserveRoots ('1'|'0'), key1, key2…].
 * Marks every visited key with a new generation (refusing in-flight writes that depend on it), removes the
 * entries of the keys and, transitively, of the entries that recorded them. Returns the removed keys.
 */
export const INVALIDATE_SCRIPT = `${NOW}
local base = ARGV[1]
local markerTtl = ARGV[2]
local preserve = ARGV[3] == '1'
local seq = tonumber(redis.call('GET', KEYS[1]) or '0')
local gen = string.format('%.0f', math.max(seq + 1, nowUs + 1))
redis.call('SET', KEYS[1], gen, 'PX', markerTtl)
local queue = {}
local visited = {}
for i = 4, #ARGV do
  local k = ARGV[i]
  if not visited[k] then
    visited[k] = true
    queue[#queue + 1] = k
  end
end
local roots = #queue
local removed = {}
local i = 1
while i <= #queue do
  local k = queue[i]
  redis.call('SET', base .. 'g:' .. k, gen, 'PX', markerTtl)
  if not (preserve and i <= roots) then
    local vk = base .. 'v:' .. k
    local deps = redis.call('HGET', vk, 'p')
    if redis.call('DEL', vk) == 1 then
      removed[#removed + 1] = k
      if deps then
        for _, d in ipairs(cjson.decode(deps)) do
          if not visited[d] then redis.call('ZREM', base .. 'i:' .. d, k) end
        end
      end
    end
  end
  local ik = base .. 'i:' .. k
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
