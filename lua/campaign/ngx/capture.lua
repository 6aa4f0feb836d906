--- campaign.ngx.capture: the capture transport of campaign.ngx (lua/campaign/ngx.lua): a
-- subrequest (`ngx.location.capture`) to an internal location that `proxy_pass`es to the API,
-- and the handlers that run in that location (upstream URL, headers, body size cap). Works in
-- the rewrite, access and content phases only. campaign.ngx re-exports capture_transport and
-- the proxy_* handlers (examples/openresty/campaign_proxy.conf names them there).
local campaign = require "campaign"

local ngx = ngx
local type, pairs, error = type, pairs, error
local str_find, str_format, str_gsub, str_lower, str_match = string.find, string.format,
  string.gsub, string.lower, string.match
local concat = table.concat
local split_url = campaign._url_split

local _M = {}

local DEFAULT_LOCATION = "/_campaign_proxy"
_M.DEFAULT_LOCATION = DEFAULT_LOCATION

local function capture_method(method)
  local m = ngx["HTTP_" .. method]
  if type(m) ~= "number" then
    error("campaign.ngx: the location.capture transport cannot send method " .. method, 4)
  end
  return m
end

local CAPTURE_PHASES = { rewrite = true, access = true, content = true }
_M.PHASES = CAPTURE_PHASES

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

_M.normalise_headers = normalise_headers

return _M
