-- porter: look after one consumer group on one stream shard (see groups.lua).
--
-- KEYS[1]  the stream
-- KEYS[2]  the group's cursor (same hash slot)
-- ARGV[1]  the group
-- ARGV[2]  where a missing group starts when it has no cursor: '$' when porter starts (a
--          destination added to a running deployment gets new events only), '0' after a loss
--          (everything the stream still holds)
-- ARGV[3]  '1' to move the cursor to the group's last delivered entry (groups that services
--          read themselves: porter does not see what they schedule)
--
-- Returns 1 when the group was missing and was created, else 0.
local created = ensure_groups(KEYS[1], {ARGV[1]}, {KEYS[2]}, ARGV[2])
local follow = ARGV[3] == '1'
if follow or redis.call('EXISTS', KEYS[2]) == 0 then
  for _, group in ipairs(redis.call('XINFO', 'GROUPS', KEYS[1])) do
    local name, last
    for j = 1, #group, 2 do
      if group[j] == 'name' then name = group[j + 1] end
      if group[j] == 'last-delivered-id' then last = group[j + 1] end
    end
    if name == ARGV[1] and last then
      redis.call('SET', KEYS[2], last)
    end
  end
end
return #created
