-- Adds an id to a user's index, which lives as long as the longest-lived
-- of its sessions (PTTL: -2 missing, -1 kept forever). ttl: ms, '0' never.
local function index_add(key, id, ttl)
  local left = redis.call('PTTL', key)
  redis.call('SADD', key, id)
  if tonumber(ttl) == 0 then
    if left >= 0 then redis.call('PERSIST', key) end
  elseif left ~= -1 and left < tonumber(ttl) then
    redis.call('PEXPIRE', key, ttl)
  end
end
