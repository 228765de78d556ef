-- subscription_delete: remove a subscription and its throttle.
-- KEYS[1] subscriptions hash   KEYS[2] expiry zset    KEYS[3] notified hash
-- ARGV[1] id
-- Returns 1, or 0 when there was none.
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('HDEL', KEYS[3], ARGV[1])
return redis.call('HDEL', KEYS[1], ARGV[1])
