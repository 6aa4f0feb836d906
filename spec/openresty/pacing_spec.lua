-- campaign.ngx's rate, burst, budget and shared_dict (docs/openresty.md "Pacing and budget"):
-- the same GCRA rule as the C client, its state in a lua_shared_dict that two workers share.
-- Generous timing bounds only (a shared machine); the request counts are exact.
local emulator = require "emulator"
local harness = require "openresty.harness"

local function count(emu, pattern)
  local n = 0
  for _, r in ipairs(emu:requests()) do
    if r.uri:find(pattern) then n = n + 1 end
  end
  return n
end

describe("campaign.ngx pacing and budget", function()
  local srv, emu, params

  setup(function()
    srv = harness.start { workers = 2 }
    emu = emulator.shared()
    params = { emu = harness.emu_params(emu) }
  end)

  teardown(function()
    if srv then srv:stop() end
  end)

  before_each(function()
    emu:fresh()
    srv:eval([[ ngx.shared.campaign_test:flush_all() return true ]])
  end)

  it("raises on misuse", function()
    local r = srv:eval([[
      local out = {}
      for i, extra in ipairs {
        { rate = 0 }, { rate = "5" }, { rate = 5, burst = 0.5 }, { burst = 2 }, { budget = 0 },
        { budget = "10" }, { budget = { calls = 10, per = "day" } },
        { budget = { calls = 10, per = "day", file = "/x" }, shared_dict = "campaign_test" },
        { rate = 5, shared_dict = "no_such_dict" }, { shared_dict = "campaign_test" },
      } do
        local ok, err = pcall(client, extra)
        out[i] = ok and "accepted" or tostring(err)
      end
      return out
    ]], params)
    assert.matches("option 'rate' must be a positive number", r[1])
    -- a rate of the wrong type: the C core's message (campaign.new's), not "must be a number"
    assert.matches("option 'rate' must be a positive number", r[2])
    assert.matches("option 'burst' must be a positive integer", r[3])
    assert.matches("option 'burst' needs the option 'rate'", r[4])
    assert.matches("option 'budget' must be a positive integer", r[5])
    assert.matches("option 'budget' must be a positive integer", r[6])
    assert.matches("needs the option 'shared_dict'", r[7])
    assert.matches("unknown field 'file'", r[8])
    assert.matches("no lua_shared_dict 'no_such_dict'", r[9])
    assert.matches("needs the option 'rate' or 'budget'", r[10])
  end)

  it("paces a batch: at most rate + burst starts in any 1 s", function()
    local r = srv:eval([[
      local starts = {}
      local c = client { rate = 20, burst = 2, shared_dict = "campaign_test", on_event = function(ev)
        if ev.type == "request" then ngx.update_time() starts[#starts + 1] = ngx.now() end
      end }
      local reqs = {}
      for i = 1, 30 do
        reqs[i] = { "GET", "profileAndServices/profile", nil, { query = { _lineCount = 1 } } }
      end
      ngx.update_time()
      local t0 = ngx.now()
      local results = c:batch(reqs, { concurrency = 8 })
      ngx.update_time()
      local ok = 0
      for _, res in ipairs(results) do if res.status == 200 then ok = ok + 1 end end
      table.sort(starts)
      local best, j = 0, 1
      for i = 1, #starts do
        while starts[i] - starts[j] >= 1 do j = j + 1 end
        if i - j + 1 > best then best = i - j + 1 end
      end
      return { ok = ok, elapsed = ngx.now() - t0, max1s = best, n = #starts }
    ]], params)
    assert.equal(30, r.ok)
    assert.equal(30, r.n)
    assert.is_true(r.elapsed >= 1.35, "elapsed " .. r.elapsed)
    assert.is_true(r.max1s <= 22, "max in 1 s " .. r.max1s)
  end)

  it("shares one rate between two workers", function()
    local code = [[
      local c = client { rate = 10, shared_dict = "campaign_test" }
      for _ = 1, 3 do assert(c:get("profileAndServices/profile", { query = { _lineCount = 1 } })) end
      return { pid = ngx.worker.pid() }
    ]]
    local results, wall = srv:eval_parallel(8, code, params)
    for i, r in ipairs(results) do assert(r.ok, "request " .. i .. ": " .. tostring(r.error)) end
    -- 24 calls at 10/s shared: 2.3 s at least, whichever worker each one ran in
    assert.is_true(wall >= 2.2, "wall " .. wall)
    assert.equal(24, count(emu, "/profileAndServices/profile"))
  end)

  it("counts retries against a budget shared by the workers, refusing before sending", function()
    emu:faults { method = "GET", path = "/profileAndServices/profile$", status = 503, times = 2 }
    local code = [[
      local c = client { budget = 5, shared_dict = "campaign_test", retry_base = 0, retry_max = 0 }
      local body, err = c:get("profileAndServices/profile", { query = { _lineCount = 1 } })
      if body then return { ok = true } end
      return { ok = false, kind = err.kind, sent = err.sent, message = err.message }
    ]]
    local results = srv:eval_parallel(6, code, params)
    local ok, spent = 0, 0
    for _, r in ipairs(results) do
      if r.result and r.result.ok then ok = ok + 1
      elseif r.result and r.result.kind == "budget" then
        spent = spent + 1
        assert.is_false(r.result.sent)
      end
    end
    -- 5 calls in all: 2 were 503s that were retried, so 3 requests succeed, 3 are refused
    assert.equal(5, count(emu, "/profileAndServices/profile"))
    assert.equal(3, ok)
    assert.equal(3, spent)
  end)

  it("keeps a per-day budget in the shared dict", function()
    local r = srv:eval([[
      local c = client { budget = { calls = 2, per = "day" }, shared_dict = "campaign_test" }
      local out = {}
      for i = 1, 3 do
        local body, err = c:get("profileAndServices/profile", { query = { _lineCount = 1 } })
        out[i] = body and "ok" or err.kind .. ": " .. err.message
      end
      return out
    ]], params)
    assert.equal("ok", r[1])
    assert.equal("ok", r[2])
    assert.matches("^budget: budget spent: 2 calls in the last 24 h", r[3])
    assert.equal(2, count(emu, "/profileAndServices/profile"))
  end)
end)
