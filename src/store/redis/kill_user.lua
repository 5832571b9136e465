-- Deletes a user's sessions but ARGV[3]; returns how many were live.
-- KEYS: user index, generation. ARGV: key prefix, user, kept id ('' none).
local gen = tonumber(redis.call('GET', KEYS[2]) or '0')
local n = 0
for _, id in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  if id ~= ARGV[3] then
    n = n + kill(ARGV[1] .. '{' .. id .. '}:s', ARGV[2], gen)
    redis.call('SREM', KEYS[1], id)
  end
end
return n
