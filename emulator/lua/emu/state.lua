-- Emulator state outside the records: launch settings, admin config, tokens, the request
-- log and the fault list. All of it is in shared dicts (no state in module tables).
local json = require "emu.json"
local cjson = require "cjson"

local ngx = ngx
local type, pairs, ipairs, tostring = type, pairs, ipairs, tostring

local _M = {}

local SETTINGS = { "org", "api_key", "client_id", "client_secret", "access_token", "token_ttl", "profiles" }

local MAX_REQUESTS = 10000

_M.config_defaults = {
  wrap_single_get = false,        -- answer a single GET as {"content":[record]} (ACS doc artefact)
  big_table_threshold = 100000,   -- XtkBigTableThreshold: above it `next` needs _forcePagination
  default_line_count = 25,        -- page size when _lineCount is absent
  data_policies = false,          -- apply dataPolicy (email, smartCase) to written values
  signal_cooldown = 0,            -- seconds a signal activity refuses a new trigger (ACS: 600); 0 = off
  -- emu.progress: how asynchronous work moves on (seconds; outcomes checked there)
  event_pending = 1,              -- a transactional event stays "pending" this long
  event_processing = 1,           -- then "processing" this long
  event_outcome = "processed",    -- then this status; "stall": never leaves "pending"
  privacy_new = 1,                -- a privacy request stays "new" this long
  privacy_processing = 1,         -- then "processing" this long
  privacy_outcome = "complete",   -- then this status (or error..., e.g. errorDataNotFound); "stall"
  workflow_delay = 0,             -- a workflow command takes effect after this long (0: at once)
  workflow_outcome = "normal",    -- "error": commands lead to state "error"; "stall": never apply
}

local function state() return ngx.shared.campaign_state end

-- Launch settings (from the launcher, through init_by_lua).
function _M.store_settings(settings)
  for _, k in ipairs(SETTINGS) do state():set("setting:" .. k, settings[k]) end
end

function _M.setting(name)
  return state():get("setting:" .. name)
end

function _M.settings()
  local out = {}
  for _, k in ipairs(SETTINGS) do out[k] = _M.setting(k) end
  return out
end

function _M.config(name)
  local v = state():get("cfg:" .. name)
  if v == nil then return _M.config_defaults[name] end
  return v
end

function _M.all_config()
  local out = {}
  for k in pairs(_M.config_defaults) do out[k] = _M.config(k) end
  return out
end

-- Returns true, or nil and a message naming the bad key.
function _M.set_config(changes)
  for k, v in pairs(changes) do
    local default = _M.config_defaults[k]
    if default == nil then return nil, "unknown config key '" .. tostring(k) .. "'" end
    if type(v) ~= type(default) then
      return nil, "config key '" .. k .. "' must be a " .. type(default)
    end
  end
  for k, v in pairs(changes) do state():set("cfg:" .. k, v) end
  return true
end

function _M.reset_config()
  for k in pairs(_M.config_defaults) do state():delete("cfg:" .. k) end
end

-- Tokens: the shared dict's own expiry implements --token-ttl.
local function tokens() return ngx.shared.campaign_tokens end

function _M.add_token(token, ttl)
  tokens():set(token, true, ttl)
end

function _M.token_valid(token)
  return token ~= nil and tokens():get(token) == true
end

function _M.expire_tokens()
  tokens():flush_all()
  tokens():flush_expired()
end

-- The request log: "r<n>" entries, the newest MAX_REQUESTS kept.
local function requests() return ngx.shared.campaign_requests end

function _M.log_request(entry)
  local dict = requests()
  local n = dict:incr("n", 1, 0)
  entry.seq = n
  -- cjson is enough here (no stored numbers to keep exact) and much faster on the hot path.
  -- [entry, n]: the text ends with the sequence number. LuaJIT interns every string and
  -- Debian's luajit2 hashes only a sample of the bytes of a long one, always its last ones:
  -- entries alike but for their request id, time and seq would otherwise share one hash chain
  -- (docs/openresty.md "Reading a response").
  dict:set("r" .. n, cjson.encode({ entry, n }))
  if n > MAX_REQUESTS then dict:delete("r" .. (n - MAX_REQUESTS)) end
end

-- Entries with seq > since, oldest first (at most `limit`, default all kept).
function _M.requests(since, limit)
  local dict = requests()
  local n = dict:get("n") or 0
  local first = math.max((since or 0) + 1, n - MAX_REQUESTS + 1, 1)
  local out = json.array()
  for i = first, n do
    local text = dict:get("r" .. i)
    if text then
      out[#out + 1] = json.decode(text)[1]
      if limit and #out >= limit then break end
    end
  end
  return out
end

function _M.clear_requests()
  -- The counter keeps growing so `since` cursors stay meaningful after a clear.
  local dict = requests()
  local n = dict:get("n") or 0
  dict:flush_all()
  dict:flush_expired()
  dict:set("n", n)
end

-- Faults: a JSON list in campaign_state, "faults_n" lets the hot path skip decoding.
function _M.faults()
  if (state():get("faults_n") or 0) == 0 then return nil end
  return json.decode(state():get("faults"))
end

function _M.set_faults(list)
  if #list == 0 then
    state():delete("faults")
    state():set("faults_n", 0)
    return
  end
  state():set("faults", json.encode(json.array(list)))
  state():set("faults_n", #list)
end

return _M
