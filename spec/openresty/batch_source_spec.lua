-- campaign.ngx's batch with a source function (issue 13, item 4), as the C client's
-- (docs/client.md "A source function instead of a list"): light threads pull the next request
-- when free, `false` parks a thread until a request settles, results go only to on_result.
local harness = require "openresty.harness"

describe("campaign.ngx batch with a source function", function()
  local ctx = harness.suite()
  setup(ctx.start)
  teardown(ctx.stop)
  before_each(ctx.fresh)

  it("pulls requests as threads free, honours false, returns a summary", function()
    local r = ctx.srv:eval([[
      local c = client()
      local given, in_flight, most, seen = 0, 0, 0, {}
      local summary = c:batch(function()
        if given == 9 then return nil end
        if in_flight >= 2 then return false end
        given, in_flight = given + 1, in_flight + 1
        if in_flight > most then most = in_flight end
        return { "GET", "profileAndServices/profile", nil, { query = { _lineCount = 1, n = given } } }
      end, { concurrency = 4, on_result = function(i, result)
        in_flight = in_flight - 1
        seen[#seen + 1] = i .. ":" .. tostring(result.status)
      end })
      local ok1, e1 = pcall(c.batch, c, function() return false end, { on_result = function() end })
      local ok2, e2 = pcall(c.batch, c, function() return nil end)
      local boom = { tag = "boom" }
      local ok3, e3 = pcall(c.batch, c, function() error(boom) end, { on_result = function() end })
      return { summary = summary, most = most, seen = #seen, e1 = tostring(e1), e2 = tostring(e2),
        ok = { ok1, ok2, ok3 }, same = rawequal(e3, boom) }
    ]], ctx.params)
    assert.same({ count = 9, ok = 9, failed = 0 }, r.summary)
    assert.equal(2, r.most)
    assert.equal(9, r.seen)
    assert.same({ false, false, false }, r.ok)
    assert.matches("returned false", r.e1, 1, true)
    assert.matches("needs option 'on_result'", r.e2, 1, true)
    assert.is_true(r.same)
  end)

  it("a parked thread waits for a settle, it does not poll with ngx.sleep", function()
    local status = ctx.emu:call("POST", "/_emulator/load", { latency_ms = 100 }, { auth = false })
    assert.equal(200, status)
    local r = ctx.srv:eval([[
      local c = client()
      local sleep, sleeps = ngx.sleep, 0
      -- counted for this batch only: threads over the "auto" limit and after a source's false park
      ngx.sleep = function(s) sleeps = sleeps + 1 return sleep(s) end
      local given, in_flight, falses = 0, 0, 0
      local ok, summary = pcall(c.batch, c, function()
        if given == 3 then return nil end
        -- one at a time: a second thread under the limit of 2 is told "not yet" and parks
        if in_flight > 0 then falses = falses + 1 return false end
        given, in_flight = given + 1, in_flight + 1
        return { "GET", "profileAndServices/profile", nil, { query = { _lineCount = 1, k = given } } }
      end, { concurrency = "auto", concurrency_start = 2, concurrency_max = 8,
        on_result = function() in_flight = in_flight - 1 end })
      ngx.sleep = sleep
      return { ok = ok, summary = ok and summary or tostring(summary), sleeps = sleeps, falses = falses }
    ]], ctx.params)
    ctx.emu:call("POST", "/_emulator/load", { latency_ms = 0 }, { auth = false })
    assert.is_true(r.ok, r.summary)
    assert.same({ count = 3, ok = 3, failed = 0 }, r.summary)
    assert.is_true(r.falses >= 1)
    -- six threads over the limit and one told "not yet" park for about 300 ms: polling every
    -- millisecond would sleep ~2000 times
    assert.is_true(r.sleeps < 20, "ngx.sleep called " .. tostring(r.sleeps) .. " times")
  end)

  it("concurrency = \"auto\": the limit of campaign._limiter, nothing lost under a gateway's 429s", function()
    local status = ctx.emu:call("POST", "/_emulator/load", { latency_ms = 20, limit_inflight = 4 },
      { auth = false })
    assert.equal(200, status)
    local r = ctx.srv:eval([[
      local c = client{ retries = 8, retry_base = 0.02, retry_max = 0.2 }
      local k, limits, failed = 0, {}, 0
      local summary = c:batch(function()
        k = k + 1
        if k > 80 then return nil end
        return { "GET", "profileAndServices/profile", nil, { query = { _lineCount = 1, k = k } } }
      end, { concurrency = "auto", concurrency_max = 16, on_result = function(_, result, limit)
        limits[#limits + 1] = limit
        if result.err then failed = failed + 1 end
      end })
      local lo, hi = math.huge, 0
      for _, l in ipairs(limits) do lo, hi = math.min(lo, l), math.max(hi, l) end
      local list = c:batch({ { "GET", "profileAndServices/profile" } }, { concurrency = "auto" })
      local e = {}
      for i, o in ipairs {
        { concurrency = "auto", concurrency_max = 0 }, { concurrency = 4, concurrency_max = 8 },
        { concurrency = "auto", concurrency_max = 4, concurrency_start = 8 }, { concurrency = "fast" },
      } do
        local ok, err = pcall(c.batch, c, {}, o)
        e[i] = ok and "no error" or tostring(err)
      end
      return { summary = summary, failed = failed, lo = lo, hi = hi, first = limits[1], list = #list, e = e }
    ]], ctx.params)
    ctx.emu:call("DELETE", "/_emulator/load", nil, { auth = false })
    assert.same({ count = 80, ok = 80, failed = 0 }, r.summary)
    assert.equal(4, r.first)
    assert.is_true(r.lo >= 1 and r.hi <= 16)
    assert.equal(1, r.list)
    assert.equal("campaign.ngx.batch: option 'concurrency_max' must be an integer from 1 to 256", r.e[1])
    assert.equal("campaign.ngx.batch: option 'concurrency_max' needs concurrency = \"auto\"", r.e[2])
    assert.equal("campaign.ngx.batch: option 'concurrency_start' (8) must not exceed 'concurrency_max' (4)",
      r.e[3])
    -- the C client's rule and text (src/batch_options.c), the same for both drivers
    assert.equal("campaign.ngx.batch: option 'concurrency' must be an integer from 1 to 256, or \"auto\"",
      r.e[4])
  end)

  it("bulk_update: light threads that all wait for one read-back's delay take it once", function()
    local pkey = ctx.emu:profiles()[2].PKey
    -- the PATCH "succeeds" without being applied: both read-backs see the old value
    ctx.emu:faults { { method = "PATCH", status = 200,
      body = harness.json.encode { PKey = pkey, href = ctx.emu.base_url .. "/x" }, times = 1 } }
    local r = ctx.srv:eval([[
      local wf = require "campaign.workflow"
      local items = { { pkey = params.pkey, changes = { firstName = "Lost" } } }
      local ok, report = pcall(wf.bulk_update, client(), items,
        { concurrency = 4, verify = true, verify_attempts = 2, verify_delay = 0.2 })
      if not ok then return { raised = tostring(report) } end
      return { total = report.total, ok = report.ok, failed = report.failed,
        kind = report.errors[1] and report.errors[1].kind }
    ]], { emu = ctx.params.emu, pkey = pkey })
    assert.same({ total = 1, ok = 0, failed = 1, kind = "verify" }, r)
    local gets = 0
    for _, req in ipairs(ctx.emu:requests()) do if req.method == "GET" then gets = gets + 1 end end
    assert.equal(2, gets)
  end)

  it("bulk_update streams there too: a slow PATCH holds no other item back", function()
    local profiles = ctx.emu:profiles()
    local slow = profiles[1].PKey
    ctx.emu:faults { { method = "PATCH", path = slow:gsub("%p", "%%%0") .. "$", delay_ms = 1500 } }
    local pkeys = {}
    for i = 1, 24 do pkeys[i] = profiles[i].PKey end
    local r = ctx.srv:eval([[
      local wf = require "campaign.workflow"
      local items = {}
      for i, pkey in ipairs(params.pkeys) do
        items[i] = { pkey = pkey, changes = { lastName = "ng" .. i } }
      end
      local report = wf.bulk_update(client(), items, { concurrency = 4 })
      return { total = report.total, ok = report.ok }
    ]], { emu = ctx.params.emu, pkeys = pkeys })
    assert.same({ total = 24, ok = 24 }, r)
    local slow_at, list = nil, {}
    for _, req in ipairs(ctx.emu:requests()) do
      if req.method == "PATCH" then
        list[#list + 1] = req
        if req.uri:find(slow, 1, true) then slow_at = req.time end
      end
    end
    local before = 0
    for _, req in ipairs(list) do if req.time < slow_at + 1.5 then before = before + 1 end end
    assert.equal(24, #list)
    assert.equal(24, before)
  end)
end)
