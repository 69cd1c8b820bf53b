-- Records one purge atomically: sequence number, generation (for a source), log entry, and a
-- Pub/Sub notice. Every key shares one hash tag, so this runs on one Cluster slot.
-- KEYS[1] state hash {history, seq}   KEYS[2] generations hash   KEYS[3] log stream
-- ARGV: kind (url|source|all), a, b, origin, new history id (used if none yet), log length,
--       channel
-- Returns {history, seq, generation}
local history = redis.call('HGET', KEYS[1], 'history')
if not history then
  history = ARGV[5]
  redis.call('HSET', KEYS[1], 'history', history)
end
local seq = redis.call('HINCRBY', KEYS[1], 'seq', 1)
local generation = 0
if ARGV[1] == 'source' then
  generation = redis.call('HINCRBY', KEYS[2], ARGV[2] .. '\n' .. ARGV[3], 1)
end
redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[6], string.format('%d-0', seq),
  'kind', ARGV[1], 'a', ARGV[2], 'b', ARGV[3], 'gen', generation, 'origin', ARGV[4])
redis.call('PUBLISH', ARGV[7], string.format('%s %d', history, seq))
return {history, seq, generation}
