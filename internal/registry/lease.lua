-- Prepended to connect.lua and renew.lua (registry.go): how long a live
-- lease and the keys that point at it live, the one rule both scripts keep.
-- A lease expires ttl after now in its user's and its IP's sets; the hash
-- and the sets outlive it by grace, so a stream can still resume from it;
-- the ticket record lives at least as long, so that deleting it still
-- revokes the whole chain.
local function extendLease(now, ttl, grace, id, userKey, ipKey, leaseKey, ticketKey)
  local exp = now + ttl
  redis.call('ZADD', userKey, exp, id)
  redis.call('ZADD', ipKey, exp, id)
  redis.call('PEXPIRE', userKey, ttl + grace)
  redis.call('PEXPIRE', ipKey, ttl + grace)
  redis.call('PEXPIRE', leaseKey, ttl + grace)
  if redis.call('PTTL', ticketKey) < ttl + grace then redis.call('PEXPIRE', ticketKey, ttl + grace) end
end
