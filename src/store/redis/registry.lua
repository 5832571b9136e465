-- The per-session steps of listing and killing a user's sessions: looped
-- over the index by the one-server scripts, called once per session (on
-- its node) on a cluster.

-- Session k as its user's listing shows it: {meta, last access,
-- incarnation} while it is live and still that user's; else false (one a
-- kill_all made stale is deleted on sight).
local function listed(k, user, gen)
  local r = redis.call('HMGET', k, 'm', 'a', 'i', 'g', 'u')
  if not r[1] then return false end
  if tonumber(r[4] or '0') < gen then
    redis.call('DEL', k)
    return false
  end
  if r[5] ~= user then return false end
  return {r[1], r[2], r[3]}
end

-- Deletes session k if it is user's; 1 if it was live, else 0.
local function kill(k, user, gen)
  local r = redis.call('HMGET', k, 'u', 'g')
  if r[1] ~= user then return 0 end
  redis.call('DEL', k)
  if tonumber(r[2] or '0') >= gen then return 1 end
  return 0
end
