-- What is left to do, read at one instant: the stream's length (queued and running tasks)
-- and the first ARGV[1] keys of the schedule. Two separate reads could straddle a task
-- moving between them (promoted when due, or rescheduled for a retry) and see it in neither.
-- KEYS: stream, scheduled. ARGV: limit.
return {redis.call('XLEN', KEYS[1]), redis.call('ZRANGE', KEYS[2], 0, tonumber(ARGV[1]) - 1)}
