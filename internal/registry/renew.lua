-- Renew a live lease; report why it cannot be renewed.
-- KEYS: see the names below.
-- ARGV[1]: renewArgs (registry.go) as JSON; each field is named there.
-- extendLease comes from lease.lua, prepended by registry.go.
-- An alerts lease gets the user's device set back; a data lease has each
-- of its devices checked.
local leaseKey, userKey, ipKey = KEYS[1], KEYS[2], KEYS[3] -- lease hash; user's purpose zset; IP zset
local ticketKey, ownedKey = KEYS[4], KEYS[5]               -- ticket record; user's device set
local genKey = KEYS[6] -- user's revocation generation (ends the lease once past its own)
local a = cjson.decode(ARGV[1])
local now, ttl, grace, id = a.now, a.ttl, a.grace, a.id
local st = redis.call('HGET', leaseKey, 'state')
if st == 'superseded' then return {'superseded'} end
if st ~= 'live' then return {'gone'} end
local function drop()
  redis.call('ZREM', userKey, id)
  redis.call('ZREM', ipKey, id)
  redis.call('DEL', leaseKey)
end
if redis.call('EXISTS', ticketKey) == 0 then drop() return {'revoked'} end
if tonumber(redis.call('GET', genKey) or '0') > tonumber(redis.call('HGET', leaseKey, 'gen') or '0') then
  drop() return {'revoked'}
end
if a.purpose == 'data' then
  for _, d in ipairs(a.devices) do
    if redis.call('SISMEMBER', ownedKey, d) == 0 then drop() return {'forbidden'} end
  end
end
extendLease(now, ttl, grace, id, userKey, ipKey, leaseKey, ticketKey)
if a.purpose == 'alerts' then return {'ok', redis.call('SMEMBERS', ownedKey)} end
return {'ok'}
