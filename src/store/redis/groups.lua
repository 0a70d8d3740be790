-- porter: the consumer groups a stream must have before anything is appended to it.
--
-- Shared by the scripts that append (enqueue.lua) and that look after one group (group.lua);
-- it is prepended to each of them when porter loads them.
--
-- Every destination has a consumer group on every stream shard. If Redis loses them (a
-- restart without persistence, a FLUSHALL, a failover to a node that never had them, someone
-- deleting a group), an event appended before the group exists again would never be delivered.
-- So each missing group is created, with MKSTREAM, at its cursor (the last entry porter
-- scheduled for it, kept beside the stream in the same hash slot) or, without a cursor, at
-- `start`. Returns the names of the groups it created.
local function ensure_groups(stream, names, cursors, start)
  local present = {}
  if redis.call('EXISTS', stream) == 1 then
    for _, group in ipairs(redis.call('XINFO', 'GROUPS', stream)) do
      for j = 1, #group, 2 do
        if group[j] == 'name' then present[group[j + 1]] = true end
      end
    end
  end
  local created = {}
  for i = 1, #names do
    if not present[names[i]] then
      local from = redis.call('GET', cursors[i]) or start
      redis.call('XGROUP', 'CREATE', stream, names[i], from, 'MKSTREAM')
      created[#created + 1] = names[i]
    end
  end
  return created
end

-- Whether stream entry id `a` comes after `b` (`b` may be false: nothing yet).
local function later(a, b)
  if not b then return true end
  local am, as = string.match(a, '^(%d+)-(%d+)$')
  local bm, bs = string.match(b, '^(%d+)-(%d+)$')
  if not bm then return true end
  am, as, bm, bs = tonumber(am), tonumber(as), tonumber(bm), tonumber(bs)
  if am ~= bm then return am > bm end
  return as > bs
end
