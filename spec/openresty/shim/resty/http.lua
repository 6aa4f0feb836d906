-- TEST-ONLY stand-in for lua-resty-http (github.com/ledgetech/lua-resty-http), which is in no
-- package repository this project installs from. It implements the part of lua-resty-http's
-- documented API (its README) that campaign.ngx's `transport = "resty.http"` adapter calls:
--   http.new() -> httpc;  httpc:set_timeout(ms);  httpc:set_timeouts(connect, send, read)
--   httpc:connect(options) -> ok | nil, err;  httpc:request(params) -> res | nil, err;
--   res:read_body() -> body | nil, err;  httpc:set_keepalive(ms, size);  httpc:close()
--   httpc:request_uri(uri, params) -> res {status, reason, headers, body, has_body} | nil, err
--   params: method, headers, body, query, version, keepalive, keepalive_timeout, keepalive_pool,
--   ssl_verify, ssl_server_name; res.headers: repeated names as a list, case-insensitive lookup;
--   err: the cosocket's own error ("connection refused", "timeout", "closed", ...).
-- over ngx.socket.tcp, so spec/openresty/contract_spec.lua can exercise the adapter in
-- lua/campaign/ngx.lua. A pass against this shim shows the adapter keeps the documented API;
-- it says nothing about the real library. Found only when a spec puts spec/openresty/shim/ on
-- lua_package_path (harness.start{lua_path = ...}).
local _M = { _VERSION = "0.0-test-shim" }
local mt = { __index = _M }

local str_lower, str_match, concat = string.lower, string.match, table.concat

function _M.new()
  return setmetatable({}, mt)
end

function _M:set_timeout(ms)
  self.timeouts = { ms, ms, ms }
end

function _M:set_timeouts(connect, send, read)
  self.timeouts = { connect, send, read }
end

-- lua-resty-http's headers table: lookups ignore case, names keep the server's spelling.
local function headers_table()
  return setmetatable({}, { __index = function(t, name)
    if type(name) ~= "string" then return nil end
    local want = str_lower(name)
    for k, v in pairs(t) do
      if str_lower(k) == want then return v end
    end
    return nil
  end })
end

local function parse_uri(uri)
  local scheme, authority, rest = str_match(uri, "^(%a[%w+.-]*)://([^/?#]*)(.*)$")
  if not scheme then return nil, "bad uri: " .. uri end
  scheme = str_lower(scheme)
  local host, port = str_match(authority, "^%[(.-)%]:?(%d*)$")
  if not host then host, port = str_match(authority, "^([^:]*):?(%d*)$") end
  port = tonumber(port) or (scheme == "https" and 443 or 80)
  local path, query = str_match(rest, "^([^?#]*)%??([^#]*)")
  if path == "" then path = "/" end
  return { scheme = scheme, host = host, port = port, path = path, query = query, authority = authority }
end

