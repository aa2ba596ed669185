-- Cancel one task. KEYS: run hash, scheduled, stream, events, stats. ARGV: key, now_ms, ttl ms.
-- Returns: missing | cancelling (running: its worker stops it) | cancelled | <terminal status>.
local run, scheduled, stream, events, stats = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local key, now, ttl = ARGV[1], ARGV[2], ARGV[3]
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
redis.call('HSET', run, 'status', 'cancelled', 'finished', now, 'updated', now)
forget_call(run)
redis.call('PEXPIRE', run, tonumber(f[3]) or ttl)
redis.call('HINCRBY', stats, 'cancelled:' .. (f[4] or ''), 1)
note(notes, 'cancelled', '', key)
publish(events, notes)
return 'cancelled'
