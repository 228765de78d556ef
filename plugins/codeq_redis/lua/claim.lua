-- claim: lease up to `count` of the given candidates that are still ready (lifecycle.claim).
-- The caller peeked the head of the ready set and passes the candidates best first;
-- one that another claim took meanwhile is skipped.
-- With `lone` set the caller did not peek: its one candidate is the task whose arrival
-- made the ready set non-empty, or the head a previous claim answered. It is claimed
-- only while it is still the head, no delayed
-- task is due and (when more than one is wanted) nothing else is ready; otherwise the
-- answer is 'STALE' and the caller peeks.
-- KEYS[1] ready zset     KEYS[2] leases zset    KEYS[3] paused flag   KEYS[4] delayed zset
-- KEYS[3+2i] task hash of candidate i, KEYS[4+2i] its history list (i = 1..m)
-- ARGV[1] now            ARGV[2] worker id      ARGV[3] lease_until  ARGV[4] count
-- ARGV[5] lone ('1' or '')
-- ARGV[4+2i] candidate id i, ARGV[5+2i] the fresh lease id for it
-- Returns {head, task, task, ...}: the claimed tasks in order (none when the command is
--         paused) after the id now at the head of the ready set (false when it is empty
--         or paused), which the caller may try as its next lone candidate;
--         {'STALE'} when a lone candidate is not the one to claim.
local now, worker, lease_until, count = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4])
local out = {false}
if redis.call('EXISTS', KEYS[3]) == 1 then return out end
if ARGV[5] == '1' then
  local head = redis.call('ZRANGE', KEYS[1], 0, 0)
  if head[1] ~= ARGV[6]
      or (count > 1 and redis.call('ZCARD', KEYS[1]) > 1)
      or redis.call('ZRANGEBYSCORE', KEYS[4], '-inf', now, 'LIMIT', 0, 1)[1] then
    return {'STALE'}
  end
end
local i = 1
while 4 + 2 * i <= #KEYS and #out - 1 < count do
  local id, tkey, hkey = ARGV[4 + 2 * i], KEYS[3 + 2 * i], KEYS[4 + 2 * i]
  if redis.call('ZREM', KEYS[1], id) == 1 then
    redis.call('HSET', tkey, 'status', 'IN_PROGRESS', 'worker_id', worker,
      'lease_id', ARGV[5 + 2 * i], 'lease_until', lease_until, 'updated_at', now)
    redis.call('HINCRBY', tkey, 'attempts', 1)
    record(hkey, now, 'claimed', worker, nil)
    redis.call('ZADD', KEYS[2], lease_until, id)
    out[#out + 1] = dump(tkey, hkey)
  end
  i = i + 1
end
out[1] = redis.call('ZRANGE', KEYS[1], 0, 0)[1] or false
return out
