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

local ngx = ngx -- nil outside OpenResty: `require` still works, `new` then raises
local type, pairs, tostring, tonumber = type, pairs, tostring, tonumber
local setmetatable, getmetatable, error, pcall = setmetatable, getmetatable, error, pcall
local str_find, str_format, str_gsub, str_match = string.find, string.format, string.gsub,
  string.match
local concat = table.concat
local floor, min = math.floor, math.min

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
local normalise_headers = capture_module.normalise_headers

-- The resty.http adapter (lua-resty-http, when installed; untested here: no package of it is
-- installed on the project's machines, docs/openresty.md).
local function resty_http_transport(opts)
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
    res, err = httpc:request { method = req.method, path = rest, headers = req.headers, body = req.body }
    if not res then return failure(httpc, err, true) end
    local body
    body, err = res:read_body()
    if not body then return failure(httpc, err, true) end
    httpc:set_keepalive(idle_ms, pool_size)
    return { status = res.status, headers = normalise_headers(res.headers), body = body }
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
-- res | nil, err. `index` is the batch position, for events.
local function perform(self, x, index)
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
  -- batch's arguments by the C client's rules (src/batch_options.c); "auto": its limiter
  -- (src/limiter.c), sampled per call here
  local concurrency, limiter = self._core:batch_options("campaign.ngx.batch", requests, opts, 2)
  if limiter then concurrency = limiter:state().max end
  opts = opts or {}
  local on_result = opts.on_result
  local function request_of(r, i)
    if type(r) ~= "table" then
      error("campaign.ngx.batch: requests[" .. i .. "] must be a table {method, path, body, opts}", 3)
    end
    local body = r[3]
    if body == nil then body = r.body end
    -- a tail call: the raise's level 3 is then batch's caller, as for the other methods
    return prepare(self, "campaign.ngx.batch: request " .. i, r[1] or r.method, r[2] or r.path,
      r[4] or r.opts, body)
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

_M.DEFAULT_LOCATION = capture_module.DEFAULT_LOCATION

return _M
