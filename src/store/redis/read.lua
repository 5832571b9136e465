-- Reads the session without the lock. KEYS and ARGV as acquire.lua's.
return load() or {}
