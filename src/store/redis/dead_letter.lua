-- porter: dead-letter a job, unless an erasure took its entry.
--
-- KEYS[1]  the dead-letter stream
-- KEYS[2]  the entries erasures took (a sorted set by time, in the same hash slot)
-- ARGV[1]  the job's "<shard>:<entry>"
-- ARGV[2…] the dead letter's field/value pairs
--
-- An erasure marks each entry it takes before it searches the dead letters; a worker whose
-- attempt was in flight meanwhile finds the mark here and writes nothing, so the dead letter
-- can never bring the erased event back. Returns 1 when written, 0 when the entry was erased.
if redis.call('ZSCORE', KEYS[2], ARGV[1]) then
  return 0
end
redis.call('XADD', KEYS[1], '*', unpack(ARGV, 2))
return 1
