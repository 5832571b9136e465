-- Deletes a session, leaving its lock alone (a holder's write is then
-- refused by its fence). KEYS: session. ARGV: user index prefix ('' on a
-- cluster, where the caller drops the index entry), id. Returns {1 if it
-- existed, its generation, its user or false}.
local r = redis.call('HMGET', KEYS[1], 'u', 'g')
local n = redis.call('DEL', KEYS[1])
if ARGV[1] ~= '' and r[1] then redis.call('SREM', ARGV[1] .. r[1], ARGV[2]) end
return {n, r[2] or '0', r[1]}
