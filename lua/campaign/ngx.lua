--- campaign.ngx: the OpenResty client. Same methods, return values, error objects, retry and
-- 401 rules as the C client (docs/client.md), but it never blocks the nginx worker: requests go
-- through `ngx.location.capture` to an internal location that proxies to the API with nginx's
-- own proxy module (keep-alive pools, TLS verification), waits use `ngx.sleep`, and `batch`
-- runs a bounded pool of light threads. See docs/openresty.md for the nginx.conf snippet.
--
-- Nothing here keeps mutable state at module level: a client is a table owned by its creator
-- (one per worker from init_worker, or one per request), and the shared token lives in a
-- lua_shared_dict.
local campaign = require "campaign"

local ngx = ngx -- nil outside OpenResty: `require` still works, `new` then raises
local type, pairs, ipairs, tostring, tonumber = type, pairs, ipairs, tostring, tonumber
local setmetatable, getmetatable, error, pcall, select = setmetatable, getmetatable, error, pcall, select
local str_byte, str_find, str_format = string.byte, string.find, string.format
local str_gsub, str_lower, str_match, str_sub, str_upper = string.gsub, string.lower, string.match,
  string.sub, string.upper
local concat, sort = table.concat, table.sort
local floor, min = math.floor, math.min
local pacing_take = campaign._pacing_take

local VERSION = campaign._VERSION or "0.0.0"

