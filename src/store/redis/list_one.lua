-- On a cluster: listed() for one session. KEYS: session. ARGV: user,
-- generation. Returns {meta, last access, incarnation} or {}.
return listed(KEYS[1], ARGV[1], tonumber(ARGV[2])) or {}
