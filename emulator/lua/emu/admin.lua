-- Admin API under /_emulator/ (no auth; the server listens on loopback only).
local json = require "emu.json"
local state = require "emu.state"
local faults = require "emu.faults"
local load_model = require "emu.load"
local boot = require "emu.boot"
local store = require "emu.store"
local records = require "emu.records"
local ims = require "emu.ims"
local util = require "emu.util"
local progress = require "emu.progress"

local ngx = ngx
local type, pairs, ipairs, tonumber = type, pairs, ipairs, tonumber

local _M = {}

local function send(status, body)
  ngx.status = status
  ngx.header["Content-Type"] = "application/json;charset=utf-8"
  local text = json.encode(body)
  ngx.header["Content-Length"] = #text
  ngx.print(text)
end

local function read_json(allow_empty)
  ngx.req.read_body()
  local text = ngx.req.get_body_data()
  if (text == nil or text == "") and allow_empty then return {} end
  local value, err = json.decode(text)
  if value == nil then return nil, "invalid JSON body: " .. tostring(err) end
  return value
end

local function bad_request(msg) return send(400, { error = msg }) end

local handlers = {}

handlers["GET health"] = function()
  local data = ngx.shared.campaign_data
  return send(200, { status = "ok", org = state.setting("org"), pid = ngx.worker.pid(),
    data_capacity = data:capacity(), data_free = data:free_space() })
end

handlers["POST reset"] = function()
  boot.reset()
  return send(200, { reset = true })
end

handlers["GET requests"] = function()
  local args = ngx.req.get_uri_args()
  return send(200, state.requests(tonumber(args.since), tonumber(args.limit)))
end

handlers["DELETE requests"] = function()
  state.clear_requests()
  return send(200, { cleared = true })
end

handlers["GET faults"] = function()
  return send(200, state.faults() or json.array())
end

handlers["POST faults"] = function()
  local list, err = read_json()
  if not list then return bad_request(err) end
  if type(list) ~= "table" then return bad_request("a fault object or a list of faults is expected") end
  if #list == 0 and next(list) ~= nil then list = { list } end
  for i, f in ipairs(list) do
    local ok, msg = faults.check(f)
    if not ok then return bad_request("fault " .. i .. ": " .. msg) end
  end
  local all = state.faults() or {}
  for _, f in ipairs(list) do all[#all + 1] = f end
  state.set_faults(all)
  return send(200, { faults = #all })
end

handlers["DELETE faults"] = function()
  state.set_faults({})
  return send(200, { faults = 0 })
end

handlers["POST tokens/expire"] = function()
  state.expire_tokens()
  return send(200, { expired = true })
end

-- Mints a token directly (optionally with its own ttl), for specs of token refresh.
handlers["POST tokens"] = function()
  local body, err = read_json(true)
  if not body then return bad_request(err) end
  local ttl = tonumber(body.ttl) or state.setting("token_ttl")
  local token = ims.new_token(state.setting("client_id"), ttl)
  state.add_token(token, ttl)
  return send(200, { access_token = token, token_type = "bearer", expires_in = ttl })
end

handlers["GET config"] = function()
  return send(200, state.all_config())
end

handlers["POST config"] = function()
  local body, err = read_json()
  if not body then return bad_request(err) end
  if type(body) ~= "table" then return bad_request("a JSON object is expected") end
  local bad_value = progress.check_config(body)
  if bad_value then return bad_request(bad_value) end
  local ok, msg = state.set_config(body)
  if not ok then return bad_request(msg) end
  return send(200, state.all_config())
end

-- The load model (emu.load): latency, jitter, capacity, 429 limits; calls per UTC day.
handlers["GET load"] = function()
  return send(200, load_model.config())
end

handlers["POST load"] = function()
  local body, err = read_json()
  if not body then return bad_request(err) end
  local config, msg = load_model.set(body)
  if not config then return bad_request(msg) end
  return send(200, config)
end

handlers["DELETE load"] = function()
  return send(200, load_model.clear())
end

handlers["GET calls"] = function()
  local day = ngx.req.get_uri_args().day
  if day ~= nil and (type(day) ~= "string" or not day:match("^%d%d%d%d%-%d%d%-%d%d$")) then
    return bad_request("'day' must be a UTC date YYYY-MM-DD")
  end
  return send(200, load_model.calls(day))
end

handlers["DELETE calls"] = function()
  load_model.clear_calls()
  return send(200, load_model.calls())
end

function _M.handle()
  local method = ngx.req.get_method()
  local name = ngx.var.uri:match("^/_emulator/(.-)/?$") or ""
  local kind = name:match("^records/([%w_]+)$")
  if kind and method == "GET" then
    -- Stored records of a kind, as the Ext API renders them (with href).
    local ctx = { root = util.api_root(state.setting("org")), origin = util.origin(),
      api = kind == "cusStore" and "customResources" or "profileAndServicesExt", ext = true }
    local out = json.array()
    for _, rec in ipairs(store.all(kind)) do
      out[#out + 1] = records.render(ctx, kind, rec, ctx.api, true)
    end
    return send(200, out)
  end
  local patch_kind, patch_key = name:match("^records/([%w_]+)/(@[%w_%-]+)$")
  if patch_kind and method == "PATCH" then
    -- Sets stored fields as they are, without ACS validation: for states the API cannot
    -- reach (a transactional event "processed", a privacy request "complete", ...).
    local rec = store.get(patch_kind, patch_key)
    if not rec then return send(404, { error = "no " .. patch_kind .. " record " .. patch_key }) end
    local body, err = read_json()
    if not body then return bad_request(err) end
    if type(body) ~= "table" then return bad_request("a JSON object is expected") end
    for k, v in pairs(body) do
      if k ~= "PKey" then rec[k] = v end
    end
    progress.patched(rec, body)
    store.put(patch_kind, rec)
    return send(200, rec)
  end
  local handler = handlers[method .. " " .. name]
  if not handler then
    return send(404, { error = "no admin route " .. method .. " /_emulator/" .. name })
  end
  return handler()
end

return _M
