-- Frees the lock if it is ours (ARGV[1]: token) and wakes one waiter.
-- KEYS as acquire.lua's (the session and generation unused).
local cur = redis.call('GET', KEYS[1])
if cur and string.sub(cur, 1, 32) == ARGV[1] then
  free_lock()
  return 1
end
return 0
