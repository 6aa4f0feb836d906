-- campaign.ngx's batch when on_result raises, as the C client's (docs/client.md): no request
-- starts after the raise, the light threads still running are killed (or, inside a
-- subrequest, finish their request), then batch raises the callback's own error.
local harness = require "openresty.harness"

describe("campaign.ngx batch with a raising on_result", function()
  local ctx = harness.suite()
  setup(ctx.start)
  teardown(ctx.stop)
  before_each(ctx.fresh)

  it("raises the callback's own value and starts no request after it", function()
    local r = ctx.srv:eval([[
      local started, calls = 0, 0
      local c = client{ on_event = function(ev)
        if ev.type == "request" then started = started + 1 end
      end }
      local requests = {}
      for i = 1, 30 do
        requests[i] = { "GET", "profileAndServices/profile", nil,
          { query = { _lineCount = 1, stopcheck = i } } }
      end
      local boom = { tag = "boom" }
      local ok, err = pcall(c.batch, c, requests, { concurrency = 2, on_result = function()
        calls = calls + 1
        error(boom)
      end })
      return { ok = ok, same = rawequal(err, boom), calls = calls, started = started }
    ]], ctx.params)
    assert.is_false(r.ok)
    assert.is_true(r.same)
    assert.equal(1, r.calls)
    assert.equal(2, r.started)
    local seen = 0
    for _, q in ipairs(ctx.emu:requests()) do
      if q.uri:find("stopcheck=", 1, true) then seen = seen + 1 end
    end
    assert.truthy(seen <= 2, seen .. " requests reached the server")
  end)

  it("kills the threads waiting in the transport instead of waiting for them", function()
    local r = ctx.srv:eval([[
      local c = client{ transport = function(req)
        if req.url:find("slow", 1, true) then ngx.sleep(3) end
        return { status = 200, headers = {}, body = "{}" }
      end }
      local t0 = ngx.now()
      ngx.update_time()
      local ok, err = pcall(c.batch, c, { { "GET", "fast" }, { "GET", "slow" }, { "GET", "slow" } },
        { concurrency = 3, on_result = function(i) error("stop at " .. i, 0) end })
      ngx.update_time()
      local took = ngx.now() - t0
      -- the client is usable afterwards
      local results = c:batch({ { "GET", "fast" }, { "GET", "fast" } })
      return { ok = ok, err = err, took = took, n = #results, status = results[2].status }
    ]], ctx.params)
    assert.is_false(r.ok)
    assert.equal("stop at 1", r.err)
    assert.truthy(r.took < 2, "took " .. r.took)
    assert.equal(2, r.n)
    assert.equal(200, r.status)
  end)
end)
