--- campaign.budget: the rolling form of the client's `budget` option (docs/client.md "Pacing
-- and budget"): at most `calls` requests in any 24 h, counted in a file the user names, so the
-- count survives the process (successive runs, a resumed job share it).
--
-- campaign.new{budget = {calls = 100000, per = "day", file = "/var/lib/x/budget"}} calls
-- budget.hook(that table) once and the returned function before every attempt; it answers
-- true (counted) or nil, message (refused: the client returns kind "budget" and sends nothing).
--
-- The file: a first line "lua-campaign budget 1", then one line "<minute> <count>" per minute
-- (Unix time // 60) that holds calls, for the last 1441 minutes only, so at most 1442 short
-- lines. Each call rewrites it whole to "<file>.tmp" and renames that over the file (a crash
-- leaves the old or the new file, never half of one; no fsync: a power loss may forget the
-- last calls). A call counts from its minute for 1441 minutes: it is forgotten between 24 h and
-- 24 h 1 min after it was made, never sooner. One process at a time per file: two processes
-- sharing a file can each count a call the other does not see (campaign.ngx shares its budget
-- between workers through a lua_shared_dict instead).
local budget = {}

local HEADER = "lua-campaign budget 1"
local WINDOW = 1441 -- minutes a call is counted for: 24 h plus the minute it was made in
local KEYS = { calls = true, per = true, file = true, clock = true }

local function misuse(what)
  error("campaign.new: option 'budget' " .. what, 0)
end

-- Reads the file into {minute = count}; a missing file is an empty count. nil, message when
-- the file cannot be read or is not a budget file (the call is then refused, never guessed).
local function read(path, oldest)
  local f, err, code = io.open(path, "rb")
  if not f then
    if code == 2 then return {} end -- ENOENT: nothing counted yet
    return nil, "cannot read the budget file: " .. tostring(err)
  end
  local text = f:read("*a")
  f:close()
  local counts, first = {}, true
  for line in (text or ""):gmatch("[^\n]+") do
    if first then
      if line ~= HEADER then return nil, "'" .. path .. "' is not a lua-campaign budget file" end
      first = false
    else
      local minute, count = line:match("^(%d+) (%d+)$")
      if not minute then return nil, "'" .. path .. "' is not a lua-campaign budget file" end
      minute, count = tonumber(minute), tonumber(count)
      if minute >= oldest then counts[minute] = (counts[minute] or 0) + count end
    end
  end
  if first and text ~= "" then return nil, "'" .. path .. "' is not a lua-campaign budget file" end
  return counts
end

local function write(path, counts)
  local minutes = {}
  for minute in pairs(counts) do minutes[#minutes + 1] = minute end
  table.sort(minutes)
  local lines = { HEADER }
  for _, minute in ipairs(minutes) do
    lines[#lines + 1] = string.format("%d %d", minute, counts[minute])
  end
  local tmp = path .. ".tmp"
  local f, err = io.open(tmp, "wb")
  if not f then return nil, "cannot write the budget file: " .. tostring(err) end
  local ok, werr = f:write(table.concat(lines, "\n"), "\n")
  local closed, cerr = f:close()
  if not ok or not closed then
    os.remove(tmp)
    return nil, "cannot write the budget file: " .. tostring(werr or cerr)
  end
  local renamed, rerr = os.rename(tmp, path)
  if not renamed then
    os.remove(tmp)
    return nil, "cannot write the budget file: " .. tostring(rerr)
  end
  return true
end

--- budget.hook{calls = n, per = "day", file = path[, clock = fn]} -> function() -> true | nil, msg
-- clock: Unix seconds (default campaign.gettime), for tests. Raises on misuse.
---@param spec campaign.BudgetSpec|{clock?: fun(): number}
---@return fun(): (true|nil), string? take one call from the budget, or nil and why not
function budget.hook(spec)
  for k in pairs(spec) do
    if not KEYS[k] then misuse("has an unknown field '" .. tostring(k) .. "' (calls, per, file)") end
  end
  local calls = spec.calls
  if type(calls) ~= "number" or calls < 1 or calls ~= math.floor(calls) or calls > 2 ^ 53 then
    misuse("field 'calls' must be a positive integer")
  end
  if spec.per ~= "day" then misuse("field 'per' must be \"day\" (a rolling 24 h)") end
  if type(spec.file) ~= "string" or spec.file == "" then
    misuse("field 'file' must be the path of the file that keeps the count")
  end
  if spec.clock ~= nil and type(spec.clock) ~= "function" then
    misuse("field 'clock' must be a function() -> Unix seconds")
  end
  local path, clock = spec.file, spec.clock
  if not clock then
    local campaign = require "campaign"
    clock = campaign.gettime
  end
  return function()
    local minute = math.floor(clock() / 60)
    local counts, err = read(path, minute - WINDOW + 1)
    if not counts then return nil, err end
    local used = 0
    for _, count in pairs(counts) do used = used + count end
    if used >= calls then
      return nil, string.format("budget spent: %d calls in the last 24 h (file '%s')", used, path)
    end
    counts[minute] = (counts[minute] or 0) + 1
    local ok, werr = write(path, counts)
    if not ok then return nil, werr end
    return true
  end
end

return budget
