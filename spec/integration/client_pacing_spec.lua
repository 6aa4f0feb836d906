-- The client's rate, burst and budget options (docs/client.md "Pacing and budget"): the GCRA
-- rule on a fake clock (exact counts), then short real runs against the emulator with generous
-- bounds (a shared machine: no tight timing asserted here; the 60 s accuracy is a bench row).
local campaign = require "campaign"
local helper = require "integration.client_helper"

local take = campaign._pacing_take

-- Starts of n requests that each wait what the rule says, on a fake clock.
local function schedule(n, rate, burst, t0)
  local tat, now, starts = nil, t0 or 1000, {}
  for i = 1, n do
    local wait
    wait, tat = take(tat, now, rate, burst)
    now = now + wait
    starts[i] = now
  end
  return starts
end

-- The most starts in any window [s, s + width) (windows begin at a start).
local function max_in_window(starts, width)
  local best, j = 0, 1
  for i = 1, #starts do
    while starts[i] - starts[j] >= width - 1e-9 do j = j + 1 end
    if i - j + 1 > best then best = i - j + 1 end
  end
  return best
end

describe("pacing rule (campaign._pacing_take, fake clock)", function()
  it("spaces requests 1/rate apart with burst 1", function()
    local starts = schedule(5, 10, 1)
    for i = 2, 5 do assert.near(0.1, starts[i] - starts[i - 1], 1e-9) end
  end)

  it("lets burst requests start at once, then 1/rate apart", function()
    local starts = schedule(8, 10, 3)
    assert.equal(starts[1], starts[3])
    assert.near(0.1, starts[4] - starts[3], 1e-9)
    assert.near(0.1, starts[8] - starts[7], 1e-9)
  end)

  it("sends exactly rate * 60 (+ burst) in 60 s and at most rate + burst in any 1 s", function()
    for _, burst in ipairs({1, 5, 50}) do
      local starts = schedule(4000, 50, burst)
      local in60 = 0
      for _, s in ipairs(starts) do if s < starts[1] + 60 - 1e-6 then in60 = in60 + 1 end end
      assert.equal(3000 + burst - 1, in60)
      assert.is_true(max_in_window(starts, 1) <= 50 + burst)
    end
  end)

  it("keeps the schedule when every start is a little late (a poll's wake-up)", function()
    local tat, now, n = nil, 1000, 0
    while now < 1060 do
      local wait
      wait, tat = take(tat, now, 50, 1)
      now = now + wait + 0.001 -- each start 1 ms after its slot
      n = n + 1
    end
    assert.is_true(n >= 2999, "started " .. n .. " in 60 s")
  end)

  it("banks no credit beyond the burst while idle", function()
    local wait, tat = take(nil, 0, 10, 2)
    assert.equal(0, wait)
    wait, tat = take(tat, 3600, 10, 2) -- an hour idle
    assert.equal(0, wait)
    wait, tat = take(tat, 3600, 10, 2)
    assert.equal(0, wait)
    wait = take(tat, 3600, 10, 2)
    assert.near(0.1, wait, 1e-9)
  end)

  it("raises on a bad rate or burst", function()
    assert.has_error(function() take(0, 0, 0, 1) end)
    assert.has_error(function() take(0, 0, 10, 0.5) end)
  end)
end)

