--- campaign.workflow.common: argument checks and listing walks shared by the workflows of
-- campaign/workflow/*.lua (upsert_profile, subscriptions, events, privacy, executions).
-- Misuse raises naming the function (`campaign.workflow.<name>: ...`); unknown option keys
-- raise too, so that a misspelt `deadlin = 5` never silently waits the default 300 s.
-- Only the client's methods and campaign.api functions are used. No state at module level.
local campaign = require "campaign"
local api = require "campaign.api"

local type, pairs, ipairs, error, tostring = type, pairs, ipairs, error, tostring
local table_sort, table_concat, string_format = table.sort, table.concat, string.format

---@class campaign.workflow.common
---@field checkers table<string, fun(v: any): string|nil> nil when fine, else what was expected
local common = {}

---@param fname string
---@param message string
---@param level? integer
---@return nil
local function fail(fname, message, level)
  error("campaign.workflow." .. fname .. ": " .. message, (level or 1) + 2)
end
common.fail = fail

--- Raises unless `client` looks like a client (a table or userdata with a `get` method).
---@param fname string
---@param client any
---@return nil
function common.check_client(fname, client)
  local t = type(client)
  if (t ~= "table" and t ~= "userdata") or client.get == nil then
    fail(fname, "bad argument #1 'client' (client expected, got " .. t .. ")", 2)
  end
end

-- Checkers of option values: return nil when fine, else what was expected.
local checkers = {}
function checkers.number(v) if type(v) ~= "number" or v ~= v then return "a number" end end
function checkers.positive(v)
  if type(v) ~= "number" or v ~= v or v <= 0 then return "a number > 0" end
end
function checkers.nonnegative(v)
  if type(v) ~= "number" or v ~= v or v < 0 then return "a number >= 0" end
end
function checkers.count(v)
  if type(v) ~= "number" or v < 1 or v ~= math.floor(v) then return "an integer >= 1" end
end
function checkers.boolean(v) if type(v) ~= "boolean" then return "a boolean" end end
function checkers.func(v) if type(v) ~= "function" then return "a function" end end
function checkers.table(v) if type(v) ~= "table" then return "a table" end end
function checkers.string(v) if type(v) ~= "string" or v == "" then return "a non-empty string" end end
-- One name or a list of names (states, statuses).
function checkers.names(v)
  if type(v) == "string" and v ~= "" then return nil end
  if type(v) == "table" and v[1] ~= nil then
    for _, s in ipairs(v) do
      if type(s) ~= "string" or s == "" then return "a name or a list of names" end
    end
    return nil
  end
  return "a name or a list of names"
end
common.checkers = checkers

--- check_opts(fname, opts, spec) -> opts (a table; {} for nil)
-- spec: {name = checker name} (checkers above). A key not in spec, or a value its checker
-- refuses, raises naming both.
---@param fname string
---@param opts table|nil
---@param spec table<string, string> key -> checker name
---@param argname? string default "opts"
---@return table opts
function common.check_opts(fname, opts, spec, argname)
  argname = argname or "opts"
  if opts == nil then return {} end
  if type(opts) ~= "table" then
    fail(fname, "bad argument '" .. argname .. "' (table or nil expected, got " .. type(opts) .. ")", 2)
  end
  for k, v in pairs(opts) do
    local kind = type(k) == "string" and spec[k] or nil
    if not kind then
      local known = {}
      for name in pairs(spec) do known[#known + 1] = name end
      table_sort(known)
      fail(fname, string_format("unknown %s key '%s' (known: %s)", argname, tostring(k),
        table_concat(known, ", ")), 2)
    end
    local expected = checkers[kind](v)
    if expected then
      fail(fname, string_format("%s.%s must be %s (got %s)", argname, k, expected,
        type(v) == "string" and "'" .. v .. "'" or type(v)), 2)
    end
  end
  return opts
end

--- A set from one name or a list of names.
---@param names string|string[]
---@return table<string, true>
function common.set(names)
  local set = {}
  if type(names) == "string" then set[names] = true return set end
  for _, n in ipairs(names) do set[n] = true end
  return set
end

--- A PKey argument: a string that is one path segment (campaign.api's rule), else raises.
-- `depth`: how many helper frames stand between the workflow function and this call (0).
---@param fname string
---@param n integer the argument's position
---@param name string the argument's name
---@param v any
---@param depth? integer
---@return string pkey
function common.check_pkey(fname, n, name, v, depth)
  local level = 2 + (depth or 0)
  if type(v) ~= "string" or v == "" then
    fail(fname, string_format("bad argument #%d '%s' (PKey string expected, got %s)", n, name,
      v == "" and "empty string" or type(v)), level)
  end
  local seg, problem = api.key_segment(v)
  if not seg then
    fail(fname, string_format("bad argument #%d '%s' (it %s)", n, name, problem), level)
  end
  return v
end

--- walk(client, body, visit[, max_pages]) -> true | nil, err
-- Calls visit(item) for each item of a listing answer and of the pages after it (next.href,
-- followed verbatim), until visit returns true or the pages end. Bounded by max_pages
-- (default 1000) so that a server that always answers a `next` cannot loop forever.
---@param client campaign.AnyClient
---@param body table a listing answer
---@param visit fun(item: any): boolean|nil true stops the walk
---@param max_pages? integer default 1000
---@return true|nil ok
---@return campaign.Error|nil err
function common.walk(client, body, visit, max_pages)
  max_pages = max_pages or 1000
  for _ = 1, max_pages do
    if type(body) ~= "table" then
      return nil, campaign.error { kind = "json", message = "the listing answer is not an object" }
    end
    for _, item in ipairs(type(body.content) == "table" and body.content or {}) do
      if visit(item) then return true end
    end
    local nxt = type(body.next) == "table" and body.next.href or nil
    if type(nxt) ~= "string" or nxt == "" then return true end
    local err
    body, err = api.get_data_from_relative_url(client, nxt)
    if body == nil then return nil, err end
  end
  return true
end

return common
