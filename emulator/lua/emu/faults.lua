-- Fault injection: POST /_emulator/faults stores a list of
--   {method, path (Lua pattern on the decoded URI path), status, body, headers, delay_ms,
--    drop, truncate, invalid, html, times}
-- Each request takes the first matching fault (absent method/path match everything),
-- which is consumed after `times` uses (default 1; a negative `times` never runs out).
local json = require "emu.json"
local state = require "emu.state"

local ngx = ngx
local type, pairs, ipairs, tostring, pcall = type, pairs, ipairs, tostring, pcall

local _M = {}

local KEYS = { method = "string", path = "string", status = "number", body = "any", headers = "table",
  delay_ms = "number", drop = "boolean", truncate = "any", invalid = "boolean", html = "boolean",
    times = "number" }

-- Checks one fault table from the admin API; returns true or nil, message.
function _M.check(f)
  if type(f) ~= "table" then return nil, "a fault must be an object" end
  for k, v in pairs(f) do
    local want = KEYS[k]
    if not want then return nil, "unknown fault key '" .. tostring(k) .. "'" end
    if want ~= "any" and type(v) ~= want then return nil, "fault key '" .. k .. "' must be a " .. want end
  end
  if f.path and not pcall(string.find, "", f.path) then
    return nil, "bad Lua pattern in 'path': " .. f.path
  end
  if f.status and (f.status < 100 or f.status > 599) then return nil, "'status' must be 100..599" end
  if f.truncate ~= nil and type(f.truncate) ~= "boolean" and type(f.truncate) ~= "number" then
    return nil, "'truncate' must be true or a byte count"
  end
  return true
end

-- Finds and consumes the first fault matching this request; returns it or nil.
function _M.take(method, path)
  local list = state.faults()
  if not list then return nil end
  for i, f in ipairs(list) do
    if (f.method == nil or f.method:upper() == method) and (f.path == nil or path:find(f.path)) then
      local times = f.times or 1
      if times >= 0 then
        times = times - 1
        if times <= 0 then table.remove(list, i) else f.times = times end
        state.set_faults(list)
      end
      return f
    end
  end
  return nil
end

local REASONS = { [400] = "Bad Request", [401] = "Unauthorized", [403] = "Forbidden", [404] = "Not Found",
  [408] = "Request Timeout", [409] = "Conflict", [413] = "Payload Too Large", [429] = "Too Many Requests",
  [500] = "Internal Server Error", [502] = "Bad Gateway", [503] = "Service Unavailable",
  [504] = "Gateway Timeout" }

local function default_body(status)
  if status == 429 then return json.encode { error_code = "429050", message = "Too many requests" } end
  if status >= 400 then
    return json.encode { code = status, message = REASONS[status] or ("HTTP " .. status) }
  end
  return "{}"
end

-- What a truncated answer starts to send when the fault gives no body: a listing.
local TRUNCATED_BODY = json.encode { content = json.array { { PKey = "@" .. string.rep("A", 100),
  email = "amy.dakota@mail.com", firstName = "Amy", lastName = "Dakota", birthDate = "1980-10-24",
  location = { city = "Paris", countryCode = "FR", zipCode = "75001" } } },
  serverSidePagination = true }

local function html_page(status)
  local title = status .. " " .. (REASONS[status] or "Error")
  return "<html>\r\n<head><title>" .. title .. "</title></head>\r\n<body>\r\n<center><h1>" .. title
    .. "</h1></center>\r\n<hr><center>awselb/2.0</center>\r\n</body>\r\n</html>\r\n"
end

-- Whether the fault answers by itself (else the request goes on to its handler).
function _M.answers(f)
  return f.drop or f.truncate or f.status ~= nil or f.body ~= nil or f.invalid or f.html
end

-- Applies a fault. Returns true when the response was produced here; false when the
-- request must go on (a pure delay), with any extra headers to add to the real answer.
function _M.apply(f)
  if f.delay_ms and f.delay_ms > 0 then ngx.sleep(f.delay_ms / 1000) end
  if f.drop then return ngx.exit(444) end
  if not _M.answers(f) then return false, f.headers end
  local status = f.status or (f.html and 502 or 200)
  local body, content_type = f.body, "application/json;charset=utf-8"
  if f.html then
    body, content_type = body or html_page(status), "text/html"
  elseif f.invalid then
    body = body or '{"PKey": "@truncated", "email": '
  elseif type(body) == "table" then
    body = json.encode(body)
  elseif body == nil and f.truncate then
    body = TRUNCATED_BODY
  elseif body == nil then
    body = default_body(status)
  else
    body = tostring(body)
  end
  ngx.status = status
  ngx.header["Content-Type"] = content_type
  ngx.header["X-Emulator-Route"] = "fault"
  for k, v in pairs(f.headers or {}) do ngx.header[k] = v end
  if f.truncate then
    -- Announce the whole length, send part of it, then close the connection.
    local cut = type(f.truncate) == "number" and f.truncate or math.floor(#body / 2)
    ngx.header["Content-Length"] = #body
    ngx.print(body:sub(1, cut))
    ngx.flush(true)
    return ngx.exit(444)
  end
  ngx.header["Content-Length"] = #body
  ngx.print(body)
  return true
end

return _M
