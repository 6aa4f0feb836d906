--- campaign.ngx: the OpenResty client. Same methods, return values, error objects, retry and
-- 401 rules as the C client (docs/client.md), but it never blocks the nginx worker: its
-- transports are nginx's (cosockets, or a subrequest to a proxy location), waits use
-- `ngx.sleep`, and `batch` runs a bounded pool of light threads. See docs/openresty.md.
--
-- It holds no request rule of its own: URLs, options, headers, the retry and 401 decisions,
-- Retry-After, backoff, results and error objects are the C core's (campaign._core,
-- src/core.c; docs/architecture.md). This file drives it: the token provider, pacing and the
-- budget in shared dicts, on_event, ngx.sleep and the transport, all of which may yield.
--
-- Nothing here keeps mutable state at module level: a client is a table owned by its creator
-- (one per worker from init_worker, or one per request), and the shared token lives in a
-- lua_shared_dict.
local campaign = require "campaign"
local capture_module = require "campaign.ngx.capture"
local cosocket_module = require "campaign.ngx.cosocket"
local pacing_module = require "campaign.ngx.pacing"
local batch_module = require "campaign.ngx.batch"
local token_cache_module = require "campaign.ngx.token_cache"
local resty_http_module = require "campaign.ngx.resty_http"

local ngx = ngx -- nil outside OpenResty: `require` still works, `new` then raises
local type, pairs, tostring = type, pairs, tostring
local setmetatable, getmetatable, error, pcall = setmetatable, getmetatable, error, pcall
local str_find, str_format, str_gsub = string.find, string.format, string.gsub
local concat = table.concat
local floor = math.floor

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

