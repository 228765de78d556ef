-- create: store a new PENDING task, ready or delayed.
-- KEYS[1] task hash      KEYS[2] history list   KEYS[3] ready zset   KEYS[4] delayed zset
-- KEYS[5] all zset       KEYS[6] idem hash      KEYS[7] seq string
-- ARGV[1] now            ARGV[2] task id        ARGV[3] command      ARGV[4] priority
-- ARGV[5] visible_at when delayed, '' when ready
-- ARGV[6] idempotency key (optional, '' or '='..key)
-- ARGV[7] pub/sub channel
-- ARGV[8] the task hash as a JSON object of text values
-- ARGV[9 ..] the history entries (JSON text each)
-- Returns {'EXISTS', id} when the idempotency key is taken (nothing created),
--         {'DUPLICATE'} when the id exists, {'DELAYED', head hint}, or
--         {'READY', 1 when the ready set was empty before else 0}.
local now, id, command, visible = ARGV[1], ARGV[2], ARGV[3], ARGV[5]
local idem = opt(ARGV[6])
if idem then
  local existing = redis.call('HGET', KEYS[6], idem)
  if existing then return {'EXISTS', existing} end
end
if redis.call('EXISTS', KEYS[1]) == 1 then return {'DUPLICATE'} end
if idem then redis.call('HSET', KEYS[6], idem, id) end
store_task(KEYS[1], KEYS[2], ARGV[8], 9)
local seq = next_seq(KEYS[7], now)
redis.call('ZADD', KEYS[5], string.format('%.0f', seq), id)
if visible ~= '' then
  redis.call('ZADD', KEYS[4], visible, id)
  return {'DELAYED', head_hint(KEYS[4], id)}
end
return {'READY', add_ready(KEYS[3], ready_score(ARGV[4], seq), id, ARGV[7], command)}
