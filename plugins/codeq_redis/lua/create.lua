-- create: store new PENDING tasks of one command, in order, each ready or delayed. The
-- tasks of one batch request share a call; each is checked and written as if alone.
-- KEYS[1] ready zset     KEYS[2] delayed zset   KEYS[3] all zset       KEYS[4] idem hash
-- KEYS[5] seq string
-- KEYS[4+2i] task hash of task i, KEYS[5+2i] its history list (i = 1..n)
-- ARGV[1] now            ARGV[2] command        ARGV[3] pub/sub channel
-- then for each task, in order: its id, priority, visible_at when delayed ('' when
-- ready), idempotency key (optional, '' or '='..key), the task hash as a JSON object of
-- text values, k the number of history entries, and those k entries (JSON text each)
-- Returns one reply per task, in order: {'EXISTS', id} when the idempotency key is taken
--         (nothing created), {'DUPLICATE'} when the id exists, {'DELAYED', head hint}, or
--         {'READY', 1 when this task made the ready set non-empty else 0}.
local now, command, channel = ARGV[1], ARGV[2], ARGV[3]
local seq = tonumber(redis.call('GET', KEYS[5]) or '0')  -- the last handed out
local was_empty = redis.call('ZCARD', KEYS[1]) == 0
local listed, ready, replies = {}, {}, {}
local a = 4
for i = 1, (#KEYS - 5) / 2 do
  local tkey, hkey = KEYS[4 + 2 * i], KEYS[5 + 2 * i]
  local id, priority, visible, idem = ARGV[a], ARGV[a + 1], ARGV[a + 2], opt(ARGV[a + 3])
  local fields, entries = ARGV[a + 4], tonumber(ARGV[a + 5])
  local first = a + 6
  a = first + entries
  local existing = idem and redis.call('HGET', KEYS[4], idem)
  if existing then
    replies[i] = {'EXISTS', existing}
  elseif redis.call('EXISTS', tkey) == 1 then
    replies[i] = {'DUPLICATE'}
  else
    if idem then redis.call('HSET', KEYS[4], idem, id) end
    store_task(tkey, hkey, fields, first, a - 1)
    seq = seq_after(seq, now)
    listed[#listed + 1] = string.format('%.0f', seq)
    listed[#listed + 1] = id
    if visible ~= '' then
      redis.call('ZADD', KEYS[2], visible, id)
      replies[i] = {'DELAYED', head_hint(KEYS[2], id)}
    else
      ready[#ready + 1] = ready_score(priority, seq)
      ready[#ready + 1] = id
      replies[i] = {'READY', (was_empty and #ready == 2) and 1 or 0}
    end
  end
end
if #listed > 0 then
  redis.call('SET', KEYS[5], string.format('%.0f', seq))
  redis.call('ZADD', KEYS[3], unpack(listed))
end
if #ready > 0 then
  redis.call('ZADD', KEYS[1], unpack(ready))
  if was_empty then redis.call('PUBLISH', channel, command .. ' ' .. ready[2]) end
end
return replies
