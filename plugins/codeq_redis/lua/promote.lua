-- promote: move the given delayed tasks whose time has come to ready (lifecycle.promote).
-- KEYS[1] delayed zset   KEYS[2] ready zset     KEYS[3] seq string
-- KEYS[2+2i] task hash of candidate i, KEYS[3+2i] its history list
-- ARGV[1] now            ARGV[2] pub/sub channel ARGV[3] command
-- ARGV[3+i] candidate id i
-- Returns {moved, score of the new head of the delayed set or false,
--          1 when the ready set went from empty to non-empty else 0}.
local now = ARGV[1]
local moved, became_ready = 0, 0
for i = 1, #ARGV - 3 do
  local id, tkey, hkey = ARGV[3 + i], KEYS[2 + 2 * i], KEYS[3 + 2 * i]
  local visible = redis.call('ZSCORE', KEYS[1], id)
  if visible and tonumber(visible) <= tonumber(now) then
    redis.call('ZREM', KEYS[1], id)
    local priority = redis.call('HGET', tkey, 'priority')
    became_ready = math.max(became_ready, add_ready(KEYS[2],
      ready_score(priority, next_seq(KEYS[3], now)), id, ARGV[2], ARGV[3]))
    redis.call('HSET', tkey, 'updated_at', now)
    record(hkey, now, 'promoted', nil, nil)
    moved = moved + 1
  end
end
local head = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return {moved, head[2] or false, became_ready}
