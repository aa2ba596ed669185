-- Answer questions a running task asked. KEYS: run hash, events. ARGV: key, then pairs of
-- question id, answer JSON. Unknown and already answered questions are ignored.
-- Returns how many answers were stored.
local run, events = KEYS[1], KEYS[2]
local key = ARGV[1]
local stored, notes = 0, {}
for i = 2, #ARGV, 2 do
  local question = ARGV[i]
  if redis.call('HEXISTS', run, 'ask:' .. question) == 1
      and redis.call('HEXISTS', run, 'answer:' .. question) == 0 then
    redis.call('HSET', run, 'answer:' .. question, ARGV[i + 1])
    note(notes, 'answered', question, key)
    stored = stored + 1
  end
end
publish(events, notes)
return stored
