--- campaign.journal: the append-only journal of a bulk_update run, and what a resume reads back
-- from it (docs/bulk.md). One NDJSON line per record, each written and flushed on its own:
--   {"campaign_journal":1,"checksum":"poly257-67108859","resource":"...","run":1,"started":"..."}
--   {"i":12,"sum":40912733,"outcome":"applied","PKey":"@...","line":12}
--   {"i":13,"sum":1203317,"outcome":"unknown","PKey":"@...","line":13,"kind":"timeout"}
--   {"end":true,"count":300}        (every item was taken from the input: its count)
--   {"run":2,"started":"..."}       (a resume starts appending here)
-- An item's last record is its state. `sum` identifies the item (its PKey and changes), so that a
-- resume can tell that item i of the input is the item that was journaled as i.
-- Plain io: flush per record hands the line to the OS (a SIGKILL loses nothing written); Lua has
-- no fsync, so a power loss may lose what the OS had not written yet. No module-level state.
local campaign = require "campaign"

local type, pairs, ipairs, tostring, pcall, error, io_open, os_date =
  type, pairs, ipairs, tostring, pcall, error, io.open, os.date
local string_byte, string_format, table_concat, table_sort, math_floor =
  string.byte, string.format, table.concat, table.sort, math.floor

local journal = {}

journal.VERSION = 1
journal.CHECKSUM = "poly257-67108859"

-- The checksum: a polynomial in base 257 modulo P = 2^26 - 5 (a prime), over the bytes of the
-- item's canonical encoding. Every intermediate stays below 2^53, so the same arithmetic is exact
-- on doubles (Lua 5.1, LuaJIT) and on integers (5.3, 5.4): the same sum everywhere.
local P = 67108859
local B, B2, B3 = 257, 66049, 16974593          -- 257, 257^2, 257^3

local function checksum(s)
  local h, n, i = 1, #s, 1
  while i + 2 <= n do                           -- three bytes per reduction: h * 257^3 < 2^51
    local a, b, c = string_byte(s, i, i + 2)
    h = (h * B3 + a * B2 + b * B + c) % P
    i = i + 3
  end
  while i <= n do
    h = (h * B + string_byte(s, i)) % P
    i = i + 1
  end
  return (h * B + n % P) % P
end
journal._checksum = checksum

local null = campaign.null

local function is_list(t)
  if t[1] ~= nil then return true end
  local is_array = campaign.is_array
  if type(is_array) == "function" then
    local ok, yes = pcall(is_array, t)
    return ok and yes == true
  end
  return false
end

