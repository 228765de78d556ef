-- cleanup: delete terminal tasks that finished before a time, with every trace.
-- KEYS[1] done zset      KEYS[2] all zset       KEYS[3] idem hash    KEYS[4] dlq zset
-- KEYS[2+3i] task hash of candidate i, KEYS[3+3i] its history list, KEYS[4+3i] its result
-- ARGV[1] finished_before (exclusive)
-- ARGV[1+i] candidate id i
-- Returns the number of tasks deleted.
local deleted = 0
for i = 1, #ARGV - 1 do
  local id = ARGV[1 + i]
  local finished = redis.call('ZSCORE', KEYS[1], id)
  if finished and tonumber(finished) < tonumber(ARGV[1]) then
    local tkey = KEYS[2 + 3 * i]
    local idem = redis.call('HGET', tkey, 'idempotency_key')
    if idem and redis.call('HGET', KEYS[3], idem) == id then redis.call('HDEL', KEYS[3], idem) end
    redis.call('DEL', tkey, KEYS[3 + 3 * i], KEYS[4 + 3 * i])
    redis.call('ZREM', KEYS[1], id)
    redis.call('ZREM', KEYS[2], id)
    redis.call('ZREM', KEYS[4], id)
    deleted = deleted + 1
  end
end
return deleted
