-- requeue: nack, abandon or lease expiry (lifecycle.nack / abandon / expire); a task with
-- a webhook that is dead-lettered owes its result callback (lifecycle.callback).
-- KEYS[1] task hash      KEYS[2] history list   KEYS[3] leases zset  KEYS[4] ready zset
-- KEYS[5] delayed zset   KEYS[6] dlq zset       KEYS[7] done zset    KEYS[8] seq string
-- KEYS[9] outbox zset    KEYS[10] outbox callbacks hash (of the task's slot)
-- ARGV[1] now            ARGV[2] task id        ARGV[3] mode: nack | abandon | expire
-- ARGV[4] worker id (optional; nack and abandon check ownership)
-- ARGV[5] lease id (optional for nack/abandon; required for expire, the lease being expired)
-- ARGV[6] visible_at when requeued with a delay, '' to requeue ready
-- ARGV[7] reason (optional)  ARGV[8] pub/sub channel  ARGV[9] command
-- Returns {outcome, head hint of the delayed set or false, task, became_ready} with outcome
--   REQUEUED | DLQ | CANCELLED; or {'NOTFOUND'}, {'STATE', status}, {'FORBIDDEN'}, {'LEASE'};
--   or {'MOVED'} when an expire finds the lease renewed or gone. became_ready is 1 when
--   the task went into an empty ready set, else 0.
local now, id, mode = ARGV[1], ARGV[2], ARGV[3]
local worker, lease, visible, reason = opt(ARGV[4]), opt(ARGV[5]), ARGV[6], opt(ARGV[7])
local f = redis.call('HMGET', KEYS[1], 'status', 'worker_id', 'lease_id', 'lease_until',
  'attempts', 'max_attempts', 'cancel_requested', 'priority', 'webhook')
if not f[1] then return {'NOTFOUND'} end
local event
if mode == 'expire' then
  if f[1] ~= 'IN_PROGRESS' or f[3] ~= lease or not f[4] or tonumber(f[4]) > tonumber(now) then
    return {'MOVED'}
  end
  event = 'lease_expired'
else
  local refused = check_lease(f[1], f[2], f[3], worker, lease)
  if refused then return refused end
  event = mode == 'nack' and 'nacked' or 'abandoned'
end
local owner = f[2] or nil
redis.call('ZREM', KEYS[3], id)
redis.call('HDEL', KEYS[1], 'lease_id', 'lease_until')
redis.call('HSET', KEYS[1], 'updated_at', now)
if f[7] == '1' then
  redis.call('HSET', KEYS[1], 'status', 'CANCELLED', 'finished_at', now)
  record(KEYS[2], now, event, owner, reason)
  record(KEYS[2], now, 'cancelled', nil, 'cancel requested while running')
  redis.call('ZADD', KEYS[7], now, id)
  return {'CANCELLED', false, dump(KEYS[1], KEYS[2]), 0}
end
if mode ~= 'abandon' and tonumber(f[5]) >= tonumber(f[6]) then
  redis.call('HSET', KEYS[1], 'status', 'FAILED', 'error', 'MAX_ATTEMPTS', 'dead_lettered', '1',
    'finished_at', now)
  record(KEYS[2], now, event, owner, reason)
  record(KEYS[2], now, 'dead_lettered', nil, 'MAX_ATTEMPTS')
  redis.call('ZADD', KEYS[6], string.format('%.0f', next_seq(KEYS[8], now)), id)
  redis.call('ZADD', KEYS[7], now, id)
  owe_callback(f[9], KEYS[9], KEYS[10], id, now)
  return {'DLQ', false, dump(KEYS[1], KEYS[2]), 0}
end
redis.call('HSET', KEYS[1], 'status', 'PENDING')
redis.call('HDEL', KEYS[1], 'worker_id')
if reason then redis.call('HSET', KEYS[1], 'error', reason) end
record(KEYS[2], now, event, owner, reason)
if visible ~= '' then
  redis.call('HSET', KEYS[1], 'visible_at', visible)
  redis.call('ZADD', KEYS[5], visible, id)
  return {'REQUEUED', head_hint(KEYS[5], id), dump(KEYS[1], KEYS[2]), 0}
end
redis.call('HDEL', KEYS[1], 'visible_at')
local became_ready = add_ready(KEYS[4], ready_score(f[8], next_seq(KEYS[8], now)), id,
  ARGV[8], ARGV[9])
return {'REQUEUED', false, dump(KEYS[1], KEYS[2]), became_ready}