-- A deterministic encoding of a value: object keys sorted, numbers written one way on every Lua
-- (an integral value within 2^53 as an integer, 42 and 42.0 alike), strings length-prefixed.
local function canonical(v, out, depth)
  local t = type(v)
  if depth > 64 then
    out[#out + 1] = "~"                        -- a cycle or an absurd depth: not JSON anyway
  elseif v == null then
    out[#out + 1] = "z"
  elseif t == "string" then
    out[#out + 1] = "s" .. #v .. ":" .. v
  elseif t == "number" then
    if v == math_floor(v) and v < 2^53 and v > -2^53 then
      out[#out + 1] = string_format("i%d;", v)
    else
      out[#out + 1] = string_format("f%.17g;", v)
    end
  elseif t == "boolean" then
    out[#out + 1] = v and "T" or "F"
  elseif t == "table" then
    if is_list(v) then
      out[#out + 1] = "["
      for k = 1, #v do canonical(v[k], out, depth + 1) end
      out[#out + 1] = "]"
    else
      local keys, by_key = {}, {}
      for k in pairs(v) do
        local key = {}
        canonical(k, key, depth + 1)
        key = table_concat(key)
        keys[#keys + 1] = key
        by_key[key] = k
      end
      table_sort(keys)
      out[#out + 1] = "{"
      for _, key in ipairs(keys) do
        out[#out + 1] = key
        canonical(v[by_key[key]], out, depth + 1)
      end
      out[#out + 1] = "}"
    end
  else
    out[#out + 1] = "?" .. t
  end
end

--- The item's sum: the checksum of the canonical encoding of {pkey, changes}.
---@param pkey string
---@param changes table
---@return integer sum
function journal.sum(pkey, changes)
  local out = {}
  canonical(pkey, out, 0)
  canonical(changes, out, 0)
  return checksum(table_concat(out))
end

local OUTCOME_CODE = { applied = 0, failed = 1, unknown = 2, not_sent = 3 }
local OUTCOME_NAME = { [0] = "applied", "failed", "unknown", "not_sent" }

---@param path string
---@param message string
---@param fields? table extra fields of the error
---@return campaign.Error err kind "journal"
local function journal_error(path, message, fields)
  local e = { kind = "journal", path = path, message = tostring(path) .. ": " .. message }
  for k, v in pairs(fields or {}) do e[k] = v end
  return campaign.error(e)
end
journal.error = journal_error

local function damaged(file, path, number)
  file:close()
  return nil, journal_error(path, "line " .. number .. " is not a journal record (the journal is damaged)")
end

local function is_count(v)
  return type(v) == "number" and v >= 1 and v == math_floor(v) and v < 2^53
end

--- Reads the journal at `path` -> state | nil, err (kind "journal").
-- A missing or empty file, or one holding only a torn header, is a journal with nothing in it.
-- A line that is not a record is tolerated only where a kill can leave one: the last line, or a
-- line followed by a resume's run record (the resume put it on a line of its own); anywhere else
-- the journal is damaged and refused.
-- state = {path, header, runs, count (from an end record), records, applied, max_i, max_applied,
--   torn (line number of a torn line), newline_at_end, entries = {[i] = sum * 4 + outcome code}}
---@param path string
---@return table|nil state
---@return campaign.Error? err kind "journal"
function journal.load(path)
  if type(path) ~= "string" or path == "" then
    error("campaign.journal.load: bad argument #1 'path' (a file name expected)", 2)
  end
  local state = { path = path, is_journal_state = true, entries = {}, records = 0, runs = 0,
    applied = 0, max_i = 0, max_applied = 0, newline_at_end = true }
  local file, open_err, errno = io_open(path, "rb")
  if not file then
    if errno == 2 then return state end          -- ENOENT: a new journal
    return nil, journal_error(path, "cannot be read: " .. tostring(open_err))
  end
  local size = file:seek("end")
  if not size then
    file:close()
    return nil, journal_error(path, "is not a regular file (it cannot be read back on resume)")
  end
  if size == 0 then
    -- Empty (or a device such as /dev/full, whose size reads 0 and whose reads never end).
    file:close()
    return state
  end
  file:seek("set", size - 1)
  state.newline_at_end = file:read(1) == "\n"
  file:seek("set", 0)
  local entries = state.entries
  local number, bad = 0, nil
  local decode = campaign.decode
  for text in file:lines() do
    number = number + 1
    local ok, v = pcall(decode, text)
    if not ok or type(v) ~= "table" then v = nil end
    if number == 1 then
      if v == nil then
        bad = 1
      elseif v.campaign_journal == nil then
        file:close()
        return nil, journal_error(path, "is not a bulk_update journal (its first line is not a journal "
          .. "header)")
      elseif v.campaign_journal ~= journal.VERSION or v.checksum ~= journal.CHECKSUM then
        file:close()
        return nil, journal_error(path, "was written by another version (format "
          .. tostring(v.campaign_journal) .. ", checksum " .. tostring(v.checksum) .. "; this reads format "
          .. journal.VERSION .. ")")
      else
        state.header = v
        state.runs = is_count(v.run) and v.run or 1
      end
    elseif v == nil then
      if bad then
        return damaged(file, path, bad)
      end
      bad = number
    else
      if bad and (bad == 1 or not is_count(v.run)) then
        return damaged(file, path, bad)
      end
      bad = nil
      if v.i ~= nil then
        local i, sum, code = v.i, v.sum, OUTCOME_CODE[v.outcome]
        if not is_count(i) or type(sum) ~= "number" or sum < 0 or sum >= P or code == nil then
          return damaged(file, path, number)
        end
        local before = entries[i]
        if before and before % 4 == 0 then state.applied = state.applied - 1 end
        if code == 0 then state.applied = state.applied + 1 end
        entries[i] = sum * 4 + code
        state.records = state.records + 1
        if i > state.max_i then state.max_i = i end
      elseif is_count(v.run) then
        if v.run > state.runs then state.runs = v.run end
      elseif v["end"] == true and is_count(v.count) then
        if state.count and state.count ~= v.count then
          file:close()
          return nil, journal_error(path, "line " .. number .. " gives the input " .. v.count ..
            " item(s), an earlier run counted " .. state.count .. " (the journal is damaged)")
        end
        state.count = v.count
      else
        return damaged(file, path, number)
      end
    end
  end
  file:close()
  state.torn = bad
  if state.header == nil then
    -- Nothing complete in it (an empty file, or a kill while the header was written).
    state.torn = nil
    return state
  end
  for i, e in pairs(entries) do
    if e % 4 == 0 and i > state.max_applied then state.max_applied = i end
  end
  return state
end

--- The journaled state of item i: outcome, sum; nil when item i was never journaled.
---@param state table journal.load's state
---@param i integer
---@return ("applied"|"failed"|"unknown"|"not_sent")|nil outcome
---@return integer? sum
function journal.entry(state, i)
  local e = state.entries[i]
  if e == nil then return nil end
  local code = e % 4
  return OUTCOME_NAME[code], (e - code) / 4
end

-- The last record of item i, read again for a message (a rare path: the state keeps no PKeys).
local function find_record(state, i)
  local file = io_open(state.path, "rb")
  if not file then return nil end
  local found, number, at = nil, 0, nil
  local decode = campaign.decode
  for text in file:lines() do
    number = number + 1
    if text:find('"i":' .. i .. ',', 1, true) or text:find('"i":' .. i .. '}', 1, true) then
      local ok, v = pcall(decode, text)
      if ok and type(v) == "table" and v.i == i then found, at = v, number end
    end
  end
  file:close()
  return found, at
end

--- nil when item i of the input (its sum) may resume from this journal, else an error (kind
-- "journal", err.item = i) naming both sides. `where` describes the input item (e.g. "line 17 of
-- items.ndjson"); `note` ends the message (what happened to the run).
---@param state table
---@param i integer
---@param sum integer
---@param pkey string|nil
---@param where string
---@param note? string
---@return campaign.Error|nil err
function journal.check_item(state, i, sum, pkey, where, note)
  local outcome, journaled = journal.entry(state, i)
  if outcome == nil or journaled == sum then return nil end
  local record, at = find_record(state, i)
  local theirs = ""
  if record then
    theirs = " (journal line " .. tostring(at) .. ": PKey " .. tostring(record.PKey) ..
      (record.line and ", input line " .. tostring(record.line) or "") .. ", " .. outcome .. ")"
  end
  return journal_error(state.path, "the input does not match it: " .. (where or ("item " .. i)) ..
    (type(pkey) == "string" and " (PKey " .. pkey .. ")" or "") .. " is not the item journaled as item " ..
    i .. theirs .. "; " .. (note or "nothing was sent") ..
    ". Resume with the input of that run, or start a new journal", { item = i, journal_line = at })
end

--- nil when an input of `count` items fits the journal, else an error: a journaled item beyond
-- the input's end, or an end record that counted another number of items.
---@param state table
---@param count integer
---@param name string
---@param note? string
---@return campaign.Error|nil err
function journal.check_count(state, count, name, note)
  local why
  if state.count and state.count ~= count then
    why = "it was written for an input of " .. state.count .. " item(s), " .. (name or "the input") ..
      " has " .. count
  elseif state.max_i > count then
    why = "it holds item " .. state.max_i .. ", " .. (name or "the input") .. " has only " .. count
  end
  if not why then return nil end
  return journal_error(state.path, "the input does not match it: " .. why .. "; " ..
    (note or "nothing was sent") .. ". Resume with the input of that run, or start a new journal",
    { count = count })
end

--- nil when a run may start on this journal with `opts` ({resume =, resource =}), else an error:
-- a journal with records needs resume (starting over would forget what was applied), and a resume
-- must address the same resource.
---@param state table
---@param opts {resume?: boolean, resource?: string}
---@return campaign.Error|nil err
function journal.check_start(state, opts)
  if state.header == nil then return nil end
  if not opts.resume then
    return journal_error(state.path, "already exists (" .. state.records .. " record(s), " .. state.applied ..
      " item(s) applied): resume it (opts.resume, CLI --resume), or remove it or name another file to "
      .. "start over")
  end
  local resource = opts.resource
  if state.header.resource ~= resource then
    return journal_error(state.path, "was written for resource " .. tostring(state.header.resource) ..
      ", this run updates " .. tostring(resource) .. "; nothing was sent")
  end
  return nil
end

local function now_text()
  return os_date("!%Y-%m-%dT%H:%M:%SZ")
end

local function json_string(s)
  local ok, text = pcall(campaign.encode, s)
  if ok then return text end
  return nil
end

local function put(writer, text)
  if writer.failed then return nil, writer.failed end
  local file = writer.file
  local ok, err = file:write(text, "\n")
  if ok then ok, err = file:flush() end
  if not ok then
    writer.failed = journal_error(writer.path, "cannot be written: " .. tostring(err) ..
      " (the run stopped: what is not journaled is sent again on resume)")
    return nil, writer.failed
  end
  return true
end

--- Opens the journal for appending -> writer | nil, err. A new (or empty) journal gets its
-- header; a resumed one gets a newline when a kill tore its last line, then a run record.
---@param state table
---@param opts table
---@return table|nil writer
---@return campaign.Error? err
function journal.start(state, opts)
  local problem = journal.check_start(state, opts)
  if problem then return nil, problem end
  local resume = state.header ~= nil
  local file, err = io_open(state.path, resume and "ab" or "wb")
  if not file then return nil, journal_error(state.path, "cannot be opened: " .. tostring(err)) end
  local writer = { file = file, path = state.path, run = state.runs + 1 }
  local ok
  if resume then
    local first = state.newline_at_end and "" or "\n"
    ok, err = put(writer, first .. string_format('{"run":%d,"started":"%s"}', writer.run, now_text()))
  else
    writer.run = 1
    ok, err = put(writer, string_format(
      '{"campaign_journal":%d,"checksum":"%s","resource":%s,"run":1,"started":"%s"}',
      journal.VERSION, journal.CHECKSUM, json_string(opts.resource) or '""', now_text()))
  end
  if not ok then
    file:close()
    return nil, err
  end
  return writer
end

--- Appends item i's outcome: true | nil, err. `err` is the item's error (its kind and status are
-- kept, not its message); `pkey` and `line` (the input's line number) are for people reading it.
---@param writer table journal.start's writer
---@param i integer
---@param sum integer
---@param outcome "applied"|"failed"|"unknown"|"not_sent"
---@param err? campaign.Error
---@param pkey? string
---@param line? integer
---@return true|nil ok
---@return campaign.Error? err
function journal.record(writer, i, sum, outcome, err, pkey, line)
  local parts = { string_format('{"i":%d,"sum":%d,"outcome":"%s"', i, sum, outcome) }
  local key = type(pkey) == "string" and json_string(pkey)
  if key then parts[#parts + 1] = ',"PKey":' .. key end
  if type(line) == "number" and line == math_floor(line) then
    parts[#parts + 1] = string_format(',"line":%d', line)
  end
  if type(err) == "table" then
    local kind = type(err.kind) == "string" and json_string(err.kind)
    if kind then parts[#parts + 1] = ',"kind":' .. kind end
    if type(err.status) == "number" and err.status == math_floor(err.status) then
      parts[#parts + 1] = string_format(',"status":%d', err.status)
    end
  end
  parts[#parts + 1] = "}"
  return put(writer, table_concat(parts))
end

--- Appends the end record: every item of the input was taken, `count` of them.
---@param writer table
---@param count integer
---@return true|nil ok
---@return campaign.Error? err
function journal.finish(writer, count)
  return put(writer, string_format('{"end":true,"count":%d}', count))
end

--- Closes the journal's file (idempotent).
---@param writer table
---@return nil
function journal.close(writer)
  if writer.file then
    writer.file:close()
    writer.file = nil
  end
end

return journal
