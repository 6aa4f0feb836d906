-- The request contract (spec/support/contract_cases.lua, the same cases
-- spec/integration/contract_spec.lua runs against the libcurl client) against campaign.ngx
-- inside nginx, once per transport:
--   cosocket    transport = "cosocket" (the default where cosockets run)
--   capture     transport = "capture": ngx.location.capture through the internal proxy location
--               (examples/openresty/campaign_proxy.conf). Its timeouts are the location's
--               proxy_connect_timeout / proxy_read_timeout, not the client's options
--               (docs/openresty.md "Timeouts"), so this row's nginx sets them to the values the
--               timeout cases pass (connect 0.3 s, read 0.4 s)
--   function    a user-given transport function (spec/openresty/contract_transport.lua)
--   resty.http  transport = "resty.http" over spec/openresty/shim/resty/http.lua, a TEST-ONLY
--               stand-in written to lua-resty-http's documented API (lua-resty-http is in no
--               package repository this project uses): this row tests campaign.ngx's adapter
--               against the documented API, not the real library.
local emulator = require "emulator"
local harness = require "openresty.harness"
local contract = require "contract_cases"

-- Defines new_client(extra) for a case's call inside nginx: eval.lua's client() (the emulator's
-- org, key, token, base URL) with the contract's base options and this row's transport.
local PRELUDE = [[
local new_client
do
  local driver = params.driver or {}
  local base = params.base_options or {}
  new_client = function(extra)
    local opts = {}
    for k, v in pairs(base) do opts[k] = v end
    if driver.transport == "function" then
      opts.transport = require "contract_transport"
    elseif driver.transport then
      opts.transport = driver.transport
    end
    for k, v in pairs(extra or {}) do opts[k] = v end
    return client(opts)
  end
end
]]

local ROWS = {
  { name = "cosocket", transport = "cosocket", start = {} },
  { name = "capture", transport = "capture", start = { read_timeout = "400ms", connect_timeout = "300ms" } },
  { name = "function", transport = "function", start = {} },
  { name = "resty.http (test shim, not the real lua-resty-http)", transport = "resty.http",
    start = { lua_path = harness.repo .. "/spec/openresty/shim/?.lua;" } },
}

for _, row in ipairs(ROWS) do
  local driver = "campaign.ngx, transport " .. row.name
  describe("the request contract [driver: " .. driver .. "]", function()
    local srv, env, close_blackhole

    setup(function()
      local emu = emulator.shared()
      local start = { workers = 1, upstream = emu.base_url }
      for k, v in pairs(row.start) do start[k] = v end
      srv = harness.start(start)
      env = { emu = emu, closed_url = contract.closed_url() }
      env.blackhole_url, close_blackhole = contract.blackhole()
      env.run = function(code, params)
        params.driver = { transport = row.transport }
        params.base_options = contract.base_options
        return srv:eval(PRELUDE .. code, params)
      end
    end)

    teardown(function()
      if close_blackhole then close_blackhole() end
      if srv then
        -- a secret in nginx's error log would be a leak too
        local log = srv:error_log()
        local emu = emulator.shared()
        srv:stop()
        assert.is_nil(log:find(emu.access_token, 1, true), "the token is in the error log")
        assert.is_nil(log:find(emu.api_key, 1, true), "the API key is in the error log")
      end
    end)

    for _, c in ipairs(contract.cases) do
      it("[" .. driver .. "] " .. c.id .. ": " .. c.title, function()
        contract.run(c, env)
      end)
    end
  end)
end
