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

-- A task has ended (completed, failed, cancelled): write its record anew, with `fields`
-- (name, value, ...) set, for the keep of `ttl` ms. What only running it needed goes: its
-- call (the arguments, often the largest value, never shown once it has ended) and its
-- stream entry id. Values (or names) longer than COMPACT_VALUE_BYTES go to the task's large
-- key, as netstrings, and the run hash is deleted and written again with the short ones and
-- `large` = the moved names, comma-separated ('*' when that list would be long itself):
-- Redis never re-encodes a hash compactly once a long value made it a hashtable (keys.py,
-- COMPACT_VALUE_BYTES). A record settled before (a lost task's late finish) keeps what it
-- had moved, under what was written to its hash since. The large key is derived from the
-- prefix, not declared: it shares the docket's hash tag, so it is in the run hash's slot.
-- `all`: the run hash's HGETALL when the caller has just read it (else it is read here).
local function settle(prefix, key, run, ttl, fields, all)
  all = all or redis.call('HGETALL', run)
  local values, marked, long_seen = {}, false, false
  for i = 1, #all, 2 do
    marked = marked or all[i] == 'large'
    long_seen = long_seen or #all[i + 1] > COMPACT_VALUE_BYTES or #all[i] > COMPACT_VALUE_BYTES
  end
  for i = 2, #fields, 2 do
    long_seen = long_seen or (type(fields[i]) == 'string' and #fields[i] > COMPACT_VALUE_BYTES)
  end
  if not long_seen and not marked then
    -- Nothing long in it (a small call, a small outcome): the hash is compact as it is, and
    -- a rewrite would only cost Redis time (a quarter of a no-op task's, measured).
    redis.call('HSET', run, unpack(fields))
    redis.call('HDEL', run, 'call', 'sid')
    redis.call('PEXPIRE', run, ttl)
    return
  end
  local large = large_key(prefix, key)
  if marked then
    local data, at, name = redis.call('GET', large) or '', 1, nil
    while at <= #data do
      local colon = string.find(data, ':', at, true)
      local size = tonumber(string.sub(data, at, colon - 1))
      local text = string.sub(data, colon + 1, colon + size)
      at = colon + size + 2
      if name then
        values[name], name = text, nil
      else
        name = text
      end
    end
  end
  for i = 1, #all, 2 do
    values[all[i]] = all[i + 1]
  end
  for i = 1, #fields, 2 do
    values[fields[i]] = fields[i + 1]
  end
  values.call, values.sid, values.large = nil, nil, nil
  local short, long, moved = {}, {}, {}
  for name, value in pairs(values) do
    if type(value) == 'string' and (#value > COMPACT_VALUE_BYTES
        or #name > COMPACT_VALUE_BYTES) then
      long[#long + 1] = #name .. ':' .. name .. ',' .. #value .. ':' .. value .. ','
      moved[#moved + 1] = name
    else
      short[#short + 1] = name
      short[#short + 1] = value
    end
  end
  redis.call('DEL', run, large)
  if #long > 0 then
    local names = table.concat(moved, ',')
    short[#short + 1] = 'large'
    short[#short + 1] = #names <= COMPACT_VALUE_BYTES and names or '*'
    redis.call('SET', large, table.concat(long), 'PX', ttl + LARGE_OUTLIVES_MS)
  end
  redis.call('HSET', run, unpack(short))
  redis.call('PEXPIRE', run, ttl)
end

-- The value of field `name` in an HGETALL reply (name, value, ...), or nil.
local function field_of(all, name)
  for i = 1, #all, 2 do
    if all[i] == name then
      return all[i + 1]
    end
  end
  return nil
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
