-- outbox_attempted: record a delivery attempt on a callback taken with `attempts` tries.
-- KEYS[1] outbox zset    KEYS[2] outbox callbacks hash
-- ARGV[1] task id        ARGV[2] attempts when taken
-- ARGV[3] retry_at, or '' to remove the entry (delivered, or given up)
-- Returns 1, or 0 (nothing changed) when the entry is gone or its attempts moved on.
local id = ARGV[1]
local data = redis.call('HGET', KEYS[2], id)
if not data then return 0 end
local entry = cjson.decode(data)
if entry[2] ~= tonumber(ARGV[2]) then return 0 end
if ARGV[3] == '' then
  redis.call('HDEL', KEYS[2], id)
  redis.call('ZREM', KEYS[1], id)
  return 1
end
entry[2] = entry[2] + 1
redis.call('HSET', KEYS[2], id, cjson.encode(entry))
redis.call('ZADD', KEYS[1], ARGV[3], id)
return 1
