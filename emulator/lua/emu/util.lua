-- Small helpers shared by the handlers: PKeys, ACS datetimes, URLs and error bodies.
local ngx = ngx
local encode_base64 = ngx.encode_base64
local sha1_bin = ngx.sha1_bin
local floor, format = math.floor, string.format

local _M = {}

_M.null = require("cjson").null

-- PKeys look like ACS's: "@" + 100 chars of [A-Za-z0-9_-]. They are derived from the
-- resource kind and a sequence number, so a reset emulator hands out the same keys again.
function _M.pkey(kind, n)
  local raw = {}
  for i = 1, 4 do
    raw[i] = sha1_bin(kind .. ":" .. n .. ":" .. i)
  end
  local b64 = encode_base64(table.concat(raw), true):gsub("[+/]", { ["+"] = "-", ["/"] = "_" })
  return "@" .. b64:sub(1, 100)
end

-- "2019-09-25 23:20:35.000Z": the ACS datetime (UTC, space separator, milliseconds).
function _M.datetime(t)
  t = t or ngx.now()
  local secs = floor(t)
  local ms = floor((t - secs) * 1000 + 0.5)
  if ms >= 1000 then secs, ms = secs + 1, 0 end
  return os.date("!%Y-%m-%d %H:%M:%S", secs) .. format(".%03dZ", ms)
end

-- Whole years between a "YYYY-MM-DD" birth date and today (UTC); nil when unset.
function _M.age(birth_date, now)
  local y, m, d = tostring(birth_date or ""):match("^(%d%d%d%d)-(%d%d)-(%d%d)")
  if not y then return nil end
  local today = os.date("!*t", now or ngx.time())
  local age = today.year - tonumber(y)
  if today.month < tonumber(m) or (today.month == tonumber(m) and today.day < tonumber(d)) then
    age = age - 1
  end
  return age
end

-- The origin the client used: hrefs in responses are absolute and point back at it.
function _M.origin()
  local var = ngx.var
  local host = var.http_host
  if not host or host == "" then
    host = var.server_addr .. ":" .. var.server_port
  end
  return var.scheme .. "://" .. host
end

function _M.api_root(org)
  return _M.origin() .. "/" .. org .. "/campaign/"
end

-- An ACS engine error: {"code":<status>,"message":"RST-360011 ...\n<detail>\n<codes>"}.
local RST = "RST-360011 An error has occurred - please contact your administrator."
_M.RST = RST
function _M.engine_error(status, ...)
  local lines = { RST, ... }
  return status, { code = status, message = table.concat(lines, "\n") }
end

function _M.not_found(what)
  return 404, { code = 404, message = what or "The requested resource was not found." }
end

-- A well-formed PKey has the shape of the keys ACS and the emulator hand out: "@" and at
-- least 64 chars of [A-Za-z0-9_-] (ACS's samples have 92-113, the emulator's have 100).
-- Anything else ("@gibberish", "@x", "notapkey") cannot be a PKey at all.
local MIN_PKEY_BODY = 64
_M.MIN_PKEY_BODY = MIN_PKEY_BODY
function _M.well_formed_pkey(key)
  return type(key) == "string" and #key > MIN_PKEY_BODY and key:find("^@[A-Za-z0-9_%-]+$") ~= nil
end

-- ACS's answer to a key that cannot be a PKey (acs-api.md section 1): 500, with both
-- published texts, "'@gibberish' is not a valid constant" (SDK e2e) and "'<x>' attribute
-- unknown ... XTK-170036 Unable to parse expression '@id = @<x>'" (EC:limitations).
function _M.invalid_pkey(key)
  key = tostring(key)
  local x = key:gsub("^@", "")
  return _M.engine_error(500, "'" .. key .. "' is not a valid constant.",
    "'" .. x .. "' attribute unknown.",
    "XTK-170036 Unable to parse expression '@id = @" .. x .. "'.")
end

-- No record has this key. A well-formed PKey (e.g. of a deleted record) answers 404; a key
-- that cannot be a PKey answers ACS's 500 (invalid_pkey). by_name: the route also takes a
-- name or id without "@" (workflow id, activity name, business key), so such a key that
-- matches nothing is a missing record (404) too.
function _M.unknown_pkey(resource, key, by_name)
  key = tostring(key)
  if not _M.well_formed_pkey(key) and not (by_name and key:sub(1, 1) ~= "@") then
    return _M.invalid_pkey(key)
  end
  return 404, { code = 404, message = RST .. "\nNo '" .. resource .. "' resource has the key '"
    .. key .. "'.\nXTK-170036 Unable to parse expression '@id = " .. key .. "'." }
end

function _M.shallow_copy(t)
  local c = {}
  for k, v in pairs(t) do c[k] = v end
  return c
end

function _M.urlencode(s)
  return ngx.escape_uri(tostring(s))
end

return _M
