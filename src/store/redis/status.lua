-- A message's highest status (see store/statuses.rs).
-- KEYS[1]: the message's mark; ARGV[1]: the rank of the status at hand; ARGV[2]: how long to
-- keep the mark, in milliseconds.
-- Raises the mark to the rank and answers the rank it held before (nil: none).
local held = tonumber(redis.call('GET', KEYS[1]) or '')
local rank = tonumber(ARGV[1])
if held == nil or held < rank then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
else
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return held
