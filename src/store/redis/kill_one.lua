-- On a cluster: kill() for one session. KEYS: session. ARGV: user,
-- generation.
return kill(KEYS[1], ARGV[1], tonumber(ARGV[2]))
