-- Shared helpers, prepended to every script by scripts.py (Lua scripts cannot include files).
-- Event messages are lines of "status|detail|task key"; one PUBLISH carries a whole batch.
local TERMINAL = {completed = true, failed = true, cancelled = true}

local function note(notes, status, detail, key)
  notes[#notes + 1] = status .. '|' .. detail .. '|' .. key
end

local function publish(channel, notes)
  if #notes > 0 then
    redis.call('PUBLISH', channel, table.concat(notes, '\n'))
  end
end

-- Put a task that was parked on a concurrency limit back on the stream. The run key is
-- derived from the docket prefix; it shares the docket's hash tag, so on a cluster it is in
-- the same slot as the declared keys.
local function unpark(prefix, stream, key, now, notes)
  local run = prefix .. ':run:' .. key
  local f = redis.call('HMGET', run, 'status', 'parked', 'fn', 'call')
  if f[1] ~= 'queued' or not f[2] then
    return false
  end
  local sid = redis.call('XADD', stream, '*', 'key', key, 'fn', f[3], 'call', f[4])
  redis.call('HSET', run, 'sid', sid, 'updated', now)
  redis.call('HDEL', run, 'parked')
  note(notes, 'queued', '', key)
  return true
end
