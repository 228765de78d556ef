-- redrive: DLQ -> ready with attempts reset (lifecycle.redrive); ids not in this DLQ are skipped.
-- KEYS[1] dlq zset       KEYS[2] ready zset     KEYS[3] done zset    KEYS[4] seq string
-- KEYS[3+2i] task hash of candidate i, KEYS[4+2i] its history list
-- ARGV[1] now            ARGV[2] pub/sub channel ARGV[3] command
-- ARGV[3+i] candidate id i
-- Returns {moved, 1 when the ready set went from empty to non-empty else 0}.
local now = ARGV[1]
local moved, became_ready = 0, 0
for i = 1, #ARGV - 3 do
  local id, tkey, hkey = ARGV[3 + i], KEYS[3 + 2 * i], KEYS[4 + 2 * i]
  if redis.call('ZREM', KEYS[1], id) == 1 then
    redis.call('ZREM', KEYS[3], id)
    redis.call('HSET', tkey, 'status', 'PENDING', 'attempts', '0', 'updated_at', now)
    redis.call('HDEL', tkey, 'dead_lettered', 'error', 'worker_id', 'finished_at', 'visible_at')
    record(hkey, now, 'redriven', nil, nil)
    local priority = redis.call('HGET', tkey, 'priority')
    became_ready = math.max(became_ready, add_ready(KEYS[2],
      ready_score(priority, next_seq(KEYS[4], now)), id, ARGV[2], ARGV[3]))
    moved = moved + 1
  end
end
return {moved, became_ready}
