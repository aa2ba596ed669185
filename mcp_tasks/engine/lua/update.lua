-- Update fields of a task's hash and publish the change. KEYS: run hash, events.
-- ARGV: status, detail, key (the event line), then field/value pairs.
-- (A script rather than a pipeline: the write and its announcement are one atomic step.)
local run, events = KEYS[1], KEYS[2]
redis.call('HSET', run, unpack(ARGV, 4))
local notes = {}
note(notes, ARGV[1], ARGV[2], ARGV[3])
publish(events, notes)
return 1
