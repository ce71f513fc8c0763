-- End a lease. A superseded lease keeps its mark (its reconnect is refused);
-- a normal end leaves the hash for the resume window only.
-- KEYS: see the names below.
-- ARGV[1]: releaseArgs (registry.go) as JSON; each field is named there.
local leaseKey, userKey, ipKey = KEYS[1], KEYS[2], KEYS[3] -- lease hash; user's purpose zset; IP zset
local a = cjson.decode(ARGV[1])
redis.call('ZREM', userKey, a.id)
redis.call('ZREM', ipKey, a.id)
local st = redis.call('HGET', leaseKey, 'state')
if st == 'live' then
  redis.call('HSET', leaseKey, 'state', 'ended')
end
if st then redis.call('PEXPIRE', leaseKey, a.grace) end
return st or ''
