-- Shared helpers, prepended to every script by scripts.py (Lua scripts cannot include files).
-- Event messages are lines of "status|detail|task key". Each event goes to its task's
-- channel (heard only by the processes following that task), the script's whole batch to
-- the docket's channel (dashboards), and cancellations and schedules to the control channel
-- (workers). task_channel, control_channel and CONTROL_STATUSES come from the preamble.
local TERMINAL = {completed = true, failed = true, cancelled = true}

local function note(notes, status, detail, key)
  notes[#notes + 1] = {status, status .. '|' .. detail .. '|' .. key, key}
end

-- emit (from the generated preamble) publishes at once, or, in a script run with
-- min_replicas, holds the messages back for the caller to publish once replicas confirmed.
local function publish(channel, notes)
  if #notes == 0 then
    return
  end
  local lines, control = {}, {}
  for i, entry in ipairs(notes) do
    lines[i] = entry[2]
    emit(task_channel(channel, entry[3]), entry[2])
    if CONTROL_STATUSES[entry[1]] then
      control[#control + 1] = entry[2]
    end
  end
  emit(channel, table.concat(lines, '\n'))
  if #control > 0 then
    emit(control_channel(channel), table.concat(control, '\n'))
  end
end

-- A task has ended (completed, failed, cancelled): drop what only running it needed. Its
-- call (the arguments, often the largest value) and its stream entry id are dead weight
-- in a record kept for the result's TTL, and arguments are never shown once it has ended.
local function forget_call(run)
  redis.call('HDEL', run, 'call', 'sid')
end

-- Put a task that was parked on a concurrency limit back on the stream. The run key is
-- derived from the docket prefix (run_key, from the preamble); it shares the docket's hash
-- tag, so on a cluster it is in the same slot as the declared keys.
local function unpark(prefix, stream, key, now, notes)
  local run = run_key(prefix, key)
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

-- Statistics (the stats hash, see keys.py): a script tallies a batch in a table and writes
-- it with one HINCRBY per field. RUN_BUCKETS_MS (run-time histogram bounds in ms) comes
-- from the generated preamble.

local function tally(counts, counter, label, n)
  local field = counter .. ':' .. label
  counts[field] = (counts[field] or 0) + (n or 1)
end

local function write_tally(stats, counts)
  for field, n in pairs(counts) do
    redis.call('HINCRBY', stats, field, n)
  end
end

local function tally_run(counts, label, run_ms)
  local bucket = 'inf'
  for _, bound in ipairs(RUN_BUCKETS_MS) do
    if run_ms <= bound then
      bucket = tostring(bound)
      break
    end
  end
  tally(counts, 'run:' .. bucket, label)
  tally(counts, 'run_ms', label, run_ms)
end
