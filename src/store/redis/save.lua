-- Writes the session (or records an access); with a token only while the
-- lock is ours, with a fence only over the incarnation read and only while
-- no kill_all has ended it; then keeps the user index and optionally frees
-- the lock. KEYS: lock, session, wake, generation. ARGV: token, w|t, data,
-- meta, ttl ms (0 = never), release, fence incarnation ('' = new), new
-- incarnation, user, now, user index prefix, id. Returns 1, 0 (lock lost)
-- or -1 (killed: nothing written).
local token, mode, ttl, fence = ARGV[1], ARGV[2], tonumber(ARGV[5]), ARGV[7]
local function release()
  if token ~= '' and ARGV[6] == '1' then free_lock() end
end
if token ~= '' then
  local cur = redis.call('GET', KEYS[1])
  -- Gone or another's: lost, whatever the data (a write is never sent
  -- twice, so this is no retry finding its own work done).
  if (not cur) or string.sub(cur, 1, 32) ~= token then return 0 end
end
local held = redis.call('HMGET', KEYS[2], 'i', 'u', 'g')
local inc, u = held[1], held[2]
local generation = redis.call('GET', KEYS[4]) or '0'
if inc and tonumber(held[3] or '0') < tonumber(generation) then
  -- Ended by a kill_all: gone, whoever asks.
  redis.call('DEL', KEYS[2])
  if u then redis.call('SREM', ARGV[11] .. u, ARGV[12]) end
  inc, u = nil, nil
end
if (fence ~= '' and inc ~= fence) or (mode == 't' and not inc) then
  release()
  return -1
end
if mode == 't' then
  redis.call('HSET', KEYS[2], 'a', ARGV[10])
else
  if not inc then
    redis.call('HSET', KEYS[2], 'i', ARGV[8], 'g', generation)
  end
  redis.call('HSET', KEYS[2], 'd', ARGV[3], 'm', ARGV[4], 'a', ARGV[10])
  if ARGV[9] ~= '' then
    if u ~= ARGV[9] then redis.call('HSET', KEYS[2], 'u', ARGV[9]) end
  elseif u then
    redis.call('HDEL', KEYS[2], 'u')
  end
  if u and u ~= ARGV[9] then redis.call('SREM', ARGV[11] .. u, ARGV[12]) end
  u = ARGV[9] ~= '' and ARGV[9] or nil
end
-- Numbers go to Redis as the strings they came as: Lua would format them.
if ttl > 0 then redis.call('PEXPIRE', KEYS[2], ARGV[5]) else redis.call('PERSIST', KEYS[2]) end
if u then
  -- The index lives as long as the longest-lived of its sessions
  -- (PTTL: -2 missing, -1 kept forever).
  local uk = ARGV[11] .. u
  local left = redis.call('PTTL', uk)
  redis.call('SADD', uk, ARGV[12])
  if ttl == 0 then
    if left >= 0 then redis.call('PERSIST', uk) end
  elseif left ~= -1 and left < ttl then
    redis.call('PEXPIRE', uk, ARGV[5])
  end
end
release()
return 1
