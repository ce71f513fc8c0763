-- End a lease. A superseded lease keeps its mark (its reconnect is refused);
-- a normal end leaves the hash for the resume window only.
-- KEYS[1] lease hash  KEYS[2] user's purpose zset  KEYS[3] IP zset
-- ARGV: id, grace
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('ZREM', KEYS[3], ARGV[1])
local st = redis.call('HGET', KEYS[1], 'state')
if st == 'live' then
  redis.call('HSET', KEYS[1], 'state', 'ended')
end
if st then redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2])) end
return st or ''
