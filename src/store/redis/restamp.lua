-- On a cluster: a session this request just created, stamped with a
-- generation that a kill_all has since passed, takes the new one (as on
-- one server, where the write reads the generation itself): nobody can
-- have killed what did not exist yet. KEYS: session. ARGV: its
-- incarnation, the generation stamped, the generation now.
local r = redis.call('HMGET', KEYS[1], 'i', 'g')
if r[1] == ARGV[1] and r[2] == ARGV[2] then
  redis.call('HSET', KEYS[1], 'g', ARGV[3])
  return 1
end
return 0
