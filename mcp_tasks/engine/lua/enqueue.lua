-- Add tasks. KEYS: stream, scheduled, events, recent, stats, the quota's unfinished set and
-- rate counter (the stream again when there is no quota), then per task its run hash and the
-- index it is listed in (its run hash again when it is in none).
-- ARGV: now_ms, how many keys `recent` keeps (0 = none), the docket prefix,
-- the quota's max unfinished and max per window ('' = no cap), its window ms and set ttl ms,
-- then per task: key, mode (new|keep|replace), when_ms, fn, call, meta,
-- ttl_ms (how long the state outlives the task's end; '' = the docket's default),
-- index_ttl_ms ('' = not indexed), label (what the statistics count it under).
-- Returns per task {created (1|0), status}, or {0, 'rate' | 'unfinished', ms to wait} when
-- its quota refused it.
local stream, scheduled, events, recent, stats = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local quota, rate = KEYS[6], KEYS[7]
local now, keep_recent, prefix = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3]
local max_open, max_rate = tonumber(ARGV[4]), tonumber(ARGV[5])
local window, quota_ttl = tonumber(ARGV[6]), tonumber(ARGV[7])
local out, notes, created = {}, {}, {}

-- Admission under a quota, here rather than in a script of its own, so that a task is charged
-- exactly when it is created: never for a refused or failed add, and never lost when the
-- reply to a successful one is. Returns false, or the reason and ms to wait.
local function refuse(key)
  if max_rate and tonumber(redis.call('GET', rate) or '0') >= max_rate then
    return 'rate', math.max(redis.call('PTTL', rate), 0)
  end
  if max_open then
    for _, member in ipairs(redis.call('ZRANGE', quota, 0, -1)) do
      local status = redis.call('HGET', run_key(prefix, member), 'status')
      if not status or TERMINAL[status] then
        redis.call('ZREM', quota, member)  -- finished or expired
      end
    end
    if redis.call('ZCARD', quota) >= max_open then
      return 'unfinished', 0
    end
    redis.call('ZADD', quota, now, key)
    redis.call('PEXPIRE', quota, quota_ttl)
  end
  if max_rate and redis.call('INCR', rate) == 1 then
    redis.call('PEXPIRE', rate, window)
  end
  return false, 0
end

-- An index lists tasks by creation and lives on while tasks keep joining it, but each task's
-- record expires on its own TTL, and nothing else ever removes it from the index (a 2026-07-28
-- client never lists). So each join drops the expired among the three oldest entries and two
-- random ones: expired tasks queue up at the head, and the samples reach past a head of
-- long-lived tasks, which keeps an index near its live tasks at a few commands per add.
local function prune(index)
  local seen = {}
  for _, member in ipairs(redis.call('ZRANGE', index, 0, 2)) do
    seen[member] = true
  end
  for _, member in ipairs(redis.call('ZRANDMEMBER', index, 2)) do
    seen[member] = true
  end
  for member in pairs(seen) do
    if redis.call('EXISTS', run_key(prefix, member)) == 0 then
      redis.call('ZREM', index, member)
    end
  end
end

for i = 1, (#KEYS - 7) / 2 do
  local run, index = KEYS[6 + 2 * i], KEYS[7 + 2 * i]
  local a = 7 + (i - 1) * 9
  local key, mode, when = ARGV[a + 1], ARGV[a + 2], tonumber(ARGV[a + 3])
  local fn, call, meta, ttl = ARGV[a + 4], ARGV[a + 5], ARGV[a + 6], ARGV[a + 7]
  local index_ttl, label = ARGV[a + 8], ARGV[a + 9]
  local status = false
  if mode ~= 'new' then
    status = redis.call('HGET', run, 'status')
  end
  local fresh = not status or TERMINAL[status]  -- not a reschedule of a task still to run
  local refused, wait = false, 0
  if fresh and (max_open or max_rate) then
    refused, wait = refuse(key)
  end
  if status and not TERMINAL[status] and (mode == 'keep' or status == 'running') then
    out[i] = {0, status}
  elseif refused then
    out[i] = {0, refused, wait}
  else
    if status then
      -- Replacing: drop the old record. A stale stream entry is skipped by its sid.
      redis.call('DEL', run, large_key(prefix, key))
    end
    if fresh then
      created[label] = (created[label] or 0) + 1  -- a rescheduled task is not a new one
    end
    if keep_recent > 0 then
      redis.call('ZADD', recent, now, key)
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
        'ttl', ttl, 'label', label)
      note(notes, 'scheduled', when, key)
      out[i] = {1, 'scheduled'}
    else
      if status == 'scheduled' then
        redis.call('ZREM', scheduled, key)
      end
      local sid = redis.call('XADD', stream, '*', 'key', key, 'fn', fn, 'call', call)
      redis.call('HSET', run, 'key', key, 'fn', fn, 'call', call, 'meta', meta,
        'status', 'queued', 'when', now, 'created', now, 'updated', now, 'attempt', 0,
        'sid', sid, 'ttl', ttl, 'label', label)
      if status then
        note(notes, 'queued', '', key)
      end
      out[i] = {1, 'queued'}
    end
    if index_ttl ~= '' then
      prune(index)  -- after the record is written, so the new task is never taken for expired
    end
  end
end
local trim = false
for label, n in pairs(created) do
  local total = redis.call('HINCRBY', stats, 'created:' .. label, n)
  -- Trim `recent` whenever a label's count passes a multiple of 64, not on every add: it
  -- stays within keep_recent + 64 per label, at a fraction of the commands.
  trim = trim or math.floor(total / 64) ~= math.floor((total - n) / 64)
end
if trim and keep_recent > 0 then
  redis.call('ZREMRANGEBYRANK', recent, 0, -keep_recent - 1)
end
publish(events, notes)
return out
