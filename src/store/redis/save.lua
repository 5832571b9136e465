-- Writes the session (or records an access); with a token only while the
-- lock is ours, with a fence only over the incarnation read and only while
-- no kill_all has ended it; then optionally frees the lock.
-- The data never passes through Lua: Redis copies (and 7.0 hashes) every
-- string that enters a script, which made a 200 KB write cost the server
-- four times a plain HSET. The caller stages it with a plain HSET into
-- `stage` (a key of this write alone, in the session's slot) pipelined
-- just before this script, which completes the staged hash and renames it
-- over the session, or deletes it when the write is refused. Only on a
-- cluster slot being migrated, where a script may not mix keys the node
-- has with keys it lacks (the stage went to the importing node), does the
-- data come inline, as ARGV[13], with the session as `stage`.
-- KEYS: lock, session, wake, stage (the session itself for an access or
-- an inline write) [, generation]. ARGV: token, w|t, meta, ttl ms (0 =
-- never), release, fence incarnation ('' = new), new incarnation, user,
-- now, user index prefix, id, generation[, data].
-- On one server KEYS[5] names the generation, read here, and the script
-- keeps the user index itself. On a cluster those keys live in other
-- slots: ARGV[12] is the generation the caller read, and the caller keeps
-- the index from what this returns.
-- Returns {1 | 0 (lock lost) | -1 (killed: nothing written), the
-- session's generation, 1 if this write created it, the user whose index
-- should drop the id (false: none)}.
local token, mode, meta, ttl, fence, user, now = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[6], ARGV[8], ARGV[9]
local registry = KEYS[5] ~= nil
local generation = ARGV[12]
if registry then generation = redis.call('GET', KEYS[5]) or '0' end
local staged = mode == 'w' and KEYS[4] ~= KEYS[2]
if staged and redis.call('HEXISTS', KEYS[4], 'd') == 0 then
  -- Evicted between the two commands (maxmemory): nothing to write.
  return redis.error_reply('ERR rsession: the staged session data is gone (evicted?)')
end
local function release()
  if token ~= '' and ARGV[5] == '1' then free_lock(KEYS[1], KEYS[3]) end
end
-- A refused write leaves nothing behind; the lock is freed unless lost.
local function refuse(status, g, drop)
  if staged then redis.call('DEL', KEYS[4]) end
  if status ~= 0 then release() end
  return {status, g, 0, drop}
end
if token ~= '' then
  local cur = redis.call('GET', KEYS[1])
  -- Gone or another's: lost, whatever the data (a write is never sent
  -- twice, so this is no retry finding its own work done).
  if (not cur) or string.sub(cur, 1, 32) ~= token then return refuse(0, '0', false) end
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
  if registry and drop then redis.call('SREM', ARGV[10] .. drop, ARGV[11]) end
  return refuse(-1, g, drop)
end
local created = not inc
if mode == 't' then
  redis.call('HSET', KEYS[2], 'a', now)
else
  if created then g, inc = generation, ARGV[7] end
  -- Every field anew: the staged hash replaces the session whole.
  if user ~= '' then
    redis.call('HSET', KEYS[4], 'm', meta, 'a', now, 'i', inc, 'g', g, 'u', user)
  else
    redis.call('HSET', KEYS[4], 'm', meta, 'a', now, 'i', inc, 'g', g)
  end
  if staged then
    redis.call('RENAME', KEYS[4], KEYS[2])
  else
    redis.call('HSET', KEYS[2], 'd', ARGV[13])
    if user == '' then redis.call('HDEL', KEYS[2], 'u') end
  end
  if u and u ~= user then drop = u end
  u = user ~= '' and user or nil
end
-- Numbers go to Redis as the strings they came as: Lua would format them.
if tonumber(ttl) > 0 then redis.call('PEXPIRE', KEYS[2], ttl) else redis.call('PERSIST', KEYS[2]) end
if drop == u then drop = false end
if registry then
  if drop then redis.call('SREM', ARGV[10] .. drop, ARGV[11]) end
  if u then index_add(ARGV[10] .. u, ARGV[11], ttl) end
end
release()
return {1, g, created and 1 or 0, drop}
