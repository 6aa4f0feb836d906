-- Throughput of campaign.ngx against the libcurl client, measured in the same nginx handler in
-- one run (not a spec: run by hand, figures go to docs/openresty.md):
--   lua5.4 spec/openresty/throughput.lua [requests] [concurrency]
-- Each client runs client:batch of N profile GETs against the emulator; printed as requests per
-- second and as a ratio to the libcurl client (which blocks the worker while it runs).
package.path = "spec/?.lua;spec/support/?.lua;" .. package.path
local harness = require "openresty.harness"
local emulator = require "emulator"

local n = tonumber(arg[1]) or 2000
local concurrency = tonumber(arg[2]) or 16
local emu = emulator.shared()
local srv = harness.start { upstream = emu.base_url }

local code = [[
  local requests = {}
  for i = 1, params.n do requests[i] = { "GET", "profileAndServices/profile/" .. params.pkey } end
  local e = params.emu
  local clients = {
    libcurl = campaign.new { org = e.org, api_key = e.api_key, token = e.access_token,
      base_url = e.base_url },
    ngx = client(),
    ngx_pool = client { upstream = "campaign_pool" },
  }
  local out = {}
  for _, name in ipairs { "libcurl", "ngx", "ngx_pool" } do
    ngx.update_time()
    local t0 = ngx.now()
    local results = clients[name]:batch(requests, { concurrency = params.concurrency })
    ngx.update_time()
    local ok = 0
    for _, r in ipairs(results) do if r.body then ok = ok + 1 end end
    out[name] = { rps = #requests / (ngx.now() - t0), ok = ok }
  end
  return out
]]

local ok, err = pcall(function()
  local r = srv:eval(code, { emu = harness.emu_params(emu), pkey = emu:profiles()[1].PKey, n = n,
    concurrency = concurrency })
  print(("%d GETs, concurrency %d, nproc %s"):format(n, concurrency, (harness.sh("nproc"):gsub("%s+$", ""))))
  for _, name in ipairs { "libcurl", "ngx", "ngx_pool" } do
    print(("%-9s %8.0f req/s  %.2fx libcurl  (%d ok)"):format(name, r[name].rps,
      r[name].rps / r.libcurl.rps, r[name].ok))
  end
end)
srv:stop()
if not ok then error(err, 0) end
