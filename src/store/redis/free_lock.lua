-- Frees the lock (KEYS[1]) and leaves one wake-up on the wake list
-- (KEYS[3]) for the next waiter.
local function free_lock()
  redis.call('DEL', KEYS[1], KEYS[3])
  redis.call('RPUSH', KEYS[3], '1')
  redis.call('PEXPIRE', KEYS[3], '5000')
end
