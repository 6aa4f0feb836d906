-- Listings like ACS's: {content, count = {href}, next = {href}, serverSidePagination}.
-- _lineCount (default 25), _lineStart (an opaque cursor: only next.href is meant to be
-- followed), _order=field or "field desc", _forcePagination=true above the big-table
-- threshold (admin config big_table_threshold, XtkBigTableThreshold on ACS).
local json = require "emu.json"
local util = require "emu.util"
local state = require "emu.state"

local ngx = ngx
local type, pairs, ipairs, tostring, tonumber = type, pairs, ipairs, tostring, tonumber
local sort, concat = table.sort, table.concat

local _M = {}

local function b64url(s)
  return (ngx.encode_base64(s, true):gsub("[+/]", { ["+"] = "-", ["/"] = "_" }))
end

local function unb64url(s)
  return ngx.decode_base64((s:gsub("[-_]", { ["-"] = "+", ["_"] = "/" })) .. ("="):rep((4 - #s % 4) % 4))
end

-- The cursor looks like a PKey ("@...") but encodes the offset of the next page.
function _M.cursor(offset)
  return "@" .. b64url("lineStart:" .. offset .. ":" .. string.rep("x", 24))
end

function _M.parse_cursor(text)
  if type(text) ~= "string" or text:sub(1, 1) ~= "@" then return nil end
  local raw = unb64url(text:sub(2))
  local offset = raw and raw:match("^lineStart:(%d+):")
  return offset and tonumber(offset)
end

-- Percent-encodes a query component; "@" stays literal, as in ACS's _lineStart=@... cursors.
local function escape(s)
  return (tostring(s):gsub("[^%w%-._~@]", function(c) return string.format("%%%02X", c:byte()) end))
end

local function query_string(args)
  local keys = {}
  for k in pairs(args) do keys[#keys + 1] = k end
  sort(keys)
  local parts = {}
  for _, k in ipairs(keys) do
    local v = args[k]
    if type(v) == "table" then
      for _, item in ipairs(v) do parts[#parts + 1] = escape(k) .. "=" .. escape(item) end
    elseif v == true then
      parts[#parts + 1] = escape(k)
    else
      parts[#parts + 1] = escape(k) .. "=" .. escape(v)
    end
  end
  return concat(parts, "&")
end
_M.query_string = query_string

local function bad(detail, expr)
  return util.engine_error(500, detail, "XTK-170006 Unable to parse expression '" .. expr .. "'.")
end

-- Parses _order: "field", "field desc", "a,b desc". Returns a list of {field, desc} or nil, status, body.
local function parse_order(res, text, ext)
  local keys = {}
  text = tostring(text)
  -- Adobe's Node SDK sends `_order=email%2520desc` (encoded twice): nginx decodes once, so a
  -- "%20" left in the value is decoded again rather than rejecting every SDK descending sort.
  if text:find("%%%x%x") then
    text = text:gsub("%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end)
  end
  for part in text:gmatch("[^,]+") do
    local name, dir = part:match("^%s*([%w_]+)%s*(%a*)%s*$")
    local field = name and res and res.by_name[name]
    local bad_dir = dir ~= "" and dir ~= "desc" and dir ~= "asc"
    if not field or (field.ext and not ext) or not field.sortable or bad_dir then
      return nil, bad("The '" .. part .. "' value of the '_order' parameter is not a sortable field of the '"
        .. (res and res.name or "?") .. "' resource.", part)
    end
    keys[#keys + 1] = { name, dir == "desc" }
  end
  return keys
end

local function sort_value(v)
  if v == nil or v == util.null then return "" end
  if type(v) == "table" then return v.PKey or "" end
  return v
end

local function less(a, b)
  local ta, tb = type(a), type(b)
  if ta ~= tb then return tostring(a) < tostring(b) end
  if ta == "boolean" then return (not a) and b end
  return a < b
end

-- ctx: the request context; opts: {res (schema resource for _order), items (records,
-- already filtered, in creation order; or keys when `load` turns a key into its record,
-- so only the records shown are decoded), render (function(rec) -> JSON table),
-- path (collection URL, with trailing slash when unfiltered), count_path, table_size}.
function _M.page(ctx, opts)
  local args = ctx.args
  if ctx.count_only then
    -- GET <listing>/_count: the total the listing pages over, with the same filters.
    ctx.counted = true
    return 200, { count = #opts.items }
  end
  local line_count = state.config("default_line_count")
  if args._lineCount ~= nil then
    line_count = tonumber(args._lineCount)
    if not line_count or line_count < 1 or line_count % 1 ~= 0 then
      return bad("The value '" .. tostring(args._lineCount)
        .. "' of the '_lineCount' parameter is not valid.",
        tostring(args._lineCount))
    end
  end
  local start = 0
  if args._lineStart ~= nil then
    start = _M.parse_cursor(args._lineStart)
    if not start then
      return bad("The value of the '_lineStart' parameter is not a valid cursor.", tostring(args._lineStart))
    end
  end
  local items, load = opts.items, opts.load
  if args._order ~= nil and args._order ~= "" then
    local keys, status, body = parse_order(opts.res, args._order, ctx.ext)
    if not keys then return status, body end
    if load then
      local records = {}
      for _, key in ipairs(items) do records[#records + 1] = load(key) end
      items, load = records, nil
    end
    local decorated = {}
    for i, rec in ipairs(items) do decorated[i] = { rec, i } end
    sort(decorated, function(x, y)
      for _, key in ipairs(keys) do
        local a, b = sort_value(x[1][key[1]]), sort_value(y[1][key[1]])
        if a ~= b then
          if key[2] then return less(b, a) end
          return less(a, b)
        end
      end
      return x[2] < y[2]
    end)
    items = {}
    for i, d in ipairs(decorated) do items[i] = d[1] end
  end

  local content = json.array()
  local last = math.min(#items, start + line_count)
  for i = start + 1, last do
    local rec = items[i]
    if load then rec = load(rec) end
    if rec ~= nil then content[#content + 1] = opts.render(rec) end
  end

  local table_size = opts.table_size or #items
  local forced = args._forcePagination == "true" or args._forcePagination == true
  local paginated = forced or table_size <= state.config("big_table_threshold")

  local out = { content = content, serverSidePagination = paginated }
  local count_args = util.shallow_copy(args)
  count_args._lineCount = line_count
  count_args._lineStart = _M.cursor(start)
  out.count = { href = opts.count_path .. "?" .. query_string(count_args) }
  if paginated and last < #items then
    local next_args = util.shallow_copy(args)
    next_args._lineCount = line_count
    next_args._lineStart = _M.cursor(last)
    out.next = { href = opts.path .. "?" .. query_string(next_args) }
  end
  return 200, out
end

return _M
