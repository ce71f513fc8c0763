-- End a live lease at its client's request (POST /sse/close): only the
-- lease's own user and ticket may, and only while the ticket is not revoked:
-- neither its record deleted nor its generation behind the user's. As in
-- connect.lua, a revoked ticket is told so before any lease is looked at.
-- The slot is free at once; the hash stays for the resume window, so the
-- client can come back later with the same cursor.
-- KEYS[1] lease hash  KEYS[2] ticket record
-- KEYS[3], KEYS[4] the user's alerts and data zsets
-- KEYS[5] the user's revocation generation
-- ARGV: userId, ticketId, grace, lease id, ticketGeneration
if redis.call('EXISTS', KEYS[2]) == 0 then return 'revoked' end
if tonumber(redis.call('GET', KEYS[5]) or '0') > tonumber(ARGV[5]) then return 'revoked' end
local st = redis.call('HMGET', KEYS[1], 'state', 'userId', 'ticketId', 'ipKey')
if st[1] ~= 'live' or st[2] ~= ARGV[1] or st[3] ~= ARGV[2] then return 'refused' end
redis.call('ZREM', KEYS[3], ARGV[4])
redis.call('ZREM', KEYS[4], ARGV[4])
if st[4] then redis.call('ZREM', st[4], ARGV[4]) end
redis.call('HSET', KEYS[1], 'state', 'ended')
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[3]))
return 'ok'
