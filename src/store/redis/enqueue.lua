-- porter: dedupe-and-enqueue a batch of events, atomically and in order.
--
-- KEYS[1]          the stream every event of this call is appended to
-- KEYS[2 .. G+1]   the cursor of each consumer group on that stream (see groups.lua)
-- KEYS[G+2 ..]     event i's dedupe key is KEYS[G+1+i] (every key of one call is in one hash
--                  slot on Redis Cluster)
-- ARGV[1]          approximate MAXLEN for the stream, 0 for no trimming
-- ARGV[2]          G, how many consumer groups the stream must have
-- ARGV[3 .. G+2]   their names
-- ARGV[G+3 ..]     for event i, six values: dedupe TTL in milliseconds; the answer given to the
--                  provider (returned for every later duplicate); the event as CloudEvents
--                  JSON; its type; its source; its id (so that one event can be found without
--                  parsing every entry)
--
-- Returns {created, outcomes}: the consumer groups that were missing and had to be created
-- before appending, and one outcome per event: nil when it was appended, or the stored answer
-- when it is a duplicate. Events are handled in order, so an event repeated later in the same
-- call is a duplicate of the earlier one. Nothing is appended to a stream that lacks a group.
local stream = KEYS[1]
local max_len = tonumber(ARGV[1])
local group_count = tonumber(ARGV[2])
local names, cursors = {}, {}
for g = 1, group_count do
  names[g] = ARGV[2 + g]
  cursors[g] = KEYS[1 + g]
end
local first_event = 3 + group_count
local created = {}
local checked = group_count == 0
local outcomes = {}
for i = 1, (#ARGV - first_event + 1) / 6 do
  local dedupe = KEYS[1 + group_count + i]
  local a = first_event + 6 * (i - 1)
  local original = redis.call('GET', dedupe)
  if original then
    outcomes[i] = original
  else
    if not checked then
      created = ensure_groups(stream, names, cursors, '0')
      checked = true
    end
    if max_len > 0 then
      redis.call('XADD', stream, 'MAXLEN', '~', max_len, '*',
        'event', ARGV[a + 2], 'type', ARGV[a + 3], 'source', ARGV[a + 4], 'id', ARGV[a + 5])
    else
      redis.call('XADD', stream, '*',
        'event', ARGV[a + 2], 'type', ARGV[a + 3], 'source', ARGV[a + 4], 'id', ARGV[a + 5])
    end
    redis.call('SET', dedupe, ARGV[a + 1], 'PX', ARGV[a])
    outcomes[i] = false
  end
end
return {created, outcomes}
