-- outbox_take: take the first `count` due callbacks of one slot's outbox and hold them.
-- Each one taken is due again at hold_until, so no other dispatcher sends that attempt
-- meanwhile (a dispatcher that dies mid-delivery leaves it to be retried then).
-- KEYS[1] outbox zset    KEYS[2] outbox callbacks hash
-- ARGV[1] now            ARGV[2] count          ARGV[3] hold_until
-- Returns {id, due_at when taken, JSON [url, attempts], id, ...}, oldest due first.
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'WITHSCORES',
  'LIMIT', 0, tonumber(ARGV[2]))
local out = {}
for i = 1, #due, 2 do
  local id = due[i]
  out[#out + 1] = id
  out[#out + 1] = due[i + 1]
  out[#out + 1] = redis.call('HGET', KEYS[2], id)
  redis.call('ZADD', KEYS[1], ARGV[3], id)
end
return out
