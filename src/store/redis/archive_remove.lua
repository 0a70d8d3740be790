-- porter: remove archived requests by id, taking their sizes off the byte count.
--
-- KEYS[1]  the archive stream
-- KEYS[2]  the bytes of the entries it holds (same hash slot)
-- ARGV     the entry ids; ids already gone are ignored
--
-- Returns how many entries were removed.
local removed = 0
for i = 1, #ARGV do
  local entry = redis.call('XRANGE', KEYS[1], ARGV[i], ARGV[i])[1]
  if entry then
    local size = 0
    for j = 1, #entry[2], 2 do
      if entry[2][j] == 'size' then size = tonumber(entry[2][j + 1]) end
    end
    removed = removed + redis.call('XDEL', KEYS[1], ARGV[i])
    if size > 0 then redis.call('DECRBY', KEYS[2], size) end
  end
end
return removed
