-- Free concurrency slots whose holders' leases ran out (a dead worker) and wake waiters.
-- KEYS: limits, stream, events. ARGV: now_ms, docket prefix. Returns tasks woken.
local limits, stream, events = KEYS[1], KEYS[2], KEYS[3]
local now, prefix = ARGV[1], ARGV[2]
local all = redis.call('HGETALL', limits)
local notes, woken = {}, 0
for i = 1, #all, 2 do
  local lname, max = all[i], tonumber(all[i + 1])
  local limit, waiting = limit_key(prefix, lname), waiting_key(prefix, lname)
  redis.call('ZREMRANGEBYSCORE', limit, '-inf', now)
  local free = max - redis.call('ZCARD', limit)
  while free > 0 do
    local waiter = redis.call('LPOP', waiting)
    if not waiter then
      break
    end
    if unpark(prefix, stream, waiter, now, notes) then
      free = free - 1
      woken = woken + 1
    end
  end
  if redis.call('LLEN', waiting) == 0 then
    redis.call('HDEL', limits, lname)
  end
end
publish(events, notes)
return woken
