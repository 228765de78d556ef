-- Helpers shared by every script; codeq_redis.scripts prepends this file (and the
-- constants HISTORY_LIMIT and TIER) to each script before loading it.
--
-- Conventions of all scripts:
--   * every key is passed in KEYS; nothing is built here;
--   * numbers arrive as the decimal text Python made (repr of a float) and are
--     stored as that text, so they come back bit for bit;
--   * an optional text argument is '' for "none" or '=' .. value;
--   * a task is returned as {HGETALL of its hash, LRANGE of its history}.

local function opt(v)
  if v == nil or v == '' then return nil end
  return string.sub(v, 2)
end

-- Append one timeline entry [at, event, workerId, reason], keeping the last HISTORY_LIMIT.
local function record(key, at, event, worker, reason)
  local length = redis.call('RPUSH', key,
    cjson.encode({at, event, worker or cjson.null, reason or cjson.null}))
  if length > HISTORY_LIMIT then redis.call('LTRIM', key, -HISTORY_LIMIT, -1) end
end

-- A per-command sequence: strictly increasing, close to now in units of 10 microseconds,
-- so that sequences of different commands compare as "became ready earlier".
local function seq_after(last, now)
  return math.max(last + 1, math.floor(tonumber(now) * 100000))
end

local function next_seq(key, now)
  local seq = seq_after(tonumber(redis.call('GET', key) or '0'), now)
  redis.call('SET', key, string.format('%.0f', seq))
  return seq
end

-- Ready-set score: priority 9 first, then the sequence (FIFO). Exact below 2^53.
local function ready_score(priority, seq)
  return string.format('%.0f', (9 - tonumber(priority)) * TIER + seq)
end

-- Add to a ready set; PUBLISH '<command> <id>' when the set was empty. A claim waits only
-- after it saw the set empty, so the empty -> non-empty step is the one to announce.
-- Returns 1 when the set was empty (the caller emits ``available``), else 0.
local function add_ready(ready_key, score, id, channel, command)
  local was_empty = redis.call('ZCARD', ready_key) == 0
  redis.call('ZADD', ready_key, score, id)
  if was_empty then
    redis.call('PUBLISH', channel, command .. ' ' .. id)
    return 1
  end
  return 0
end

-- codeq.core.lifecycle.callback: a task with a webhook that just ended COMPLETED or
-- FAILED owes a callback, due now, with no attempt made yet. Tasks without one pay nothing.
local function owe_callback(webhook, outbox_key, callbacks_key, id, now)
  if not webhook then return end
  redis.call('HSET', callbacks_key, id, cjson.encode({webhook, 0}))
  redis.call('ZADD', outbox_key, now, id)
end

-- codeq.core.lifecycle.check_lease: nil when allowed, else the refusal to return.
local function check_lease(status, owner, current, worker, lease)
  if status ~= 'IN_PROGRESS' then return {'STATE', status} end
  if worker and owner ~= worker then return {'FORBIDDEN'} end
  if lease and lease ~= current then return {'LEASE'} end
  return nil
end

-- Write a new task: its hash from a JSON object of text values, then its history
-- entries (ARGV[first .. last], JSON text each).
local function store_task(task_key, history_key, fields_json, first, last)
  local fields = {}
  for name, value in pairs(cjson.decode(fields_json)) do
    fields[#fields + 1] = name
    fields[#fields + 1] = value
  end
  redis.call('HSET', task_key, unpack(fields))
  if last >= first then redis.call('RPUSH', history_key, unpack(ARGV, first, last)) end
end

local function dump(task_key, history_key)
  return {redis.call('HGETALL', task_key), redis.call('LRANGE', history_key, 0, -1)}
end

-- The score of `member` when it is now the head of the sorted set, else false: the
-- caller then lowers the command's entry in the global due index.
local function head_hint(zkey, member)
  local head = redis.call('ZRANGE', zkey, 0, 0, 'WITHSCORES')
  if head[1] == member then return head[2] end
  return false
end
