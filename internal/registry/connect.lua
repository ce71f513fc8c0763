-- Admit one stream atomically: ticket, ownership, limits, lease, snapshot.
-- KEYS: see the names below; KEYS[9..] are status keys to read.
-- ARGV[1]: connectArgs (registry.go) as JSON; each field is named there.
-- extendLease comes from lease.lua, prepended by registry.go.
local ticketKey, ownedKey = KEYS[1], KEYS[2]
local userKey, otherKey = KEYS[3], KEYS[4] -- user's leases (zset id -> expiry ms): this purpose, the other
local ipKey, leaseKey = KEYS[5], KEYS[6]   -- leases of the IP; the new lease hash
local resumeKey, genKey = KEYS[7], KEYS[8] -- the lease hash being resumed (or ""); revocation generation
local a = cjson.decode(ARGV[1])
local now, ttl, grace, id = a.now, a.ttl, a.grace, a.id

if redis.call('EXISTS', ticketKey) == 0 then return {'revoked'} end
-- A ticket issued before the user's last revocation is revoked, and so is
-- every cursor that comes with it.
if tonumber(redis.call('GET', genKey) or '0') > tonumber(a.gen) then return {'revoked'} end

local resumed = 0
if a.resumeId ~= '' then
  local st = redis.call('HMGET', resumeKey, 'state', 'userId', 'purpose', 'devHash', 'ticketId')
  if st[1] == 'superseded' then return {'superseded'} end
  if st[1] and st[2] == a.userId and st[3] == a.purpose and st[4] == a.devHash and st[5] == a.ticketId then
    resumed = 1
  end
end
if a.needResume and resumed == 0 then return {'bad-cursor'} end

local owned = {}
if a.purpose == 'data' then
  -- One call for all the devices (SMISMEMBER, Redis 6.2+): a connect's
  -- cost in Redis is mostly per call.
  if #a.devices > 0 then
    for _, member in ipairs(redis.call('SMISMEMBER', ownedKey, unpack(a.devices))) do
      if member == 0 then return {'forbidden'} end
    end
  end
else
  owned = redis.call('SMEMBERS', ownedKey)
end

if resumed == 1 then
  -- The same client coming back: it takes over its own slot.
  redis.call('ZREM', userKey, a.resumeId)
  redis.call('ZREM', ipKey, a.resumeId)
  redis.call('DEL', resumeKey)
end

redis.call('ZREMRANGEBYSCORE', userKey, '-inf', now)
redis.call('ZREMRANGEBYSCORE', otherKey, '-inf', now)
redis.call('ZREMRANGEBYSCORE', ipKey, '-inf', now)

local function counts()
  return redis.call('ZCARD', userKey), redis.call('ZCARD', otherKey)
end

if redis.call('ZCARD', ipKey) >= a.ipLimit then
  local x, y = counts()
  return {'ip-limit', x, y}
end

local evicted = {}
local n = redis.call('ZCARD', userKey)
if n >= a.userLimit then
  if a.policy == 'reject' then
    local x, y = counts()
    return {'user-limit', x, y}
  end
  -- Evict the oldest by connect time (scores are expiries, renewed).
  local ids = redis.call('ZRANGE', userKey, 0, -1)
  local aged = {}
  for _, v in ipairs(ids) do
    local at = tonumber(redis.call('HGET', a.leasePrefix .. v, 'connectedAt') or '0')
    table.insert(aged, {v, at})
  end
  table.sort(aged, function(x, y) return x[2] < y[2] end)
  for i = 1, n - a.userLimit + 1 do
    local v = aged[i][1]
    local h = a.leasePrefix .. v
    local vip = redis.call('HGET', h, 'ipKey')
    if vip then redis.call('ZREM', vip, v) end
    redis.call('ZREM', userKey, v)
    if redis.call('EXISTS', h) == 1 then
      redis.call('HSET', h, 'state', 'superseded')
      redis.call('PEXPIRE', h, grace)
    end
    table.insert(evicted, v)
  end
end

redis.call('HSET', leaseKey, 'state', 'live', 'userId', a.userId, 'purpose', a.purpose,
  'devices', a.devicesJson, 'devHash', a.devHash, 'ip', a.ip, 'ipKey', ipKey,
  'connectedAt', a.connectedAt, 'ticketId', a.ticketId, 'gen', a.gen)
extendLease(now, ttl, grace, id, userKey, ipKey, leaseKey, ticketKey)

local statuses = {}
for i = 9, #KEYS do
  statuses[#statuses + 1] = redis.call('GET', KEYS[i]) or ''
end
-- This purpose's count is known: the n live ones, less the evicted, plus
-- this one.
return {'ok', n - #evicted + 1, redis.call('ZCARD', otherKey), evicted, owned, statuses, resumed}
