-- porter: take a delivered or dead-lettered entry out of a delivery schedule, unless it was
-- rescheduled meanwhile.
--
-- KEYS[1]  the schedule
-- ARGV[1]  the entry
-- ARGV[2]  the end of the lease this instance holds on it, Unix milliseconds
--
-- The entry's due time is the lease's end while the lease holds. Any other due time means
-- someone rescheduled it after this instance took it (`porter dlq replay` of the dead letter
-- this instance just wrote, or another instance after the lease ran out), and that schedule
-- must stand.
local due = redis.call('ZSCORE', KEYS[1], ARGV[1])
if due and tonumber(due) == tonumber(ARGV[2]) then
  return redis.call('ZREM', KEYS[1], ARGV[1])
end
return 0