describe("options rate, burst, budget (misuse)", function()
  local base = {org = "acme", api_key = "k", token = "t", base_url = "http://127.0.0.1:9"}
  local function new(extra)
    local o = {}
    for k, v in pairs(base) do o[k] = v end
    for k, v in pairs(extra) do o[k] = v end
    return campaign.new(o)
  end
  local cases = {
    {{rate = 0}, "option 'rate' must be a positive number"},
    {{rate = -1}, "option 'rate' must be a positive number"},
    {{rate = "20"}, "option 'rate' must be a positive number"},
    {{rate = 0 / 0}, "option 'rate' must be a positive number"},
    {{rate = math.huge}, "option 'rate' must be a positive number"},
    {{rate = 10, burst = 0}, "option 'burst' must be a positive integer"},
    {{rate = 10, burst = 1.5}, "option 'burst' must be a positive integer"},
    {{burst = 4}, "option 'burst' needs the option 'rate'"},
    {{budget = 0}, "option 'budget' must be a positive integer"},
    {{budget = 2.5}, "option 'budget' must be a positive integer"},
    {{budget = "100"}, "option 'budget' must be a positive integer"},
    {{budget = {calls = 10}}, "option 'budget' field 'per' must be \"day\""},
    {{budget = {calls = 0, per = "day", file = "/tmp/x"}}, "field 'calls' must be a positive integer"},
    {{budget = {calls = 10, per = "hour", file = "/tmp/x"}}, "field 'per' must be \"day\""},
    {{budget = {calls = 10, per = "day"}}, "field 'file' must be the path"},
    {{budget = {calls = 10, per = "day", file = "/tmp/x", every = 1}}, "unknown field 'every'"},
  }
  for _, case in ipairs(cases) do
    it("refuses " .. case[2], function()
      local ok, err = pcall(new, case[1])
      assert.is_false(ok)
      assert.matches(case[2], tostring(err), 1, true)
      assert.matches("campaign.new", tostring(err), 1, true)
    end)
  end
  it("accepts good values", function()
    new{rate = 0.5}
    new{rate = 50, burst = 5, budget = 1000}
    local file = os.tmpname()
    finally(function() os.remove(file) end)
    new{budget = {calls = 10, per = "day", file = file}}
  end)
end)

