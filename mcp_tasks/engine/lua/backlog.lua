-- What is left to do, read at one instant: tasks on the stream (queued or running), tasks
-- parked on a concurrency limit (off the stream until a slot frees), and the first ARGV[1]
-- keys of the schedule. Separate reads could straddle a task moving between them (promoted
-- when due, rescheduled for a retry, parked or unparked) and see it nowhere.
-- KEYS: stream, scheduled, limits. ARGV: limit, docket prefix.
local pending = redis.call('XLEN', KEYS[1])
local limits = redis.call('HKEYS', KEYS[3])
for _, lname in ipairs(limits) do
  pending = pending + redis.call('LLEN', waiting_key(ARGV[2], lname))
end
return {pending, redis.call('ZRANGE', KEYS[2], 0, tonumber(ARGV[1]) - 1)}
