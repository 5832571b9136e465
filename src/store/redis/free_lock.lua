-- Frees the lock and leaves one wake-up on the wake list for the next
-- waiter. Nothing is deleted and then created again: a script on a
-- cluster node whose slot is being migrated may not create keys.
local function free_lock(lock, wake)
  redis.call('DEL', lock)
  redis.call('LPUSH', wake, '1')
  redis.call('LTRIM', wake, 0, 0)
  redis.call('PEXPIRE', wake, '5000')
end