-- The options this file takes out before campaign._core validates the rest as campaign.new's.
local NGX_OPTIONS = {
  transport = true, location = true, upstream = true, shared_dict = true, budget = true,
  ssl_verify = true, pool_size = true, pool_idle_timeout = true, max_head = true,
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

local BUILTIN_TRANSPORTS = { cosocket = true, capture = true, ["resty.http"] = true }
-- The transport of a client without a `transport` option in the phases where both work,
-- chosen by measurement (docs/openresty.md "Choosing a transport").
local DEFAULT_IN_REQUEST = "cosocket"
local CAPTURE_PHASES = capture_module.PHASES

local function is_callable(v)
  if type(v) == "function" then return true end
  local mt = getmetatable(v)
  return type(mt) == "table" and type(mt.__call) == "function"
end

local function now()
  ngx.update_time()
  return ngx.now()
end

---------------------------------------------------------------------------------------------
-- Transports: cosocket (lua/campaign/ngx/cosocket.lua), capture and its proxy location's
-- handlers (lua/campaign/ngx/capture.lua), resty.http, or the user's function.
---------------------------------------------------------------------------------------------

_M.capture_transport = capture_module.capture_transport
_M.proxy_rewrite = capture_module.proxy_rewrite
_M.proxy_header_filter = capture_module.proxy_header_filter
_M.proxy_body_filter = capture_module.proxy_body_filter
_M.cosocket_transport = cosocket_module.cosocket_transport

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
  if t == "resty.http" then return resty_http_module.resty_http_transport(opts) end
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

-- The options that are campaign.ngx's own (the transport's, the shared dict's budget).
local function check_ngx_options(opts)
  local function non_negative(name, integer)
    local v = opts[name]
    if v ~= nil and (type(v) ~= "number" or v < 0 or v ~= v or (integer and v ~= floor(v))) then
      error("campaign.ngx.new: option '" .. name .. "' must be a non-negative "
        .. (integer and "integer" or "number"), 4)
    end
  end
  non_negative("max_head", true)
  non_negative("pool_size", true)
  non_negative("pool_idle_timeout")
  if opts.pool_size == 0 then error("campaign.ngx.new: option 'pool_size' must be at least 1", 4) end
  if opts.ssl_verify ~= nil and type(opts.ssl_verify) ~= "boolean" then
    error("campaign.ngx.new: option 'ssl_verify' must be a boolean", 4)
  end
  local t = opts.transport
  if t ~= nil and not is_callable(t) and not BUILTIN_TRANSPORTS[t] then
    error("campaign.ngx.new: option 'transport' must be \"cosocket\", \"capture\", "
      .. "\"resty.http\" or a function", 4)
  end
  for _, name in pairs { "location", "upstream", "shared_dict" } do
    if opts[name] ~= nil and type(opts[name]) ~= "string" then
      error("campaign.ngx.new: option '" .. name .. "' must be a string", 4)
    end
  end
  if opts.location and not str_find(opts.location, "^/[^%s?#]*$") then
    error("campaign.ngx.new: option 'location' must be a location path such as /_campaign_proxy", 4)
  end
  if opts.upstream and not str_find(opts.upstream, "^[%w_.-]+$") then
    error("campaign.ngx.new: option 'upstream' must be the name of an nginx upstream block", 4)
  end
  pacing_module.check(opts)
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


-- Splits campaign.ngx.new's options: the core's settings (campaign.new's rules and messages,
-- campaign._core), and this file's own.
local function split_options(opts)
  if type(opts) ~= "table" then
    error("campaign.ngx.new: bad argument #1 (table expected, got " .. type(opts) .. ")", 3)
  end
  local settings = {}
  for name, value in pairs(opts) do
    if NGINX_OPTIONS[name] then
      error("campaign.ngx.new: option '" .. name .. "' does not apply to the OpenResty client: "
        .. "set it with " .. NGINX_OPTIONS[name], 3)
    end
    if not NGX_OPTIONS[name] then settings[name] = value end
  end
  -- the provider is called here (it may yield): the core needs only to know there is one
  if type(opts.token) == "table" and is_callable(opts.token) then settings.token = is_callable end
  settings.user_agent = opts.user_agent or default_user_agent()
  check_ngx_options(opts)
  return settings
end

--- campaign.ngx.new(opts) -> client. Raises on a bad option (like campaign.new).
---@param self_or_opts campaign.ngx|campaign.ngx.Options both .new{} and :new{}
---@param maybe_opts? campaign.ngx.Options
---@return campaign.ngx.Client
function _M.new(self_or_opts, maybe_opts)
  local opts = self_or_opts
  if self_or_opts == _M then opts = maybe_opts end -- both .new{} and :new{}
  if not ngx then error("campaign.ngx.new: this client runs inside OpenResty (ngx_lua) only", 2) end
  local settings = split_options(opts)
  local core = campaign._core(settings, "campaign.ngx.new", not is_callable(opts.transport))
  if opts.transport and opts.transport ~= "capture" and (opts.location or opts.upstream) then
    error("campaign.ngx.new: options 'location' and 'upstream' configure the capture transport; "
      .. "they cannot be combined with another 'transport'", 2)
  end
  local base_url = str_gsub(opts.base_url or "https://mc.adobe.io", "/+$", "")
  local client = {
    _core = core,
    _org = opts.org,
    _token = opts.token,
    _on_event = opts.on_event,
    _transport = choose_transport(opts),
    _rate = opts.rate, _burst = opts.burst or 1,
    _dict = opts.shared_dict and ngx.shared[opts.shared_dict] or nil,
    _dict_name = opts.shared_dict,
    -- the state of this client alone (no shared_dict): its TAT and its calls left
    _tat = nil, _budget_left = type(opts.budget) == "number" and opts.budget or nil,
    _budget = opts.budget,
  }
  -- every client of this tenant and API host naming the same dict shares one rate and budget
  client._pace_key = "campaign.pace|" .. base_url .. "|" .. opts.org
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
  if ev == nil then return end
  -- an error in the user's callback must not abort the transfer; it is reported once in the
  -- nginx error log (never with header values)
  local ok, err = pcall(self._on_event, ev)
  if not ok then ngx.log(ngx.WARN, "campaign.ngx: on_event failed: ", tostring(err)) end
end

-- Calls the token provider (protected; it may yield); the core reads its answer by the C
-- client's rules. Returns the token (false: token = false, no Authorization), or nil and the
-- error object. A token given with an expires_in is kept that long unless `force`.
local function get_token(self, force)
  local provider = self._token
  if not is_callable(provider) then return provider end
  if not force and self._kept_token and now() < self._kept_until then return self._kept_token end
  self._kept_token = nil
  local token, seconds = self._core:token(pcall(provider, force))
  if token and seconds then self._kept_token, self._kept_until = token, now() + seconds end
  return token, seconds
end

-- Sends one request (a core exchange) with the core's retry and 401 decisions. Returns body,
-- res | nil, err. `index` is the batch position, for events; `sample(x)`, when given, is called
-- after every attempt's outcome (batch's "auto" limiter learns per attempt, as in C).
local function perform(self, x, index, sample)
  local token, terr = get_token(self, false)
  if token == nil then return x:token_failed(terr) end
  while true do
    -- every attempt (a retry, the resend after a 401) takes a budget call and a pacing slot
    local refused = pacing_module.take_budget(self)
    if refused then return x:refused(refused) end
    if self._rate then pacing_module.pace(self) end
    local req, ev = x:attempt(token, index)
    emit(self, ev)
    local step, a, b
    step, ev, a, b = x:outcome(self._transport(req))
    if sample then sample(x) end
    emit(self, ev)
    if step == "done" then return a, b end
    if step == "refresh" then
      -- Requests running at the same time share the provider's token (lua_shared_dict):
      -- when another one already replaced the refused token, use that one; only a provider
      -- that still hands out the refused token is asked to refresh (so 20 requests meeting
      -- the same 401 cause one IMS call, not 20).
      self._kept_token = nil
      local fresh, ferr = get_token(self, false)
      if fresh == token then fresh, ferr = get_token(self, true) end
      if not fresh then return x:token_failed(ferr) end
      token = fresh
    else
      emit(self, b)
      if a > 0 then ngx.sleep(a) end
    end
  end
