-- Writes the session (or records an access); with a token only while the
-- lock is ours, with a fence only over the incarnation read and only while
-- no kill_all has ended it; then optionally frees the lock.
-- KEYS: lock, session, wake[, generation]. ARGV: token, w|t, data, meta,
-- ttl ms (0 = never), release, fence incarnation ('' = new), new
-- incarnation, user, now, user index prefix, id, generation.
-- On one server KEYS[4] names the generation, read here, and the script
-- keeps the user index itself. On a cluster those keys live in other
-- slots: ARGV[13] is the generation the caller read, and the caller keeps
-- the index from what this returns.
-- Returns {1 | 0 (lock lost) | -1 (killed: nothing written), the
-- session's generation, 1 if this write created it, the user whose index
-- should drop the id (false: none)}.
local token, mode, ttl, fence = ARGV[1], ARGV[2], tonumber(ARGV[5]), ARGV[7]
local registry = KEYS[4] ~= nil
local generation = ARGV[13]
if registry then generation = redis.call('GET', KEYS[4]) or '0' end
local function release()
  if token ~= '' and ARGV[6] == '1' then free_lock(KEYS[1], KEYS[3]) end
end
if token ~= '' then
  local cur = redis.call('GET', KEYS[1])
  -- Gone or another's: lost, whatever the data (a write is never sent
  -- twice, so this is no retry finding its own work done).
  if (not cur) or string.sub(cur, 1, 32) ~= token then return {0, '0', 0, false} end
end
local held = redis.call('HMGET', KEYS[2], 'i', 'u', 'g')
local inc, u, g = held[1], held[2], held[3] or '0'
local stale, drop = false, false
if inc and tonumber(g) < tonumber(generation) then
  -- Ended by a kill_all: gone, whoever asks. Written anew below (every
  -- field), or deleted.
  stale, drop, inc, u = true, u or false, nil, nil
end
if (fence ~= '' and inc ~= fence) or (mode == 't' and not inc) then
  if stale then redis.call('DEL', KEYS[2]) end
  if registry and drop then redis.call('SREM', ARGV[11] .. drop, ARGV[12]) end
  release()
  return {-1, g, 0, drop}
end
local created = not inc
if mode == 't' then
  redis.call('HSET', KEYS[2], 'a', ARGV[10])
else
  if created then
    g = generation
    redis.call('HSET', KEYS[2], 'i', ARGV[8], 'g', g)
    if stale and ARGV[9] == '' then redis.call('HDEL', KEYS[2], 'u') end
  end
  redis.call('HSET', KEYS[2], 'd', ARGV[3], 'm', ARGV[4], 'a', ARGV[10])
  if ARGV[9] ~= '' then
    if u ~= ARGV[9] then redis.call('HSET', KEYS[2], 'u', ARGV[9]) end
  elseif u then
    redis.call('HDEL', KEYS[2], 'u')
  end
  if u and u ~= ARGV[9] then drop = u end
  u = ARGV[9] ~= '' and ARGV[9] or nil
end
-- Numbers go to Redis as the strings they came as: Lua would format them.
if ttl > 0 then redis.call('PEXPIRE', KEYS[2], ARGV[5]) else redis.call('PERSIST', KEYS[2]) end
if drop == u then drop = false end
if registry then
  if drop then redis.call('SREM', ARGV[11] .. drop, ARGV[12]) end
  if u then index_add(ARGV[11] .. u, ARGV[12], ARGV[5]) end
end
release()
return {1, g, created and 1 or 0, drop}
