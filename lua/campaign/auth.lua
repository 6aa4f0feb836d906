--- campaign.auth: access tokens from Adobe IMS (OAuth server-to-server, client_credentials).
--
-- auth.ims{...} returns a token provider for campaign.new{token = provider} (or campaign.ngx):
-- provider(force_refresh) -> token, expires_in | nil, err. It POSTs the form to
-- <ims_url>/ims/token/v3 (or to ims_url itself when it already ends so), keeps the token in a
-- cache (its own, per provider, or a pluggable store such as a lua_shared_dict adapter), hands
-- it out until shortly before it expires, and fetches a new one when called with `true` (the
-- clients do that on a 401).
-- A failed exchange is an error object of kind "auth"; the client secret and the token never
-- appear in it.
local campaign = require "campaign"
local default_clock = require "campaign.clock"

local type, pairs, ipairs, error, pcall, tostring, tonumber, select =
  type, pairs, ipairs, error, pcall, tostring, tonumber, select
local string_format, string_byte, table_concat, math_min, math_max =
  string.format, string.byte, table.concat, math.min, math.max

---@class campaign.auth
---@field DEFAULT_IMS_URL string
---@field DEFAULT_SCOPES string
local auth = {}

auth.DEFAULT_IMS_URL = "https://ims-na1.adobelogin.com"
local TOKEN_PATH = "/ims/token/v3"

-- Sent as `scope` when the caller gives no `scopes` (docs/acs-api.md section 2: the list
-- ACS clients in the wild send). `scopes = false` sends no scope at all.
auth.DEFAULT_SCOPES = "openid,AdobeID,campaign_sdk,additional_info.projectedProductContext,"
  .. "campaign_config_server_general,deliverability_service_general"

-- IMS v3 gives expires_in in seconds (86399); the legacy JWT exchange gave milliseconds
-- (86399992). No token lives 115 days, so anything above 10^7 is milliseconds.
local MS_THRESHOLD = 1e7
local DEFAULT_EXPIRES_IN = 3600        -- when IMS omits expires_in
local MAX_MARGIN = 3600

--- Normalises an IMS expires_in (number or numeric string; seconds or legacy milliseconds) to
-- seconds. Returns nil when it is not a positive number.
---@param value any seconds, a numeric string, or the legacy milliseconds (above 10^7)
---@return number|nil seconds
function auth.normalize_expires_in(value)
  local n = tonumber(value)
  if not n or n <= 0 or n ~= n then return nil end
  if n > MS_THRESHOLD then n = n / 1000 end
  return n
end

local function form_escape(s)
  return (s:gsub("[^%w%-%._~]", function(c) return string_format("%%%02X", string_byte(c)) end))
end

