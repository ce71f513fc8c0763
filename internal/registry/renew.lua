-- Renew a live lease; report why it cannot be renewed.
-- KEYS[1] lease hash  KEYS[2] user's purpose zset  KEYS[3] IP zset
-- KEYS[4] ticket record  KEYS[5] user's device set
-- KEYS[6] user's revocation generation (ends the lease once past its own)
-- ARGV: now, ttl, grace, id, mode, devices...
-- mode "alerts" returns the user's device set; "data" checks each device.
local now, ttl, grace, id = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4]
local st = redis.call('HGET', KEYS[1], 'state')
if st == 'superseded' then return {'superseded'} end
if st ~= 'live' then return {'gone'} end
local function drop()
  redis.call('ZREM', KEYS[2], id)
  redis.call('ZREM', KEYS[3], id)
  redis.call('DEL', KEYS[1])
end
if redis.call('EXISTS', KEYS[4]) == 0 then drop() return {'revoked'} end
if tonumber(redis.call('GET', KEYS[6]) or '0') > tonumber(redis.call('HGET', KEYS[1], 'gen') or '0') then
  drop() return {'revoked'}
end
if ARGV[5] == 'data' then
  for i = 6, #ARGV do
    if redis.call('SISMEMBER', KEYS[5], ARGV[i]) == 0 then drop() return {'forbidden'} end
  end
end
local exp = now + ttl
redis.call('ZADD', KEYS[2], exp, id)
redis.call('ZADD', KEYS[3], exp, id)
redis.call('PEXPIRE', KEYS[2], ttl + grace)
redis.call('PEXPIRE', KEYS[3], ttl + grace)
redis.call('PEXPIRE', KEYS[1], ttl + grace)
if redis.call('PTTL', KEYS[4]) < ttl + grace then redis.call('PEXPIRE', KEYS[4], ttl + grace) end
if ARGV[5] == 'alerts' then return {'ok', redis.call('SMEMBERS', KEYS[5])} end
return {'ok'}
