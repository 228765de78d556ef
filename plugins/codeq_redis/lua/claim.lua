-- claim: lease candidates that are still ready to one or more claimers (lifecycle.claim).
-- The caller peeked the head of the ready set and passes the candidates best first;
-- one that another claim took meanwhile is skipped. The claimers are the claims of one
-- server process that arrived together: they are served in order, each taking its count
-- of the best tasks left.
-- With `lone` set the caller did not peek: its one candidate is the task whose arrival
-- made the ready set non-empty, or the head a previous claim answered. It is claimed
-- only while it is still the head, no delayed task is due and (when more than one is
-- wanted) nothing else is ready; otherwise the answer is 'STALE' and the caller peeks.
-- KEYS[1] ready zset     KEYS[2] leases zset    KEYS[3] paused flag   KEYS[4] delayed zset
-- KEYS[3+2i] task hash of candidate i, KEYS[4+2i] its history list (i = 1..m)
-- ARGV[1] now            ARGV[2] lone ('1' or '')  ARGV[3] n, the number of claimers
-- ARGV[1+3j], ARGV[2+3j], ARGV[3+3j]: claimer j's worker id, lease_until, count (j = 1..n)
-- ARGV[2+3n+2i] candidate id i, ARGV[3+3n+2i] the fresh lease id for it
-- Returns {head, task, task, ...}: the claimed tasks in order, claimer 1's first (none
--         when the command is paused), after the id now at the head of the ready set
--         (false when it is empty or paused), which the caller may try as its next lone
--         candidate; {'STALE'} when a lone candidate is not the one to claim.
local now, n = ARGV[1], tonumber(ARGV[3])
local wanted = 0
for j = 1, n do wanted = wanted + tonumber(ARGV[3 + 3 * j]) end
local out = {false}
if redis.call('EXISTS', KEYS[3]) == 1 then return out end
local first = 2 + 3 * n
if ARGV[2] == '1' then
  local head = redis.call('ZRANGE', KEYS[1], 0, 0)
  if head[1] ~= ARGV[first + 2]
      or (wanted > 1 and redis.call('ZCARD', KEYS[1]) > 1)
      or redis.call('ZRANGEBYSCORE', KEYS[4], '-inf', now, 'LIMIT', 0, 1)[1] then
    return {'STALE'}
  end
end
local j, left = 1, tonumber(ARGV[3 + 3])  -- claimer 1 and the count it wants
local i = 1
while 4 + 2 * i <= #KEYS and j <= n do
  local id, tkey, hkey = ARGV[first + 2 * i], KEYS[3 + 2 * i], KEYS[4 + 2 * i]
  if redis.call('ZREM', KEYS[1], id) == 1 then
    local worker, lease_until = ARGV[1 + 3 * j], ARGV[2 + 3 * j]
    redis.call('HSET', tkey, 'status', 'IN_PROGRESS', 'worker_id', worker,
      'lease_id', ARGV[first + 1 + 2 * i], 'lease_until', lease_until, 'updated_at', now)
    redis.call('HINCRBY', tkey, 'attempts', 1)
    record(hkey, now, 'claimed', worker, nil)
    redis.call('ZADD', KEYS[2], lease_until, id)
    out[#out + 1] = dump(tkey, hkey)
    left = left - 1
    while left == 0 and j <= n do  -- the next claimer that still wants a task
      j = j + 1
      left = j <= n and tonumber(ARGV[3 + 3 * j]) or 0
    end
  end
  i = i + 1
end
out[1] = redis.call('ZRANGE', KEYS[1], 0, 0)[1] or false
return out
