-- A destination's token bucket, shared by every porter instance that delivers for it.
-- KEYS[1]: the bucket (a hash: tokens, at = the server's clock in milliseconds)
-- ARGV[1]: rate (tokens per second), ARGV[2]: burst (most tokens held),
-- ARGV[3]: tokens wanted (a negative number gives unused tokens back)
-- Returns the tokens granted: at most what is wanted and what the bucket holds.
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local wanted = tonumber(ARGV[3])
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local held = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(held[1]) or burst
local at = tonumber(held[2]) or now
if now > at then
  tokens = math.min(burst, tokens + (now - at) * rate / 1000)
end
local granted = 0
if wanted < 0 then
  tokens = math.min(burst, tokens - wanted)
else
  granted = math.min(wanted, math.floor(tokens))
  tokens = tokens - granted
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(now))
-- A full bucket needs no key: it is what a missing key means.
redis.call('PEXPIRE', KEYS[1], math.ceil(burst / rate * 1000) + 1000)
return granted
