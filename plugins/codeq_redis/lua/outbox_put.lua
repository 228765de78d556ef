-- outbox_put: put a callback as it is, replacing the one of the same task (migration).
-- KEYS[1] outbox zset    KEYS[2] outbox callbacks hash
-- ARGV[1] task id        ARGV[2] due_at         ARGV[3] JSON [url, attempts]
redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
return 1
