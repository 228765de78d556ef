-- claim: lease candidates that are still ready to one or more claimers (lifecycle.claim).
-- The caller peeked the head of the ready set and passes the candidates best first;
-- one that another claim took meanwhile is skipped (one ZMSCORE checks them all). The
-- claimers are the claims of one server process that arrived together: they are served
-- in order, each taking its count of the best tasks left.
-- With `lone` set the caller did not peek: its candidates are the task whose arrival
-- made the ready set non-empty, or the heads a previous claim answered. The candidates
-- still ready are claimed (as many as wanted) only while they are the best ready tasks,
-- in order, and no delayed task is due; otherwise the answer is 'STALE' and the caller
-- peeks. Taking fewer than wanted is fine: the caller peeks for the rest.
-- KEYS[1] ready zset     KEYS[2] leases zset    KEYS[3] paused flag   KEYS[4] delayed zset
-- KEYS[3+2i] task hash of candidate i, KEYS[4+2i] its history list (i = 1..m)
-- ARGV[1] now            ARGV[2] lone ('1' or '')  ARGV[3] heads, how many ids to answer
-- ARGV[4] ids ('1': answer each claimed task as {id, lease id}, '': as the task itself)
-- ARGV[5] n, the number of claimers
-- ARGV[3+3j], ARGV[4+3j], ARGV[5+3j]: claimer j's worker id, lease_until, count (j = 1..n)
-- ARGV[4+3n+2i] candidate id i, ARGV[5+3n+2i] the fresh lease id for it
-- Returns {heads, task, task, ...}: the claimed tasks in order, claimer 1's first (none
--         when the command is paused), after the best ids now ready, at most `heads` of
--         them (false when paused), which the caller may try as its next lone
--         candidates; {'STALE'} when lone candidates are not the ones to claim.
--         A batch asks for ids: a task read inside a script costs Redis four times what
--         the same HGETALL and LRANGE cost pipelined, so the caller reads them after.
local now, as_ids, n = ARGV[1], ARGV[4] == '1', tonumber(ARGV[5])
local wanted = 0
for j = 1, n do wanted = wanted + tonumber(ARGV[5 + 3 * j]) end
local out = {false}
if redis.call('EXISTS', KEYS[3]) == 1 then return out end
local first = 4 + 3 * n
local ids = {}
for i = 1, (#KEYS - 4) / 2 do ids[i] = ARGV[first + 2 * i] end
-- false where another claim took the candidate; a candidate is taken once
local ready = #ids > 0 and redis.call('ZMSCORE', KEYS[1], unpack(ids)) or {}
if ARGV[2] == '1' then
  local still = {}
  for i = 1, #ids do
    if ready[i] then still[#still + 1] = ids[i] end
  end
  local take = math.min(#still, wanted)
  if take == 0 or redis.call('ZRANGEBYSCORE', KEYS[4], '-inf', now, 'LIMIT', 0, 1)[1] then
    return {'STALE'}
  end
  local best = redis.call('ZRANGE', KEYS[1], 0, take - 1)
  for x = 1, take do
    if best[x] ~= still[x] then return {'STALE'} end
  end
end
local j, left = 1, tonumber(ARGV[5 + 3])  -- claimer 1 and the count it wants
local taken, leased, held = {}, {}, {}
for i = 1, #ids do
  if j > n then break end
  local id = ids[i]
  if ready[i] and not held[id] then
    local tkey, hkey = KEYS[3 + 2 * i], KEYS[4 + 2 * i]
    local worker, lease_until, lease = ARGV[3 + 3 * j], ARGV[4 + 3 * j], ARGV[first + 1 + 2 * i]
    redis.call('HSET', tkey, 'status', 'IN_PROGRESS', 'worker_id', worker,
      'lease_id', lease, 'lease_until', lease_until, 'updated_at', now)
    redis.call('HINCRBY', tkey, 'attempts', 1)
    record(hkey, now, 'claimed', worker, nil)
    held[id] = true
    taken[#taken + 1] = id
    leased[#leased + 1] = lease_until
    leased[#leased + 1] = id
    out[#out + 1] = as_ids and {id, lease} or dump(tkey, hkey)
    left = left - 1
    while left == 0 and j <= n do  -- the next claimer that still wants a task
      j = j + 1
      left = j <= n and tonumber(ARGV[5 + 3 * j]) or 0
    end
  end
end
if #taken > 0 then
  redis.call('ZREM', KEYS[1], unpack(taken))
  redis.call('ZADD', KEYS[2], unpack(leased))
end
out[1] = redis.call('ZRANGE', KEYS[1], 0, tonumber(ARGV[3]) - 1)
return out
