-- Record the outcome of a batch of runs. KEYS: stream, events, scheduled, then per task:
-- run hash, limit zset, waiting list (the run hash twice when the task has no limit).
-- ARGV: group, now_ms, result ttl ms, docket prefix, then per task:
-- stream id, key, outcome, data, when_ms, has_limit (1|0), ttl ms ('' = the default).
-- outcome: completed (data = result JSON) | failed (data = error JSON) | cancelled |
--          retry (data = error JSON, due at when) | again (perpetual, due at when) |
--          requeue (handed back by a stopping worker).
local stream, events, scheduled = KEYS[1], KEYS[2], KEYS[3]
local group, now, ttl, prefix = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local notes, acks = {}, {}
for i = 1, (#KEYS - 3) / 3 do
  local run, limit, waiting = KEYS[1 + 3 * i], KEYS[2 + 3 * i], KEYS[3 + 3 * i]
  local a = 4 + (i - 1) * 7
  local sid, key, outcome, data = ARGV[a + 1], ARGV[a + 2], ARGV[a + 3], ARGV[a + 4]
  local when, has_limit = ARGV[a + 5], ARGV[a + 6]
  local run_ttl = tonumber(ARGV[a + 7]) or ttl
  acks[#acks + 1] = sid
  if outcome == 'requeue' then
    local f = redis.call('HMGET', run, 'status', 'fn', 'call', 'attempt')
    if f[1] == 'running' then
      local nsid = redis.call('XADD', stream, '*', 'key', key, 'fn', f[2], 'call', f[3])
      -- A hand-back is not a failed attempt: give the attempt back.
      redis.call('HSET', run, 'status', 'queued', 'sid', nsid, 'worker', '', 'updated', now,
        'attempt', math.max((tonumber(f[4]) or 1) - 1, 0))
      note(notes, 'queued', '', key)
    end
  elseif outcome == 'retry' or outcome == 'again' then
    redis.call('ZADD', scheduled, when, key)
    if outcome == 'retry' then
      redis.call('HSET', run, 'status', 'scheduled', 'when', when, 'updated', now, 'error', data)
    else
      redis.call('HSET', run, 'status', 'scheduled', 'when', when, 'updated', now,
        'attempt', 0, 'finished', now)
    end
    note(notes, 'scheduled', when, key)
  else
    if outcome == 'completed' then
      redis.call('HSET', run, 'status', outcome, 'result', data, 'finished', now, 'updated', now)
    elseif outcome == 'failed' then
      redis.call('HSET', run, 'status', outcome, 'error', data, 'finished', now, 'updated', now)
    else
      redis.call('HSET', run, 'status', outcome, 'finished', now, 'updated', now)
    end
    redis.call('PEXPIRE', run, run_ttl)
    note(notes, outcome, '', key)
  end
  if has_limit == '1' and outcome ~= 'requeue' then
    redis.call('ZREM', limit, key)
    while true do
      local waiter = redis.call('LPOP', waiting)
      if not waiter or unpark(prefix, stream, waiter, now, notes) then
        break
      end
    end
  end
end
redis.call('XACK', stream, group, unpack(acks))
redis.call('XDEL', stream, unpack(acks))
publish(events, notes)
return #acks
