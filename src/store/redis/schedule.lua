-- porter: move entries a destination's consumer group read into its delivery schedule.
--
-- KEYS[1]  the stream shard
-- KEYS[2]  the destination's schedule for that shard (same hash slot)
-- KEYS[3]  the destination's cursor for that shard (same hash slot; see store/groups.lua)
-- ARGV[1]  the consumer group (the destination's name)
-- ARGV[2]  now, Unix milliseconds: when the scheduled entries are due
-- ARGV[3]  how many of the following ids are wanted (scheduled); the rest are only acknowledged
-- ARGV[4…] entry ids
--
-- Scheduling and acknowledging happen together: an entry is either still pending in the group
-- (and reclaimed if this instance dies) or in the schedule, never neither. The cursor moves to
-- the latest entry handled, so that a group Redis loses is recreated after it, not before
-- (everything again) or at the stream's end (losing what came meanwhile).
local wanted = tonumber(ARGV[3])
local cursor = redis.call('GET', KEYS[3])
local moved = false
for i = 4, #ARGV do
  if i - 3 <= wanted then
    redis.call('ZADD', KEYS[2], 'NX', ARGV[2], ARGV[i])
  end
  redis.call('XACK', KEYS[1], ARGV[1], ARGV[i])
  if later(ARGV[i], cursor) then
    cursor = ARGV[i]
    moved = true
  end
end
if moved then redis.call('SET', KEYS[3], cursor) end
return #ARGV - 3