describe("pacing and budget against the emulator", function()
  local emu
  before_each(function() emu = helper.fresh() end)

  local function starts_of(events)
    local out = {}
    for _, ev in ipairs(events) do out[#out + 1] = ev end
    table.sort(out)
    return out
  end

  it("paces single calls", function()
    local starts = {}
    local client = helper.client(emu, {rate = 20, on_event = function(ev)
      if ev.type == "request" then starts[#starts + 1] = campaign.gettime() end
    end})
    local t0 = campaign.gettime()
    for _ = 1, 11 do assert(client:get("profileAndServices/profile", {query = {_lineCount = 1}})) end
    -- 10 intervals of 50 ms at least: 0.5 s (a loaded machine only makes it slower)
    assert.is_true(campaign.gettime() - t0 >= 0.49)
    assert.is_true(max_in_window(starts_of(starts), 1) <= 21)
  end)

  it("paces batch starts: at most rate + burst in any 1 s, without blocking transfers", function()
    local starts = {}
    local client = helper.client(emu, {rate = 20, burst = 2, on_event = function(ev)
      if ev.type == "request" then starts[#starts + 1] = campaign.gettime() end
    end})
    local reqs = {}
    for i = 1, 30 do reqs[i] = {"GET", "profileAndServices/profile", nil, {query = {_lineCount = 1}}} end
    local t0 = campaign.gettime()
    local results = client:batch(reqs, {concurrency = 8})
    for i = 1, 30 do assert.equal(200, results[i].status) end
    assert.equal(30, #starts)
    -- 30 starts at 20/s with a burst of 2: the 30th is due 1.4 s after the first
    assert.is_true(campaign.gettime() - t0 >= 1.35)
    assert.is_true(max_in_window(starts_of(starts), 1) <= 22)
  end)

  it("makes every retry take a slot", function()
    emu:faults{method = "GET", path = "/profileAndServices/profile$", status = 503, times = 3}
    local client = helper.client(emu, {rate = 10, retry_base = 0, retry_max = 0})
    local t0 = campaign.gettime()
    local _, res = assert(client:get("profileAndServices/profile", {query = {_lineCount = 1}}))
    assert.equal(4, res.attempts)
    -- 4 attempts at 10/s, retry waits of 0: 0.3 s at least
    assert.is_true(campaign.gettime() - t0 >= 0.29)
  end)

  it("stops a single call with kind 'budget' before sending once it is spent", function()
    local client = helper.client(emu, {budget = 2})
    assert(client:get("profileAndServices/profile", {query = {_lineCount = 1}}))
    assert(client:get("profileAndServices/profile", {query = {_lineCount = 1}}))
    emu:clear_requests()
    local body, err = client:get("profileAndServices/profile", {query = {_lineCount = 1}})
    assert.is_nil(body)
    assert.equal("budget", err.kind)
    assert.is_false(err.sent)
    assert.equal("GET", err.method)
    assert.matches("budget spent", err.message)
    assert.equal(0, #helper.logged(emu, "profileAndServices/profile"))
  end)

  it("counts retries against the budget", function()
    emu:faults{method = "GET", path = "/profileAndServices/profile$", status = 503, times = 5}
    local client = helper.client(emu, {budget = 3})
    local body, err = client:get("profileAndServices/profile", {query = {_lineCount = 1}})
    assert.is_nil(body)
    assert.equal("budget", err.kind)
    assert.equal(3, err.attempts)
    assert.equal(3, #helper.logged(emu, "profileAndServices/profile"))
  end)

  it("gives every batch item past the budget its 'budget' error, unsent", function()
    local client = helper.client(emu, {budget = 5})
    local reqs = {}
    for i = 1, 12 do reqs[i] = {"GET", "profileAndServices/profile", nil, {query = {_lineCount = 1}}} end
    local results = client:batch(reqs, {concurrency = 4})
    local ok, spent = 0, 0
    for i = 1, 12 do
      if results[i].status == 200 then ok = ok + 1
      elseif results[i].err and results[i].err.kind == "budget" then spent = spent + 1 end
    end
    assert.equal(5, ok)
    assert.equal(7, spent)
    assert.equal(5, #helper.logged(emu, "profileAndServices/profile"))
  end)

  it("does not count IMS token requests, nor pace them", function()
    local auth = require "campaign.auth"
    -- ACS options copied into the IMS client's: its rate, burst and budget are dropped
    local provider = auth.ims{client_id = emu.client_id, client_secret = emu.client_secret,
      ims_url = emu.ims_url, http = {rate = 0.01, budget = 1}}
    local client = helper.client(emu, {token = provider, budget = 2, rate = 50})
    assert(client:get("profileAndServices/profile", {query = {_lineCount = 1}}))
    local t0 = campaign.gettime()
    assert(provider(true)) -- two more token requests on the IMS client: not held, not refused
    assert(provider(true))
    assert.is_true(campaign.gettime() - t0 < 5)
    assert(client:get("profileAndServices/profile", {query = {_lineCount = 1}}))
    local _, err = client:get("profileAndServices/profile", {query = {_lineCount = 1}})
    assert.equal("budget", err.kind)
    assert.equal(2, #helper.logged(emu, "profileAndServices/profile"))
  end)

  it("keeps a rolling 24 h budget in a file, across clients", function()
    local path = os.tmpname()
    os.remove(path)
    local clock = 1800000000
    local spec = {calls = 3, per = "day", file = path, clock = function() return clock end}
    local a = helper.client(emu, {budget = spec})
    assert(a:get("profileAndServices/profile", {query = {_lineCount = 1}}))
    assert(a:get("profileAndServices/profile", {query = {_lineCount = 1}}))
    local b = helper.client(emu, {budget = spec}) -- another run: the file holds the count
    assert(b:get("profileAndServices/profile", {query = {_lineCount = 1}}))
    emu:clear_requests()
    local _, err = b:get("profileAndServices/profile", {query = {_lineCount = 1}})
    assert.equal("budget", err.kind)
    assert.matches("3 calls in the last 24 h", err.message, 1, true)
    assert.equal(0, #helper.logged(emu, "profileAndServices/profile"))
    clock = clock + 86400 -- 24 h later, same minute: still counted (precision: one minute)
    _, err = b:get("profileAndServices/profile", {query = {_lineCount = 1}})
    assert.equal("budget", err and err.kind)
    clock = clock + 60
    assert(b:get("profileAndServices/profile", {query = {_lineCount = 1}}))
    local f = assert(io.open(path))
    local text = f:read("*a")
    f:close()
    assert.matches("^lua%-campaign budget 1\n", text)
    assert.equal(2, select(2, text:gsub("\n", ""))) -- header + the one minute still counted
    os.remove(path)
  end)

  it("refuses to send when the budget file is not one", function()
    local path = os.tmpname()
    local f = assert(io.open(path, "w"))
    f:write("hello\n")
    f:close()
    local client = helper.client(emu, {budget = {calls = 3, per = "day", file = path}})
    emu:clear_requests()
    local _, err = client:get("profileAndServices/profile")
    assert.equal("budget", err.kind)
    assert.matches("not a lua%-campaign budget file", err.message)
    assert.equal(0, #helper.logged(emu, "profileAndServices/profile"))
    os.remove(path)
  end)
end)
