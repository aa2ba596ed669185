-- Cancel one task. KEYS: run hash, scheduled, stream, events, stats.
-- ARGV: key, now_ms, ttl ms, the docket prefix.
-- Returns: missing | cancelling (running: its worker stops it) | cancelled | <terminal status>.
local run, scheduled, stream, events, stats = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local key, now, ttl, prefix = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local f = redis.call('HMGET', run, 'status', 'sid', 'ttl', 'label')
local status = f[1]
local notes = {}
if not status then
  return 'missing'
end
if TERMINAL[status] then
  return status
end
if status == 'running' then
  redis.call('HSET', run, 'cancel', '1', 'updated', now)
  note(notes, 'cancelling', '', key)
  publish(events, notes)
  return 'cancelling'
end
redis.call('ZREM', scheduled, key)
if f[2] then
  -- Not yet delivered: it never will be. Delivered but not started: its worker's start
  -- script sees the status and acknowledges it without running.
  redis.call('XDEL', stream, f[2])
end
settle(prefix, key, run, tonumber(f[3]) or ttl,
  {'status', 'cancelled', 'finished', now, 'updated', now})
redis.call('HINCRBY', stats, 'cancelled:' .. (f[4] or ''), 1)
note(notes, 'cancelled', '', key)
publish(events, notes)
return 'cancelled'
