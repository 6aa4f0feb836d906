-- The point of campaign.ngx: a request waiting on the API does not hold the nginx worker.
-- With the emulator delaying every answer by 1 s, 20 concurrent requests to a one-worker nginx
-- all complete in under 3 s (a blocking client would need 20 s). A control run with the
-- libcurl client shows that the measurement does see blocking.
local emulator = require "emulator"
local harness = require "openresty.harness"

describe("campaign.ngx in a one-worker nginx", function()
  local emu, srv, pkey

  setup(function()
    emu = emulator.shared()
    srv = harness.start { workers = 1 }
  end)

  teardown(function()
    if srv then srv:stop() end
  end)

  before_each(function()
    emu:fresh()
    pkey = emu:profiles()[1].PKey
  end)

  local HANDLER = [[
    ngx.update_time()
    local t0 = ngx.now()
    local body, res = %s
    ngx.update_time()
    return { ok = body ~= nil, err = body == nil and res or nil, elapsed = ngx.now() - t0,
      pid = ngx.worker.pid() }
  ]]

  local function check(results)
    local pid
    for i, r in ipairs(results) do
      assert(r.ok and r.result.ok, "request " .. i .. " failed: " .. harness.json.encode(r.result or r.error))
      pid = pid or r.result.pid
      assert.equal(pid, r.result.pid) -- one worker served them all
    end
  end

  it("serves 20 requests that each wait 1 s on the API in under 3 s", function()
    emu:faults { { method = "GET", path = "/profile/@", delay_ms = 1000, times = 20 } }
    local code = HANDLER:format([[client():get("profileAndServices/profile/" .. params.pkey)]])
    local results, wall = srv:eval_parallel(20, code, { emu = harness.emu_params(emu), pkey = pkey })
    check(results)
    for _, r in ipairs(results) do
      assert.is_true(r.result.elapsed >= 0.9, "the emulator's delay was not applied") -- the wait was real
    end
    assert.is_true(wall < 3, "20 requests took " .. wall .. " s")
  end)

  it("control: the blocking libcurl client serialises the same requests", function()
    emu:faults { { method = "GET", path = "/profile/@", delay_ms = 500, times = 4 } }
    local code = HANDLER:format([[campaign.new { org = params.emu.org, api_key = params.emu.api_key,
      token = params.emu.access_token, base_url = params.emu.base_url }
      :get("profileAndServices/profile/" .. params.pkey)]])
    local results, wall = srv:eval_parallel(4, code, { emu = harness.emu_params(emu), pkey = pkey })
    check(results)
    assert.is_true(wall >= 1.9, "4 blocking requests of 0.5 s took only " .. wall .. " s")
  end)
end)