local function read_chunked(sock)
  local parts = {}
  while true do
    local line, err = sock:receive("*l")
    if not line then return nil, err end
    local size = tonumber(str_match(line, "^%s*(%x+)"), 16)
    if not size then return nil, "bad chunk size" end
    if size == 0 then
      repeat -- trailers, up to the empty line
        line, err = sock:receive("*l")
        if not line then return nil, err end
      until line == ""
      return concat(parts)
    end
    local data
    data, err = sock:receive(size)
    if not data then return nil, err end
    parts[#parts + 1] = data
    line, err = sock:receive("*l")
    if not line then return nil, err end
  end
end

-- httpc:connect(options): options.scheme, host, port, pool, pool_size, ssl_verify,
-- ssl_server_name (lua-resty-http's table form, which also runs the TLS handshake) -> ok | nil, err
function _M:connect(options)
  local sock = ngx.socket.tcp()
  if self.timeouts then sock:settimeouts(self.timeouts[1], self.timeouts[2], self.timeouts[3]) end
  local scheme = options.scheme or "http"
  local port = options.port or (scheme == "https" and 443 or 80)
  local verify = options.ssl_verify ~= false   -- lua-resty-http verifies by default
  local ok, err = sock:connect(options.host, port, {
    pool = options.pool or (scheme .. ":" .. options.host .. ":" .. port .. ":" .. tostring(verify)),
    pool_size = options.pool_size,
  })
  if not ok then return nil, err end
  if scheme == "https" and sock:getreusedtimes() == 0 then
    ok, err = sock:sslhandshake(nil, options.ssl_server_name or options.host, verify)
    if not ok then
      sock:close()
      return nil, err
    end
  end
  local default_port = (scheme == "https" and port == 443) or (scheme == "http" and port == 80)
  self.sock, self.authority = sock, default_port and options.host or (options.host .. ":" .. port)
  return true
end

function _M:close()
  if self.sock then self.sock:close() end
  self.sock = nil
  return true
end

function _M:set_keepalive(timeout, pool_size)
  local sock = self.sock
  self.sock = nil
  if not sock then return nil, "closed" end
  if self.keep == false then return sock:close() end
  return sock:setkeepalive(timeout, pool_size)
end

-- httpc:request(params): params.method, path (with its query), query, headers, body, version
-- -> res {status, reason, headers, has_body, read_body()} | nil, err. The body is read by
-- res:read_body() -> body | nil, err.
function _M:request(params)
  local sock = self.sock
  if not sock then return nil, "closed" end
  local path, query = params.path or "/", params.query
  if type(query) == "table" then
    local q = {}
    for k, v in pairs(query) do q[#q + 1] = ngx.escape_uri(k) .. "=" .. ngx.escape_uri(tostring(v)) end
    query = concat(q, "&")
  end
  local method = params.method or "GET"
  local version = params.version or 1.1
  local lines = { method .. " " .. path .. ((query and query ~= "") and ("?" .. query) or "")
    .. " HTTP/" .. string.format("%.1f", version) }
  local have = {}
  for name, value in pairs(params.headers or {}) do
    have[str_lower(name)] = true
    if type(value) == "table" then
      for _, v in ipairs(value) do lines[#lines + 1] = name .. ": " .. tostring(v) end
    else
      lines[#lines + 1] = name .. ": " .. tostring(value)
    end
  end
  if not have.host then lines[#lines + 1] = "Host: " .. self.authority end
  if not have["user-agent"] then lines[#lines + 1] = "User-Agent: lua-resty-http/" .. _M._VERSION end
  local body = params.body
  if body and not have["content-length"] then lines[#lines + 1] = "Content-Length: " .. #body end
  local sent, err = sock:send(concat(lines, "\r\n") .. "\r\n\r\n" .. (body or ""))
  if not sent then return nil, err end

  local status_line, res
  repeat -- skip 1xx answers
    status_line, err = sock:receive("*l")
    if not status_line then return nil, err end
    local headers = headers_table()
    local status = tonumber(str_match(status_line, "^HTTP/%d%.%d (%d%d%d)"))
    if not status then return nil, "bad status line: " .. status_line end
    while true do
      local line
      line, err = sock:receive("*l")
      if not line then return nil, err end
      if line == "" then break end
      local name, value = str_match(line, "^([^:]+):%s*(.-)%s*$")
      if name then
        local old = rawget(headers, name)
        if old == nil then
          headers[name] = value
        elseif type(old) == "table" then
          old[#old + 1] = value
        else
          headers[name] = { old, value }
        end
      end
    end
    res = { status = status, reason = str_match(status_line, "^HTTP/%S+ %d+ ?(.*)$"), headers = headers }
  until res.status >= 200

  local headers = res.headers
  local no_body = method == "HEAD" or res.status == 204 or res.status == 304
  local connection = headers["Connection"]
  self.keep = str_match(status_line, "^HTTP/1%.1") ~= nil
    and not (type(connection) == "string" and str_lower(connection):find("close", 1, true))
  res.has_body = not no_body
  res.read_body = function()
    if no_body then return "" end
    local te, length = headers["Transfer-Encoding"], tonumber(headers["Content-Length"])
    local text, rerr
    if type(te) == "string" and str_lower(te):find("chunked", 1, true) then
      text, rerr = read_chunked(sock)
    elseif length then
      text, rerr = sock:receive(length)
    else
      self.keep = false
      text, rerr = sock:receive("*a")
    end
    return text, rerr
  end
  return res
end

-- httpc:request_uri(uri, params): connect, request, read_body and keep-alive in one call.
function _M:request_uri(uri, params)
  params = params or {}
  local u, perr = parse_uri(uri)
  if not u then return nil, perr end
  local ok, err = self:connect { scheme = u.scheme, host = u.host, port = u.port,
    ssl_verify = params.ssl_verify, ssl_server_name = params.ssl_server_name,
    pool_size = params.keepalive_pool }
  if not ok then return nil, err end
  local res
  res, err = self:request { method = params.method, path = u.path, query = params.query or u.query,
    headers = params.headers, body = params.body, version = params.version }
  if not res then
    self:close()
    return nil, err
  end
  local body
  body, err = res.read_body()
  if not body then
    self:close()
    return nil, err
  end
  res.body = body
  if params.keepalive == false then self.keep = false end
  self:set_keepalive(params.keepalive_timeout, params.keepalive_pool)
  return res
end

return _M
