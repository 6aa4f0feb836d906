-- The request contract (spec/support/contract_cases.lua) against the libcurl client,
-- campaign.new, in this busted process; spec/openresty/contract_spec.lua runs the same cases
-- against campaign.ngx with each transport.
local campaign = require "campaign"
local emulator = require "emulator"
local contract = require "contract_cases"

local json_ok, cjson = pcall(require, "cjson")
if json_ok then
  cjson = cjson.new()
  cjson.encode_sparse_array(true)
end

-- What srv:eval does to a result inside nginx (spec/openresty/eval.lua): a plain copy, error
-- objects with their tostring as `text`, then through JSON, so both drivers' checks see one shape.
local function plain(v, depth)
  depth = depth or 0
  if type(v) ~= "table" or depth > 20 then
    if type(v) == "function" or type(v) == "userdata" and v ~= campaign.null then return tostring(v) end
    return v
  end
  local out = {}
  for k, x in pairs(v) do out[k] = plain(x, depth + 1) end
  if campaign.is_error(v) then out.text = tostring(v) end
  return out
end

local function run(code, params)
  local env = setmetatable({ params = params, campaign = campaign }, { __index = _G })
  env.new_client = function(extra)
    local e = params.emu
    local opts = { org = e.org, api_key = e.api_key, token = e.access_token, base_url = e.base_url }
    for k, v in pairs(contract.base_options) do opts[k] = v end
    for k, v in pairs(extra or {}) do opts[k] = v end
    return campaign.new(opts)
  end
  local fn, err
  if setfenv then
    fn, err = loadstring(code, "=contract")
    if fn then setfenv(fn, env) end
  else
    fn, err = load(code, "=contract", "t", env)
  end
  assert(fn, err)
  local result = plain(fn())
  if json_ok then result = cjson.decode(cjson.encode(result)) end
  return result
end

local driver = "libcurl campaign.new, " .. (jit and jit.version or _VERSION)

describe("the request contract [driver: " .. driver .. "]", function()
  local env, close_blackhole

  setup(function()
    env = { emu = emulator.shared(), run = run, closed_url = contract.closed_url() }
    env.blackhole_url, close_blackhole = contract.blackhole()
  end)

  teardown(function()
    if close_blackhole then close_blackhole() end
  end)

  for _, c in ipairs(contract.cases) do
    it("[" .. driver .. "] " .. c.id .. ": " .. c.title, function()
      contract.run(c, env)
    end)
  end
end)
