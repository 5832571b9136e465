-- Extends the lease (KEYS[1], ARGV[2] ms) if the lock is still ours
-- (ARGV[1]: token).
local cur = redis.call('GET', KEYS[1])
if cur and string.sub(cur, 1, 32) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
