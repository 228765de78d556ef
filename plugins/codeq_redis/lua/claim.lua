-- claim: lease up to `count` of the given candidates that are still ready (lifecycle.claim).
-- The caller peeked the head of the ready set and passes the candidates best first;
-- one that another claim took meanwhile is skipped.
-- KEYS[1] ready zset     KEYS[2] leases zset    KEYS[3] paused flag
-- KEYS[2+2i] task hash of candidate i, KEYS[3+2i] its history list (i = 1..m)
-- ARGV[1] now            ARGV[2] worker id      ARGV[3] lease_until  ARGV[4] count
-- ARGV[3+2i] candidate id i, ARGV[4+2i] the fresh lease id for it
-- Returns {head hint of the leases set or false, task, task, ...} (claimed tasks, in order);
--         {false} when the command is paused.
local now, worker, lease_until, count = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4])
local out = {false}
if redis.call('EXISTS', KEYS[3]) == 1 then return out end
local claimed = {}
local i = 1
while 3 + 2 * i <= #KEYS and #out - 1 < count do
  local id, tkey, hkey = ARGV[3 + 2 * i], KEYS[2 + 2 * i], KEYS[3 + 2 * i]
  if redis.call('ZREM', KEYS[1], id) == 1 then
    redis.call('HSET', tkey, 'status', 'IN_PROGRESS', 'worker_id', worker,
      'lease_id', ARGV[4 + 2 * i], 'lease_until', lease_until, 'updated_at', now)
    redis.call('HINCRBY', tkey, 'attempts', 1)
    record(hkey, now, 'claimed', worker, nil)
    redis.call('ZADD', KEYS[2], lease_until, id)
    claimed[id] = true
    out[#out + 1] = dump(tkey, hkey)
  end
  i = i + 1
end
local head = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')
if head[1] and claimed[head[1]] then out[1] = head[2] end
return out
