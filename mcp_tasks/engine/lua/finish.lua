-- Record the outcome of a batch of runs. KEYS: stream, events, scheduled, stats, then per
-- task: run hash, limit zset, waiting list (the run hash twice when the task has no limit).
-- ARGV: group, now_ms, result ttl ms, docket prefix, then per task:
-- stream id, key, outcome, data, when_ms, has_limit (1|0), ttl ms ('' = the default),
-- counter (the statistic it counts towards: completed|failed|cancelled|retried, '' = none),
-- label, started_ms (when this run started; '' = not a finished run: no run time).
-- A run whose task has an accepted cancel (its 'cancel' flag) is recorded as cancelled.
-- outcome: completed (data = result JSON) | failed (data = error JSON) | cancelled |
--          retry (data = error JSON, due at when) | again (perpetual, due at when) |
--          requeue (handed back by a stopping worker).
local stream, events, scheduled, stats = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local group, now, ttl, prefix = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local notes, acks, counts = {}, {}, {}
for i = 1, (#KEYS - 4) / 3 do
  local run, limit, waiting = KEYS[2 + 3 * i], KEYS[3 + 3 * i], KEYS[4 + 3 * i]
  local a = 4 + (i - 1) * 10
  local sid, key, outcome, data = ARGV[a + 1], ARGV[a + 2], ARGV[a + 3], ARGV[a + 4]
  local when, has_limit = ARGV[a + 5], ARGV[a + 6]
  local run_ttl = tonumber(ARGV[a + 7]) or ttl
  local counter, label, started = ARGV[a + 8], ARGV[a + 9], tonumber(ARGV[a + 10])
  local record = nil  -- the run hash as read here, when an ended task's settle needs it
  if outcome ~= 'requeue' and outcome ~= 'cancelled' then
    local cancel
    if outcome == 'retry' or outcome == 'again' then
      cancel = redis.call('HGET', run, 'cancel')
    else
      -- It ends here: settle reads the whole record anyway, so read it once, flag included.
      record = redis.call('HGETALL', run)
      cancel = field_of(record, 'cancel')
    end
    if cancel == '1' then
      -- cancel.lua said yes to a cancel while this run was finishing: the accepted cancel
      -- wins, so a caller told "cancelled" never sees another outcome (the result is
      -- dropped).
      outcome, data = 'cancelled', ''
      counter = counter ~= '' and 'cancelled' or ''
    end
  end
  acks[#acks + 1] = sid
  if counter ~= '' then
    tally(counts, counter, label)
  end
  if started then
    tally_run(counts, label, math.max(tonumber(now) - started, 0))
  end
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
    local fields = {'status', outcome, 'finished', now, 'updated', now}
    if outcome == 'completed' then
      -- errored: the result reports an error (counted as failed), e.g. MCP's isError.
      fields[7], fields[8] = 'result', data
      fields[9], fields[10] = 'errored', counter == 'failed' and '1' or '0'
    elseif outcome == 'failed' then
      fields[7], fields[8] = 'error', data
    end
    settle(prefix, key, run, run_ttl, fields, record)
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
write_tally(stats, counts)
publish(events, notes)
return #acks
