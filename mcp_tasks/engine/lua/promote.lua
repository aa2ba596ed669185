-- Move due scheduled tasks onto the stream, exactly once however many workers race.
-- KEYS: scheduled, stream, events. ARGV: now_ms, batch size, docket prefix.
-- Returns {moved, next due ms or -1}.
local scheduled, stream, events = KEYS[1], KEYS[2], KEYS[3]
local now, count, prefix = ARGV[1], ARGV[2], ARGV[3]
local due = redis.call('ZRANGEBYSCORE', scheduled, '-inf', now, 'LIMIT', 0, count)
local notes = {}
for _, key in ipairs(due) do
  local run = run_key(prefix, key)
  local f = redis.call('HMGET', run, 'status', 'fn', 'call')
  if f[1] == 'scheduled' then
    local sid = redis.call('XADD', stream, '*', 'key', key, 'fn', f[2], 'call', f[3])
    redis.call('HSET', run, 'status', 'queued', 'sid', sid, 'updated', now)
    note(notes, 'queued', '', key)
  end
end
if #due > 0 then
  redis.call('ZREM', scheduled, unpack(due))
end
publish(events, notes)
local nxt = redis.call('ZRANGE', scheduled, 0, 0, 'WITHSCORES')
return {#due, nxt[2] or -1}
