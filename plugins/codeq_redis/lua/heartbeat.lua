-- heartbeat: move the lease deadline (lifecycle.heartbeat).
-- KEYS[1] task hash      KEYS[2] history list   KEYS[3] leases zset
-- ARGV[1] now            ARGV[2] task id        ARGV[3] worker id (optional)
-- ARGV[4] lease id (optional)                   ARGV[5] new lease_until
-- Returns {'OK', head hint, task}, or {'NOTFOUND'}, {'STATE', status}, {'FORBIDDEN'}, {'LEASE'}.
local now, id = ARGV[1], ARGV[2]
local f = redis.call('HMGET', KEYS[1], 'status', 'worker_id', 'lease_id')
if not f[1] then return {'NOTFOUND'} end
local refused = check_lease(f[1], f[2], f[3], opt(ARGV[3]), opt(ARGV[4]))
if refused then return refused end
redis.call('HSET', KEYS[1], 'lease_until', ARGV[5], 'updated_at', now)
redis.call('ZADD', KEYS[3], ARGV[5], id)
return {'OK', head_hint(KEYS[3], id), dump(KEYS[1], KEYS[2])}
