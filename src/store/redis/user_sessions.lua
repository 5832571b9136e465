-- A user's sessions: {id, meta, last access, incarnation, ...}; drops index
-- entries of sessions gone, moved to another user or made stale by
-- kill_all. KEYS: user index, generation. ARGV: key prefix, user.
local gen = tonumber(redis.call('GET', KEYS[2]) or '0')
local out = {}
for _, id in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local k = ARGV[1] .. '{' .. id .. '}:s'
  local r = redis.call('HMGET', k, 'm', 'a', 'i', 'g', 'u')
  if r[1] and r[5] == ARGV[2] and tonumber(r[4] or '0') >= gen then
    out[#out + 1] = id
    out[#out + 1] = r[1]
    out[#out + 1] = r[2]
    out[#out + 1] = r[3]
  else
    redis.call('SREM', KEYS[1], id)
    if r[1] and tonumber(r[4] or '0') < gen then redis.call('DEL', k) end
  end
end
return out
