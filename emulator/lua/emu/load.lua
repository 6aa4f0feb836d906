-- A distant, loaded tenant (docs/emulator.md "Load"): on ACS API requests only (/<org>/campaign/...,
-- not IMS, not the admin API) a latency with seeded jitter, a capacity that stretches it with the
-- requests in flight, the gateway's 429 above an in-flight or a per-second limit, and a call
-- counter per UTC day. Config and counters live in lua_shared_dict campaign_load (every worker
-- sees them); the only per-request state is a flag in ngx.ctx for the log-phase decrement.
local json = require "emu.json"

local ngx = ngx
local type, pairs, ipairs, next, tostring = type, pairs, ipairs, next, tostring
local floor, format = math.floor, string.format
local byte, random = string.byte, math.random

local _M = {}

-- The adobe.io gateway's throttling answer (acs-api.md section 6), byte for byte.
_M.TOO_MANY = '{"error_code":"429050","message":"Too many requests"}'

-- Config keys, in the order GET shows them, with their kind.
local ORDER = { "latency_ms", "jitter_ms", "seed", "methods", "capacity", "limit_inflight", "limit_rate",
  "retry_after" }
local KINDS = { latency_ms = "ms", jitter_ms = "ms", seed = "seed", methods = "methods", capacity = "count",
  limit_inflight = "count", limit_rate = "count", retry_after = "seconds" }
_M.KEYS = ORDER

local MAX_MS = 600000          -- 10 minutes: beyond any client timeout worth testing
local MAX_COUNT = 1000000
local MAX_SEED = 2 ^ 53
local KEEP_DAYS = 8            -- per-day counters kept (GET calls?day=)

local function dict() return ngx.shared.campaign_load end

local function is_int(v) return type(v) == "number" and v == floor(v) end

