-- porter: lease due entries of a delivery schedule.
--
-- KEYS[1]  the schedule
-- KEYS[2]  the destination's hold: while it exists (porter's `pause`), nothing is leased
-- ARGV[1]  now, Unix milliseconds
-- ARGV[2]  the lease's end, Unix milliseconds
-- ARGV[3]  at most this many entries
-- ARGV[4]  '1' for an ordered destination: only the oldest entry, and only when it is due
--
-- A leased entry's due time becomes the lease's end: if the instance that took it dies, the
-- entry is due again then and another instance delivers it.
local function older(a, b)
  local am, as = string.match(a, '^(%d+)-(%d+)$')
  local bm, bs = string.match(b, '^(%d+)-(%d+)$')
  am, as, bm, bs = tonumber(am), tonumber(as), tonumber(bm), tonumber(bs)
  if am ~= bm then return am < bm end
  return as < bs
end
if redis.call('EXISTS', KEYS[2]) == 1 then return {} end
if ARGV[4] == '1' then
  local oldest = nil
  for _, id in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
    if oldest == nil or older(id, oldest) then oldest = id end
  end
  if oldest == nil then return {} end
  if tonumber(redis.call('ZSCORE', KEYS[1], oldest)) > tonumber(ARGV[1]) then return {} end
  redis.call('ZADD', KEYS[1], 'XX', ARGV[2], oldest)
  return {oldest}
end
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[3]))
for _, id in ipairs(due) do
  redis.call('ZADD', KEYS[1], 'XX', ARGV[2], id)
end
return due
