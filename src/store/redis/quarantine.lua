-- porter: keep an unparseable body, bounded by entries and by bytes, unless an erasure
-- removed the same body (a redelivery).
--
-- KEYS[1]  the quarantine stream
-- KEYS[2]  the bytes of the bodies it holds (same hash slot)
-- KEYS[3]  the tombstones of erasures: a sorted set of keys by the time (ms) each is forgotten
--          (same hash slot)
-- ARGV[1]  the most entries to keep
-- ARGV[2]  the most body bytes to keep
-- ARGV[3]  this body's size in bytes
-- ARGV[4]  this body's tombstone key
-- ARGV[5]  porter's time in milliseconds (tombstones are forgotten by porter's clock)
-- ARGV[6…] the entry's field/value pairs
--
-- Returns the stream's length, or -1 when a tombstone refused the body. The oldest entries go
-- first; the newest is always kept. Each entry records its `size`, so the byte count can be
-- taken down as entries leave.
local forgotten_at = redis.call('ZSCORE', KEYS[3], ARGV[4])
if forgotten_at and tonumber(forgotten_at) > tonumber(ARGV[5]) then
  return -1
end
local fields = {'size', ARGV[3]}
for i = 6, #ARGV do fields[#fields + 1] = ARGV[i] end
redis.call('XADD', KEYS[1], '*', unpack(fields))
local bytes = redis.call('INCRBY', KEYS[2], ARGV[3])
local max_entries, max_bytes = tonumber(ARGV[1]), tonumber(ARGV[2])
local length = redis.call('XLEN', KEYS[1])
while length > 1 and (length > max_entries or bytes > max_bytes) do
  local oldest = redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', 1)[1]
  local size = 0
  for j = 1, #oldest[2], 2 do
    if oldest[2][j] == 'size' then size = tonumber(oldest[2][j + 1]) end
  end
  redis.call('XDEL', KEYS[1], oldest[1])
  bytes = redis.call('DECRBY', KEYS[2], size)
  length = length - 1
end
return length
