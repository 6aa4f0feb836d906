-- Entry point of every non-admin request: read the body, log the request, apply faults,
-- then IMS, or the gateway checks and the ACS routes. An unknown API under /<org>/campaign/
-- answers the gateway's 500 "Oops..." (acs-api.md section 6); a path outside it, 404 JSON.
local json = require "emu.json"
local util = require "emu.util"
local state = require "emu.state"
local faults = require "emu.faults"
local load_model = require "emu.load"
local ims = require "emu.ims"
local records = require "emu.records"
local extras = require "emu.extras"

local ngx = ngx
local type, pairs, tostring, xpcall = type, pairs, tostring, xpcall

local _M = {}

local JSON_TYPE = "application/json;charset=utf-8"
-- The Adobe I/O gateway's text for a URI it cannot route (ACS:troubleshooting).
local OOPS = "Oops. Something went wrong. Check your URI and try again."

local function read_body()
  local headers = ngx.var
  if headers.http_content_length == nil and headers.http_transfer_encoding == nil then return nil end
  ngx.req.read_body()
  local body = ngx.req.get_body_data()
  if body then return body end
  local file = ngx.req.get_body_file()
  if not file then return nil end
  local fh = io.open(file, "rb")
  if not fh then return nil end
  body = fh:read("*a")
  fh:close()
  return body
end

-- headers: a fault's extra headers; handler_headers: the handler's own (a non-JSON
-- Content-Type, e.g. the signal cooldown's plain text).
local function send(status, body, headers, route, handler_headers)
  ngx.status = status
  ngx.header["X-Emulator-Route"] = route
  for k, v in pairs(headers or {}) do ngx.header[k] = v end
  if body == nil then
    if status ~= 204 then ngx.header["Content-Length"] = 0 end
    return
  end
  if type(body) ~= "string" then body = json.encode(body) end
  ngx.header["Content-Type"] = type(handler_headers) == "table" and handler_headers["Content-Type"]
    or JSON_TYPE
  ngx.header["Content-Length"] = #body
  ngx.print(body)
end

local function split(path)
  local seg = {}
  for part in path:gmatch("[^/]+") do seg[#seg + 1] = part end
  -- "/profile.json" is the same as "/profile" on ACS.
  local last = seg[#seg]
  if last and last:sub(-5) == ".json" and #last > 5 then seg[#seg] = last:sub(1, -6) end
  return seg
end

-- Adobe I/O gateway checks: API key first, then the bearer token.
local function gateway()
  local key = ngx.var.http_x_api_key
  if key == nil or key == "" then
    return 403, { error_code = "403000", message = "Api Key is required" }
  end
  if key ~= state.setting("api_key") then
    return 403, { error_code = "403003", message = "Api Key is invalid" }
  end
  local auth = ngx.var.http_authorization
  local token = auth and auth:match("^[Bb]earer%s+(%S+)%s*$")
  if not state.token_valid(token) then
    return 401, { error_code = "401013", message = "Oauth token is not valid" }
  end
  return nil
end

local function route(ctx)
  local path = ctx.path
  if path == "/ims/token/v3" then return "ims", ims.token(ctx) end
  if path == "/ims/exchange/jwt" then return "ims", ims.exchange_jwt(ctx) end
  if path == "/ims/profile/v1" then return "ims", ims.profile(ctx) end
  local seg = split(path)
  if seg[2] ~= "campaign" then
    return "none", util.not_found("No route for " .. ctx.method .. " " .. path)
  end
  local status, body = gateway()
  if status then return "gateway", status, body end
  local org = state.setting("org")
  if seg[1] ~= org then
    return "gateway", 400, { code = 400, message = OOPS }
  end
  local api = {}
  for i = 3, #seg do api[#api + 1] = seg[i] end
  -- A listing's count.href is the listing's own path plus "/_count" (ACS writes
  -- "profile//_count" for an unfiltered one; split() drops the empty segment): strip it and
  -- let the listing answer {"count": n} (listing.page, with the same filters).
  if ctx.method == "GET" and #api >= 3 and api[#api] == "_count" then
    api[#api] = nil
    ctx.count_only = true
  end
  local first = api[1]
  ctx.root = ctx.origin .. "/" .. org .. "/campaign/"
  if first == "profileAndServices" or first == "profileAndServicesExt" or first == "customResources" then
    ctx.api = first
    ctx.ext = first == "profileAndServicesExt"
    return first, records.handle(ctx, api)
  elseif first == "workflow" then
    return "workflow", extras.workflow(ctx, api)
  elseif first == "privacy" then
    return "privacy", extras.privacy(ctx, api)
  elseif first == "mc" .. org or first == "mc" .. org:gsub("%-mkt%-stage%d*$", "") then
    -- A stage tenant (acme-mkt-stage1) keeps the bare org in its transactional API (mcacme).
    return "transactional", extras.transactional(ctx, api)
  end
  -- An unknown API: the gateway cannot route the URI (500, as ACS:troubleshooting shows it).
  return "none", 500, { code = 500, message = OOPS }
end

local function traceback(err)
  return debug.traceback(tostring(err), 2)
end

function _M.handle()
  local method = ngx.req.get_method()
  local body = read_body()
  local path = ngx.var.uri
  -- Like Adobe's gateway, every answer names the request (clients report it in errors).
  local request_id = ngx.var.request_id
  ngx.header["X-Request-Id"] = request_id
  state.log_request { method = method, uri = ngx.var.request_uri, headers = ngx.req.get_headers(100),
    body = body, time = ngx.now(), request_id = request_id }

  -- The load model (latency, capacity, 429 limits, day counter) is the tenant's, before any
  -- fault: a fault's delay_ms adds to it.
  if load_model.is_acs(path) then
    local refused, refused_headers = load_model.enter(method)
    if refused then return send(429, refused, refused_headers, "load") end
  end

  local extra_headers
  local fault = faults.take(method, path)
  if fault then
    local done, headers = faults.apply(fault)
    if done then return end
    extra_headers = headers
  end

  local ctx = { method = method, path = path, args = ngx.req.get_uri_args(100), body = body,
    origin = util.origin() }
  local ok, name, status, resp, resp_headers = xpcall(route, traceback, ctx)
  if ok and ctx.count_only and not ctx.counted and status >= 200 and status < 300 then
    -- "<x>/_count" where <x> is not a listing (a single record, a command...)
    status, resp = util.not_found("'" .. path .. "' is not the count of a listing.")
  end
  if not ok then
    ngx.log(ngx.ERR, "emulator handler failed: ", name)
    return send(500, { code = 500, message = "Emulator internal error (see its error.log)." },
      extra_headers, "error")
  end
  return send(status, resp, extra_headers, name, resp_headers)
end

-- error_page 400: nginx rejected the request line or headers (e.g. "%ZZ" in the path).
function _M.bad_request()
  return send(400, { code = 400, message = "Bad Request: the request is malformed." }, nil, "malformed")
end

-- error_page 413: the body exceeded client_max_body_size (1 MiB).
function _M.too_large()
  state.log_request { method = ngx.req.get_method(), uri = ngx.var.request_uri,
    headers = ngx.req.get_headers(100), time = ngx.now() }
  return send(413, { code = 413, message = "Request Entity Too Large: the body exceeds 1 MiB." }, nil,
    "limit")
end

return _M
