-- Start a batch of claimed stream entries. KEYS: stream, events, limits, stats, then per task:
-- run hash, limit zset, waiting list (the run hash twice when the task has no limit).
-- ARGV: group, worker, now_ms, slot lease expiry ms, result ttl ms, max deliveries, the
-- docket prefix, then per task:
-- stream id, key, limit maximum (0 = none), limit name.
-- Returns per task {verdict, attempt, when, ttl, label, meta}: verdict
-- run|stale|cancelled|parked|lost.
local stream, events, limits, stats = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local group, worker, now, lease, ttl = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local max_deliveries, prefix = tonumber(ARGV[6]), ARGV[7]
local out, notes, acks, counts = {}, {}, {}, {}
for i = 1, (#KEYS - 4) / 3 do
  local run, limit, waiting = KEYS[2 + 3 * i], KEYS[3 + 3 * i], KEYS[4 + 3 * i]
  local a = 7 + (i - 1) * 4
  local sid, key, max, lname = ARGV[a + 1], ARGV[a + 2], tonumber(ARGV[a + 3]), ARGV[a + 4]
  local f = redis.call('HMGET', run, 'status', 'sid', 'cancel', 'attempt', 'when', 'ttl',
    'label', 'meta')
  local status, label = f[1], f[7] or ''
  local verdict = nil
  if not status or f[2] ~= sid then
    verdict = 'stale'
  elseif status == 'cancelled' or f[3] == '1' then
    if status ~= 'cancelled' then
      -- Cancelled while its previous worker died: finish the cancellation now.
      settle(prefix, key, run, tonumber(f[6]) or ttl,
        {'status', 'cancelled', 'finished', now, 'updated', now})
      tally(counts, 'cancelled', label)
      note(notes, 'cancelled', '', key)
    end
    verdict = 'cancelled'
  elseif status ~= 'queued' and status ~= 'running' then
    verdict = 'stale'
  elseif status == 'running' and (tonumber(f[4]) or 0) >= max_deliveries then
    -- Its workers keep dying on it (a crash, an OOM kill): stop handing it out.
    settle(prefix, key, run, tonumber(f[6]) or ttl, {'status', 'failed', 'finished', now,
      'updated', now, 'error', cjson.encode({type = 'WorkerLost',
        message = 'the task\'s worker was lost ' .. f[4] .. ' times; it is not run again'})})
    tally(counts, 'failed', label)
    note(notes, 'failed', '', key)
    verdict = 'lost'
  elseif max > 0 then
    redis.call('ZREMRANGEBYSCORE', limit, '-inf', now)
    if not redis.call('ZSCORE', limit, key) and redis.call('ZCARD', limit) >= max then
      redis.call('RPUSH', waiting, key)
      -- Parked tasks are 'queued' (a reclaimed one was still 'running'), or unpark skips them.
      redis.call('HSET', run, 'parked', lname, 'status', 'queued', 'worker', '')
      redis.call('HSET', limits, lname, max)
      note(notes, 'queued', 'parked', key)
      verdict = 'parked'
    else
      redis.call('ZADD', limit, lease, key)
    end
  end
  if verdict then
    acks[#acks + 1] = sid
    out[i] = {verdict, 0, '', '', '', ''}
  else
    if status == 'running' then
      tally(counts, 'redelivered', label)  -- its worker died (or stalled) while running it
    end
    local attempt = (tonumber(f[4]) or 0) + 1
    redis.call('HSET', run, 'status', 'running', 'worker', worker, 'started', now,
      'updated', now, 'attempt', attempt)
    note(notes, 'running', attempt, key)
    out[i] = {'run', attempt, f[5] or '', f[6] or '', label, f[8] or ''}
  end
end
if #acks > 0 then
  redis.call('XACK', stream, group, unpack(acks))
  redis.call('XDEL', stream, unpack(acks))
end
write_tally(stats, counts)
publish(events, notes)
return out
