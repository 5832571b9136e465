-- On a cluster: index_add() on its own node. KEYS: the user's index.
-- ARGV: id, ttl ms ('0' = never).
index_add(KEYS[1], ARGV[1], ARGV[2])
return 1
