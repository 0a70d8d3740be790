-- porter: dedupe-and-enqueue a batch of events, atomically and in order.
--
-- KEYS[2i-1]  event i's dedupe key
-- KEYS[2i]    the stream event i is appended to (every key of one call is in one hash slot
--             on Redis Cluster)
-- ARGV[1]     approximate MAXLEN for the stream, 0 for no trimming
-- ARGV[6i-4 .. 6i+1], for event i:
--             dedupe TTL in milliseconds; the answer given to the provider (returned for
--             every later duplicate); the event as CloudEvents JSON; its type; its source;
--             its id (so that one event can be found without parsing every entry)
--
-- Returns one value per event: nil when it was appended, or the stored answer when it is a
-- duplicate. Events are handled in order, so an event repeated later in the same call is a
-- duplicate of the earlier one.
local max_len = tonumber(ARGV[1])
local results = {}
for i = 1, #KEYS / 2 do
  local dedupe, stream = KEYS[2 * i - 1], KEYS[2 * i]
  local a = 6 * i - 4
  local original = redis.call('GET', dedupe)
  if original then
    results[i] = original
  else
    if max_len > 0 then
      redis.call('XADD', stream, 'MAXLEN', '~', max_len, '*',
        'event', ARGV[a + 2], 'type', ARGV[a + 3], 'source', ARGV[a + 4], 'id', ARGV[a + 5])
    else
      redis.call('XADD', stream, '*',
        'event', ARGV[a + 2], 'type', ARGV[a + 3], 'source', ARGV[a + 4], 'id', ARGV[a + 5])
    end
    redis.call('SET', dedupe, ARGV[a + 1], 'PX', ARGV[a])
    results[i] = false
  end
end
return results
