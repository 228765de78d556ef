-- index_lower: lower a command's entry in a due index (never raise it).
-- KEYS[1] index zset (codeq:index:delayed or codeq:index:leases)
-- ARGV[1] command        ARGV[2] score (the earliest due time the caller saw)
-- Returns 1 when the entry was added or lowered, else 0.
local current = redis.call('ZSCORE', KEYS[1], ARGV[1])
if current and tonumber(current) <= tonumber(ARGV[2]) then return 0 end
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
return 1
