-- restore: insert a task exactly as another store had it, in the queue its state says.
-- KEYS[1] task hash      KEYS[2] history list   KEYS[3] result string
-- KEYS[4] ready zset     KEYS[5] delayed zset   KEYS[6] leases zset  KEYS[7] dlq zset
-- KEYS[8] done zset      KEYS[9] all zset       KEYS[10] idem hash   KEYS[11] seq string
-- ARGV[1] now (orders restored tasks: listing, ready and DLQ order follow restore order)
-- ARGV[2] task id        ARGV[3] queue: ready | delayed | leases | dlq | done
-- ARGV[4] its score there: visible_at | lease_until | finished_at ('' for ready)
-- ARGV[5] priority       ARGV[6] idempotency key (optional)
-- ARGV[7] the result record (optional JSON)     ARGV[8] pub/sub channel ARGV[9] command
-- ARGV[10] the task hash as a JSON object of text values
-- ARGV[11 ..] the history entries (JSON text each)
-- Returns {'DUPLICATE'} when the id exists (nothing changed), else
--         {'OK', head hint of the delayed or leases set or false, became_ready 1 | 0}.
local now, id, queue, score = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
if redis.call('EXISTS', KEYS[1]) == 1 then return {'DUPLICATE'} end
store_task(KEYS[1], KEYS[2], ARGV[10], 11, #ARGV)
local result, idem = opt(ARGV[7]), opt(ARGV[6])
if result then redis.call('SET', KEYS[3], result) end
if idem then redis.call('HSET', KEYS[10], idem, id) end
local seq = next_seq(KEYS[11], now)
redis.call('ZADD', KEYS[9], string.format('%.0f', seq), id)
if queue == 'ready' then
  return {'OK', false, add_ready(KEYS[4], ready_score(ARGV[5], seq), id, ARGV[8], ARGV[9])}
elseif queue == 'delayed' then
  redis.call('ZADD', KEYS[5], score, id)
  return {'OK', head_hint(KEYS[5], id), 0}
elseif queue == 'leases' then
  redis.call('ZADD', KEYS[6], score, id)
  return {'OK', head_hint(KEYS[6], id), 0}
end
if queue == 'dlq' then
  redis.call('ZADD', KEYS[7], string.format('%.0f', seq), id)
end
redis.call('ZADD', KEYS[8], score, id)
return {'OK', false, 0}
