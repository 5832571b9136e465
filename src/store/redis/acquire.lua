-- Takes the lock if free (or already ours: a retried call whose reply was
-- lost) and reads the session's small fields; the data comes from a plain
-- HGET pipelined behind (no big string crosses Lua: see save.lua).
-- KEYS: lock, session. ARGV: lock value, lease ms. Returns {1, meta, last
-- access, incarnation, generation, user} or {0, lock value, pttl}.
local cur = redis.call('GET', KEYS[1])
if (not cur) or cur == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  -- In use now: the session outlives the lock until renewals take over.
  local keep = 2 * tonumber(ARGV[2])
  local left = redis.call('PTTL', KEYS[2])
  if left >= 0 and left < keep then redis.call('PEXPIRE', KEYS[2], keep) end
  local r = redis.call('HMGET', KEYS[2], 'm', 'a', 'i', 'g', 'u')
  return {1, r[1], r[2], r[3], r[4], r[5]}
end
return {0, cur, redis.call('PTTL', KEYS[1])}
