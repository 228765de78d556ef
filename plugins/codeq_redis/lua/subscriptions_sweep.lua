-- subscriptions_sweep: delete up to `limit` subscriptions expired at `now`.
-- KEYS[1] subscriptions hash   KEYS[2] expiry zset    KEYS[3] notified hash
-- ARGV[1] now            ARGV[2] limit
-- Returns how many were deleted.
local expired = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ARGV[1], 'LIMIT', 0,
  tonumber(ARGV[2]))
for _, id in ipairs(expired) do
  redis.call('ZREM', KEYS[2], id)
  redis.call('HDEL', KEYS[3], id)
  redis.call('HDEL', KEYS[1], id)
end
return #expired
