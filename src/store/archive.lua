-- porter: archive one raw request, trimming what its retention has passed.
--
-- KEYS[1]  the archive stream
-- ARGV[1]  the retention in milliseconds
-- ARGV[2…] the entry's field/value pairs
--
-- Entry ids are Redis's clock, so the cut-off is too: MINID <now - retention> drops the
-- entries older than that while appending (no scan), and the key expires whole a retention
-- after the last append.
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local retention = tonumber(ARGV[1])
local fields = {}
for i = 2, #ARGV do fields[#fields + 1] = ARGV[i] end
local id = redis.call('XADD', KEYS[1], 'MINID', tostring(math.max(now - retention, 0)), '*', unpack(fields))
redis.call('PEXPIRE', KEYS[1], retention)
return id
