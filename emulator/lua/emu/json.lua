-- JSON for the emulator: lua-cjson decodes; this encoder writes what ACS would.
-- Why not cjson.encode: Debian's lua-cjson prints numbers with 14 significant digits,
-- so a stored 123456789012345 would come back as 1.2345678901234e+14. Here every number
-- is written with the shortest text that reads back to the same double, and object keys
-- are sorted (ACS answers with keys in byte order: "PKey" before "age").
local cjson = require "cjson.safe"

local concat, sort, format = table.concat, table.sort, string.format
local floor, huge = math.floor, math.huge
local type, pairs, tostring, tonumber, next = type, pairs, tostring, tonumber, next

local null = cjson.null
local _M = { null = null }

-- A marker metatable: tables carrying it encode as arrays even when empty.
local array_mt = {}
_M.array_mt = array_mt
function _M.array(t)
  return setmetatable(t or {}, array_mt)
end

local escapes = {
  ['"'] = '\\"', ['\\'] = '\\\\', ['\b'] = '\\b', ['\f'] = '\\f',
  ['\n'] = '\\n', ['\r'] = '\\r', ['\t'] = '\\t',
}
local function escape_char(c)
  return escapes[c] or format("\\u%04x", c:byte())
end

local find = string.find

local function number_text(n)
  if n ~= n or n == huge or n == -huge then
    error("cannot encode " .. tostring(n) .. " in JSON")
  end
  if floor(n) == n and n > -2^53 and n < 2^53 then
    return format("%d", n)
  end
  for digits = 15, 17 do
    local s = format("%." .. digits .. "g", n)
    if tonumber(s) == n then return s end
  end
  return format("%.17g", n)
end
_M.number_text = number_text

local function is_array(t)
  if getmetatable(t) == array_mt then return true end
  local n = #t
  if n == 0 then return false end
  local count = 0
  for _ in pairs(t) do count = count + 1 end
  return count == n
end

-- The encoder appends pieces to `buf` (a table) and returns the new piece count; the
-- caller concatenates once. Strings needing no escape are appended as they are.
local encode_value

local function put_string(buf, n, s)
  buf[n + 1] = '"'
  if find(s, '[%c"\\]') then
    buf[n + 2] = s:gsub('[%c"\\]', escape_char)
  else
    buf[n + 2] = s
  end
  buf[n + 3] = '"'
  return n + 3
end

local function encode_table(t, buf, n, depth)
  if depth > 100 then error("JSON nesting too deep") end
  if is_array(t) then
    n = n + 1
    buf[n] = "["
    for i = 1, #t do
      if i > 1 then n = n + 1; buf[n] = "," end
      n = encode_value(t[i], buf, n, depth + 1)
    end
    n = n + 1
    buf[n] = "]"
    return n
  end
  local keys, nkeys = {}, 0
  for k in pairs(t) do
    nkeys = nkeys + 1
    keys[nkeys] = k
  end
  for i = 1, nkeys do
    if type(keys[i]) ~= "string" then keys[i] = tostring(keys[i]) end
  end
  sort(keys)
  n = n + 1
  buf[n] = "{"
  for i = 1, nkeys do
    local k = keys[i]
    local v = t[k]
    if v == nil then v = t[tonumber(k)] end
    if i > 1 then n = n + 1; buf[n] = "," end
    n = put_string(buf, n, k)
    n = n + 1
    buf[n] = ":"
    n = encode_value(v, buf, n, depth + 1)
  end
  n = n + 1
  buf[n] = "}"
  return n
end

encode_value = function(v, buf, n, depth)
  local tv = type(v)
  if tv == "string" then
    return put_string(buf, n, v)
  elseif tv == "number" then
    buf[n + 1] = number_text(v)
  elseif tv == "boolean" then
    buf[n + 1] = v and "true" or "false"
  elseif tv == "table" then
    return encode_table(v, buf, n, depth)
  elseif v == nil or v == null then
    buf[n + 1] = "null"
  else
    error("cannot encode a " .. tv .. " in JSON")
  end
  return n + 1
end

function _M.encode(v)
  local buf = {}
  encode_value(v, buf, 0, 0)
  return concat(buf)
end

-- Returns value or nil, message. Empty JSON arrays decode as empty tables marked array_mt
-- when cjson offers it; Debian's cjson 2.1.0 does not, so `[]` and `{}` are alike there.
function _M.decode(text)
  if type(text) ~= "string" then return nil, "no body" end
  local v, err = cjson.decode(text)
  if v == nil and err then return nil, err end
  return v
end

_M.is_empty = function(t) return next(t) == nil end

return _M
