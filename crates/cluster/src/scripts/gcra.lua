-- One shared rate-limit decision (GCRA) on Redis's own clock.
-- KEYS[1]  the bucket: its value is the theoretical arrival time (TAT), microseconds since the
--          epoch of Redis's clock, as a decimal integer
-- ARGV[1]  emission interval in microseconds (1 / rate), >= 1
-- ARGV[2]  burst, >= 1
-- Returns {allowed (1/0), ahead_us, retry_us}: ahead = TAT - now after the decision (how long
-- until the bucket is full again), retry = how long until one request would pass (0 if allowed).
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local tolerance = interval * (tonumber(ARGV[2]) - 1)
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then
  tat = now
end
local ahead = tat - now
if ahead > tolerance then
  return {0, ahead, ahead - tolerance}
end
local new_tat = tat + interval
ahead = new_tat - now
-- Lua's tostring would write 1.7e+15: keep every digit. The key lives until the bucket is full.
redis.call('SET', KEYS[1], string.format('%.0f', new_tat), 'PX', math.ceil(ahead / 1000))
return {1, ahead, 0}
