--- campaign.ngx.resty_http: the transport = "resty.http" of campaign.ngx (lua/campaign/ngx.lua),
-- an adapter of lua-resty-http when it is installed. No Debian package of it exists, so the
-- specs run it over a test-only shim of its documented API (spec/openresty/shim/resty/http.lua;
-- docs/openresty.md).
local campaign = require "campaign"
local capture = require "campaign.ngx.capture"

local pairs, tostring, pcall, error, require = pairs, tostring, pcall, error, require
local str_find = string.find
local floor = math.floor
local normalise_headers = capture.normalise_headers

local _M = {}

--- _M.resty_http_transport(opts) -> function(req) -> response | nil, kind, message, sent.
-- opts: ssl_verify, pool_size, pool_idle_timeout, as the cosocket transport's.
function _M.resty_http_transport(opts)
  local ok, http = pcall(require, "resty.http")
  if not ok then
    error("campaign.ngx.new: transport = \"resty.http\" needs lua-resty-http "
      .. "(require \"resty.http\" failed)", 4)
  end
  local verify = opts.ssl_verify ~= false
  local idle_ms, pool_size = floor((opts.pool_idle_timeout or 30) * 1000), opts.pool_size or 16
  local function failure(httpc, err, sent)
    httpc:close()
    return nil, str_find(tostring(err), "timeout", 1, true) and "timeout" or "network",
      "resty.http: " .. tostring(err), sent
  end
  -- connect, request and read_body one by one (not request_uri), so that a failure to connect
  -- is known never to have been sent (a POST may then be retried).
  return function(req)
    local httpc = http.new()
    httpc:set_timeouts(req.connect_timeout * 1000, req.timeout * 1000, req.timeout * 1000)
    local scheme, host, port, _, rest = campaign._url_split(req.url)
    local connected, err = httpc:connect { scheme = scheme, host = host, port = port,
      ssl_verify = verify, ssl_server_name = host, pool_size = pool_size }
    if not connected then return failure(httpc, err, false) end
    local res
    -- req.headers is the table every request with this token shares (the core gives the
    -- built-in transports one per token): lua-resty-http gets a copy it may change
    local headers = {}
    for name, value in pairs(req.headers) do headers[name] = value end
    res, err = httpc:request { method = req.method, path = rest, headers = headers, body = req.body }
    if not res then return failure(httpc, err, true) end
    local body
    body, err = res:read_body()
    if not body then return failure(httpc, err, true) end
    httpc:set_keepalive(idle_ms, pool_size)
    return { status = res.status, headers = normalise_headers(res.headers), body = body }
  end
end

return _M
