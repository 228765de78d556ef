-- mark_notified: claim the right to notify a subscription at `now` (the shared throttle).
-- KEYS[1] notified hash      KEYS[2] subscriptions hash
-- ARGV[1] subscription id      ARGV[2] now      ARGV[3] min interval (seconds)
-- Returns 1 (and remembers now), or 0 when it was notified less than the interval ago or
-- the subscription is gone.
if redis.call('HEXISTS', KEYS[2], ARGV[1]) == 0 then return 0 end
local last = redis.call('HGET', KEYS[1], ARGV[1])
if last and tonumber(ARGV[2]) - tonumber(last) < tonumber(ARGV[3]) then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return 1
