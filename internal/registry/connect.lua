-- Admit one stream atomically: ticket, ownership, limits, lease, snapshot.
-- KEYS[1] ticket record      KEYS[2] user's device set
-- KEYS[3] user's leases for this purpose (zset id -> expiry ms)
-- KEYS[4] user's leases for the other purpose   KEYS[5] leases of the IP
-- KEYS[6] the new lease hash  KEYS[7] the lease hash being resumed (or "")
-- KEYS[8] the user's revocation generation   KEYS[9..] status keys to read
-- ARGV: now, ttl, grace, id, userLimit, ipLimit, policy, mode, resumeId,
--       ip, connectedAt, devicesJSON, ticketId, userId, purpose, devHash,
--       cursorRequired, ndev, ticketGeneration, devices...
local now, ttl, grace = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local id, ulimit, iplimit = ARGV[4], tonumber(ARGV[5]), tonumber(ARGV[6])
local policy, mode, resume = ARGV[7], ARGV[8], ARGV[9]
local needCursor = ARGV[17] == '1'
local ndev = tonumber(ARGV[18])
local gen = ARGV[19]

if redis.call('EXISTS', KEYS[1]) == 0 then return {'revoked'} end
-- A ticket issued before the user's last revocation is revoked, and so is
-- every cursor that comes with it.
if tonumber(redis.call('GET', KEYS[8]) or '0') > tonumber(gen) then return {'revoked'} end

local resumed = 0
if resume ~= '' then
  local st = redis.call('HMGET', KEYS[7], 'state', 'userId', 'purpose', 'devHash', 'ticketId')
  if st[1] == 'superseded' then return {'superseded'} end
  if st[1] and st[2] == ARGV[14] and st[3] == ARGV[15] and st[4] == ARGV[16] and st[5] == ARGV[13] then
    resumed = 1
  end
end
if needCursor and resumed == 0 then return {'bad-cursor'} end

local owned = {}
if mode == 'data' then
  for i = 1, ndev do
    if redis.call('SISMEMBER', KEYS[2], ARGV[19 + i]) == 0 then return {'forbidden'} end
  end
else
  owned = redis.call('SMEMBERS', KEYS[2])
end

if resumed == 1 then
  -- The same client coming back: it takes over its own slot.
  redis.call('ZREM', KEYS[3], resume)
  redis.call('ZREM', KEYS[5], resume)
  redis.call('DEL', KEYS[7])
end

redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now)
redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', now)
redis.call('ZREMRANGEBYSCORE', KEYS[5], '-inf', now)

local function counts()
  return redis.call('ZCARD', KEYS[3]), redis.call('ZCARD', KEYS[4])
end

if redis.call('ZCARD', KEYS[5]) >= iplimit then
  local a, b = counts()
  return {'ip-limit', a, b}
end

local evicted = {}
local n = redis.call('ZCARD', KEYS[3])
if n >= ulimit then
  if policy == 'reject' then
    local a, b = counts()
    return {'user-limit', a, b}
  end
  -- Evict the oldest by connect time (scores are expiries, renewed).
  local ids = redis.call('ZRANGE', KEYS[3], 0, -1)
  local aged = {}
  local prefix = string.sub(KEYS[6], 1, #KEYS[6] - #id)
  for _, v in ipairs(ids) do
    local at = tonumber(redis.call('HGET', prefix .. v, 'connectedAt') or '0')
    table.insert(aged, {v, at})
  end
  table.sort(aged, function(x, y) return x[2] < y[2] end)
  for i = 1, n - ulimit + 1 do
    local v = aged[i][1]
    local h = prefix .. v
    local vip = redis.call('HGET', h, 'ipKey')
    if vip then redis.call('ZREM', vip, v) end
    redis.call('ZREM', KEYS[3], v)
    if redis.call('EXISTS', h) == 1 then
      redis.call('HSET', h, 'state', 'superseded')
      redis.call('PEXPIRE', h, grace)
    end
    table.insert(evicted, v)
  end
end

local exp = now + ttl
redis.call('ZADD', KEYS[3], exp, id)
redis.call('ZADD', KEYS[5], exp, id)
redis.call('PEXPIRE', KEYS[3], ttl + grace)
redis.call('PEXPIRE', KEYS[5], ttl + grace)
redis.call('HSET', KEYS[6], 'state', 'live', 'userId', ARGV[14], 'purpose', ARGV[15],
  'devices', ARGV[12], 'devHash', ARGV[16], 'ip', ARGV[10], 'ipKey', KEYS[5],
  'connectedAt', ARGV[11], 'ticketId', ARGV[13], 'gen', gen)
redis.call('PEXPIRE', KEYS[6], ttl + grace)
-- Keep the ticket record as long as a stream of it may resume, so that
-- deleting it still revokes the whole chain.
if redis.call('PTTL', KEYS[1]) < ttl + grace then redis.call('PEXPIRE', KEYS[1], ttl + grace) end

local statuses = {}
for i = 9, #KEYS do
  statuses[#statuses + 1] = redis.call('GET', KEYS[i]) or ''
end
local a, b = counts()
return {'ok', a, b, evicted, owned, statuses, resumed}
