-- porter: archive one raw request, within the retention and a byte bound, unless an erasure
-- removed what it holds.
--
-- KEYS[1]  the archive stream
-- KEYS[2]  the bytes of the entries it holds (same hash slot)
-- KEYS[3]  the tombstones of erasures: a sorted set of keys by the time (ms) each is forgotten
--          (same hash slot)
-- ARGV[1]  the retention in milliseconds
-- ARGV[2]  the most bytes to keep
-- ARGV[3]  this entry's size in bytes
-- ARGV[4]  porter's time in milliseconds (tombstones are forgotten by porter's clock)
-- ARGV[5]  how many tombstone keys follow (n)
-- ARGV[6 .. 5+n]   the entry's tombstone keys: its events' ids, its body's digest
-- ARGV[6+n ..]     the entry's field/value pairs
--
-- Returns the new entry's id, or false when a tombstone refused it.
--
-- Entry ids are Redis's clock, so the cut-off is too. Each entry records its `size`; the
-- oldest entries leave while they are past the retention (at most EXPIRE_PER_CALL of them per
-- call, so that one call after a quiet spell stays short: list and erase skip the expired ones
-- left) or while the bytes are over the bound (the newest is always kept). The keys expire
-- whole a retention after the last append.
local EXPIRE_PER_CALL = 64
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local retention = tonumber(ARGV[1])
local max_bytes = tonumber(ARGV[2])
local size = tonumber(ARGV[3])
local porter_now = tonumber(ARGV[4])
local tombstones = tonumber(ARGV[5])

redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', porter_now)
for i = 6, 5 + tombstones do
  local forgotten_at = redis.call('ZSCORE', KEYS[3], ARGV[i])
  if forgotten_at and tonumber(forgotten_at) > porter_now then
    return false
  end
end

local fields = {'size', ARGV[3]}
for i = 6 + tombstones, #ARGV do fields[#fields + 1] = ARGV[i] end
local id = redis.call('XADD', KEYS[1], '*', unpack(fields))
local bytes = redis.call('INCRBY', KEYS[2], size)

local cutoff = now - retention
local expired = 0
local length = redis.call('XLEN', KEYS[1])
while length > 1 do
  local oldest = redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', 1)[1]
  local oldest_ms = tonumber(string.match(oldest[1], '^(%d+)-'))
  local past = oldest_ms < cutoff and expired < EXPIRE_PER_CALL
  if not past and bytes <= max_bytes then break end
  local oldest_size = 0
  for j = 1, #oldest[2], 2 do
    if oldest[2][j] == 'size' then oldest_size = tonumber(oldest[2][j + 1]) end
  end
  redis.call('XDEL', KEYS[1], oldest[1])
  bytes = redis.call('DECRBY', KEYS[2], oldest_size)
  length = length - 1
  if past then expired = expired + 1 end
end
redis.call('PEXPIRE', KEYS[1], retention)
redis.call('PEXPIRE', KEYS[2], retention)
return id
