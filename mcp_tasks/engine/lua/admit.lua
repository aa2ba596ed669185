-- Admit one new task under a quota, before it is enqueued. KEYS: quota zset (unfinished task
-- keys of the tag, scored by admission ms), rate counter (tasks admitted in this window).
-- ARGV: key, now_ms, max unfinished ('' = no cap), max per window ('' = no cap), window ms,
-- docket prefix, quota ttl ms.
-- Answers {'ok', 0} | {'unfinished', 0} | {'rate', ms until the window ends}.
local quota, rate = KEYS[1], KEYS[2]
local key, now = ARGV[1], tonumber(ARGV[2])
local max_open, max_rate = tonumber(ARGV[3]), tonumber(ARGV[4])
local window, prefix, quota_ttl = tonumber(ARGV[5]), ARGV[6], tonumber(ARGV[7])
if max_rate and tonumber(redis.call('GET', rate) or '0') >= max_rate then
  return {'rate', math.max(redis.call('PTTL', rate), 0)}
end
if max_open then
  -- Forget tasks that finished or expired. A key admitted moments ago may not be enqueued
  -- yet, so a missing run hash only counts as gone after a grace period.
  local members = redis.call('ZRANGE', quota, 0, -1, 'WITHSCORES')
  for i = 1, #members, 2 do
    local status = redis.call('HGET', prefix .. ':run:' .. members[i], 'status')
    if (status and TERMINAL[status]) or (not status and now - tonumber(members[i + 1]) > 10000) then
      redis.call('ZREM', quota, members[i])
    end
  end
  if redis.call('ZCARD', quota) >= max_open then
    return {'unfinished', 0}
  end
  redis.call('ZADD', quota, now, key)
  redis.call('PEXPIRE', quota, quota_ttl)
end
if max_rate and redis.call('INCR', rate) == 1 then
  redis.call('PEXPIRE', rate, window)
end
return {'ok', 0}
