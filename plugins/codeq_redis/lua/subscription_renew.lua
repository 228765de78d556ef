-- subscription_renew: move the expiry of an existing subscription.
-- KEYS[1] subscriptions hash   KEYS[2] expiry zset
-- ARGV[1] id             ARGV[2] expires_at
-- Returns 1, or 0 when there is no such subscription.
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[1])
return 1