local function form_encode(fields)
  local parts = {}
  for _, kv in ipairs(fields) do
    parts[#parts + 1] = form_escape(kv[1]) .. "=" .. form_escape(kv[2])
  end
  return table_concat(parts, "&")
end

-- Removes every occurrence of a secret from a text (plain match, not a pattern), then what
-- campaign._error_text removes too: the start (16+ characters) of a secret that a cut left
-- behind (an IMS answer echoing the form, cut at 1,024 bytes by the client), and bytes that
-- are not UTF-8 (docs/errors.md "Text from the server").
local function scrub(text, secrets)
  if type(text) ~= "string" then return text end
  for _, secret in ipairs(secrets) do
    if type(secret) == "string" and #secret >= 4 then
      local out, start = {}, 1
      while true do
        local i, j = text:find(secret, start, true)
        if not i then break end
        out[#out + 1] = text:sub(start, i - 1)
        out[#out + 1] = "<redacted>"
        start = j + 1
      end
      out[#out + 1] = text:sub(start)
      text = table_concat(out)
    end
  end
  return campaign._error_text(text, 0, secrets)
end

-- True when host (lower case, IPv6 in brackets) is a loopback one: 127.0.0.0/8, ::1 (any
-- zero-padded spelling) or localhost. The rule src/options.c applies to base_url.
local function loopback_host(host)
  if host == "localhost" then return true end
  local v6 = host:match("^%[([%x:]+)%]$")
  if v6 then
    return not v6:find(":::", 1, true) and v6:match("^[0:]*:0*1$") ~= nil
      and (v6:find("::", 1, true) ~= nil or select(2, v6:gsub(":", "")) == 7)
  end
  local a, b, c, d = host:match("^(%d%d?%d?)%.(%d%d?%d?)%.(%d%d?%d?)%.(%d%d?%d?)$")
  return a == "127" and tonumber(b) < 256 and tonumber(c) < 256 and tonumber(d) < 256
end

-- A misuse error pointing at the line that called auth.ims: `level` counts the functions
-- between that line and bad_option_at (error's level), so each helper passes its own depth.
local function bad_option_at(level, msg)
  error("campaign.auth.ims: " .. msg, level)
end

-- From check_options (auth.ims -> check_options -> bad_option -> bad_option_at).
local function bad_option(msg)
  bad_option_at(5, msg)
end

local function is_client(v)
  local t = type(v)
  return (t == "userdata" or t == "table") and v.request ~= nil
end

-- The `scope` form value for opts.scopes: nil -> the default list, false -> nil (no scope),
-- a string or a list -> the scopes joined by commas, blanks around each one removed. An empty
-- list, an empty string or an empty item raises (false is how to send no scope).
local function scope_value(scopes)
  if scopes == nil then return auth.DEFAULT_SCOPES end
  if scopes == false then return nil end
  local items = {}
  local function add(s)
    s = s:match("^%s*(.-)%s*$")
    if s == "" then
      bad_option_at(5, "option 'scopes' has an empty scope (give false to send no scope)")
    end
    if s:find("[%s,]") then bad_option_at(5, "option 'scopes': separate scopes with commas, not blanks") end
    items[#items + 1] = s
  end
  if type(scopes) == "string" then
    for s in (scopes .. ","):gmatch("([^,]*),") do add(s) end
  else
    local n = 0
    for _ in pairs(scopes) do n = n + 1 end
    if n ~= #scopes then bad_option_at(4, "option 'scopes' must be a list (array) of strings") end
    for _, s in ipairs(scopes) do
      if type(s) ~= "string" then bad_option_at(4, "option 'scopes' must contain strings only") end
      for part in (s .. ","):gmatch("([^,]*),") do add(part) end
    end
  end
  if #items == 0 then bad_option_at(4, "option 'scopes' is empty (give false to send no scope)") end
  return table_concat(items, ",")
end

-- The token URL for an ims_url: a base URL gets /ims/token/v3 appended; a URL already ending
-- in /ims/token/v3 is used as is. Trailing slashes are ignored. Returns token_url, base.
local function token_url_for(ims_url)
  local url = ims_url:gsub("/+$", "")
  if url:sub(-#TOKEN_PATH) == TOKEN_PATH then
    return url, url:sub(1, -#TOKEN_PATH - 1)
  end
  return url .. TOKEN_PATH, url
end

-- "<error>: <error_description>" from an OAuth2 error answer, or nil when it has neither.
local function oauth_detail(answer)
  if type(answer) ~= "table" then return nil end
  local code, description = answer.error, answer.error_description
  if code == nil and description == nil then return nil end
  local detail = tostring(code or "error")
  if description ~= nil then detail = detail .. ": " .. tostring(description) end
  return detail
end

local function check_options(opts)
  if type(opts) ~= "table" then bad_option("options table expected, got " .. type(opts)) end
  local known = {
    client_id = true, client_secret = true, scopes = true, ims_url = true, http = true,
    refresh_margin = true, clock = true, cache = true, allow_http = true,
  }
  for k in pairs(opts) do
    if not known[k] then bad_option("unknown option '" .. tostring(k) .. "'") end
  end
  if type(opts.client_id) ~= "string" or opts.client_id == "" then
    bad_option("option 'client_id' must be a non-empty string")
  end
  if type(opts.client_secret) ~= "string" or opts.client_secret == "" then
    bad_option("option 'client_secret' must be a non-empty string")
  end
  local scopes = opts.scopes
  if scopes ~= nil and scopes ~= false and type(scopes) ~= "string" and type(scopes) ~= "table" then
    bad_option("option 'scopes' must be a list of strings, a comma-separated string or false")
  end
  if opts.ims_url ~= nil and (type(opts.ims_url) ~= "string"
      or not opts.ims_url:match("^https?://[^/?#]+")) then
    bad_option("option 'ims_url' must be an http(s) URL")
  end
  if opts.allow_http ~= nil and type(opts.allow_http) ~= "boolean" then
    bad_option("option 'allow_http' must be a boolean")
  end
  -- the client secret goes in the form, the token comes back: plain http only on this machine
  local authority = opts.ims_url and opts.ims_url:match("^http://([^/?#]+)")
  if authority and not opts.allow_http then
    local host = authority:match("^(%[[^%]]*%])") or authority:match("^([^:]*)")
    if not loopback_host(host:lower()) then
      bad_option("option 'ims_url' is plain http:// to a host that is not loopback (127.0.0.0/8, "
        .. "::1, localhost): the client secret and the token would travel in cleartext; use "
        .. "https://, or set allow_http = true")
    end
  end
  if opts.refresh_margin ~= nil and (type(opts.refresh_margin) ~= "number" or opts.refresh_margin < 0) then
    bad_option("option 'refresh_margin' must be a non-negative number of seconds")
  end
  if opts.clock ~= nil and type(opts.clock) ~= "function" then
    bad_option("option 'clock' must be a function")
  end
  local cache = opts.cache
  if cache ~= nil then
    if type(cache) ~= "table" or type(cache.get) ~= "function" or type(cache.set) ~= "function" then
      bad_option("option 'cache' must be a table with get and set functions")
    end
    if (cache.lock == nil) ~= (cache.unlock == nil) then
      bad_option("option 'cache' must have both lock and unlock, or neither")
    end
  end
  if opts.http ~= nil and type(opts.http) ~= "table" and not is_client(opts.http) then
    bad_option("option 'http' must be a client or a table of client options")
  end
end

--- auth.ims{client_id, client_secret, scopes, ims_url, http, refresh_margin, clock, cache,
-- allow_http}
-- -> provider(force_refresh) -> token, expires_in | nil, err
-- scopes: a list or a comma-separated string; default auth.DEFAULT_SCOPES; false: no scope sent.
-- ims_url: default https://ims-na1.adobelogin.com; a URL ending in /ims/token/v3 is the token URL.
-- http: a client to POST with (anything with the client's `request` method, e.g. a campaign.ngx
-- client in OpenResty), or options for a private libcurl client (cafile, insecure, timeout,
-- connect_timeout, proxy, retries, ...), created on first use. refresh_margin: seconds before
-- expiry when a new token is fetched (default 10% of expires_in, at most 1 h). clock: () ->
-- seconds. cache: {get = function(key) -> token, valid_until; set = function(key, token,
-- valid_until, expires_in); lock = function(key) -> true | nil, err; unlock = function(key)}
-- (lock/unlock optional, both or neither: one refresh at a time across workers).
-- allow_http: true accepts an http:// ims_url to a host that is not loopback (default: only
-- 127.0.0.0/8, ::1 and localhost, such as the emulator, may be plain http).
-- expires_in returned by the provider = seconds left before the provider refreshes the token.
---@param opts campaign.auth.ImsOpts
---@return campaign.TokenProvider provider
function auth.ims(opts)
  check_options(opts)
  local client_id, client_secret = opts.client_id, opts.client_secret
  local token_url, ims_url = token_url_for(opts.ims_url or auth.DEFAULT_IMS_URL)
  local scope = scope_value(opts.scopes)
  local fields = {
    { "grant_type", "client_credentials" },
    { "client_id", client_id },
    { "client_secret", client_secret },
  }
  if scope then fields[#fields + 1] = { "scope", scope } end
  local form = form_encode(fields)
  local secrets = { client_secret, form_escape(client_secret) }
  local clock = opts.clock or default_clock.now
  local margin_opt = opts.refresh_margin
  -- Cache key: where and for whom the token is, never the secret.
  local key = "campaign.ims|" .. ims_url .. "|" .. client_id .. "|" .. (scope or "")

  -- The default store: this provider's own upvalue (per provider, not per module).
  local own_token, own_valid_until
  local cache = opts.cache or {
    get = function() return own_token, own_valid_until end,
    set = function(_, token, valid_until) own_token, own_valid_until = token, valid_until end,
  }

  local http = opts.http
  local function http_client()
    if is_client(http) then return http end
    local client_opts = {}
    for k, v in pairs(http or {}) do client_opts[k] = v end
    -- IMS token requests are not ACS calls: never paced, never counted (docs/client.md)
    client_opts.rate, client_opts.burst, client_opts.budget = nil, nil, nil
    -- campaign.new requires org, api_key and token; IMS ignores them. base_url is the IMS
    -- origin, so the absolute token URL is accepted (same-origin rule).
    client_opts.base_url = ims_url:match("^(https?://[^/?#]+)")
    client_opts.org = client_opts.org or "ims"
    client_opts.api_key = client_opts.api_key or client_id
    if client_opts.token == nil then client_opts.token = false end -- no Authorization header
    if opts.allow_http then client_opts.allow_http = true end
    http = campaign.new(client_opts)
    return http
  end

  local function auth_error(fields_)
    fields_.kind = "auth"
    fields_.method = "POST"
    fields_.url = token_url
    fields_.message = scrub(fields_.message, secrets)
    return campaign.error(fields_)
  end

  local function exchange()
    local client = http_client()
    local body, res = client:request("POST", token_url, {
      body = form,
      headers = { ["Content-Type"] = "application/x-www-form-urlencoded" },
      raw = true,
    })
    if body == nil then
      local err = res
      if type(err) ~= "table" then
        return nil, auth_error { message = "IMS token exchange failed: " .. tostring(err) }
      end
      local ims = err.body
      if type(ims) == "string" then
        local ok, decoded = pcall(campaign.decode, ims)
        ims = ok and decoded or nil
      end
      local detail = oauth_detail(ims) or err.message or err.kind or "failed"
      local status = err.status
      return nil, auth_error {
        status = status,
        code = type(ims) == "table" and ims.error ~= nil and tostring(ims.error) or err.code,
        attempts = err.attempts,
        cause = err.kind,
        message = "IMS token exchange failed: " .. (status and (tostring(status) .. " ") or "")
          .. tostring(detail),
      }
    end
    local answer = body
    if type(answer) == "string" then
      local ok, decoded = pcall(campaign.decode, answer)
      if not ok or type(decoded) ~= "table" then
        return nil, auth_error { status = res and res.status,
          message = "IMS token exchange failed: the answer is not a JSON object" }
      end
      answer = decoded
    end
    if type(answer) ~= "table" or type(answer.access_token) ~= "string" or answer.access_token == "" then
      -- IMS may answer 200 with an OAuth2 error (e.g. invalid_scope): report it like a 400's.
      local status = res and res.status
      local detail = oauth_detail(answer)
      return nil, auth_error { status = status,
        code = detail and answer.error ~= nil and tostring(answer.error) or nil,
        message = "IMS token exchange failed: " .. (status and (tostring(status) .. " ") or "")
          .. (detail or "the answer has no access_token") }
    end
    local expires_in = auth.normalize_expires_in(answer.expires_in) or DEFAULT_EXPIRES_IN
    return answer.access_token, expires_in
  end

  local function fresh(token, valid_until, now)
    return type(token) == "string" and type(valid_until) == "number" and now < valid_until
  end

  local function fetch_and_store(now)
    local ok, token, expires_in = pcall(exchange)
    if not ok then
      -- A raise here is misuse (bad http options): let the caller see it, without the secret.
      error(scrub(tostring(token), secrets), 0)
    end
    if not token then return nil, expires_in end
    local margin = margin_opt or math_min(expires_in * 0.1, MAX_MARGIN)
    local lifetime = math_max(expires_in - margin, 0)
    local valid_until = now + lifetime
    cache.set(key, token, valid_until, expires_in)
    return token, lifetime
  end

  return function(force_refresh)
    local now = clock()
    local token, valid_until = cache.get(key)
    if not force_refresh and fresh(token, valid_until, now) then return token, valid_until - now end
    if not cache.lock then return fetch_and_store(now) end

    local stale = token
    local locked, lerr = cache.lock(key)
    if not locked then
      return nil, auth_error { message = "IMS token lock failed: " .. tostring(lerr) }
    end
    -- Another worker may have refreshed while this one waited for the lock.
    now = clock()
    token, valid_until = cache.get(key)
    if fresh(token, valid_until, now) and (not force_refresh or token ~= stale) then
      cache.unlock(key)
      return token, valid_until - now
    end
    local ok, t, e = pcall(fetch_and_store, now)
    cache.unlock(key)
    if not ok then error(t, 0) end
    return t, e
  end
end

return auth
