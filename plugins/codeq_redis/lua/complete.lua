-- complete: finish tasks of one command with their results (lifecycle.complete), in
-- order, each checked as if alone; a task with a webhook owes its result callback
-- (lifecycle.callback), written to the outbox in this step.
-- KEYS[1] leases zset    KEYS[2] done zset
-- KEYS[3] outbox zset    KEYS[4] outbox callbacks hash (of the tasks' slot)
-- KEYS[2+3i] task hash of task i, KEYS[3+3i] its history list, KEYS[4+3i] its result
-- string (i = 1..n)
-- ARGV[1] now; then six for each task, in order: its id, worker id (optional), lease id
-- (optional), status COMPLETED | FAILED, error (optional), the result record (JSON)
-- Returns one reply per task, in order: {'OK'}; {'STORED', record, status} when a result
-- exists already (the caller decides between "same submission" and 409); or
-- {'NOTFOUND'}, {'STATE', status}, {'FORBIDDEN'}, {'LEASE'}.
local now = ARGV[1]
local finished, done, replies = {}, {}, {}
for i = 1, (#KEYS - 4) / 3 do
  local tkey, hkey, rkey = KEYS[2 + 3 * i], KEYS[3 + 3 * i], KEYS[4 + 3 * i]
  local a = 2 + 6 * (i - 1)
  local id, worker, status, err = ARGV[a], opt(ARGV[a + 1]), ARGV[a + 3], opt(ARGV[a + 4])
  local f = redis.call('HMGET', tkey, 'status', 'worker_id', 'lease_id', 'webhook')
  local stored = f[1] and redis.call('GET', rkey)
  if not f[1] then
    replies[i] = {'NOTFOUND'}
  elseif stored then
    replies[i] = {'STORED', stored, f[1]}
  else
    replies[i] = check_lease(f[1], f[2], f[3], worker, opt(ARGV[a + 2])) or {'OK'}
  end
  if replies[i][1] == 'OK' then
    if err then
      redis.call('HSET', tkey, 'status', status, 'updated_at', now, 'finished_at', now,
        'error', err)
      redis.call('HDEL', tkey, 'lease_id', 'lease_until')
    else
      redis.call('HSET', tkey, 'status', status, 'updated_at', now, 'finished_at', now)
      redis.call('HDEL', tkey, 'lease_id', 'lease_until', 'error')
    end
    record(hkey, now, string.lower(status), worker, err)
    redis.call('SET', rkey, ARGV[a + 5])
    owe_callback(f[4], KEYS[3], KEYS[4], id, now)
    finished[#finished + 1] = id
    done[#done + 1] = now
    done[#done + 1] = id
  end
end
if #finished > 0 then
  redis.call('ZREM', KEYS[1], unpack(finished))
  redis.call('ZADD', KEYS[2], unpack(done))
end
return replies
