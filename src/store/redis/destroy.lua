-- Deletes a session and its index entry, leaving its lock alone (a holder's
-- write is then refused by its fence). KEYS: session, generation. ARGV:
-- user index prefix, id. Returns 1 if a live session was deleted.
local r = redis.call('HMGET', KEYS[1], 'u', 'g')
local n = redis.call('DEL', KEYS[1])
if r[1] then redis.call('SREM', ARGV[1] .. r[1], ARGV[2]) end
if n == 1 and tonumber(r[2] or '0') < tonumber(redis.call('GET', KEYS[2]) or '0') then return 0 end
return n
