-- Add tasks. KEYS: stream, scheduled, events, then per task its run hash and the index it
-- is listed in (its run hash again when it is in none).
-- ARGV: now_ms, then per task: key, mode (new|keep|replace), when_ms, fn, call, meta,
-- ttl_ms (how long the state outlives the task's end; '' = the docket's default),
-- index_ttl_ms ('' = not indexed).
-- Returns per task {created (1|0), status}.
local stream, scheduled, events = KEYS[1], KEYS[2], KEYS[3]
local now = tonumber(ARGV[1])
local out, notes = {}, {}
for i = 1, (#KEYS - 3) / 2 do
  local run, index = KEYS[2 + 2 * i], KEYS[3 + 2 * i]
  local a = 1 + (i - 1) * 8
  local key, mode, when = ARGV[a + 1], ARGV[a + 2], tonumber(ARGV[a + 3])
  local fn, call, meta, ttl = ARGV[a + 4], ARGV[a + 5], ARGV[a + 6], ARGV[a + 7]
  local index_ttl = ARGV[a + 8]
  local status = false
  if mode ~= 'new' then
    status = redis.call('HGET', run, 'status')
  end
  if status and not TERMINAL[status] and (mode == 'keep' or status == 'running') then
    out[i] = {0, status}
  else
    if status then
      -- Replacing: drop the old record. A stale stream entry is skipped by its sid.
      redis.call('DEL', run)
    end
    if index_ttl ~= '' then
      redis.call('ZADD', index, now, key)
      if redis.call('PTTL', index) < tonumber(index_ttl) then
        redis.call('PEXPIRE', index, index_ttl)  -- only ever longer: it lists long tasks too
      end
    end
    if when > now then
      redis.call('ZADD', scheduled, when, key)
      redis.call('HSET', run, 'key', key, 'fn', fn, 'call', call, 'meta', meta,
        'status', 'scheduled', 'when', when, 'created', now, 'updated', now, 'attempt', 0,
        'ttl', ttl)
      note(notes, 'scheduled', when, key)
      out[i] = {1, 'scheduled'}
    else
      if status == 'scheduled' then
        redis.call('ZREM', scheduled, key)
      end
      local sid = redis.call('XADD', stream, '*', 'key', key, 'fn', fn, 'call', call)
      redis.call('HSET', run, 'key', key, 'fn', fn, 'call', call, 'meta', meta,
        'status', 'queued', 'when', now, 'created', now, 'updated', now, 'attempt', 0,
        'sid', sid, 'ttl', ttl)
      if status then
        note(notes, 'queued', '', key)
      end
      out[i] = {1, 'queued'}
    end
  end
end
publish(events, notes)
return out