-- Checks one key's value; returns the value to store (nil: the key's default) or nil, message.
local function check(k, v)
  local kind = KINDS[k]
  if not kind then return nil, "unknown load key '" .. tostring(k) .. "'" end
  if v == json.null then return nil end
  if kind == "ms" then
    if type(v) ~= "number" or v < 0 or v > MAX_MS then
      return nil, "load key '" .. k .. "' must be a number of milliseconds, 0.." .. MAX_MS
    end
  elseif kind == "seed" then
    if not is_int(v) or v < 0 or v >= MAX_SEED then
      return nil, "load key 'seed' must be a whole number 0..2^53-1 or null (no seed)"
    end
  elseif kind == "methods" then
    if type(v) ~= "table" then return nil, "load key 'methods' must be a list of HTTP methods" end
    local names = {}
    for i, m in ipairs(v) do
      if type(m) ~= "string" or not m:match("^%a+$") then
        return nil, "load key 'methods' must be a list of HTTP methods (item " .. i .. ")"
      end
      names[#names + 1] = m:upper()
    end
    if #names ~= #v or (next(v) ~= nil and #v == 0) then
      return nil, "load key 'methods' must be a list of HTTP methods"
    end
    if #names == 0 then return nil end
    -- Stored as ",GET,PATCH,": the hot path tests membership with one find.
    return "," .. table.concat(names, ",") .. ","
  else
    local max = kind == "seconds" and 86400 or MAX_COUNT
    if not is_int(v) or v < 0 or v > max then
      return nil, "load key '" .. k .. "' must be a whole number 0.." .. max
    end
  end
  if v == 0 and kind ~= "seed" then return nil end  -- 0 is off: the key is not stored
  return v
end

-- Whether anything but counting has to happen: the hot path reads only this flag when not.
local function refresh_active(d)
  local on = false
  for _, k in ipairs { "latency_ms", "jitter_ms", "limit_inflight", "limit_rate" } do
    if d:get("cfg:" .. k) then on = true end
  end
  d:set("active", on)
end

-- Validates a table of changes; returns a table of key -> stored value (false: default)
-- or nil, message. Nothing is stored.
local function validate(changes)
  if type(changes) ~= "table" then return nil, "a JSON object is expected" end
  local out = {}
  for k, v in pairs(changes) do
    if type(k) ~= "string" then return nil, "a JSON object is expected" end
    local value, err = check(k, v)
    if err then return nil, err end
    if value == nil then value = false end
    out[k] = value
  end
  return out
end

local function store(d, prefix, values)
  for k, v in pairs(values) do
    if v == false then d:delete(prefix .. k) else d:set(prefix .. k, v) end
  end
end

-- The config as the admin API shows it.
function _M.config()
  local d = dict()
  local out = {}
  for _, k in ipairs(ORDER) do
    local v = d:get("cfg:" .. k)
    if k == "methods" then
      local list = json.array()
      for m in (v or ""):gmatch("[^,]+") do list[#list + 1] = m end
      v = list
    elseif k == "seed" then
      if v == nil then v = json.null end
    elseif v == nil then
      v = 0
    end
    out[k] = v
  end
  return out
end

-- POST /_emulator/load: merges the given keys (null or 0: back to off); the jitter sequence
-- starts again. Returns the config, or nil and a message (nothing changed).
function _M.set(changes)
  local values, err = validate(changes)
  if not values then return nil, err end
  local d = dict()
  store(d, "cfg:", values)
  d:set("seq", 0)
  refresh_active(d)
  return _M.config()
end

-- DELETE /_emulator/load: everything off (not the launch flags: POST reset restores those).
function _M.clear()
  local d = dict()
  for _, k in ipairs(ORDER) do d:delete("cfg:" .. k) end
  d:set("seq", 0)
  refresh_active(d)
  return _M.config()
end

-- The launch flags (init_by_lua); raises on a bad value (nginx then refuses to start).
function _M.init(launch)
  local values, err = validate(launch or {})
  if not values then error("campaign-emulator load settings: " .. err) end
  local d = dict()
  for _, k in ipairs(ORDER) do d:delete("launch:" .. k) end
  store(d, "launch:", values)
end

-- Today in UTC, "2026-12-03" (ngx.utctime is "yyyy-mm-dd hh:mm:ss", cached per event loop).
local function utc_day()
  return ngx.utctime():sub(1, 10)
end

-- Counters: calls:<day>, limited:<day>, kept KEEP_DAYS days.
function _M.calls(day)
  local d = dict()
  day = day or utc_day()
  return { day = day, calls = d:get("calls:" .. day) or 0, limited = d:get("limited:" .. day) or 0,
    inflight = d:get("inflight") or 0, peak_inflight = d:get("peak_inflight") or 0,
    delayed = d:get("delayed") or 0, delay_ms = d:get("delay_ms") or 0 }
end

-- Zeroes the day counters, the peak and the delay sums. The in-flight count stays: running
-- requests still decrement it when they end.
function _M.clear_calls()
  local d = dict()
  for _, key in ipairs(d:get_keys(0)) do
    if key:find("^calls:") or key:find("^limited:") then d:delete(key) end
  end
  d:set("peak_inflight", d:get("inflight") or 0)
  d:delete("delayed")
  d:delete("delay_ms")
end

-- POST /_emulator/reset: the launch flags back, counters zeroed, the jitter sequence restarted.
function _M.reset()
  local d = dict()
  for _, k in ipairs(ORDER) do
    local v = d:get("launch:" .. k)
    if v == nil then d:delete("cfg:" .. k) else d:set("cfg:" .. k, v) end
  end
  d:set("seq", 0)
  refresh_active(d)
  _M.clear_calls()
end

-- Whether a request path is an ACS API call: /<org>/campaign[/...] (what the gateway routes).
function _M.is_acs(path)
  local second = path:match("^/*[^/]+/+([^/]+)")
  return second == "campaign" or second == "campaign.json"
end

-- A uniform number in [0, 1) from (seed, n): the n-th delayed request of a seeded config gets
-- the same jitter on every run, whatever the worker or the other requests (IMS, admin).
local function uniform(seed, n)
  local a, b, c, e = byte(ngx.md5_bin(format("%d:%d", seed, n)), 1, 4)
  return (((a * 256 + b) * 256 + c) * 256 + e) / 4294967296
end

local function refuse(d, day)
  d:incr("limited:" .. day, 1, 0, KEEP_DAYS * 86400)
  local after = d:get("cfg:retry_after")
  return _M.TOO_MANY, after and { ["Retry-After"] = tostring(after) } or nil
end

-- On entry of an ACS API request (content phase): counts it, refuses it above a limit
-- (returns the 429 body and its extra headers), else sleeps the configured delay (sets
-- X-Emulator-Delay-Ms) and returns nil. _M.leave() in the log phase ends what this started.
function _M.enter(method)
  local d = dict()
  local day = utc_day()
  local active = d:get("active")
  local window
  if active then
    local rate = d:get("cfg:limit_rate")
    if rate then
      -- Fixed window: the current whole second of the clock; refused requests are not counted.
      window = "rate:" .. ngx.time()
      if d:incr(window, 1, 0, 2) > rate then
        d:incr(window, -1, 0)
        return refuse(d, day)
      end
    end
  end
  local inflight = d:incr("inflight", 1, 0)
  ngx.ctx.emu_load_inflight = true
  if active then
    local limit = d:get("cfg:limit_inflight")
    if limit and inflight > limit then
      d:incr("inflight", -1, 0)
      ngx.ctx.emu_load_inflight = nil
      if window then d:incr(window, -1, 0) end
      return refuse(d, day)
    end
  end
  if inflight > (d:get("peak_inflight") or 0) then d:set("peak_inflight", inflight) end
  d:incr("calls:" .. day, 1, 0, KEEP_DAYS * 86400)
  if not active then return nil end
  local latency, jitter = d:get("cfg:latency_ms") or 0, d:get("cfg:jitter_ms") or 0
  if latency + jitter <= 0 then return nil end
  local methods = d:get("cfg:methods")
  if methods and not methods:find("," .. method .. ",", 1, true) then return nil end
  local delay = latency
  if jitter > 0 then
    local seed = d:get("cfg:seed")
    delay = delay + jitter * (seed and uniform(seed, d:incr("seq", 1, 0)) or random())
  end
  local capacity = d:get("cfg:capacity")
  if capacity and inflight > capacity then delay = delay * inflight / capacity end
  ngx.header["X-Emulator-Delay-Ms"] = format("%.3f", delay)
  -- the delays applied, summed (GET calls): a benchmark's mean latency is what was slept
  d:incr("delayed", 1, 0)
  d:incr("delay_ms", delay, 0)
  ngx.sleep(delay / 1000)
  return nil
end

-- Log phase of every non-admin request: it runs however the request ended (an answer, a
-- dropped connection, a handler error, a client gone), so the in-flight count cannot leak.
function _M.leave()
  local ctx = ngx.ctx
  if ctx.emu_load_inflight then
    ctx.emu_load_inflight = nil
    dict():incr("inflight", -1, 0)
  end
end

return _M
