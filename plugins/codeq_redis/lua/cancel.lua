-- cancel: PENDING -> CANCELLED, IN_PROGRESS -> cancel requested (lifecycle.cancel).
-- KEYS[1] task hash      KEYS[2] history list   KEYS[3] ready zset   KEYS[4] delayed zset
-- KEYS[5] done zset
-- ARGV[1] now            ARGV[2] task id
-- Returns {'OK', task}, or {'NOTFOUND'}, {'STATE', status} when already terminal.
local now, id = ARGV[1], ARGV[2]
local f = redis.call('HMGET', KEYS[1], 'status', 'cancel_requested', 'worker_id')
if not f[1] then return {'NOTFOUND'} end
if f[1] ~= 'PENDING' and f[1] ~= 'IN_PROGRESS' then return {'STATE', f[1]} end
redis.call('HSET', KEYS[1], 'updated_at', now)
if f[1] == 'PENDING' then
  redis.call('HSET', KEYS[1], 'status', 'CANCELLED', 'finished_at', now)
  record(KEYS[2], now, 'cancelled', nil, nil)
  redis.call('ZREM', KEYS[3], id)
  redis.call('ZREM', KEYS[4], id)
  redis.call('ZADD', KEYS[5], now, id)
elseif f[2] ~= '1' then
  redis.call('HSET', KEYS[1], 'cancel_requested', '1')
  record(KEYS[2], now, 'cancel_requested', f[3] or nil, nil)
end
return {'OK', dump(KEYS[1], KEYS[2])}
