-- complete: finish a task with its result (lifecycle.complete); a task with a webhook
-- owes its result callback (lifecycle.callback), written to the outbox in this step.
-- KEYS[1] task hash      KEYS[2] history list   KEYS[3] result string
-- KEYS[4] leases zset    KEYS[5] done zset
-- KEYS[6] outbox zset    KEYS[7] outbox callbacks hash (of the task's slot)
-- ARGV[1] now            ARGV[2] task id        ARGV[3] worker id (optional)
-- ARGV[4] lease id (optional)                   ARGV[5] status COMPLETED | FAILED
-- ARGV[6] error (optional)                      ARGV[7] the result record (JSON)
-- Returns {'OK'}; {'STORED', record, status} when a result exists already (the caller
-- decides between "same submission" and 409); or {'NOTFOUND'}, {'STATE', status},
-- {'FORBIDDEN'}, {'LEASE'}.
local now, id, status = ARGV[1], ARGV[2], ARGV[5]
local worker, err = opt(ARGV[3]), opt(ARGV[6])
local f = redis.call('HMGET', KEYS[1], 'status', 'worker_id', 'lease_id', 'webhook')
if not f[1] then return {'NOTFOUND'} end
local stored = redis.call('GET', KEYS[3])
if stored then return {'STORED', stored, f[1]} end
local refused = check_lease(f[1], f[2], f[3], worker, opt(ARGV[4]))
if refused then return refused end
redis.call('HSET', KEYS[1], 'status', status, 'updated_at', now, 'finished_at', now)
if err then
  redis.call('HSET', KEYS[1], 'error', err)
else
  redis.call('HDEL', KEYS[1], 'error')
end
redis.call('HDEL', KEYS[1], 'lease_id', 'lease_until')
record(KEYS[2], now, string.lower(status), worker, err)
redis.call('ZREM', KEYS[4], id)
redis.call('ZADD', KEYS[5], now, id)
redis.call('SET', KEYS[3], ARGV[7])
owe_callback(f[4], KEYS[6], KEYS[7], id, now)
return {'OK'}
