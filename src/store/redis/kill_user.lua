-- Deletes a user's sessions but ARGV[3]; returns how many were live.
-- KEYS: user index, generation. ARGV: key prefix, user, kept id ('' none).
local gen = tonumber(redis.call('GET', KEYS[2]) or '0')
local n = 0
for _, id in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  if id ~= ARGV[3] then
    local k = ARGV[1] .. '{' .. id .. '}:s'
    local r = redis.call('HMGET', k, 'u', 'g')
    if r[1] == ARGV[2] then
      if tonumber(r[2] or '0') >= gen then n = n + 1 end
      redis.call('DEL', k)
    end
    redis.call('SREM', KEYS[1], id)
  end
end
return n
