-- End a live lease at its client's request (POST /sse/close): only the
-- lease's own user and ticket may, and only while the ticket is not revoked:
-- neither its record deleted nor its generation behind the user's. As in
-- connect.lua, a revoked ticket is told so before any lease is looked at.
-- The slot is free at once; the hash stays for the resume window, so the
-- client can come back later with the same cursor.
-- KEYS: see the names below.
-- ARGV[1]: closeArgs (close.go) as JSON; each field is named there.
local leaseKey, ticketKey = KEYS[1], KEYS[2]
local alertsKey, dataKey = KEYS[3], KEYS[4] -- the user's alerts and data zsets
local genKey = KEYS[5]                      -- the user's revocation generation
local a = cjson.decode(ARGV[1])
if redis.call('EXISTS', ticketKey) == 0 then return 'revoked' end
if tonumber(redis.call('GET', genKey) or '0') > tonumber(a.gen) then return 'revoked' end
local st = redis.call('HMGET', leaseKey, 'state', 'userId', 'ticketId', 'ipKey')
if st[1] ~= 'live' or st[2] ~= a.userId or st[3] ~= a.ticketId then return 'refused' end
redis.call('ZREM', alertsKey, a.id)
redis.call('ZREM', dataKey, a.id)
if st[4] then redis.call('ZREM', st[4], a.id) end
redis.call('HSET', leaseKey, 'state', 'ended')
redis.call('PEXPIRE', leaseKey, a.grace)
return 'ok'
