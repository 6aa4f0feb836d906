-- The load model (docs/emulator.md "Load"): latency and seeded jitter, capacity, the gateway's
-- 429 above an in-flight or per-second limit, calls per UTC day; admin routes and start flags.
-- Timing asserts lower bounds and orderings only (a shared, noisy machine); every test puts the
-- shared emulator's load back to off (after_each) so the other specs are not slowed.
local emulator = require "emulator"

local run, q, json = emulator.run, emulator.shell_quote, emulator.json

local PATH = "profileAndServices/profile?_lineCount=1"
local TOO_MANY = '{"error_code":"429050","message":"Too many requests"}'
-- nginx's clock is cached per event loop turn: a sleep may end up to a millisecond or two
-- before its nominal length, measured from outside.
local SLACK_S = 0.002

local function admin(emu, method, path, body)
  local status, decoded, raw = emu:call(method, "/_emulator/" .. path, body, { auth = false })
  return status, decoded, raw
end

local function set_load(emu, changes)
  local status, decoded, raw = admin(emu, "POST", "load", changes)
  assert.equals(200, status, raw)
  return decoded
end

local function calls(emu)
  local status, decoded, raw = admin(emu, "GET", "calls")
  assert.equals(200, status, raw)
  return decoded
end

-- Sends n requests at once (n curl processes in the background); returns, in no order, a list
-- of {status, time (s), delay (X-Emulator-Delay-Ms as a number, or nil), retry_after, date, body}.
local function burst(emu, n, method, path)
  method, path = method or "GET", path or PATH
  local dir = run("mktemp -d"):gsub("%s+$", "")
  local url = path:match("^/") and emu.base_url .. path
    or emu.base_url .. "/" .. emu.org .. "/campaign/" .. path
  local base = "curl -s -g --http1.1 --max-time 20 -X " .. method
    .. (emu.cafile and " --cacert " .. q(emu.cafile) or "")
    .. " -H " .. q("Authorization: Bearer " .. emu.access_token) .. " -H " .. q("X-Api-Key: " .. emu.api_key)
    .. (method == "PATCH" and " -H 'Content-Type: application/json' --data-binary '{}'" or "")
    .. " -w '%{http_code}|%{time_total}|%header{x-emulator-delay-ms}|%header{retry-after}|%header{date}'"
  local script = {}
  for i = 1, n do
    script[#script + 1] = base .. " -o " .. q(dir .. "/b" .. i) .. " " .. q(url)
      .. " >" .. q(dir .. "/w" .. i) .. " &"
  end
  script[#script + 1] = "wait"
  run(table.concat(script, "\n"))
  local out = {}
  for i = 1, n do
    local w = run("cat " .. q(dir .. "/w" .. i))
    local status, time, delay, retry_after, date = w:match("^(%d+)|([%d.]+)|([^|]*)|([^|]*)|(.*)$")
    out[#out + 1] = { status = tonumber(status), time = tonumber(time), delay = tonumber(delay),
      retry_after = retry_after ~= "" and retry_after or nil, date = date,
      body = run("cat " .. q(dir .. "/b" .. i)) }
  end
  run("rm -rf " .. q(dir))
  return out
end

local function one(emu, method, path) return burst(emu, 1, method, path)[1] end

local function by_status(list)
  local ok, refused = {}, {}
  for _, r in ipairs(list) do
    if r.status == 429 then refused[#refused + 1] = r else ok[#ok + 1] = r end
  end
  return ok, refused
end

describe("emulator load model", function()
  local emu
  setup(function() emu = emulator.shared() end)
  before_each(function()
    emu:reset()
    admin(emu, "DELETE", "load")
  end)
  after_each(function()
    admin(emu, "DELETE", "load")
    emu:clear_faults()
  end)
  teardown(function() emu:reset() end)

  it("is off by default: GET load shows every knob at its default, requests have no delay", function()
    local _, config = admin(emu, "GET", "load")
    assert.same({ latency_ms = 0, jitter_ms = 0, seed = json.null, methods = {}, capacity = 0,
      limit_inflight = 0, limit_rate = 0, retry_after = 0 }, config)
    local r = one(emu)
    assert.equals(200, r.status)
    assert.is_nil(r.delay)
  end)

  it("latency_ms delays each ACS API request by at least that long (not IMS, not admin)", function()
    local config = set_load(emu, { latency_ms = 40 })
    assert.equals(40, config.latency_ms)
    for _ = 1, 3 do
      local r = one(emu)
      assert.equals(200, r.status)
      assert.equals(40, r.delay)
      assert.is_true(r.time >= 0.040 - SLACK_S, "took " .. r.time)
    end
    -- IMS is another service (ims-na1.adobelogin.com): not delayed; nor is the admin API
    local form = "grant_type=client_credentials&client_id=" .. emu.client_id .. "&client_secret="
      .. emu.client_secret
    local ims_status, _, _, ims_headers = emu:call("POST", "/ims/token/v3", nil,
      { auth = false, form = form })
    assert.equals(200, ims_status)
    assert.is_nil(ims_headers["x-emulator-delay-ms"])
    local _, _, _, admin_headers = emu:call("GET", "/_emulator/health", nil, { auth = false })
    assert.is_nil(admin_headers["x-emulator-delay-ms"])
    -- a path outside /<org>/campaign/ is not an ACS call either
    local _, _, _, other = emu:call("GET", "/elsewhere")
    assert.is_nil(other["x-emulator-delay-ms"])
  end)

  it("jitter_ms adds a uniform delay in [0, jitter); a seed makes the sequence repeatable", function()
    local function sequence(n)
      local out = {}
      for i = 1, n do
        local r = one(emu)
        assert.equals(200, r.status)
        out[i] = r.delay
      end
      return out
    end
    set_load(emu, { latency_ms = 5, jitter_ms = 40, seed = 7 })
    local first = sequence(6)
    local distinct = {}
    for _, d in ipairs(first) do
      assert.is_true(d >= 5 and d < 45, "delay " .. d)
      distinct[d] = true
    end
    assert.is_true(next(distinct, next(distinct)) ~= nil, "all six delays are equal")
    -- setting the config again starts the sequence again: the same delays, in the same order
    set_load(emu, { seed = 7 })
    assert.same(first, sequence(6))
    -- so does the admin reset with the launch flags (here: none) put back and set again
    emu:reset()
    set_load(emu, { latency_ms = 5, jitter_ms = 40, seed = 7 })
    assert.same(first, sequence(6))
    -- another seed, another sequence
    set_load(emu, { seed = 8 })
    assert.are_not.same(first, sequence(6))
    -- no seed (null): still within the range
    local config = set_load(emu, { seed = json.null })
    assert.equals(json.null, config.seed)
    for _, d in ipairs(sequence(3)) do assert.is_true(d >= 5 and d < 45, "delay " .. d) end
  end)

  it("methods limits the latency to the methods listed", function()
    local config = set_load(emu, { latency_ms = 40, methods = { "patch" } })
    assert.same({ "PATCH" }, config.methods)
    local got = one(emu)
    assert.equals(200, got.status)
    assert.is_nil(got.delay)
    local pkey = emu:profiles()[1].PKey
    local patched = one(emu, "PATCH", "profileAndServices/profile/" .. pkey)
    assert.equals(200, patched.status)
    assert.equals(40, patched.delay)
    assert.is_true(patched.time >= 0.040 - SLACK_S, "took " .. patched.time)
    -- [] or null: every method again
    assert.same({}, set_load(emu, { methods = json.null }).methods)
    assert.equals(40, one(emu).delay)
  end)

  it("capacity multiplies the latency by max(1, inflight / capacity)", function()
    set_load(emu, { latency_ms = 40, capacity = 1 })
    local results = burst(emu, 6)
    local longest = 0
    for _, r in ipairs(results) do
      assert.equals(200, r.status)
      -- inflight (this request included) is a whole number: the delay is a multiple of 40 ms
      local factor = r.delay / 40
      assert.is_true(factor >= 1 and factor == math.floor(factor), "delay " .. r.delay)
      assert.is_true(r.time >= r.delay / 1000 - SLACK_S, "took " .. r.time .. " for " .. r.delay)
      longest = math.max(longest, r.delay)
    end
    -- six requests sent at once overlap: some of them were stretched
    assert.is_true(longest >= 80, "longest delay " .. longest)
    assert.is_true(calls(emu).peak_inflight >= longest / 40)
    -- one request alone (inflight 1) gets the plain latency
    assert.equals(40, one(emu).delay)
  end)

  it("limit_inflight answers the gateway's 429 above N requests in flight", function()
    set_load(emu, { latency_ms = 200, limit_inflight = 2 })
    admin(emu, "DELETE", "calls")
    local ok, refused = by_status(burst(emu, 6))
    assert.is_true(#refused >= 1, "no 429 among 6 requests at once")
    assert.is_true(#ok >= 1)
    for _, r in ipairs(ok) do
      assert.equals(200, r.status)
      assert.is_true(r.time >= 0.2 - SLACK_S)
    end
    for _, r in ipairs(refused) do
      assert.equals(TOO_MANY, r.body)
      assert.is_nil(r.retry_after)   -- no Retry-After unless configured
      assert.is_nil(r.delay)         -- refused at once, not delayed
    end
    local counted = calls(emu)
    assert.equals(#ok, counted.calls)
    assert.equals(#refused, counted.limited)
    assert.is_true(counted.peak_inflight <= 2, "peak " .. counted.peak_inflight)
    assert.equals(0, counted.inflight)
    -- with retry_after, the 429 carries Retry-After
    set_load(emu, { retry_after = 3 })
    local _, refused_again = by_status(burst(emu, 6))
    assert.is_true(#refused_again >= 1)
    for _, r in ipairs(refused_again) do
      assert.equals("3", r.retry_after)
      assert.equals(TOO_MANY, r.body)
    end
  end)

  it("limit_rate accepts at most R requests per whole second of the clock", function()
    set_load(emu, { limit_rate = 3 })
    local results = burst(emu, 12)
    local ok, refused = by_status(results)
    assert.is_true(#refused >= 1, "no 429 among 12 requests at once")
    assert.is_true(#ok >= 1)
    -- the fixed window is the server's current second, which its Date header shows
    local per_second = {}
    for _, r in ipairs(ok) do
      assert.equals(200, r.status)
      per_second[r.date] = (per_second[r.date] or 0) + 1
    end
    for date, n in pairs(per_second) do assert.is_true(n <= 3, n .. " accepted at " .. date) end
    for _, r in ipairs(refused) do assert.equals(TOO_MANY, r.body) end
    -- one a second: of a few requests in a row, one is refused; its headers are the gateway's
    set_load(emu, { limit_rate = 1 })
    local status, raw, headers
    for _ = 1, 10 do
      status, _, raw, headers = emu:call("GET", PATH)
      if status == 429 then break end
    end
    assert.equals(429, status)
    assert.equals(TOO_MANY, raw)
    assert.equals("application/json;charset=utf-8", headers["content-type"])
    assert.equals("load", headers["x-emulator-route"])
    -- a new second: accepted again
    run("sleep 1.1")
    assert.equals(200, one(emu).status)
  end)

  it("counts ACS API calls per UTC day; DELETE calls and reset zero it", function()
    admin(emu, "DELETE", "calls")
    local before = calls(emu)
    assert.equals(os.date("!%Y-%m-%d"), before.day)
    assert.equals(0, before.calls)
    emu:call("GET", PATH)
    emu:call("GET", PATH)
    emu:call("GET", PATH, nil, { auth = false })        -- a gateway 403 is an ACS call too
    emu:call("POST", "/ims/token/v3", nil, { auth = false, form = "grant_type=x" })  -- not IMS
    emu:call("GET", "/elsewhere")                        -- nor a path outside the API
    emu:health()                                         -- nor the admin API
    local after = calls(emu)
    assert.equals(3, after.calls)
    assert.equals(0, after.limited)
    -- another day is readable (kept 8 days); a malformed one is refused
    local status, other = admin(emu, "GET", "calls?day=2001-01-01")
    assert.equals(200, status)
    assert.same("2001-01-01", other.day)
    assert.equals(0, other.calls)
    assert.equals(400, (admin(emu, "GET", "calls?day=yesterday")))
    local _, cleared = admin(emu, "DELETE", "calls")
    assert.equals(0, cleared.calls)
    emu:call("GET", PATH)
    assert.equals(1, calls(emu).calls)
    emu:reset()
    assert.equals(0, calls(emu).calls)
  end)

  it("GET calls sums the delays it applied (delayed, delay_ms); DELETE calls zeroes them", function()
    admin(emu, "DELETE", "calls")
    set_load(emu, { latency_ms = 5, jitter_ms = 20, seed = 11, methods = { "PATCH" } })
    local sum = 0
    for _ = 1, 4 do
      local r = one(emu, "PATCH", "profileAndServices/profile/@nope")
      assert.is_number(r.delay)
      sum = sum + r.delay
    end
    one(emu)                                             -- a GET: not delayed, not summed
    local c = calls(emu)
    assert.equals(4, c.delayed)
    assert.is_true(math.abs(c.delay_ms - sum) < 0.01, ("%s vs %s"):format(c.delay_ms, sum))
    assert.is_true(c.delay_ms >= 20)
    local _, cleared = admin(emu, "DELETE", "calls")
    assert.equals(0, cleared.delayed)
    assert.equals(0, cleared.delay_ms)
  end)

  it("the in-flight count comes back to 0 after a dropped connection and a client that gave up", function()
    set_load(emu, { latency_ms = 30 })
    emu:faults { drop = true }
    assert.equals(0, (emu:call("GET", PATH)))     -- curl: empty reply
    -- a client that leaves during the delay: the server still counts it until the delay ends
    set_load(emu, { latency_ms = 400 })
    emu:call("GET", PATH, nil, { timeout = 0.1 })
    assert.equals(1, calls(emu).inflight)
    local inflight
    for _ = 1, 100 do
      inflight = calls(emu).inflight
      if inflight == 0 then break end
      run("sleep 0.05")
    end
    assert.equals(0, inflight)
  end)

  it("refuses bad settings with 400 and keeps the config", function()
    set_load(emu, { latency_ms = 30 })
    for _, body in ipairs { { latency_ms = -1 }, { jitter_ms = "5" }, { latency_ms = 600001 }, { seed = 1.5 },
      { seed = -1 }, { methods = "PATCH" }, { methods = { "PA TCH" } }, { methods = { a = 1 } },
      { capacity = 1.5 }, { limit_inflight = -2 }, { limit_rate = true }, { retry_after = 86401 },
      { bogus = 1 }, { latency_ms = 10, bogus = 1 } } do
      local status, decoded = admin(emu, "POST", "load", body)
      assert.equals(400, status, json.encode(body))
      assert.is_string(decoded.error)
    end
    assert.equals(400, (emu:call("POST", "/_emulator/load", nil, { auth = false, raw = "[1]" })))
    assert.equals(400, (emu:call("POST", "/_emulator/load", nil, { auth = false, raw = "{" })))
    local _, config = admin(emu, "GET", "load")
    assert.equals(30, config.latency_ms)
    -- 0 and null put a knob back to off
    assert.equals(0, set_load(emu, { latency_ms = 0 }).latency_ms)
    local _, cleared = admin(emu, "DELETE", "load")
    assert.equals(0, cleared.latency_ms)
  end)
end)

describe("emulator load start flags", function()
  local launcher = q(emulator.launcher)

  -- Starts a private emulator with extra launcher arguments (spec/support/emulator.lua's
  -- start() knows only the older options).
  local function start_with(args)
    local prefix = run("mktemp -d \"${TMPDIR:-/tmp}/campaign-emu.XXXXXX\""):gsub("%s+$", "")
    local out, ok = run(launcher .. " start --profiles 2 --prefix " .. q(prefix) .. " " .. args .. " 2>&1")
    local info = {}
    for line in out:gmatch("[^\n]+") do
      local k, v = line:match("^([%w_]+)=(.*)$")
      if k then info[k] = v end
    end
    if not ok or not info.base_url then
      run("rm -rf " .. q(prefix))
      error("campaign-emulator did not start: " .. out)
    end
    local e = setmetatable(info, emulator)
    e.owned, e.made_prefix = true, true
    e:watch_owner()
    return e
  end

  it("the flags reach the load config, and reset puts them back", function()
    local e = start_with("--latency 40 --jitter=10 --seed 7 --latency-methods get,PATCH --capacity 16 "
      .. "--limit-inflight 32 --limit-rate 100 --retry-after 1")
    finally(function() e:stop() end)
    local expected = { latency_ms = 40, jitter_ms = 10, seed = 7, methods = { "GET", "PATCH" }, capacity = 16,
      limit_inflight = 32, limit_rate = 100, retry_after = 1 }
    local status, config = admin(e, "GET", "load")
    assert.equals(200, status)
    assert.same(expected, config)
    local r = one(e)
    assert.equals(200, r.status)
    assert.is_true(r.delay >= 40 and r.delay < 50, "delay " .. tostring(r.delay))
    assert.is_true(r.time >= 0.040 - SLACK_S)
    -- DELETE load turns everything off; reset brings the launch flags back, and with them the
    -- seeded sequence from its start
    admin(e, "DELETE", "load")
    assert.is_nil(one(e).delay)
    e:reset()
    assert.same(expected, (select(2, admin(e, "GET", "load"))))
    assert.equals(r.delay, one(e).delay)
  end)

  it("rejects bad load flags", function()
    for _, args in ipairs { "--latency x", "--latency -5", "--latency 600001", "--jitter 1e3", "--seed 1.5",
      "--capacity -1", "--limit-inflight x", "--limit-rate 2.5", "--retry-after 86401",
      "--latency-methods 'GET PATCH'", "--latency-methods ,", "--latency" } do
      local out, ok = run(launcher .. " start --prefix /tmp/campaign-emu-never-load " .. args .. " 2>&1")
      assert.is_false(ok, args)
      assert.matches("campaign%-emulator: %-%-", out)
    end
    run("rm -rf /tmp/campaign-emu-never-load")
  end)
end)
