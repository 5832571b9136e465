-- A user's sessions: {id, meta, last access, incarnation, ...}; drops index
-- entries of sessions gone, moved to another user or made stale by
-- kill_all. KEYS: user index, generation. ARGV: key prefix, user.
local gen = tonumber(redis.call('GET', KEYS[2]) or '0')
local out = {}
for _, id in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local r = listed(ARGV[1] .. '{' .. id .. '}:s', ARGV[2], gen)
  if r then
    out[#out + 1] = id
    out[#out + 1] = r[1]
    out[#out + 1] = r[2]
    out[#out + 1] = r[3]
  else
    redis.call('SREM', KEYS[1], id)
  end
end
return out
