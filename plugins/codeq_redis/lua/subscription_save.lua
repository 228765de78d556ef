-- subscription_save: store a subscription (replacing one with the same id).
-- KEYS[1] subscriptions hash   KEYS[2] expiry zset
-- ARGV[1] id             ARGV[2] expires_at     ARGV[3] the subscription (JSON)
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[1])
return 1
