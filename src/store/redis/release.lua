-- Frees the lock if it is ours (ARGV[1]: token) and wakes one waiter.
-- KEYS: lock, wake.
local cur = redis.call('GET', KEYS[1])
if cur and string.sub(cur, 1, 32) == ARGV[1] then
  free_lock(KEYS[1], KEYS[2])
  return 1
end
return 0
