-- porter: dedupe-and-enqueue one event, atomically.
--
-- KEYS[1]  the event's dedupe key
-- KEYS[2]  the stream it is appended to (same hash slot as KEYS[1] on Redis Cluster)
-- ARGV[1]  dedupe TTL in milliseconds
-- ARGV[2]  the answer given to the provider, returned for every duplicate
-- ARGV[3]  the event, CloudEvents JSON
-- ARGV[4]  the event type
-- ARGV[5]  the event source
-- ARGV[6]  approximate MAXLEN for the stream, 0 for no trimming
-- ARGV[7]  the event id (so that one event can be found without parsing every entry)
--
-- Returns nil when the event was appended, or the stored answer when it is a duplicate.
local original = redis.call('GET', KEYS[1])
if original then
  return original
end
if tonumber(ARGV[6]) > 0 then
  redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[6], '*',
    'event', ARGV[3], 'type', ARGV[4], 'source', ARGV[5], 'id', ARGV[7])
else
  redis.call('XADD', KEYS[2], '*',
    'event', ARGV[3], 'type', ARGV[4], 'source', ARGV[5], 'id', ARGV[7])
end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[1])
return false