---@class campaign.ngx
---@field _VERSION string
---@field DEFAULT_LOCATION string
local _M = { _VERSION = VERSION }
-- tostring(client) names the org, never a secret (as the C client's "campaign.Client(acme)")
local client_mt = {
  __index = _M,
  __tostring = function(self) return "campaign.ngx.Client(" .. self._org .. ")" end,
}

local DEFAULT_LOCATION = "/_campaign_proxy"
local ERROR_BODY_LIMIT = 4096

-- campaign.new's options, and what this client does with each.
local OPTIONS = {
  org = "string", api_key = "string", base_url = "string", user_agent = "string",
  location = "string", upstream = "string",
  timeout = "number", connect_timeout = "number", retry_base = "number", retry_max = "number",
  retries = "number", max_body = "number", allow_http = "boolean",
  token = "token", on_event = "function", transport = "transport",
  ssl_verify = "boolean", pool_size = "number", pool_idle_timeout = "number", max_head = "number",
  rate = "number", burst = "number", budget = "budget", shared_dict = "string",
}
-- Options of campaign.new that nginx.conf decides here: naming them is a mistake worth a raise,
-- since silently ignoring `insecure = true` or a `cafile` would mislead.
local NGINX_OPTIONS = {
  cafile = "lua_ssl_trusted_certificate in nginx.conf (cosocket transport) or "
    .. "proxy_ssl_trusted_certificate in the internal location (capture transport)",
  insecure = "ssl_verify = false (cosocket transport) or proxy_ssl_verify in the internal location",
  proxy = "the internal location's proxy_pass",
  http2 = "nginx (its proxy module speaks HTTP/1.1 to upstreams)",
}

local REASONS = {
  [400] = "Bad Request", [401] = "Unauthorized", [403] = "Forbidden", [404] = "Not Found",
  [405] = "Method Not Allowed", [408] = "Request Timeout", [409] = "Conflict",
  [410] = "Gone", [413] = "Payload Too Large", [415] = "Unsupported Media Type",
  [422] = "Unprocessable Entity", [429] = "Too Many Requests", [500] = "Internal Server Error",
  [501] = "Not Implemented", [502] = "Bad Gateway", [503] = "Service Unavailable",
  [504] = "Gateway Timeout",
}

local BUILTIN_TRANSPORTS = { cosocket = true, capture = true, ["resty.http"] = true }

local METHODS = { GET = true, POST = true, PUT = true, PATCH = true, DELETE = true, HEAD = true,
  OPTIONS = true }
local TRANSIENT_STATUS = { [429] = true, [502] = true, [503] = true, [504] = true }
local RETRIED_METHODS = { GET = true, HEAD = true, PATCH = true, PUT = true, DELETE = true, OPTIONS = true }
-- Headers a request may not set itself: the client owns them.
local RESERVED_HEADERS = {
  authorization = true, ["x-api-key"] = true, host = true, ["content-length"] = true,
  ["transfer-encoding"] = true, connection = true,
}

local function is_callable(v)
  if type(v) == "function" then return true end
  local mt = getmetatable(v)
  return type(mt) == "table" and type(mt.__call) == "function"
end

local function make_error(fields)
  return campaign.error(fields)
end

local function is_error(v)
  return campaign.is_error(v)
end

local function now()
  ngx.update_time()
  return ngx.now()
end

---------------------------------------------------------------------------------------------
-- URLs: the same rules as src/url.c, so both clients send byte-identical requests.
---------------------------------------------------------------------------------------------

local function has_control(s)
  return str_find(s, "[%z\1-\31\127]") ~= nil
end

local function escape_byte(c) return str_format("%%%02X", str_byte(c)) end

-- Path segment bytes kept verbatim: unreserved, `@`, `:` and sub-delims but `+`.
local function encode_segment(seg)
  -- keep valid %XX escapes, encode a lone '%'
  seg = str_gsub(seg, "%%(%x?%x?)", function(hex)
    if #hex == 2 then return "%" .. hex end
    return "%25" .. hex
  end)
  return (str_gsub(seg, "[^%w%-%._~@:!%$&'%(%)%*,;=%%]", escape_byte))
end

local function is_dot_segment(seg)
  local s = str_gsub(seg, "%%2[eE]", ".")
  return s == "." or s == ".."
end

-- Why a segment would be read as structure once the server decodes it (nginx decodes %XX, then
-- resolves dot segments), or nil; url.c's segment_problem, same order and messages.
local function segment_problem(seg)
  if is_dot_segment(seg) then return "path segments '.' and '..' are refused" end
  if str_find(seg, "\\", 1, true) then return "backslashes are refused in paths" end
  if str_find(seg, "%%2[fF]") or str_find(seg, "%%5[cC]") then
    return "encoded '/' and '\\' (%2F, %5C) are refused in paths (no ACS key contains one)"
  end
  return nil
end

local function encode_path(fname, path)
  local out, n = {}, 0
  local start = 1
  while true do
    local slash = str_find(path, "/", start, true)
    local seg = str_sub(path, start, (slash or 0) - 1)
    local problem = segment_problem(seg)
    if problem then error(fname .. ": " .. problem, 4) end
    n = n + 1
    out[n] = encode_segment(seg)
    if not slash then break end
    start = slash + 1
  end
  return concat(out, "/")
end

local function encode_verbatim_query(q)
  q = str_gsub(q, "%%(%x?%x?)", function(hex)
    if #hex == 2 then return "%" .. hex end
    return "%25" .. hex
  end)
  return (str_gsub(q, "[%s\"<>\\%^`{|}#\128-\255]", escape_byte))
end

local function encode_query_text(s)
  return (str_gsub(s, "[^%w%-%._~@:/,]", escape_byte))
end

local function query_scalar(fname, key, v)
  local t = type(v)
  if t == "string" then
    if has_control(v) then error(fname .. ": control characters (CR, LF, ...) are refused in queries", 5) end
    return encode_query_text(v)
  elseif t == "boolean" then
    return v and "true" or "false"
  elseif t == "number" then
    if v ~= v or v - v ~= 0 then
      error(fname .. ": query value '" .. key .. "' is not a finite number", 5)
    end
    if v == floor(v) and v > -2^53 and v < 2^53 then return str_format("%d", v) end
    local s = str_format("%.15g", v)
    if tonumber(s) ~= v then s = str_format("%.17g", v) end
    return s
  end
  error(fname .. ": query value '" .. key .. "' must be a string, number, boolean or a list of them", 5)
end

local function encode_query_table(fname, query)
  local keys = {}
  for k in pairs(query) do
    if type(k) ~= "string" then error(fname .. ": query keys must be strings", 4) end
    keys[#keys + 1] = k
  end
  sort(keys)
  local parts = {}
  for _, k in ipairs(keys) do
    if has_control(k) then error(fname .. ": control characters (CR, LF, ...) are refused in queries", 4) end
    local ek = encode_query_text(k)
    local v = query[k]
    if type(v) == "table" then
      for i = 1, #v do
        if type(v[i]) == "table" then
          error(fname .. ": query value '" .. k .. "' must be a string, number, boolean or a list of them", 4)
        end
        parts[#parts + 1] = ek .. "=" .. query_scalar(fname, k, v[i])
      end
    else
      parts[#parts + 1] = ek .. "=" .. query_scalar(fname, k, v)
    end
  end
  return concat(parts, "&")
end

-- Splits an absolute http(s) URL: returns scheme, host (lower case, brackets kept), port,
-- the authority as written, and the rest (path, query). nil when it is not one.
local function split_url(s)
  local scheme, authority, rest = str_match(s, "^([%a][%w+.-]*)://([^/?#]*)(.*)$")
  if not scheme then return nil end
  scheme = str_lower(scheme)
  if scheme ~= "http" and scheme ~= "https" then return nil end
  if authority == "" or str_find(authority, "[@%s%c]") then return nil end
  local host, port
  if str_sub(authority, 1, 1) == "[" then
    host, port = str_match(authority, "^(%[[^%]]+%])(.*)$")
  else
    host, port = str_match(authority, "^([^:]+)(.*)$")
  end
  if not host then return nil end
  if port == "" or port == ":" then
    port = scheme == "https" and 443 or 80
  else
    port = str_match(port, "^:(%d+)$")
    port = port and tonumber(port)
    if not port or port < 1 or port > 65535 then return nil end
  end
  return scheme, str_lower(host), port, authority, rest
end

local function build_url(self, fname, path, query)
  if has_control(path) then
    error(fname .. ": control characters (CR, LF, ...) are refused in paths", 3)
  end
  -- dropping a fragment silently turned ".../profile/#" into the collection: refused instead
  if str_find(path, "#", 1, true) then
    error(fname .. ": '#' is refused in paths (a fragment is never sent; encode it as %23)", 3)
  end
  local prefix, rest
  if str_find(path, "^[%a][%w+.-]*://") then
    local scheme, host, port, _, tail = split_url(path)
    if not scheme then
      error(fname .. ": only http and https URLs without user information are accepted", 3)
    end
    if scheme ~= self._scheme or host ~= self._host or port ~= self._port then
      error(fname .. ": an absolute URL must have the base_url's scheme, host and port "
        .. "(credentials never go to another origin)", 3)
    end
    prefix = str_sub(path, 1, #path - #tail)
    rest = tail
    if str_sub(rest, 1, 1) ~= "/" then prefix = prefix .. "/" end
  else
    prefix = self._root
    -- an href relative to the host that starts with the root's own path ("/acme/campaign/")
    -- names the same place, so it is not put under the root twice
    local root_path = str_match(prefix, "^[%a][%w+.-]*://[^/]*(/.*)$")
    if root_path and #path >= #root_path and str_sub(path, 1, #root_path) == root_path then
      path = str_sub(path, #root_path + 1)
    end
    rest = str_gsub(path, "^/+", "")
  end
  local p, q = str_match(rest, "^([^?]*)%??(.*)$")
  local url = prefix .. encode_path(fname, p)
  local has_query = false
  if q ~= "" then
    url = url .. "?" .. encode_verbatim_query(q)
    has_query = true
  end
  if query ~= nil then
    if type(query) ~= "table" then error(fname .. ": option 'query' must be a table", 3) end
    local qs = encode_query_table(fname, query)
    if qs ~= "" then url = url .. (has_query and "&" or "?") .. qs end
  end
  return url
end

---------------------------------------------------------------------------------------------
-- The default transport: a subrequest to the internal location (see proxy_rewrite below).
---------------------------------------------------------------------------------------------

local function capture_method(method)
  local m = ngx["HTTP_" .. method]
  if type(m) ~= "number" then
    error("campaign.ngx: the location.capture transport cannot send method " .. method, 4)
  end
  return m
end

local CAPTURE_PHASES = { rewrite = true, access = true, content = true }
-- The transport of a client without a `transport` option in the phases where both work,
-- chosen by measurement (docs/openresty.md "Choosing a transport").
local DEFAULT_IN_REQUEST = "cosocket"

-- Lower-cased header names; repeated headers joined with ", " (as the C client does).
local function normalise_headers(raw)
  local headers = {}
  for name, value in pairs(raw or {}) do
    local key = str_lower(name)
    if type(value) == "table" then value = concat(value, ", ") end
    if headers[key] then headers[key] = headers[key] .. ", " .. value else headers[key] = value end
  end
  return headers
end

local function last_entry(v)
  if type(v) ~= "string" then return nil end
  return str_match(v, "([^,%s]+)%s*$")
end

--- transport for ngx.location.capture. Returns a function(req) -> response | nil, kind, message,
-- sent. `upstream` (optional) names an nginx `upstream {}` block (keep-alive pool) that
-- replaces the authority of the URL in proxy_pass; Host and the TLS server name stay the real
-- host's.
---@param location? string default "/_campaign_proxy"
---@param upstream? string an nginx upstream block
---@return fun(req: table): (table|nil, string?, string?, boolean?)
function _M.capture_transport(location, upstream)
  location = location or DEFAULT_LOCATION
  -- A client sends every request to one origin: split it once, not per request.
  local origin, scheme, host, authority, ssl_name, target_prefix
  return function(req)
    local phase = ngx.get_phase()
    if not CAPTURE_PHASES[phase] then
      error("campaign.ngx: the default transport (ngx.location.capture) works in the rewrite, "
        .. "access and content phases only, not in '" .. phase .. "'; use transport = \"cosocket\" "
        .. "(docs/openresty.md) or campaign.new where blocking is acceptable", 3)
    end
    local url = req.url
    local url_origin, rest = str_match(url, "^(%a[%w+.-]*://[^/?#]*)(.*)$")
    if url_origin ~= origin then
      local split_scheme, split_host, _, split_authority = split_url(url)
      if not split_scheme then error("campaign.ngx: not an http(s) URL: " .. url, 3) end
      origin, scheme, host, authority = url_origin, split_scheme, split_host, split_authority
      ssl_name = str_gsub(host, "^%[(.*)%]$", "%1")
      target_prefix = upstream and (scheme .. "://" .. upstream) or url_origin
    end
    local ctx = {
      campaign_proxy = {
        url = upstream and (target_prefix .. rest) or url, host = authority, ssl_name = ssl_name,
        headers = req.headers, max_body = req.max_body,
      },
    }
    local body = req.body
    if body == nil and (req.method == "POST" or req.method == "PUT" or req.method == "PATCH") then
      body = "" -- never let the subrequest inherit the handler's own request body
    end
    local res = ngx.location.capture(location, {
      method = capture_method(req.method), body = body, ctx = ctx,
    })
    local seen = ctx.campaign_upstream
    if not seen then
      -- a configuration mistake, not a runtime failure: say so loudly, once
      error(str_format("campaign.ngx: the internal location %s did not run campaign.ngx's "
        .. "handlers (subrequest status %d): include examples/openresty/campaign_proxy.conf "
        .. "(docs/openresty.md)", location, res.status), 3)
    end
    if not last_entry(seen.header_time) or last_entry(seen.header_time) == "-" then
      -- nginx answered for the upstream: no response header came back
      local connected = seen.connect_time and str_find(seen.connect_time, "%d") ~= nil
      if res.status == 504 then
        return nil, "timeout", "no answer from " .. authority .. " within proxy_read_timeout "
          .. "(or proxy_connect_timeout)", connected
      end
      -- nginx tells the reason only to its error log: a refused connection, a name the
      -- `resolver` could not resolve, or (https) a certificate proxy_ssl_verify refused
      return nil, "network", "could not reach " .. authority .. (scheme == "https"
        and " (connection, DNS resolver or TLS certificate verification failure: see the nginx error log)"
        or " (connection or DNS resolver failure: see the nginx error log)"), connected
    end
    if ctx.campaign_too_large then
      return nil, "too_large", str_format("the response body is larger than max_body (%d bytes)",
        req.max_body), true
    end
    if res.truncated then
      return nil, "network", "the response from " .. authority .. " was cut short", true
    end
    return { status = res.status, headers = normalise_headers(res.header), body = res.body or "" }
  end
end

--- Runs in the internal location's rewrite phase (`rewrite_by_lua_block`): points proxy_pass at
-- the request's URL and replaces every header inherited from the handler's request (cookies,
-- the caller's own Authorization) by the client's.
-- luacheck: push ignore 122 (ngx.var and ngx.ctx are meant to be written)
---@return nil
function _M.proxy_rewrite()
  local p = ngx.ctx.campaign_proxy
  if not p then return ngx.exit(404) end
  local var = ngx.var
  var.campaign_upstream = p.url
  var.campaign_host = p.host
  var.campaign_ssl_name = p.ssl_name
  local clear, set = ngx.req.clear_header, ngx.req.set_header
  for name in pairs(ngx.req.get_headers(0, true)) do
    if str_lower(name) ~= "content-length" then clear(name) end
  end
  for name, value in pairs(p.headers) do
    -- set_header drops a header set to "" (and with it a default, Content-Type): one space is
    -- the same empty value on the wire (HTTP trims it), as the C client sends it
    set(name, value == "" and " " or value)
  end
end

--- Runs in the internal location's header filter (`header_filter_by_lua_block`): records what
-- the proxy saw, so the client can tell an upstream's own 502 from nginx's "could not connect".
---@return nil
function _M.proxy_header_filter()
  local ctx = ngx.ctx
  local p = ctx.campaign_proxy
  if p then
    local var = ngx.var
    ctx.campaign_upstream = {
      connect_time = var.upstream_connect_time, header_time = var.upstream_header_time,
    }
    -- A Content-Length within max_body spares the body filter from counting (and copying)
    -- every chunk; one above it is refused before any of the body is kept.
    local max_body = p.max_body
    local length = max_body and tonumber(ngx.header.content_length)
    if length then
      if length > max_body then
        ctx.campaign_too_large = true
      else
        ctx.campaign_body_fits = true
      end
    end
  end
end

--- Runs in the internal location's body filter (`body_filter_by_lua_block`): a captured body is
-- kept in memory whole, so past max_body the rest is dropped and the request marked too large.
---@return nil
function _M.proxy_body_filter()
  local ctx = ngx.ctx
  if ctx.campaign_body_fits then return end
  if ctx.campaign_too_large then
    ngx.arg[1] = ""
    return
  end
  local p = ctx.campaign_proxy
  if not p or not p.max_body then return end
  local received = (ctx.campaign_body_bytes or 0) + #(ngx.arg[1] or "")
  ctx.campaign_body_bytes = received
  if received > p.max_body then
    ctx.campaign_too_large = true
    ngx.arg[1] = ""
  end
end
-- luacheck: pop

---------------------------------------------------------------------------------------------
-- The cosocket transport: ngx.socket.tcp, TLS by ngx_lua, HTTP/1.1 framing by the C parser
-- (campaign._http_response, src/http_response.c). It works wherever cosockets do: request
-- phases, ngx.timer.at callbacks and the light threads they start.
---------------------------------------------------------------------------------------------

local new_parser = campaign._http_response
local LINE_READ = 8192 -- bytes asked for at a time while the parser wants a line (head, chunk size)

-- Reads one response from sock through the parser. Returns the parser, or nil, kind, message.
local function read_response(sock, p)
  while true do
    local need = p:need()
    if not need then return p end
    local data, err, partial
    if need == "line" then
      -- a well-behaved server sends nothing past the end of the response to the one request
      -- in flight, so reading up to LINE_READ never takes the next response's bytes
      data, err = sock:receiveany(LINE_READ)
    else
      data, err, partial = sock:receive(need)
    end
    local state, kind, message
    if data then
      state, kind, message = p:feed(data)
    elseif err == "closed" then
      if partial and partial ~= "" then state, kind, message = p:feed(partial) end
      if state ~= nil or partial == nil or partial == "" then state, kind, message = p:feed(nil) end
    else
      return nil, err == "timeout" and "timeout" or "network", err
    end
    if not state then return nil, kind, message end
  end
end

--- The built-in cosocket transport: function(req) -> response | nil, kind, message, sent.
-- opts: ssl_verify (default true), pool_size (default 16 per host), pool_idle_timeout (seconds,
-- default 30: under the keep-alive timeout of common servers and load balancers), max_head
-- (default 65536 bytes).
---@param opts? {ssl_verify?: boolean, pool_size?: integer, pool_idle_timeout?: number, max_head?: integer}
---@return fun(req: table): (table|nil, string?, string?, boolean?)
function _M.cosocket_transport(opts)
  opts = opts or {}
  local verify = opts.ssl_verify ~= false
  local pool_size = opts.pool_size or 16
  local idle_ms = floor((opts.pool_idle_timeout or 30) * 1000)
  local max_head = opts.max_head or 65536
  -- a client sends every request to one origin: split it once, not per request
  local origin, scheme, host, port, authority, connect_host, server_name, pool, ssl_session
  return function(req)
    local url = req.url
    local url_origin, rest = str_match(url, "^(%a[%w+.-]*://[^/?#]*)(.*)$")
    if url_origin ~= origin then
      local split_scheme, split_host, split_port, split_authority = split_url(url)
      if not split_scheme then error("campaign.ngx: not an http(s) URL: " .. url, 3) end
      origin, scheme, host, port = url_origin, split_scheme, split_host, split_port
      authority = split_authority
      -- nginx's resolver reads no /etc/hosts: "localhost" is loopback by definition (RFC 6761)
      connect_host = host == "localhost" and "127.0.0.1" or str_gsub(host, "^%[(.*)%]$", "%1")
      server_name = str_gsub(host, "^%[(.*)%]$", "%1")
      pool = str_format("campaign|%s|%s|%d|%s|%s", scheme, connect_host, port, server_name,
        verify and "verify" or "noverify")
      ssl_session = nil
    end
    if rest == "" then rest = "/" end
    local method, body = req.method, req.body
    local lines = { method, " ", rest, " HTTP/1.1\r\nHost: ", authority, "\r\n" }
    local n = #lines
    for name, value in pairs(req.headers) do
      lines[n + 1], lines[n + 2], lines[n + 3], lines[n + 4] = name, ": ", value, "\r\n"
      n = n + 4
    end
    if body or method == "POST" or method == "PUT" or method == "PATCH" then
      lines[n + 1], lines[n + 2], n = "Content-Length: ", tostring(body and #body or 0), n + 2
      lines[n + 1], n = "\r\n", n + 1
    end
    lines[n + 1] = "\r\n"
    if body then lines[n + 2] = body end
    local timeout_ms, connect_ms = floor(req.timeout * 1000), floor(req.connect_timeout * 1000)
    -- No silent resend on a pooled connection: ngx_lua closes a pooled connection the server
    -- closed while it was idle, and an attempt that fails after the request went out is the
    -- client's retry rule's to judge (a POST is not resent).
    local sock = ngx.socket.tcp()
    sock:settimeouts(connect_ms, timeout_ms, timeout_ms)
    local ok, err = sock:connect(connect_host, port, { pool = pool, pool_size = pool_size })
    if not ok then
      return nil, err == "timeout" and "timeout" or "network",
        str_format("could not connect to %s: %s", authority, tostring(err)), false
    end
    if scheme == "https" and (sock:getreusedtimes() or 0) == 0 then
      -- SNI and verification against lua_ssl_trusted_certificate (docs/openresty.md).
      -- reused_session = false (no session back) is not used: in ngx_lua 0.10.23 it could
      -- return true for a handshake whose verification failed (seen here, ~1 run in 4); a
      -- session object comes back only from a handshake that succeeded. That path can also
      -- raise (lua-resty-core 0.1.25's `assert(rc == FFI_OK)` on the handshake result, seen
      -- here for a refused certificate): a raise is a failed handshake too, never a pass.
      local called, session, herr = pcall(sock.sslhandshake, sock, ssl_session, server_name, verify)
      if not called then session, herr = nil, tostring(session) end
      local st = type(session)
      if st == "userdata" or st == "cdata" then
        ssl_session = session -- resumed by the next new connection to this host
      else
        herr = herr or "certificate verification failed"
      end
      if herr then
        sock:close()
        return nil, "tls", str_format("TLS handshake with %s failed: %s", authority, tostring(herr)), false
      end
    end
    local sent, serr = sock:send(lines)
    if not sent then
      sock:close()
      return nil, serr == "timeout" and "timeout" or "network",
        str_format("could not send to %s: %s", authority, tostring(serr)), true
    end
    local p, kind, message = read_response(sock, new_parser {
      max_body = req.max_body, max_head = max_head, head = method == "HEAD" })
    if p then
      if p:keepalive() then sock:setkeepalive(idle_ms, pool_size) else sock:close() end
      return { status = p:status(), headers = p:headers(), body = p:body() }
    end
    sock:close()
    if kind == "too_large" then return nil, "too_large", message, true end
    if kind == "timeout" then
      return nil, "timeout", str_format("no answer from %s within %g s", authority, req.timeout), true
    end
    return nil, "network", str_format("bad response from %s: %s", authority, tostring(message)), true
  end
end

-- The resty.http adapter (lua-resty-http, when installed; untested here: no package of it is
-- installed on the project's machines, docs/openresty.md).
local function resty_http_transport(opts)
  local ok, http = pcall(require, "resty.http")
  if not ok then
    error("campaign.ngx.new: transport = \"resty.http\" needs lua-resty-http "
      .. "(require \"resty.http\" failed)", 4)
  end
  local verify = opts.ssl_verify ~= false
  return function(req)
    local httpc = http.new()
    httpc:set_timeouts(req.connect_timeout * 1000, req.timeout * 1000, req.timeout * 1000)
    local res, err = httpc:request_uri(req.url, { method = req.method, body = req.body,
      headers = req.headers, ssl_verify = verify,
      keepalive_timeout = floor((opts.pool_idle_timeout or 30) * 1000),
      keepalive_pool = opts.pool_size or 16 })
    if not res then
      return nil, str_find(tostring(err), "timeout", 1, true) and "timeout" or "network",
        "resty.http: " .. tostring(err), nil
    end
    return { status = res.status, headers = normalise_headers(res.headers), body = res.body or "" }
  end
end

-- Where ngx.location.capture cannot run (timers, their light threads, ssl_*_by_lua), the
-- cosocket transport is used whatever the request-phase default is.
local function auto_transport(capture, cosocket)
  return function(req)
    if DEFAULT_IN_REQUEST == "capture" and CAPTURE_PHASES[ngx.get_phase()] then return capture(req) end
    return cosocket(req)
  end
end

local function choose_transport(opts)
  local t = opts.transport
  if is_callable(t) then return t end
  if t == "resty.http" then return resty_http_transport(opts) end
  if t == "capture" or (t == nil and (opts.location or opts.upstream)) then
    return _M.capture_transport(opts.location, opts.upstream)
  end
  local cosocket = _M.cosocket_transport(opts)
  if t == "cosocket" then return cosocket end
  return auto_transport(_M.capture_transport(opts.location, opts.upstream), cosocket)
end

---------------------------------------------------------------------------------------------
-- The client
---------------------------------------------------------------------------------------------

-- rate, burst, budget and shared_dict (docs/openresty.md "Pacing and budget").
local function check_pacing(opts)
  local rate, burst, budget = opts.rate, opts.burst, opts.budget
  if rate ~= nil and not (rate > 0 and rate <= 1e6) then
    error("campaign.ngx.new: option 'rate' must be a positive number (requests per second, at most 1e6)", 4)
  end
  if burst ~= nil then
    if not (burst >= 1 and burst <= 1e6 and burst == floor(burst)) then
      error("campaign.ngx.new: option 'burst' must be a positive integer (requests at once)", 4)
    end
    if rate == nil then error("campaign.ngx.new: option 'burst' needs the option 'rate'", 4) end
  end
  if type(budget) == "number" and not (budget >= 1 and budget == floor(budget) and budget <= 2 ^ 53) then
    error("campaign.ngx.new: option 'budget' must be a positive integer (calls) or a table "
      .. "{calls = n, per = \"day\"}", 4)
  elseif type(budget) == "table" then
    for k in pairs(budget) do
      if k ~= "calls" and k ~= "per" then
        error("campaign.ngx.new: option 'budget' has an unknown field '" .. tostring(k)
          .. "' (calls, per; the count is kept in the shared_dict, not a file)", 4)
      end
    end
    local calls = budget.calls
    if type(calls) ~= "number" or not (calls >= 1 and calls == floor(calls) and calls <= 2 ^ 53) then
      error("campaign.ngx.new: option 'budget' field 'calls' must be a positive integer", 4)
    end
    if budget.per ~= "day" then
      error("campaign.ngx.new: option 'budget' field 'per' must be \"day\" (a rolling 24 h)", 4)
    end
    if not opts.shared_dict then
      error("campaign.ngx.new: option 'budget' per day needs the option 'shared_dict' (its count "
        .. "lives there)", 4)
    end
  end
  if opts.shared_dict ~= nil then
    if rate == nil and budget == nil then
      error("campaign.ngx.new: option 'shared_dict' holds the pacing and budget state: it needs "
        .. "the option 'rate' or 'budget'", 4)
    end
    if not (ngx and ngx.shared and ngx.shared[opts.shared_dict]) then
      error("campaign.ngx.new: option 'shared_dict': no lua_shared_dict '" .. opts.shared_dict
        .. "' (add `lua_shared_dict " .. opts.shared_dict .. " 1m;` to the http block)", 4)
    end
  end
end

local function check_options(opts)
  if type(opts) ~= "table" then
    error("campaign.ngx.new: bad argument #1 (table expected, got " .. type(opts) .. ")", 3)
  end
  for name, value in pairs(opts) do
    if type(name) ~= "string" then error("campaign.ngx.new: option names must be strings", 3) end
    local expected = OPTIONS[name]
    if not expected then
      if NGINX_OPTIONS[name] then
        error("campaign.ngx.new: option '" .. name .. "' does not apply to the OpenResty client: "
          .. "set it with " .. NGINX_OPTIONS[name], 3)
      end
      error("campaign.ngx.new: unknown option '" .. name .. "'", 3)
    end
    if expected == "token" then
      if type(value) ~= "string" and not is_callable(value) then
        error("campaign.ngx.new: option 'token' must be a string or a provider function", 3)
      end
    elseif expected == "budget" then
      if type(value) ~= "number" and type(value) ~= "table" then
        error("campaign.ngx.new: option 'budget' must be a positive integer (calls) or a table "
          .. "{calls = n, per = \"day\"}", 3)
      end
    elseif expected == "transport" then
      if not is_callable(value) and not BUILTIN_TRANSPORTS[value] then
        error("campaign.ngx.new: option 'transport' must be \"cosocket\", \"capture\", "
          .. "\"resty.http\" or a function", 3)
      end
    elseif expected == "function" then
      if not is_callable(value) then
        error("campaign.ngx.new: option '" .. name .. "' must be a function", 3)
      end
    elseif type(value) ~= expected then
      error("campaign.ngx.new: option '" .. name .. "' must be a " .. expected, 3)
    end
  end
  for _, name in ipairs { "org", "api_key", "token" } do
    if opts[name] == nil or opts[name] == "" then
      error("campaign.ngx.new: option '" .. name .. "' is required", 3)
    end
  end
  local function non_negative(name, integer)
    local v = opts[name]
    if v ~= nil and (v < 0 or v ~= v or (integer and v ~= floor(v))) then
      error("campaign.ngx.new: option '" .. name .. "' must be a non-negative "
        .. (integer and "integer" or "number"), 3)
    end
  end
  non_negative("retries", true)
  non_negative("max_body", true)
  non_negative("max_head", true)
  non_negative("pool_size", true)
  non_negative("pool_idle_timeout")
  if opts.pool_size == 0 then error("campaign.ngx.new: option 'pool_size' must be at least 1", 3) end
  for _, name in ipairs { "timeout", "connect_timeout", "retry_base", "retry_max" } do non_negative(name) end
  for _, name in ipairs { "org", "api_key", "user_agent", "upstream" } do
    if type(opts[name]) == "string" and has_control(opts[name]) then
      error("campaign.ngx.new: option '" .. name .. "' must not contain control characters", 3)
    end
  end
  if type(opts.token) == "string" and has_control(opts.token) then
    error("campaign.ngx.new: option 'token' must not contain control characters", 3)
  end
  check_pacing(opts)
  if opts.location and not str_find(opts.location, "^/[^%s?#]*$") then
    error("campaign.ngx.new: option 'location' must be a location path such as /_campaign_proxy", 3)
  end
  if opts.upstream and not str_find(opts.upstream, "^[%w_.-]+$") then
    error("campaign.ngx.new: option 'upstream' must be the name of an nginx upstream block", 3)
  end
end

-- True when host (lower case, IPv6 in brackets) is a loopback one: 127.0.0.0/8, ::1 (any
-- zero-padded spelling) or localhost. The rule src/options.c applies to base_url.
local function loopback_host(host)
  if host == "localhost" then return true end
  local v6 = str_match(host, "^%[([%x:]+)%]$")
  if v6 then
    return not str_find(v6, ":::", 1, true) and str_match(v6, "^[0:]*:0*1$") ~= nil
      and (str_find(v6, "::", 1, true) ~= nil or select(2, str_gsub(v6, ":", "")) == 7)
  end
  local a, b, c, d = str_match(host, "^(%d%d?%d?)%.(%d%d?%d?)%.(%d%d?%d?)%.(%d%d?%d?)$")
  return a == "127" and tonumber(b) < 256 and tonumber(c) < 256 and tonumber(d) < 256
end

local function default_user_agent()
  local parts = { "lua-campaign/" .. VERSION }
  local cfg = ngx and ngx.config
  if cfg and cfg.ngx_lua_version then
    local v = cfg.ngx_lua_version
    parts[#parts + 1] = str_format("ngx_lua/%d.%d.%d", floor(v / 1000000), floor(v / 1000) % 1000, v % 1000)
  end
  if cfg and cfg.nginx_version then
    local v = cfg.nginx_version
    parts[#parts + 1] = str_format("nginx/%d.%d.%d", floor(v / 1000000), floor(v / 1000) % 1000, v % 1000)
  end
  parts[#parts + 1] = (jit and jit.version) or _VERSION
  return concat(parts, " ")
end

--- campaign.ngx.new(opts) -> client. Raises on a bad option (like campaign.new).
---@param self_or_opts campaign.ngx|campaign.ngx.Options both .new{} and :new{}
---@param maybe_opts? campaign.ngx.Options
---@return campaign.ngx.Client
function _M.new(self_or_opts, maybe_opts)
  local opts = self_or_opts
  if self_or_opts == _M then opts = maybe_opts end -- both .new{} and :new{}
  if not ngx then error("campaign.ngx.new: this client runs inside OpenResty (ngx_lua) only", 2) end
  check_options(opts)
  local base_url = str_gsub(opts.base_url or "https://mc.adobe.io", "/+$", "")
  local scheme, host, port, _, rest = split_url(base_url)
  if not scheme or str_find(rest, "[?#]") then
    error("campaign.ngx.new: option 'base_url' must be an http or https URL without query", 2)
  end
  -- the token and API key go in every request: plain http only on this machine unless asked
  if scheme == "http" and not opts.allow_http and not loopback_host(host) then
    error("campaign.ngx.new: option 'base_url' is plain http:// to a host that is not loopback "
      .. "(127.0.0.0/8, ::1, localhost): the token and API key would travel in cleartext; use "
      .. "https://, or set allow_http = true", 2)
  end
  local client = {
    _org = opts.org,
    _api_key = opts.api_key,
    _token = opts.token,
    _base_url = base_url,
    _scheme = scheme, _host = host, _port = port,
    _root = base_url .. "/" .. opts.org .. "/campaign/",
    _timeout = opts.timeout or 30,
    _connect_timeout = opts.connect_timeout or 10,
    _retries = opts.retries or 3,
    _retry_base = opts.retry_base or 0.5,
    _retry_max = opts.retry_max or 30,
    _max_body = opts.max_body or 64 * 1024 * 1024,
    _user_agent = opts.user_agent or default_user_agent(),
    _on_event = opts.on_event,
    _transport = choose_transport(opts),
    _headers_cache = not is_callable(opts.transport) and { token = false } or nil,
    _rng = (ngx.worker.pid() * 7919 + floor(now() * 1000)) % 2147483646 + 1,
    _rate = opts.rate, _burst = opts.burst or 1,
    _dict = opts.shared_dict and ngx.shared[opts.shared_dict] or nil,
    _dict_name = opts.shared_dict,
    -- the state of this client alone (no shared_dict): its TAT and its calls left
    _tat = nil, _budget_left = type(opts.budget) == "number" and opts.budget or nil,
    _budget = opts.budget,
  }
  -- every client of this tenant and API host naming the same dict shares one rate and budget
  client._pace_key = "campaign.pace|" .. base_url .. "|" .. opts.org
  if opts.transport and opts.transport ~= "capture" and (opts.location or opts.upstream) then
    error("campaign.ngx.new: options 'location' and 'upstream' configure the capture transport; "
      .. "they cannot be combined with another 'transport'", 2)
  end
  return setmetatable(client, client_mt)
end

local function check_client(self, fname)
  if getmetatable(self) ~= client_mt then
    error("campaign.ngx." .. fname .. ": bad self (client expected; call it as client:"
      .. fname .. "(...))", 3)
  end
  if self._closed then error("campaign.ngx." .. fname .. ": client is closed", 3) end
end

local function emit(self, ev)
  local fn = self._on_event
  if fn then
    -- an error in the user's callback must not abort the transfer; it is reported once in the
    -- nginx error log (never with header values)
    local ok, err = pcall(fn, ev)
    if not ok then ngx.log(ngx.WARN, "campaign.ngx: on_event failed: ", tostring(err)) end
  end
end

-- A token goes into a header: no spaces, no control characters, not empty.
local function token_ok(token)
  return type(token) == "string" and token ~= "" and not str_find(token, "[%z\1-\32\127]")
end

-- Calls the token provider (protected), as the C client does. Returns the token, or nil and an
-- error object: the provider's own (raised or returned), else kind "auth". A token given with
-- an expires_in (seconds) is kept that long without asking again, unless `force`.
local function get_token(self, force)
  local provider = self._token
  if type(provider) == "string" then return provider end
  if not force and self._kept_token and now() < self._kept_until then return self._kept_token end
  self._kept_token = nil
  local ok, token, extra = pcall(provider, force)
  if not ok then
    if is_error(token) then return nil, token end
    return nil, make_error { kind = "auth", message = "token provider failed: "
      .. (type(token) == "string" and token or "(error object is not a string)") }
  end
  if token_ok(token) then
    local seconds = tonumber(extra)
    if seconds and seconds > 1e7 then seconds = seconds / 1000 end -- legacy milliseconds (as auth)
    if seconds and seconds > 0 and seconds < 1e12 then
      self._kept_token, self._kept_until = token, now() + seconds
    end
    return token
  end
  if is_error(extra) then return nil, extra end
  local message
  if type(token) == "string" then
    message = "token provider returned an invalid token (empty or with spaces or control characters)"
  elseif type(extra) == "string" then
    message = "token provider failed: " .. extra
  else
    message = "token provider returned no token"
  end
  return nil, make_error { kind = "auth", message = message }
end

local MESSAGE_MAX = 1024 -- room for an ACS message chaining several codes (as src/result.c)

local function status_message(status)
  local reason = REASONS[status]
  return reason and (status .. " " .. reason) or ("HTTP status " .. status)
end

-- What an error copies from the answer, as the C client makes it (docs/errors.md "Text from
-- the server"): the client's secrets redacted (whole, or a 16+ character start of one), then
-- valid UTF-8 (U+FFFD for a stray byte), then cut to max bytes on a character boundary.
local error_text = campaign._error_text

-- A readable message from a body that is not a JSON error (as the C client does): an HTML
-- page's <title>, else the whole text trimmed (ACS may chain its RST/XTK/PGS lines in plain
-- text: the cause and every code stay), else the status line.
local function text_message(text, status, secrets)
  -- the first ERROR_BODY_LIMIT bytes, not cutting a character in two (raw: nothing replaced)
  local excerpt = #text > ERROR_BODY_LIMIT and error_text(text, ERROR_BODY_LIMIT, nil, true) or text
  local title = str_match(excerpt, "<[Tt][Ii][Tt][Ll][Ee]>([^<]*)")
  if title then
    title = str_match(title, "^%s*(.-)%s*$")
    if title ~= "" then return error_text(title, MESSAGE_MAX, secrets) end
  end
  if excerpt ~= "" and str_sub(excerpt, 1, 1) ~= "<" then
    local trimmed = str_match(excerpt, "^[ \t\r\n]*(.-)[ \t\r\n]*$")
    if trimmed and trimmed ~= "" then return error_text(trimmed, MESSAGE_MAX, secrets) end
  end
  return status_message(status)
end

local function request_id(headers)
  return headers["x-request-id"] or headers["x-adobe-request-id"] or headers["x-correlation-id"]
    or headers["request-id"]
end

-- The path relative to the campaign root, without the query (for one-line messages).
local function relative_path(self, url)
  local root = self._root
  if str_sub(url, 1, #root) == root then url = str_sub(url, #root + 1) end
  return (str_match(url, "^[^?]*"))
end

-- err.body of a text answer: its first ERROR_BODY_LIMIT bytes, the secrets redacted before the
-- cut (a bit more is searched, so a secret across the edge goes whole), bytes kept otherwise.
local function excerpt(text, secrets)
  local more = 0
  for _, secret in ipairs(secrets) do
    if #secret > more then more = #secret end
  end
  return error_text(str_sub(text, 1, ERROR_BODY_LIMIT + more), ERROR_BODY_LIMIT, secrets, true)
end

-- The secrets an answer may echo (a gateway repeating the request's headers): the API key and
-- the token this request sent.
local function client_secrets(self, token)
  local secrets = { self._api_key }
  if type(token) == "string" then secrets[2] = token end
  return secrets
end

local CODE_FIELDS = { "error_code", "code" }
local MESSAGE_FIELDS = { "message", "error_description", "detail", "title", "error" }

-- Turns an HTTP answer >= 400 into the error object (fields as the C client sets them).
local function http_error(self, req, status, headers, text, attempts, retry_after, token)
  local secrets = client_secrets(self, token)
  local rid = request_id(headers)
  local err = {
    kind = "http", status = status, method = req.method, url = req.url,
    path = relative_path(self, req.url), attempts = attempts, headers = headers,
    request_id = type(rid) == "string" and error_text(rid, 0, secrets) or rid, retry_after = retry_after,
  }
  local decoded
  if text ~= "" and str_find(text, "^[ \t\r\n]*[{%[\"]") then -- an object, an array or a string
    local ok, value = pcall(campaign.decode, text)
    if ok and value ~= nil then decoded = value end
  end
  if decoded ~= nil then
    err.body = decoded
    if type(decoded) == "table" then
      for _, k in ipairs(CODE_FIELDS) do
        local v = decoded[k]
        if type(v) == "string" or type(v) == "number" then err.code = v break end
      end
      for _, k in ipairs(MESSAGE_FIELDS) do
        if type(decoded[k]) == "string" then err.message = decoded[k] break end
      end
      -- {"error": {"code": ..., "message": ...}}, as other Adobe APIs answer
      local nested = decoded.error
      if type(nested) == "table" then
        local code = nested.code
        if err.code == nil and (type(code) == "string" or type(code) == "number") then err.code = code end
        if err.message == nil and type(nested.message) == "string" then err.message = nested.message end
      end
    elseif type(decoded) == "string" and decoded ~= "" then
      err.message = decoded -- a JSON string: the text itself
    end
    err.message = err.message or status_message(status)
    -- decoded JSON is valid UTF-8 already; a gateway may still have echoed a secret
    err.message = error_text(err.message, 0, secrets)
    if type(err.code) == "string" then err.code = error_text(err.code, 0, secrets) end
  else
    if text ~= "" then err.body = excerpt(text, secrets) end
    err.message = text_message(text, status, secrets)
  end
  return make_error(err)
end

-- Retry-After: delta seconds or an HTTP date. Returns seconds (>= 0) or nil.
local function parse_retry_after(value)
  if type(value) ~= "string" then return nil end
  local secs = tonumber(str_match(value, "^%s*(%d+%.?%d*)%s*$"))
  if secs then return secs end
  local at = ngx.parse_http_time(str_gsub(value, "^%s+", ""))
  if at then
    local wait = at - ngx.time()
    return wait > 0 and wait or 0
  end
  return nil
end

-- Full jitter needs clients that do not draw the same numbers: each client has its own
-- Park-Miller generator (exact in doubles), seeded from the worker's pid and the clock, rather
-- than math.random, whose sequence every worker would repeat unless someone seeded it.
local function uniform(self)
  self._rng = (self._rng * 16807) % 2147483647
  return (self._rng - 1) / 2147483646
end

local function backoff(self, retry_number)
  local cap = min(self._retry_max, self._retry_base * 2 ^ (retry_number - 1))
  return uniform(self) * cap
end

local function build_headers(self, token, extra)
  -- The default transport only reads the table, so without extra headers one table per token
  -- serves every request; a custom transport gets its own copy.
  local cache = self._headers_cache
  if cache and not extra and cache.token == token and cache.headers then return cache.headers end
  local headers = {
    ["Authorization"] = "Bearer " .. token,
    ["X-Api-Key"] = self._api_key,
    ["Cache-Control"] = "no-cache",
    ["Accept"] = "application/json",
    -- on every request, body or not, as ACS's documentation and Adobe's SDK send it
    ["Content-Type"] = "application/json;charset=utf-8",
    ["User-Agent"] = self._user_agent,
  }
  if extra then
    for name, value in pairs(extra) do
      -- replace a default of the same name whatever its case
      for k in pairs(headers) do
        if str_lower(k) == str_lower(name) then headers[k] = nil end
      end
      headers[name] = value
    end
  elseif cache then
    self._headers_cache = { token = token, headers = headers }
  end
  return headers
end

local REQUEST_OPTIONS = { query = true, body = true, headers = true, raw = true }

-- Validates everything that can raise before anything is sent. Returns the prepared request.
local function prepare(self, fname, method, path, opts, body)
  if type(method) ~= "string" then error(fname .. ": method must be a string", 3) end
  local canonical = str_upper(method)
  if not METHODS[canonical] then error(fname .. ": unsupported method '" .. method .. "'", 3) end
  method = canonical
  if type(path) ~= "string" or path == "" then
    error(fname .. ": bad argument 'path' (non-empty string expected, got " .. type(path) .. ")", 3)
  end
  if opts ~= nil and type(opts) ~= "table" then
    error(fname .. ": bad argument 'opts' (table or nil expected, got " .. type(opts) .. ")", 3)
  end
  opts = opts or {}
  for k in pairs(opts) do
    if not REQUEST_OPTIONS[k] then error(fname .. ": unknown option '" .. tostring(k) .. "'", 3) end
  end
  if body == nil then body = opts.body end
  local text
  if type(body) == "string" then
    text = body
  elseif body ~= nil then
    text = campaign.encode(body) -- raises on an unencodable value: a usage error
  end
  local extra = opts.headers
  if extra ~= nil then
    if type(extra) ~= "table" then error(fname .. ": option 'headers' must be a table", 3) end
    for name, value in pairs(extra) do
      if type(name) ~= "string" or not str_find(name, "^[%w!#%$%%&'%*%+%-%.%^_`|~]+$") then
        error(fname .. ": header names must be HTTP tokens", 3)
      end
      if RESERVED_HEADERS[str_lower(name)] then
        error(fname .. ": header '" .. name .. "' is set by the client and cannot be overridden", 3)
      end
      if type(value) ~= "string" or str_find(value, "[%z\1-\8\10-\31\127]") then
        error(fname .. ": header '" .. name .. "' must be a string without control characters", 3)
      end
    end
  end
  return {
    method = method,
    url = build_url(self, fname, path, opts.query),
    body = text,
    extra_headers = extra,
    raw = opts.raw and true or false,
  }
end

-- Sets the fields every error of a request carries.
local function locate(self, err, req, attempts)
  err.method, err.url, err.path, err.attempts = req.method, req.url, relative_path(self, req.url), attempts
  return err
end

-- Sends one prepared request with the retry and 401 rules (design.md "Retries and tokens").
-- Returns body, res | nil, err. `index` is the batch position, for events.
-- The shared state's lock: a dict `add` that expires (a worker that died holding it frees it
-- in 1 s). The section it guards never yields, so it is held for microseconds.
local function with_lock(self, fn)
  local dict, lock = self._dict, self._pace_key .. "|lock"
  while true do
    local ok, err = dict:add(lock, true, 1)
    if ok then break end
    if err ~= "exists" then
      ngx.log(ngx.ERR, "campaign.ngx: lua_shared_dict '", self._dict_name, "': ", err)
      break -- a full dict: go on unlocked rather than stop every request
    end
    ngx.sleep(0.001)
  end
  local a, b = fn()
  dict:delete(lock)
  return a, b
end

-- Waits (ngx.sleep, never blocking the worker) for this attempt's slot: the same GCRA rule as
-- the C client (campaign._pacing_take), its TAT in the shared dict when there is one.
local function pace(self)
  local rate, burst = self._rate, self._burst
  local wait
  if self._dict then
    local dict, key = self._dict, self._pace_key
    wait = with_lock(self, function()
      local w, tat = pacing_take(dict:get(key), now(), rate, burst)
      dict:set(key, tat, floor(tat - ngx.now()) + 60) -- kept while it matters
      return w
    end)
  else
    wait, self._tat = pacing_take(self._tat, now(), rate, burst)
  end
  if wait > 0 then ngx.sleep(wait) end
end

-- Takes one call of the budget. Returns nil when the call may go, else the refusal message.
-- The shared forms count first and check after (incr is atomic): two workers racing for the
-- last call may both be refused, never both sent.
local function take_budget(self)
  local budget = self._budget
  if budget == nil then return nil end
  local dict = self._dict
  if type(budget) == "number" then
    if dict then
      local v, err = dict:incr(self._pace_key .. "|budget", 1, 0)
      if not v then return "budget not checked, so not sent: lua_shared_dict: " .. tostring(err) end
      if v <= budget then return nil end
    elseif self._budget_left > 0 then
      self._budget_left = self._budget_left - 1
      return nil
    end
    return str_format("budget spent: this client may send %d calls and sent them all "
      .. "(option 'budget')", budget)
  end
  -- per day: one counter per minute (kept 24 h 2 min), summed over the last 1441 minutes: a
  -- call is forgotten between 24 h and 24 h 1 min after it was made, never sooner
  local minute = floor(ngx.time() / 60)
  local prefix = self._pace_key .. "|day|"
  local v, err = dict:incr(prefix .. minute, 1, 0, 86520)
  if not v then return "budget not checked, so not sent: lua_shared_dict: " .. tostring(err) end
  local used = 0
  for m = minute - 1440, minute do used = used + (dict:get(prefix .. m) or 0) end
  if used <= budget.calls then return nil end
  dict:incr(prefix .. minute, -1, 0)
  return str_format("budget spent: %d calls in the last 24 h (lua_shared_dict '%s')", used - 1,
    self._dict_name)
end

local function perform(self, req, index)
  local method, url = req.method, req.url
  local started = now()
  local attempts, retried, refreshed = 0, 0, false
  local token, terr = get_token(self, false)
  if not token then return nil, terr end
  while true do
    -- every attempt (a retry, the resend after a 401) takes a budget call and a pacing slot
    local refused = take_budget(self)
    if refused then
      return nil, locate(self, make_error { kind = "budget", message = refused, sent = false }, req, attempts)
    end
    if self._rate then pace(self) end
    attempts = attempts + 1
    local listening = self._on_event ~= nil -- the event tables are built for a listener only
    if listening then
      emit(self, { type = "request", method = method, url = url, attempt = attempts, index = index })
    end
    local t0 = now()
    local response, kind, message, sent = self._transport {
      method = method, url = url, body = req.body,
      headers = build_headers(self, token, req.extra_headers),
      timeout = self._timeout, connect_timeout = self._connect_timeout, max_body = self._max_body,
    }
    local elapsed = now() - t0
    local err, wait
    if not response then
      if sent == nil then sent = true end -- unknown: assume it went out (a POST is not resent)
      kind = kind or "network"
      err = locate(self, make_error { kind = kind, message = message or kind }, req, attempts)
      if kind == "too_large" then
        err.max_body = self._max_body
      else
        -- false: certainly never reached the server; true: it may have acted on it
        err.sent = sent and true or false
      end
      emit(self, { type = "error", method = method, url = url, attempt = attempts, elapsed = elapsed,
        kind = kind, message = err.message, index = index })
      if (kind == "network" or kind == "timeout") and (RETRIED_METHODS[method] or not sent)
          and retried < self._retries then
        wait = backoff(self, retried + 1)
      end
    else
      local status, headers, text = response.status, response.headers or {}, response.body or ""
      if listening then
        emit(self, { type = "response", method = method, url = url, attempt = attempts, status = status,
          elapsed = elapsed, index = index })
      end
      if #text > self._max_body then
        err = locate(self, make_error { kind = "too_large", max_body = self._max_body,
          message = str_format("the response body (%d bytes) is larger than max_body (%d)",
            #text, self._max_body) }, req, attempts)
      elseif status == 401 and type(self._token) ~= "string" and not refreshed then
        -- once per call: a provider that keeps handing out refused tokens ends in the 401
        refreshed = true
        -- Requests running at the same time share the provider's token (lua_shared_dict):
        -- when another one already replaced the refused token, use that one; only a provider
        -- that still hands out the refused token is asked to refresh (so 20 requests meeting
        -- the same 401 cause one IMS call, not 20).
        self._kept_token = nil -- the kept token was refused: ask the provider (shared) again
        local fresh, ferr = get_token(self, false)
        if fresh == token then fresh, ferr = get_token(self, true) end
        if not fresh then return nil, ferr end
        token = fresh
        emit(self, { type = "retry", method = method, url = url, attempt = attempts, status = status,
          wait = 0, index = index })
      elseif status >= 400 then
        local retry_after = parse_retry_after(headers["retry-after"])
        err = http_error(self, req, status, headers, text, attempts, retry_after, token)
        if TRANSIENT_STATUS[status] and RETRIED_METHODS[method] and retried < self._retries then
          wait = retry_after and min(retry_after, self._retry_max) or backoff(self, retried + 1)
        end
      else
        local res = { status = status, headers = headers, attempts = attempts, elapsed = now() - started }
        if req.raw then return text, res end
        if text == "" then return {}, res end
        local ok, decoded, derr = pcall(campaign.decode, text)
        if ok and decoded ~= nil then return decoded, res end
        local cause = ok and derr or decoded
        err = make_error { kind = "json", status = status, headers = headers,
          body = excerpt(text, client_secrets(self, token)),
          offset = is_error(cause) and cause.offset or nil,
          message = is_error(cause) and cause.message or tostring(cause or "the response is not valid JSON") }
        return nil, locate(self, err, req, attempts)
      end
    end
    if err and not wait then return nil, err end
    if err then
      retried = retried + 1
      emit(self, { type = "retry", method = method, url = url, attempt = attempts, status = err.status,
        wait = wait, index = index })
      if wait > 0 then ngx.sleep(wait) end
    end
  end
end

--- client:url(path[, opts]) -> the URL a call would use (opts.query); sends nothing, raises like
-- the calls do. The same text as the C client's client:url.
---@param self campaign.ngx.Client
---@param path string
---@param opts? {query?: campaign.Query}
---@return string
function _M.url(self, path, opts)
  check_client(self, "url")
  if type(path) ~= "string" or path == "" then
    error("campaign.ngx.url: bad argument 'path' (non-empty string expected, got " .. type(path) .. ")", 2)
  end
  if opts ~= nil and type(opts) ~= "table" then
    error("campaign.ngx.url: bad argument 'opts' (table or nil expected, got " .. type(opts) .. ")", 2)
  end
  return build_url(self, "campaign.ngx.url", path, opts and opts.query)
end

--- client:close(): as the C client's; idempotent. Nothing is held (nginx owns the
-- connections), but later calls raise "client is closed" the same way.
---@param self campaign.ngx.Client
---@return nil
function _M.close(self)
  if getmetatable(self) ~= client_mt then
    error("campaign.ngx.close: bad self (client expected; call it as client:close())", 2)
  end
  self._closed = true
end

--- client:request(method, path[, opts]) -> body, res | nil, err
---@param self campaign.ngx.Client
---@param method string
---@param path string
---@param opts? campaign.RequestOpts
---@return any|nil body
---@return campaign.Response|campaign.Error res_or_err
function _M.request(self, method, path, opts)
  check_client(self, "request")
  return perform(self, prepare(self, "campaign.ngx.request", method, path, opts))
end

--- client:get(path[, opts])
---@param self campaign.ngx.Client
---@param path string
---@param opts? campaign.RequestOpts
---@return any|nil body
---@return campaign.Response|campaign.Error res_or_err
function _M.get(self, path, opts)
  check_client(self, "get")
  return perform(self, prepare(self, "campaign.ngx.get", "GET", path, opts))
end

--- client:delete(path[, opts])
---@param self campaign.ngx.Client
---@param path string
---@param opts? campaign.RequestOpts
---@return any|nil body
---@return campaign.Response|campaign.Error res_or_err
function _M.delete(self, path, opts)
  check_client(self, "delete")
  return perform(self, prepare(self, "campaign.ngx.delete", "DELETE", path, opts))
end

local function check_fields(fname, fields)
  local t = type(fields)
  if t ~= "table" and t ~= "string" then
    error(fname .. ": bad argument 'fields' (table or JSON string expected, got " .. t .. ")", 3)
  end
end

--- client:patch(path, fields[, opts])
---@param self campaign.ngx.Client
---@param path string
---@param fields campaign.Body
---@param opts? campaign.RequestOpts
---@return any|nil body
---@return campaign.Response|campaign.Error res_or_err
function _M.patch(self, path, fields, opts)
  check_client(self, "patch")
  check_fields("campaign.ngx.patch", fields)
  return perform(self, prepare(self, "campaign.ngx.patch", "PATCH", path, opts, fields))
end

--- client:post(path, fields[, opts])
---@param self campaign.ngx.Client
---@param path string
---@param fields campaign.Body
---@param opts? campaign.RequestOpts
---@return any|nil body
---@return campaign.Response|campaign.Error res_or_err
function _M.post(self, path, fields, opts)
  check_client(self, "post")
  check_fields("campaign.ngx.post", fields)
  return perform(self, prepare(self, "campaign.ngx.post", "POST", path, opts, fields))
end

--- client:batch(requests[, {concurrency = 16, on_result = fn(i, result)}]) -> results
-- requests[i] = {method, path, body_or_nil, opts_or_nil}; results[i] = {status, body, err,
-- attempts, headers}, in request order. Runs `concurrency` light threads that take the next
-- request as soon as they are free, so a slow request or one waiting for its retry never holds
-- the others back. Every request is validated (and may raise) before the first one is sent.
-- requests may be a source function, as in the C client (docs/client.md): each light thread
-- calls it when free, for the next request, false (not yet: the thread waits for a settle) or
-- nil (the end); results go only to on_result and batch returns {count, ok, failed}.
---@param self campaign.ngx.Client
---@param requests campaign.BatchRequest[]|campaign.BatchSource
---@param opts? campaign.BatchOpts
---@return campaign.BatchResult[]|campaign.BatchSummary
function _M.batch(self, requests, opts)
  check_client(self, "batch")
  local from_source = type(requests) == "function"
  if type(requests) ~= "table" and not from_source then
    error("campaign.ngx.batch: bad argument 'requests' (table or source function expected, got "
      .. type(requests) .. ")", 2)
  end
  if opts ~= nil and type(opts) ~= "table" then
    error("campaign.ngx.batch: bad argument 'opts' (table or nil expected)", 2)
  end
  opts = opts or {}
  for k in pairs(opts) do
    if k ~= "concurrency" and k ~= "on_result" and k ~= "concurrency_max" and k ~= "concurrency_start" then
      error("campaign.ngx.batch: unknown option '" .. tostring(k) .. "'", 2)
    end
  end
  local concurrency = opts.concurrency or 16
  -- "auto": the C client's limiter (campaign._limiter, src/limiter.c), sampled per call here
  local limiter
  if concurrency == "auto" then
    local ok, l = pcall(campaign._limiter, { max = opts.concurrency_max, start = opts.concurrency_start })
    if not ok then
      -- the limiter's message, in the names of batch's options
      local text = tostring(l):gsub("^campaign%._limiter: ", "campaign.ngx.batch: ")
        :gsub("option '(%a+)'", "option 'concurrency_%1'")
        :gsub("needs min <= start <= max %(got 1, (%d+), (%d+)%)", "option 'concurrency_start' (%1) must "
          .. "not exceed 'concurrency_max' (%2)")
      error(text, 2)
    end
    limiter = l
    concurrency = l:state().max
  elseif opts.concurrency_max ~= nil or opts.concurrency_start ~= nil then
    error("campaign.ngx.batch: options 'concurrency_max' and 'concurrency_start' need "
      .. "concurrency = \"auto\"", 2)
  elseif type(concurrency) ~= "number" or concurrency < 1 or concurrency ~= floor(concurrency) then
    error("campaign.ngx.batch: option 'concurrency' must be a positive integer or \"auto\"", 2)
  end
  local on_result = opts.on_result
  if on_result ~= nil and not is_callable(on_result) then
    error("campaign.ngx.batch: option 'on_result' must be a function", 2)
  end
  if from_source and on_result == nil then
    error("campaign.ngx.batch: a source function needs option 'on_result' (its results are not "
      .. "collected)", 2)
  end
  local function request_of(r, i)
    if type(r) ~= "table" then
      error("campaign.ngx.batch: requests[" .. i .. "] must be a table {method, path, body, opts}", 3)
    end
    local body = r[3]
    if body == nil then body = r.body end
    return prepare(self, "campaign.ngx.batch", r[1] or r.method, r[2] or r.path, r[4] or r.opts, body)
  end
  local prepared = {}
  local n = 0
  if not from_source then
    for i = 1, #requests do prepared[i] = request_of(requests[i], i) end
    n = #prepared
    if n == 0 then return {} end
  end
  local results = {}
  local next_index = 0
  -- {value}: the first error of on_result, of the source or of a worker. As in the C client it
  -- stops the batch: no request starts after it, and batch raises it once every thread is gone.
  local failed
  -- A source: light threads pull from it; `false` parks the thread until a request settles.
  local ended, active, settled, ok_count, failed_count = false, 0, 0, 0, 0
  local function settle(i, body, res)
    local result
    if body ~= nil then
      result = { body = body, status = res.status, headers = res.headers, attempts = res.attempts }
      ok_count = ok_count + 1
    else
      result = { err = res, status = res.status, headers = res.headers, attempts = res.attempts or 0 }
      failed_count = failed_count + 1
    end
    if not from_source then results[i] = result end
    settled = settled + 1
    if on_result and not failed then
      local ok, cerr = pcall(on_result, i, result, limiter and limiter:limit() or concurrency)
      if not ok then failed = { cerr } end
    end
  end
  local function pull()
    local ok, r = pcall(requests)
    if not ok then failed = { r } return nil end
    if r == nil then ended = true return nil end
    if r == false then
      if active == 0 then
        failed = { "campaign.ngx.batch: the source returned false (wait for a result) with no "
          .. "request in flight: it would wait forever" }
      end
      return false
    end
    next_index = next_index + 1
    local pok, req = pcall(request_of, r, next_index)
    if not pok then failed = { req } return nil end
    return req, next_index
  end
  -- One call's lesson for the limiter: per call, not per attempt (perform retries inside), so a
  -- call that needed a retry (429/502/503/504, a dropped connection) counts as an overload.
  local function sample(started, body, res, inflight)
    local rtt = now() - started
    local outcome = "ignore"
    if body ~= nil then
      outcome = (res.attempts or 1) > 1 and "overload" or "ok"
    elseif type(res) == "table" then
      if res.kind == "timeout" then outcome = "timeout"
      elseif res.status == 429 or res.status == 503 or (res.attempts or 1) > 1 then outcome = "overload"
      elseif res.status then outcome = "ok" end
    end
    limiter:sample(rtt >= 0 and rtt or 0, outcome, inflight, now())
  end
  local function worker()
    while not failed do
      local req, i
      -- "auto": a thread beyond the limit waits (polled) until the limit or the load moves
      while limiter and active >= limiter:limit() and not failed and not ended do ngx.sleep(0.001) end
      if failed then return end
      if from_source then
        if ended then return end
        req, i = pull()
        if req == nil then return end
        if req == false then
          -- parked until a request settles (a source's "not yet"); polled, as light threads
          -- have no condition variable without lua-resty-core's semaphore
          local seen = settled
          while settled == seen and not failed and not ended and active > 0 do ngx.sleep(0.001) end
        end
      else
        next_index = next_index + 1
        i = next_index
        if i > n then return end
        req = prepared[i]
      end
      if req then
        active = active + 1
        local started = limiter and now()
        local body, res = perform(self, req, i)
        if limiter then sample(started, body, res, active) end
        active = active - 1
        settle(i, body, res)
      end
    end
  end
  local waiting = {}
  for _ = 1, from_source and concurrency or min(concurrency, n) do
    if failed or ended then break end -- a thread runs until it first yields: it may have raised already
    waiting[#waiting + 1] = ngx.thread.spawn(worker)
  end
  local unpack = table.unpack or unpack
  while #waiting > 0 do
    local ok, terr = ngx.thread.wait(unpack(waiting))
    if not ok then failed = failed or { terr } end
    for k = #waiting, 1, -1 do
      -- the thread just waited for is dead; after a failure the others are killed where they
      -- wait (a retry sleep, cosocket I/O); one inside a subrequest cannot be killed and ends
      -- after its current request
      if coroutine.status(waiting[k]) == "dead" or (failed and ngx.thread.kill(waiting[k])) then
        table.remove(waiting, k)
      end
    end
  end
  if failed then error(failed[1], 0) end
  if from_source then return { count = next_index, ok = ok_count, failed = failed_count } end
  return results
end

---------------------------------------------------------------------------------------------
-- One token for all workers: campaign.auth.ims's cache in a lua_shared_dict, with a lock.
---------------------------------------------------------------------------------------------

--- campaign.ngx.shared_token_cache(dict_name[, opts]) -> cache for campaign.auth.ims{cache = ...}
-- The token lives in the lua_shared_dict, so every worker uses the same one; lock/unlock
-- (a shared dict `add` that expires, waited on with ngx.sleep) make one refresh happen at a
-- time across workers: when 20 requests find the token expired together, one asks IMS and the
-- others read its result. opts: lock_timeout (seconds a refresh may hold the lock and a waiter
-- may wait, default 30), poll (seconds between looks at a held lock, default 0.01).
---@param dict_name string a lua_shared_dict
---@param opts? campaign.ngx.TokenCacheOpts
---@return campaign.TokenCache
function _M.shared_token_cache(dict_name, opts)
  local fname = "campaign.ngx.shared_token_cache"
  if type(dict_name) ~= "string" then
    error(fname .. ": bad argument #1 (lua_shared_dict name expected)", 2)
  end
  local dict = ngx and ngx.shared and ngx.shared[dict_name]
  if not dict then
    error(fname .. ": no lua_shared_dict '" .. dict_name .. "' (add `lua_shared_dict "
      .. dict_name .. " 1m;` to the http block)", 2)
  end
  if opts ~= nil and type(opts) ~= "table" then
    error(fname .. ": bad argument #2 (table or nil expected)", 2)
  end
  opts = opts or {}
  for k in pairs(opts) do
    if k ~= "lock_timeout" and k ~= "poll" then
      error(fname .. ": unknown option '" .. tostring(k) .. "'", 2)
    end
  end
  local lock_timeout = opts.lock_timeout or 30
  local poll = opts.poll or 0.01
  if type(lock_timeout) ~= "number" or lock_timeout <= 0 or type(poll) ~= "number" or poll <= 0 then
    error(fname .. ": options 'lock_timeout' and 'poll' must be positive numbers", 2)
  end

  return {
    -- -> token, valid_until (the provider's clock: ngx.now())
    get = function(key)
      local entry = dict:get(key)
      if type(entry) ~= "string" then return nil end
      local valid_until, token = str_match(entry, "^(%S+) (.*)$")
      return token, tonumber(valid_until)
    end,
    set = function(key, token, valid_until, expires_in)
      -- the entry outlives valid_until a little (expires_in is the token's real lifetime), so a
      -- refresh that fails can still be told from "never had a token"
      local ttl = tonumber(expires_in) or (valid_until - now())
      local ok, err = dict:set(key, str_format("%.3f %s", valid_until, token), ttl > 0 and ttl or 1)
      if not ok then
        ngx.log(ngx.ERR, "campaign.ngx: cannot keep the token in lua_shared_dict '", dict_name, "': ", err)
      end
    end,
    lock = function(key)
      local lock_key = key .. "|lock"
      local deadline = now() + lock_timeout
      while true do
        local ok, err = dict:add(lock_key, true, lock_timeout)
        if ok then return true end
        if err ~= "exists" then return nil, "lua_shared_dict '" .. dict_name .. "': " .. tostring(err) end
        if now() >= deadline then
          return nil, "timed out after " .. lock_timeout .. " s waiting for another request's token refresh"
        end
        ngx.sleep(poll)
      end
    end,
    unlock = function(key)
      dict:delete(key .. "|lock")
    end,
  }
end

_M.DEFAULT_LOCATION = DEFAULT_LOCATION

return _M