end

-- Validates a request (the core raises on misuse) before anything is sent.
-- A misuse raise names the user's line: level 3 is the caller of the method calling prepare
-- (not a tail call, so that the levels hold on every Lua).
local function prepare(self, fname, method, path, opts, body)
  local req = self._core:request(fname, method, path, body, opts, false, 3)
  return req
end

--- client:url(path[, opts]) -> the URL a call would use (opts.query); sends nothing, raises like
-- the calls do. The same text as the C client's client:url.
---@param self campaign.ngx.Client
---@param path string
---@param opts? {query?: campaign.Query}
---@return string
function _M.url(self, path, opts)
  check_client(self, "url")
  return self._core:url("campaign.ngx.url", path, opts)
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
  return perform(self, self._core:request("campaign.ngx.request", method, path, nil, opts, true, 2))
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

--- client:patch(path, fields[, opts])
---@param self campaign.ngx.Client
---@param path string
---@param fields campaign.Body
---@param opts? campaign.RequestOpts
---@return any|nil body
---@return campaign.Response|campaign.Error res_or_err
function _M.patch(self, path, fields, opts)
  check_client(self, "patch")
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
  return perform(self, prepare(self, "campaign.ngx.post", "POST", path, opts, fields))
end

-- client:batch: lua/campaign/ngx/batch.lua (light-thread scheduling over perform).
_M.batch = batch_module.method(check_client, perform, prepare, now)

-- One token for all workers: lua/campaign/ngx/token_cache.lua.
_M.shared_token_cache = token_cache_module.shared_token_cache

_M.DEFAULT_LOCATION = capture_module.DEFAULT_LOCATION

return _M
