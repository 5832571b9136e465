-- Extends the lease (KEYS[1], ARGV[2] ms) if the lock is still ours
-- (ARGV[1]: token), and keeps the session (KEYS[2]) alive meanwhile: a hash
-- expiring within two leases gets two leases (never shortened; one kept
-- forever or gone is left alone; the last access is not touched).
local cur = redis.call('GET', KEYS[1])
if cur and string.sub(cur, 1, 32) == ARGV[1] then
  local keep = 2 * tonumber(ARGV[2])
  local left = redis.call('PTTL', KEYS[2])
  if left >= 0 and left < keep then redis.call('PEXPIRE', KEYS[2], keep) end
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
