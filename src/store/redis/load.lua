-- Loads the session hash (KEYS[2]) unless a kill_all made it stale (then it
-- is deleted with its index entry). KEYS[4]: the generation. ARGV[3]: user
-- index prefix, ARGV[4]: the id. Returns {data, meta, last access,
-- incarnation}, or false.
local function load()
  local r = redis.call('HMGET', KEYS[2], 'd', 'm', 'a', 'i', 'g', 'u')
  if not r[2] then return false end
  if tonumber(r[5] or '0') < tonumber(redis.call('GET', KEYS[4]) or '0') then
    redis.call('DEL', KEYS[2])
    if r[6] then redis.call('SREM', ARGV[3] .. r[6], ARGV[4]) end
    return false
  end
  return {r[1], r[2], r[3], r[4]}
end
