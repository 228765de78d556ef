-- cleanup: delete terminal tasks that finished before a time, with every trace.
-- KEYS[1] done zset      KEYS[2] all zset       KEYS[3] idem hash    KEYS[4] dlq zset
-- KEYS[5i .. 5i+4] of candidate i: task hash, history list, result string, outbox zset,
--                  outbox callbacks hash
-- ARGV[1] finished_before (exclusive)
-- ARGV[1+i] candidate id i
-- Returns the ids deleted.
local deleted = {}
for i = 1, #ARGV - 1 do
  local id = ARGV[1 + i]
  local finished = redis.call('ZSCORE', KEYS[1], id)
  if finished and tonumber(finished) < tonumber(ARGV[1]) then
    local tkey = KEYS[5 * i]
    local idem = redis.call('HGET', tkey, 'idempotency_key')
    if idem and redis.call('HGET', KEYS[3], idem) == id then redis.call('HDEL', KEYS[3], idem) end
    redis.call('DEL', tkey, KEYS[5 * i + 1], KEYS[5 * i + 2])
    redis.call('ZREM', KEYS[5 * i + 3], id)
    redis.call('HDEL', KEYS[5 * i + 4], id)
    redis.call('ZREM', KEYS[1], id)
    redis.call('ZREM', KEYS[2], id)
    redis.call('ZREM', KEYS[4], id)
    deleted[#deleted + 1] = id
  end
end
return deleted
