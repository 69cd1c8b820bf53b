-- Releases a fill lock only if the caller still owns it (compare and delete).
-- KEYS[1] the lock, ARGV[1] the owner token. Returns 1 if released, 0 if not ours (or gone).
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
